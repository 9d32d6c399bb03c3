"""The procedures that replaced scipy.optimize, scipy.stats tests and statsmodels' power solver.

Each gives the number the library gave, compared with ``==`` (the golden report has to stay
byte-identical): Brent's root finder against ``scipy.optimize.brentq``, the exact binomial
interval against ``scipy.stats.binomtest``, the one-sample t against ``ttest_1samp``, the
two-sample power against statsmodels ``TTestIndPower().power`` and the seeds a grid needs
against ``TTestIndPower().solve_power`` wherever statsmodels could solve it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from analyze_experiment.stats.distributions import binom_cdf, binom_sf
from analyze_experiment.stats.effects import one_sample_t, seeds_needed
from analyze_experiment.stats.paired import clopper_pearson, mcnemar_exact_ci
from analyze_experiment.stats.power import minimum_detectable_difference, paired_power, two_sample_power
from analyze_experiment.stats.roots import brent_root

RNG = np.random.default_rng(15)


def _functions():
    for c in RNG.uniform(0.1, 5, 40):
        yield (lambda x, c=c: x**3 - c), -2.0, 3.0
    for c in RNG.uniform(1.5, 5, 40):
        yield (lambda x, c=c: math.exp(x) - c), -2.0, 3.0
    for c in RNG.uniform(-1, 1, 40):
        yield (lambda x, c=c: math.atan(50 * (x - c))), -2.0, 3.0  # steep: many bisections
    yield (lambda x: x - 0.25), 0.0, 1.0  # linear: one secant step
    yield (lambda x: x), 0.0, 1.0  # root at an end


@pytest.mark.parametrize("xtol", [2e-12, 1e-14, 1e-6])
def test_brent_root_is_brentq_to_the_last_bit(xtol):
    for f, a, b in _functions():
        assert brent_root(f, a, b, xtol=xtol) == optimize.brentq(f, a, b, xtol=xtol)


def test_brent_root_refuses_what_brentq_refuses():
    with pytest.raises(ValueError, match="different signs"):
        brent_root(lambda x: x * x + 1, -1, 1)
    with pytest.raises(ValueError, match="NaN"):
        brent_root(lambda x: math.nan, -1, 1)
    with pytest.raises(RuntimeError, match="converge"):
        brent_root(lambda x: math.atan(50 * (x - 0.3)), -2, 3, maxiter=3)


def test_minimum_detectable_difference_solves_as_brentq_did():
    for n in range(3, 400, 13):
        z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
        upper = 3 * z / math.sqrt(n - 2) + 1.0
        want = optimize.brentq(lambda e, n=n: paired_power(e, n, 0.05) - 0.8, 1e-9, upper, xtol=1e-14)
        assert minimum_detectable_difference(n, 0.3) == float(want) * 0.3


def test_binomial_tails_match_scipy_stats_at_the_bracket_ends():
    """The interval's root search evaluates the tails at p = 0 and p = 1."""
    for n in (1, 2, 7, 50):
        for k in range(-1, n + 2):
            for p in (0.0, 1.0, 0.5, 0.123):
                assert binom_sf(k, n, p) == stats.binom.sf(k, n, p), (k, n, p)
                assert binom_cdf(k, n, p) == stats.binom.cdf(k, n, p), (k, n, p)


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_clopper_pearson_is_binomtest_exact_interval(confidence):
    pairs = [(k, n) for n in range(1, 31) for k in range(n + 1)]
    pairs += [(int(RNG.integers(0, n + 1)), int(n)) for n in RNG.integers(31, 3000, 40)]
    for k, n in pairs:
        ci = stats.binomtest(k, n, 0.5).proportion_ci(confidence_level=confidence, method="exact")
        assert clopper_pearson(k, n, confidence) == (ci.low, ci.high), (k, n)


def test_mcnemar_interval_from_the_exact_binomial_interval():
    """7 vs 2 discordant pairs of 40: π̂ = 7/9; the interval maps (2π − 1)·9/40."""
    lo_pi, hi_pi = clopper_pearson(7, 9)
    assert mcnemar_exact_ci(7, 2, 40) == (9 / 40 * (2 * lo_pi - 1), 9 / 40 * (2 * hi_pi - 1))
    assert lo_pi == pytest.approx(0.39991, abs=1e-5) and hi_pi == pytest.approx(0.97186, abs=1e-5)


def test_one_sample_t_is_ttest_1samp():
    for i in range(600):
        x = RNG.normal(RNG.normal(0, 1), RNG.uniform(0.01, 3), int(RNG.integers(2, 30)))
        if i % 2:
            x = np.round(x, 2)
        confidence = (0.95, 0.9, 0.99)[i % 3]
        res = stats.ttest_1samp(x, 0.0)
        ci = res.confidence_interval(confidence)
        assert one_sample_t(x, confidence) == (float(ci.low), float(ci.high), float(res.pvalue))


def test_two_sample_power_is_statsmodels():
    power_mod = pytest.importorskip("statsmodels.stats.power")
    for es in np.geomspace(0.01, 6, 60):
        for n in (2, 3, 7, 40, 1000):
            want = power_mod.TTestIndPower().power(effect_size=es, nobs1=n, alpha=0.05, ratio=1.0)
            got = two_sample_power(float(es), n)
            assert got == want or (math.isnan(got) and math.isnan(want)), (es, n)


def _statsmodels_seeds(es: float, per_level: int) -> float:
    """seeds_needed as it was written with statsmodels (the reference)."""
    from statsmodels.stats.power import TTestIndPower

    if TTestIndPower().power(effect_size=es, nobs1=2, alpha=0.05, ratio=1.0) >= 0.8:
        return 2.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = float(TTestIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=1.0))
    except (ValueError, RuntimeError):
        return math.nan
    if math.isnan(n) or n > 1e6:
        return math.nan
    return float(max(2, math.ceil(n / per_level)))


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_seeds_needed_is_statsmodels_wherever_statsmodels_answers():
    """Over effects from 0.002 SD (beyond a million runs: NaN) to 20 SD. Where statsmodels'
    noncentral t fails (effects of ~8 SD and more) it answered NaN; the search answers 2."""
    pytest.importorskip("statsmodels")
    solved = 0
    for es in np.geomspace(0.002, 20, 250):
        for per_level in (1, 2, 3, 5):
            want, got = _statsmodels_seeds(float(es), per_level), seeds_needed(float(es), 1.0, per_level)
            if math.isnan(want):
                assert math.isnan(got) or (es > 7 and got == 2.0), (es, per_level, got)
            else:
                solved += 1
                assert got == want, (es, per_level)
    assert solved > 600


def test_seeds_needed_reads_as_the_power_calculation_says():
    """A 1-SD gap needs 17 runs per level (the textbook n = 16.7 for d = 1); over 4
    configurations sharing the level that is 5 seeds each; a 10-SD gap needs the minimum 2."""
    assert seeds_needed(0.1, 0.1, 1) == 17.0
    assert seeds_needed(0.1, 0.1, 4) == 5.0
    assert seeds_needed(1.0, 0.1, 1) == 2.0
    assert math.isnan(seeds_needed(0.0001, 1.0, 1))  # beyond a million runs
    assert math.isnan(seeds_needed(0.1, math.nan, 1))
