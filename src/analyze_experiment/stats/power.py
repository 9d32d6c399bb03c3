"""Minimum detectable difference (MDD) for the paired design at hand.

Stated once per task × scorer so readers know what "not significant" can mean: with 100
questions a 5-point gain may go undetected (Miller 2024, §5 "power analysis").
"""

from __future__ import annotations

import math

from analyze_experiment.stats.distributions import nct_cdf, nct_sf, norm_cdf, norm_ppf, norm_sf, t_isf, t_ppf
from analyze_experiment.stats.roots import brent_root


def paired_power(effect: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test for standardized effect ``effect`` (Cohen's d)
    with ``n`` pairs: P(|T| > t₁₋α/₂) under the noncentral t with δ = d·√n, n − 1 df.
    Equals statsmodels ``TTestPower().power``."""
    dof = n - 1
    crit = t_ppf(1 - alpha / 2, dof)
    nc = effect * math.sqrt(n)
    p = float(nct_sf(crit, dof, nc) + nct_cdf(-crit, dof, nc))
    if math.isnan(p):  # scipy's nct fails far in the tail; the normal limit is exact there
        p = float(norm_sf(crit - nc) + norm_cdf(-crit - nc))
    return p


def two_sample_power(effect: float, n_per_group: float, alpha: float = 0.05, *,
                     normal_limit: bool = False) -> float:
    """Power of the two-sided pooled two-sample t-test with ``n_per_group`` in each group for
    standardized effect ``effect``: the noncentral t with δ = d·√(n/2), 2n − 2 df.

    The float statsmodels ``TTestIndPower().power(effect, n, alpha, ratio=1)`` returns, computed
    the same way (its upper tail is 1 − the noncentral CDF, not the clipped survival function
    :func:`paired_power` uses); NaN below two runs in all (no degrees of freedom). Where
    scipy's noncentral t fails (NaN, far in the tail for large effects) statsmodels answers
    NaN; with ``normal_limit`` the normal limit answers instead, as in :func:`paired_power`."""
    n2 = n_per_group * 1.0
    dof = n_per_group - 1 + n2 - 1
    nobs = 1.0 / (1.0 / n_per_group + 1.0 / n2)
    crit_upper, crit_lower = t_isf(alpha / 2.0, dof), t_ppf(alpha / 2.0, dof)
    if math.isnan(crit_upper) or math.isnan(crit_lower):
        return math.nan
    nc = effect * math.sqrt(nobs)
    p = float(1 - nct_cdf(crit_upper, dof, nc) + nct_cdf(crit_lower, dof, nc))
    if math.isnan(p) and normal_limit:
        p = float(norm_sf(crit_upper - nc) + norm_cdf(crit_lower - nc))
    return p


def minimum_detectable_difference(
    n: int, sd_diff: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest true mean paired difference a two-sided paired t-test at ``alpha`` detects
    with probability ``power`` given ``n`` pairs whose differences have SD ``sd_diff``.

    Solved on the noncentral t (root of power(d) = target) and scaled back from Cohen's d;
    ≈ (z₁₋α/₂ + z_power)·sd_diff/√n for large n.
    """
    if n < 3 or not sd_diff or math.isnan(sd_diff):
        return math.nan
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    upper = 3 * z / math.sqrt(n - 2) + 1.0
    d = brent_root(lambda e: paired_power(e, n, alpha) - power, 1e-9, upper, xtol=1e-14)
    return float(d) * float(sd_diff)


def samples_for_difference(
    target: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Pairs needed to detect a true difference ``target`` (inverse of the MDD)."""
    if not target or not sd_diff or math.isnan(sd_diff):
        return math.nan
    d = abs(target) / sd_diff
    lo, hi = 3, 4
    while paired_power(d, hi, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > 10**9:
            return math.nan
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if paired_power(d, mid, alpha) < power else (lo, mid)
    return float(hi)
