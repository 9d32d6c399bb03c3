"""Minimum detectable difference (MDD) for the paired design at hand.

Stated once per task × scorer so readers know what "not significant" can mean: with 100
questions a 5-point gain may go undetected (Miller 2024, §5 "power analysis").
"""

from __future__ import annotations

import math

from statsmodels.stats.power import TTestPower


def minimum_detectable_difference(
    n: int, sd_diff: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest true mean paired difference a two-sided paired t-test at ``alpha`` detects
    with probability ``power`` given ``n`` pairs whose differences have SD ``sd_diff``.

    Solved on the noncentral t (statsmodels ``TTestPower``) and scaled back from Cohen's d;
    ≈ (z₁₋α/₂ + z_power)·sd_diff/√n for large n.
    """
    if n < 3 or not sd_diff or math.isnan(sd_diff):
        return math.nan
    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(d) * float(sd_diff)


def samples_for_difference(
    target: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Pairs needed to detect a true difference ``target`` (inverse of the MDD)."""
    if not target or not sd_diff or math.isnan(sd_diff):
        return math.nan
    n = TTestPower().solve_power(effect_size=target / sd_diff, nobs=None, alpha=alpha, power=power)
    return float(math.ceil(n))
