"""Equivalence by two one-sided tests (TOST; Schuirmann 1987).

"Not significantly different" is not evidence of "the same": a tiny eval cannot tell
anything apart. We call two candidates *equivalent* only when the paired difference is
shown to lie inside ±margin: both one-sided nulls (diff ≤ −margin, diff ≥ +margin) are
rejected at α, i.e. the (1 − 2α) interval lies inside the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analyze_experiment.stats.distributions import norm_ppf, t_cdf, t_ppf, t_sf
from analyze_experiment.stats.intervals import cluster_se


@dataclass(frozen=True)
class Tost:
    """TOST result for a paired difference."""

    diff: float
    ci_low: float
    ci_high: float
    """The (1 − 2α) interval of the difference."""
    p_tost: float
    equivalent: bool


def tost_paired(
    d: np.ndarray, margin: float, alpha: float = 0.05, clusters: np.ndarray | None = None
) -> Tost:
    """TOST on per-sample differences ``d`` with equivalence bounds ±``margin``.

    t statistics (d̄ + margin)/SE and (d̄ − margin)/SE with n−1 degrees of freedom (G−1 and
    the clustered SE when clusters are given); p = max of the two one-sided p-values.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n <= 1:
        return Tost(float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, False)
    mean = float(d.mean())
    se, dof = _se_dof(d, clusters)
    if dof < 1 or math.isnan(se):
        return Tost(mean, math.nan, math.nan, math.nan, False)
    if se == 0:
        inside = abs(mean) < margin
        return Tost(mean, mean, mean, 0.0 if inside else 1.0, inside)
    p_low = float(t_sf((mean + margin) / se, dof))
    p_high = float(t_cdf((mean - margin) / se, dof))
    p = max(p_low, p_high)
    t = float(t_ppf(1 - alpha, dof))
    return Tost(mean, mean - t * se, mean + t * se, p, p < alpha)


MARGIN_FRACTION = 0.5
"""Default margin: this fraction of the width of the best candidate's confidence interval, in
the metric's own units (percentage points for an accuracy, rubric points, MAE units) — a
difference smaller than the eval's own resolution of the best. ``--margin`` overrides it."""


def default_margin(ci_low: float | None, ci_high: float | None, user: float | None) -> tuple[float, str]:
    """(margin, how it was set): the user's ``--margin``, else ``MARGIN_FRACTION`` × the best's CI width."""
    if user is not None and not math.isnan(float(user)):
        return (float(user), "--margin")
    if ci_low is None or ci_high is None or math.isnan(ci_low) or math.isnan(ci_high) or ci_high <= ci_low:
        return (math.nan, "no interval for the best")
    return (MARGIN_FRACTION * (ci_high - ci_low), f"{MARGIN_FRACTION:g} × the width of the best's CI")


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test that a candidate is at most ``margin`` worse than the reference."""

    diff: float
    """Mean of the oriented differences (positive: the candidate is better)."""
    lower: float
    """One-sided (1 − α) lower confidence bound of ``diff``."""
    p_value: float
    """p of H0: diff ≤ −margin."""
    margin: float
    non_inferior: bool


def noninferiority_paired(
    d: np.ndarray, margin: float, alpha: float = 0.05, clusters: np.ndarray | None = None
) -> NonInferiority:
    """Paired one-sided t test of H0: mean(d) ≤ −margin against H1: mean(d) > −margin.

    ``d`` is oriented so that larger is better for the candidate (candidate − reference for a
    higher-is-better metric, reference − candidate for lower-is-better). Non-inferior when
    the one-sided lower bound lies above −margin (p < α). Equals statsmodels
    ``DescrStatsW(d).ttest_mean(-margin, alternative="larger")``.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n <= 1 or math.isnan(margin):
        return NonInferiority(float(d.mean()) if n else math.nan, math.nan, math.nan, margin, False)
    mean = float(d.mean())
    se, dof = _se_dof(d, clusters)
    if dof < 1 or math.isnan(se):
        return NonInferiority(mean, math.nan, math.nan, margin, False)
    if se == 0:
        ok = mean > -margin
        return NonInferiority(mean, mean, 0.0 if ok else 1.0, margin, ok)
    p = float(t_sf((mean + margin) / se, dof))
    lower = mean - float(t_ppf(1 - alpha, dof)) * se
    return NonInferiority(mean, lower, p, margin, p < alpha)


def pairs_for_noninferiority(margin: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Paired samples a one-sided test at ``alpha`` needs to show non-inferiority at ``margin``
    with probability ``power`` when the two are truly equal: n = ((z₁₋α + z_power)·sd/margin)²."""
    if not margin or math.isnan(margin) or not sd_diff or math.isnan(sd_diff):
        return math.nan
    z = norm_ppf(1 - alpha) + norm_ppf(power)
    return float(math.ceil((z * sd_diff / margin) ** 2))


def _se_dof(d: np.ndarray, clusters: np.ndarray | None) -> tuple[float, int]:
    """SE of the mean paired difference and its degrees of freedom (G − 1 when clustered):
    TOST and the non-inferiority test must use the same spread as the paired comparison."""
    if clusters is not None:
        se, g, _ = cluster_se(d, clusters)
        return se, g - 1
    return float(np.std(d, ddof=1) / math.sqrt(len(d))), len(d) - 1
