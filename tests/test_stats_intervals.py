"""Intervals against independent computations (statsmodels, scipy) to 1e-9."""

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analyze_experiment.stats.intervals import (
    clustered_se,
    from_log_interval,
    mean_interval,
    t_interval,
    wilson,
)


@pytest.mark.parametrize("n", [1, 7, 30, 200, 1000])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(n, conf):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        lo, hi = wilson(k, n, conf)
        elo, ehi = proportion_confint(k, n, alpha=1 - conf, method="wilson")
        assert lo == pytest.approx(elo, abs=1e-9)
        assert hi == pytest.approx(ehi, abs=1e-9)


def test_wilson_stays_inside_unit_interval_where_clt_does_not():
    lo, hi = wilson(1, 20)
    clt = 0.05 - 1.96 * math.sqrt(0.05 * 0.95 / 20)
    assert clt < 0 <= lo < 0.05 < hi


def test_t_interval_matches_scipy():
    x = np.random.default_rng(1).normal(0.4, 0.3, 37)
    iv = t_interval(x, 0.9)
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (iv.ci_low, iv.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert iv.stderr == pytest.approx(stats.sem(x), abs=1e-12)


def test_t_interval_single_value_is_nan_not_a_guess():
    iv = t_interval(np.array([0.5]))
    assert iv.value == 0.5 and math.isnan(iv.ci_low) and math.isnan(iv.stderr)


def test_clustered_se_matches_statsmodels_cluster_robust_ols():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(25), rng.integers(1, 8, 25))
    x = rng.normal(0, 1, 25)[groups] + rng.normal(0, 0.5, len(groups))
    se, g = clustered_se(x, groups)
    fit = sm.OLS(x, np.ones(len(x))).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert g == 25
    assert se == pytest.approx(fit.bse[0], abs=1e-9)
    # correlated clusters make the clustered SE larger than the naive one
    assert se > stats.sem(x)


def test_mean_interval_methods():
    x = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], float)
    w = mean_interval(x, binary=True)
    assert w.method == "wilson" and (w.ci_low, w.ci_high) == pytest.approx(proportion_confint(7, 10, method="wilson"))
    assert w.stderr == pytest.approx(stats.sem(x))
    c = mean_interval(x, binary=True, clusters=np.array(list("aabbccddee")))
    se, g = clustered_se(x, np.array(list("aabbccddee")))
    t = stats.t.ppf(0.975, g - 1)
    assert c.method == "clustered_t" and c.n_clusters == 5
    assert (c.ci_low, c.ci_high) == pytest.approx((0.7 - t * se, 0.7 + t * se), abs=1e-12)


def test_from_log_interval():
    # an accuracy is a proportion: Wilson at every n, even when the log states a stderr
    iv = from_log_interval(0.8, 0.02, 400, "accuracy", 0.95)
    assert (iv.ci_low, iv.ci_high) == pytest.approx(proportion_confint(320, 400, method="wilson"))
    ivm = from_log_interval(3.2, 0.5, 40, "mean", 0.95)
    assert (ivm.ci_low, ivm.ci_high) == pytest.approx((3.2 - 1.959963984540054 * 0.5, 3.2 + 1.959963984540054 * 0.5))
    iv2 = from_log_interval(0.8, None, 100, "accuracy")
    assert (iv2.ci_low, iv2.ci_high) == pytest.approx(proportion_confint(80, 100, method="wilson"))
    iv3 = from_log_interval(3.2, None, None, "mean")
    assert iv3.method == "from_log" and math.isnan(iv3.ci_low)


@pytest.mark.parametrize(("value", "stderr", "n"), [(0.5, 0.5, 2), (2 / 3, 1 / 3, 3), (1.0, 0.0, 1), (0.0, 0.0, 4),
                                                    (0.75, 0.25, 4), (0.9, 0.03, 100)])
def test_proportion_from_log_is_wilson_within_0_1_at_every_n(value, stderr, n):
    """Issue 11: an accuracy of n = 2 was reported as [-2.43, 3.93]; the public inspect-ai
    log tests/analysis/test_logs/*_no-samples.json (accuracy 0.667, stderr 0.333, n = 3)
    gave [0.01, 1.32] with value ± z·stderr."""
    iv = from_log_interval(value, stderr, n, "accuracy")
    assert (iv.ci_low, iv.ci_high) == pytest.approx(proportion_confint(round(value * n), n, method="wilson"))
    assert 0.0 <= iv.ci_low <= value <= iv.ci_high <= 1.0
    assert iv.too_small == (n < 10)
    # a 0/1 scorer whose header metric is called "mean" is a proportion too
    ivb = from_log_interval(value, stderr, n, "mean", binary=True)
    assert (ivb.ci_low, ivb.ci_high) == pytest.approx((iv.ci_low, iv.ci_high))


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_wilson_per_sample_interval_never_leaves_0_1(nk):
    n, k = nk
    x = np.array([1.0] * k + [0.0] * (n - k))
    iv = mean_interval(x, binary=True)
    assert (iv.ci_low, iv.ci_high) == pytest.approx(proportion_confint(k, n, method="wilson"))
    assert 0.0 <= iv.ci_low <= iv.ci_high <= 1.0
