"""Brent's root finder, step for step as ``scipy.optimize.brentq`` takes it.

Two numbers in every report are roots: the minimum detectable difference (power(d) = 0.8,
stats/power.py) and the exact binomial (Clopper–Pearson) interval behind the McNemar interval
(stats/paired.py, as ``scipy.stats.binomtest`` finds it). ``scipy.optimize`` costs 0.4 s of
CPU to import for this one function. The method is the van Wijngaarden–Dekker–Brent one
(Brent 1973, ch. 4): keep a bracket [cur, blk] with f changing sign, try inverse
interpolation — linear from two points, or the three-point extrapolation scipy's C version
uses — and fall back to bisection whenever the step would not shrink the bracket fast
enough. Doing the same float operations in the same order gives the same iterates, so the
same root to the last bit (tests/test_roots.py compares it with scipy on a few hundred
functions, and the golden report is unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

XTOL = 2e-12
"""scipy's default absolute tolerance."""
RTOL = 4 * 2.220446049250313e-16
"""scipy's default (and smallest allowed) relative tolerance: four machine epsilons."""
MAXITER = 100


def _value(f: Callable[[float], float], x: float) -> float:
    fx = float(f(x))
    if math.isnan(fx):
        raise ValueError(f"the function is NaN at {x!r}")
    return fx


