"""TOST vs statsmodels ttost_paired; MDD vs the noncentral t power."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from analyze_experiment.stats.equivalence import tost_paired
from analyze_experiment.stats.power import minimum_detectable_difference, paired_power, samples_for_difference


@pytest.mark.parametrize(("shift", "expect"), [(0.0, True), (0.02, False)])
def test_tost_matches_statsmodels(shift, expect):
    rng = np.random.default_rng(0)
    x = rng.normal(0.7, 0.2, 2000)
    y = x - shift + rng.normal(0, 0.05, 2000)
    t = tost_paired(x - y, 0.01, 0.05)
    ref = ttost_paired(x, y, -0.01, 0.01)
    assert t.p_tost == pytest.approx(ref[0], abs=1e-12)
    assert t.equivalent is expect
    # (1 - 2α) interval inside the margin ⇔ equivalent
    assert (t.ci_low > -0.01 and t.ci_high < 0.01) is expect


def test_equivalence_is_never_inferred_from_a_large_p_value():
    d = np.random.default_rng(1).choice([-1.0, 0.0, 1.0], 50)  # tiny eval, huge noise
    t = tost_paired(d, 0.01, 0.05)
    assert not t.equivalent and t.p_tost > 0.4


@pytest.mark.parametrize("n", [30, 200, 1000])
def test_mdd_has_the_stated_power(n):
    sd, alpha = 0.4, 0.05
    mdd = minimum_detectable_difference(n, sd, alpha, 0.8)
    nc = mdd / sd * math.sqrt(n)
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=1e-9)
    assert TTestPower().power(mdd / sd, n, alpha) == pytest.approx(0.8, abs=1e-9)
    assert paired_power(0.05, n, alpha) == pytest.approx(TTestPower().power(0.05, n, alpha), abs=1e-9)
    # large-n normal approximation (Miller 2024)
    approx = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert mdd == pytest.approx(approx, rel=0.05)


def test_samples_for_difference_inverts_mdd():
    n = samples_for_difference(0.02, 0.4)
    assert minimum_detectable_difference(int(n), 0.4) <= 0.02 < minimum_detectable_difference(int(n) - 1, 0.4)
