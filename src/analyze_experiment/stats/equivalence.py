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
from scipy import stats

from analyze_experiment.stats.intervals import clustered_se


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
    if clusters is not None:
        se, g = clustered_se(d, clusters)
        dof = g - 1
    else:
        se, dof = float(np.std(d, ddof=1) / math.sqrt(n)), n - 1
    if dof < 1 or math.isnan(se):
        return Tost(mean, math.nan, math.nan, math.nan, False)
    if se == 0:
        inside = abs(mean) < margin
        return Tost(mean, mean, mean, 0.0 if inside else 1.0, inside)
    p_low = float(stats.t.sf((mean + margin) / se, dof))
    p_high = float(stats.t.cdf((mean - margin) / se, dof))
    p = max(p_low, p_high)
    t = float(stats.t.ppf(1 - alpha, dof))
    return Tost(mean, mean - t * se, mean + t * se, p, p < alpha)
