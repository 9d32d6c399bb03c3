"""The distribution functions the statistics need, without importing ``scipy.stats``.

``scipy.stats`` takes about two thirds of a second to import (most of it building the
docstrings of a hundred distributions), which was a tenth of a whole report's CPU time, while
the report mostly asks it for a t or normal quantile. ``scipy.stats`` computes those with
the ``scipy.special`` functions called here (``t.ppf`` is ``stdtrit``, ``norm.cdf`` is
``ndtr`` …), and ``scipy.special`` imports in a tenth of the time; going there directly gives
the same float to the last bit. ``tests/test_distributions.py`` holds every function to its
``scipy.stats`` twin — bit for bit — over a grid that includes the edge cases
(q = 0 or 1, infinite and invalid degrees of freedom, NaN).

What scipy.stats adds on top (argument checks, loc/scale) is kept where it changes a result:
the one difference left is ``stdtrit(df, 0)``, which is +∞ where the quantile is −∞.

Scalars in, NumPy scalars out; arrays in, arrays out — as ``scipy.stats``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import special
from scipy.special import _ufuncs

ArrayLike = Any
"""A float or an array of floats (broadcast together, as in ``scipy.stats``)."""


def t_ppf(q: ArrayLike, df: ArrayLike) -> Any:
    """Student t quantile: ``scipy.stats.t.ppf(q, df)``."""
    out = special.stdtrit(df, q)
    return np.where((np.asarray(q) == 0) & (np.asarray(df) > 0), -np.inf, out)[()]


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """``float(t_ppf(q, df))`` for one quantile, memoised: every paired interval of a family
    asks for the same one (0.975 at n − 1 degrees of freedom), hundreds of times per report."""
    return float(t_ppf(q, df))


def t_sf(x: ArrayLike, df: ArrayLike) -> Any:
    """Student t upper tail P(T > x): ``scipy.stats.t.sf(x, df)``."""
    return special.stdtr(df, -np.asarray(x, dtype=float))[()]


def t_cdf(x: ArrayLike, df: ArrayLike) -> Any:
    """Student t lower tail P(T ≤ x): ``scipy.stats.t.cdf(x, df)``."""
    return special.stdtr(df, x)


def norm_ppf(q: ArrayLike) -> Any:
    """Standard normal quantile: ``scipy.stats.norm.ppf(q)``."""
    return special.ndtri(q)


def norm_cdf(x: ArrayLike) -> Any:
    """Standard normal lower tail: ``scipy.stats.norm.cdf(x)``."""
    return special.ndtr(x)


def norm_sf(x: ArrayLike) -> Any:
    """Standard normal upper tail: ``scipy.stats.norm.sf(x)``."""
    return special.ndtr(-np.asarray(x, dtype=float))[()]


def binom_cdf(k: ArrayLike, n: ArrayLike, p: ArrayLike) -> Any:
    """Binomial P(X ≤ k) for whole n ≥ 1 and 0 ≤ p ≤ 1: ``scipy.stats.binom.cdf(k, n, p)``.

    scipy.stats calls the same (private) Boost-based ufunc after flooring k, clips it to
    [0, 1] and answers 0 below the support and 1 at or above n; the public ``bdtr`` is an
    older algorithm that differs in the 12th digit, which would move the exact McNemar
    p-values the report prints. The test pins this to scipy.stats."""
    k = np.asarray(k, dtype=float)
    inside = np.clip(_ufuncs._binom_cdf(np.floor(k), n, p), 0, 1)
    return np.where(k >= np.asarray(n), 1.0, np.where(k < 0, 0.0, inside))[()]


def binom_sf(k: ArrayLike, n: ArrayLike, p: ArrayLike) -> Any:
    """Binomial P(X > k) for whole n ≥ 1 and 0 ≤ p ≤ 1: ``scipy.stats.binom.sf(k, n, p)``
    (1 below the support, 0 at or above n, else the clipped Boost ufunc, as scipy.stats)."""
    k = np.asarray(k, dtype=float)
    inside = np.clip(_ufuncs._binom_sf(np.floor(k), n, p), 0, 1)
    return np.where(k < 0, 1.0, np.where(k >= np.asarray(n), 0.0, inside))[()]


def binom_cdf_at(k: float, n: float, p: float) -> float:
    """``float(binom_cdf(k, n, p))`` for one point, without the array machinery: a root search
    (the Clopper–Pearson interval, stats/paired.py) evaluates it a dozen times per interval and
    hundreds of intervals per report, and the asarray/floor/clip/where wrapping cost ten times
    the Boost call. Same branches, same ufunc, same clipping: the same float."""
    if k >= n:
        return 1.0
    if k < 0:
        return 0.0
    return _clip01(float(_ufuncs._binom_cdf(math.floor(k) if math.isfinite(k) else k, n, p)))


def binom_sf_at(k: float, n: float, p: float) -> float:
    """``float(binom_sf(k, n, p))`` for one point (see :func:`binom_cdf_at`)."""
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return _clip01(float(_ufuncs._binom_sf(math.floor(k) if math.isfinite(k) else k, n, p)))


def _clip01(v: float) -> float:
    """``np.clip(v, 0, 1)`` of one float (NaN stays NaN)."""
    return 0.0 if v < 0 else 1.0 if v > 1 else v


def beta_ppf(q: ArrayLike, a: ArrayLike, b: ArrayLike) -> Any:
    """Beta quantile for 0 < q < 1 and a, b > 0: ``scipy.stats.beta.ppf(q, a, b)``
    (both are Boost's incomplete-beta inverse)."""
    return special.betaincinv(a, b, q)


def nct_cdf(x: ArrayLike, df: ArrayLike, nc: ArrayLike) -> Any:
    """Noncentral t lower tail: ``scipy.stats.nct.cdf(x, df, nc)`` (NaN where it fails)."""
    return special.nctdtr(df, nc, x)


def t_isf(q: ArrayLike, df: ArrayLike) -> Any:
    """Student t upper quantile for 0 < q < 1: ``scipy.stats.t.isf(q, df)``."""
    return -special.stdtrit(df, q)


def nct_sf(x: ArrayLike, df: ArrayLike, nc: ArrayLike) -> Any:
    """Noncentral t upper tail: ``scipy.stats.nct.sf(x, df, nc)`` — the same private
    Boost ufunc, clipped to [0, 1] as scipy.stats does (NaN where it fails)."""
    with np.errstate(over="ignore"):
        return np.clip(_ufuncs._nct_sf(x, df, nc), 0, 1)[()]