def brent_root(f: Callable[[float], float], a: float, b: float, *, xtol: float = XTOL, rtol: float = RTOL,
               maxiter: int = MAXITER) -> float:
    """A root of ``f`` in [a, b] (f(a) and f(b) of opposite signs), to within
    ``xtol + rtol·|root|``; the value ``scipy.optimize.brentq(f, a, b, xtol, rtol, maxiter)``
    returns. Raises ValueError when f(a) and f(b) have the same sign or f is NaN, and
    RuntimeError after ``maxiter`` steps, as brentq does."""
    if xtol <= 0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {RTOL:g})")
    x_prev, x_cur = float(a), float(b)
    f_prev, f_cur = _value(f, x_prev), _value(f, x_cur)
    if f_prev * f_cur > 0:
        raise ValueError("f(a) and f(b) must have different signs")
    if f_prev == 0:
        return x_prev
    if f_cur == 0:
        return x_cur
    x_blk = f_blk = step_prev = step = 0.0
    for _ in range(maxiter):
        if f_prev * f_cur < 0:  # the sign change is between prev and cur: prev becomes the far end
            x_blk, f_blk = x_prev, f_prev
            step_prev = step = x_cur - x_prev
        if abs(f_blk) < abs(f_cur):  # keep the best estimate in cur
            x_prev, x_cur, x_blk = x_cur, x_blk, x_cur
            f_prev, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2
        half = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(half) < delta:
            return x_cur
        if abs(step_prev) > delta and abs(f_cur) < abs(f_prev):
            if x_prev == x_blk:  # two distinct points: secant
                trial = -f_cur * (x_cur - x_prev) / (f_cur - f_prev)
            else:  # three: inverse quadratic extrapolation through the divided differences
                d_prev = (f_prev - f_cur) / (x_prev - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                trial = -f_cur * (f_blk * d_blk - f_prev * d_prev) / (d_blk * d_prev * (f_blk - f_prev))
            bound = abs(step_prev) if abs(step_prev) < 3 * abs(half) - delta else 3 * abs(half) - delta
            if 2 * abs(trial) < bound:  # a short step that keeps shrinking the bracket
                step_prev, step = step, trial
            else:
                step_prev = step = half
        else:
            step_prev = step = half
        x_prev, f_prev = x_cur, f_cur
        x_cur += step if abs(step) > delta else (delta if half > 0 else -delta)
        f_cur = _value(f, x_cur)
    raise RuntimeError(f"Failed to converge after {maxiter} iterations, value is {x_cur}")


def brent_roots(f: Callable[[np.ndarray, np.ndarray], np.ndarray], m: int, *, xtol: float = XTOL,
                rtol: float = RTOL, maxiter: int = MAXITER) -> np.ndarray:
    """:func:`brent_root` of ``m`` functions on [0, 1] at once, each the same root to the last bit.

    ``f(x, lanes)`` evaluates functions ``lanes`` (indices) at the points ``x`` element-wise.
    Every lane takes the steps :func:`brent_root` takes — the same float operations on its own
    numbers, chosen per lane by masks — so a report's few hundred Clopper–Pearson intervals cost
    a dozen array passes instead of a dozen scalar calls each. A lane :func:`brent_root` would
    raise on (no sign change, NaN, no convergence) is NaN here: the caller redoes it with
    :func:`brent_root`, which raises as it did.
    """
    lanes = np.arange(m)
    x_prev, x_cur = np.zeros(m), np.ones(m)
    f_prev, f_cur = f(x_prev, lanes).astype(float), f(x_cur, lanes).astype(float)
    root = np.full(m, np.nan)
    bad = np.isnan(f_prev) | np.isnan(f_cur) | (f_prev * f_cur > 0)
    at_a, at_b = ~bad & (f_prev == 0), ~bad & (f_prev != 0) & (f_cur == 0)
    root[at_a], root[at_b] = x_prev[at_a], x_cur[at_b]
    live = ~bad & ~at_a & ~at_b
    x_blk, f_blk, step_prev, step = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    with np.errstate(all="ignore"):  # the lanes that do not take a branch compute it anyway
        for _ in range(maxiter):
            if not live.any():
                break
            change = live & (f_prev * f_cur < 0)
            x_blk, f_blk = np.where(change, x_prev, x_blk), np.where(change, f_prev, f_blk)
            width = x_cur - x_prev
            step_prev, step = np.where(change, width, step_prev), np.where(change, width, step)
            swap = live & (np.abs(f_blk) < np.abs(f_cur))
            x_prev, x_cur, x_blk = (np.where(swap, x_cur, x_prev), np.where(swap, x_blk, x_cur),
                                    np.where(swap, x_cur, x_blk))
            f_prev, f_cur, f_blk = (np.where(swap, f_cur, f_prev), np.where(swap, f_blk, f_cur),
                                    np.where(swap, f_cur, f_blk))
            delta = (xtol + rtol * np.abs(x_cur)) / 2
            half = (x_blk - x_cur) / 2
            done = live & ((f_cur == 0) | (np.abs(half) < delta))
            root[done] = x_cur[done]
            live = live & ~done
            interp = live & (np.abs(step_prev) > delta) & (np.abs(f_cur) < np.abs(f_prev))
            secant = -f_cur * (x_cur - x_prev) / (f_cur - f_prev)
            d_prev = (f_prev - f_cur) / (x_prev - x_cur)
            d_blk = (f_blk - f_cur) / (x_blk - x_cur)
            quad = -f_cur * (f_blk * d_blk - f_prev * d_prev) / (d_blk * d_prev * (f_blk - f_prev))
            trial = np.where(x_prev == x_blk, secant, quad)
            bound = np.where(np.abs(step_prev) < 3 * np.abs(half) - delta, np.abs(step_prev),
                             3 * np.abs(half) - delta)
            take = interp & (2 * np.abs(trial) < bound)
            step_prev, step = np.where(take, step, half), np.where(take, trial, half)
            x_prev, f_prev = np.where(live, x_cur, x_prev), np.where(live, f_cur, f_prev)
            moved = x_cur + np.where(np.abs(step) > delta, step, np.where(half > 0, delta, -delta))
            x_cur = np.where(live, moved, x_cur)
            if live.any():
                idx = np.flatnonzero(live)
                f_cur = f_cur.copy()
                f_cur[idx] = f(x_cur[idx], idx)
                nan = live & np.isnan(f_cur)
                live = live & ~nan  # brent_root raises here: NaN, redone by the caller
    return root
