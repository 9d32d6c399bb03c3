"""Paired tests against statsmodels/scipy and exact enumeration."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from analyze_experiment.stats.paired import compare, mcnemar_exact, paired_diff_ci, sign_flip_test


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (10, 10), (25, 11), (1, 40), (0, 6)])
def test_mcnemar_matches_statsmodels_exact(b, c):
    ref = mcnemar([[50, b], [c, 40]], exact=True)
    assert mcnemar_exact(b, c) == pytest.approx(ref.pvalue, abs=1e-12)


def test_sign_flip_exact_matches_enumeration():
    d = np.array([0.5, -0.2, 0.9, 0.3, 0.0, 0.7, -0.1, 0.4, 0.25, 0.6])
    obs = abs(d.mean())
    means = [abs((d * s).mean()) for s in itertools.product([-1, 1], repeat=len(d))]
    exact = np.mean([m >= obs - 1e-12 for m in means])
    stat, p = sign_flip_test(d, n_resamples=10_000)
    assert stat == pytest.approx(d.mean())
    assert p == pytest.approx(exact, abs=1e-12)


def test_sign_flip_exact_matches_scipy_permutation_test():
    d = np.random.default_rng(8).normal(0.2, 1, 12)
    ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=10_000)
    assert sign_flip_test(d, n_resamples=10_000)[1] == pytest.approx(ref.pvalue, abs=1e-12)


def test_sign_flip_monte_carlo_is_reproducible_and_close_to_t():
    d = np.random.default_rng(3).normal(0.1, 1, 300)
    p1 = sign_flip_test(d, n_resamples=4000, seed=7)[1]
    assert p1 == sign_flip_test(d, n_resamples=4000, seed=7)[1]
    assert p1 == pytest.approx(stats.ttest_1samp(d, 0).pvalue, abs=0.03)


def test_paired_ci_matches_ttest_rel():
    rng = np.random.default_rng(4)
    x = rng.normal(0.6, 0.2, 80)
    y = x - 0.05 + rng.normal(0, 0.1, 80)
    diff, se, lo, hi = paired_diff_ci(x - y, 0.95)
    assert diff == pytest.approx(np.mean(x - y))
    ci = stats.ttest_rel(x, y).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert se == pytest.approx(stats.sem(x - y), abs=1e-12)


def test_compare_binary_aligns_on_sample_ids_and_counts_discordant():
    a = pd.Series([1, 1, 0, 1, 0, 1], index=["s1", "s2", "s3", "s4", "s5", "extra"], dtype=float)
    b = pd.Series([0, 1, 1, 0, 0], index=["s5", "s4", "s3", "s2", "s1"], dtype=float)
    r = compare(a, b, binary=True)
    # aligned on s1..s5: a = 1 1 0 1 0 ; b = 0 0 1 1 0
    assert r.n_paired == 5 and r.n_a_only == 2 and r.n_b_only == 1
    assert r.test == "mcnemar_exact"
    assert r.p_value == pytest.approx(mcnemar([[1, 2], [1, 1]], exact=True).pvalue)
    assert r.diff == pytest.approx(0.2)
    assert r.correlation == pytest.approx(stats.pearsonr([1, 1, 0, 1, 0], [0, 0, 1, 1, 0])[0])


def test_compare_continuous_uses_permutation_and_clusters_flip_whole_clusters():
    rng = np.random.default_rng(5)
    ids = [f"s{i}" for i in range(60)]
    a = pd.Series(rng.normal(0.5, 0.1, 60), index=ids)
    b = pd.Series(a.to_numpy() - 0.03 + rng.normal(0, 0.05, 60), index=ids)
    r = compare(a, b, binary=False, n_resamples=2000)
    assert r.test == "paired_permutation"
    cl = pd.Series([f"c{i // 10}" for i in range(60)], index=ids)
    rc = compare(a, b, binary=False, clusters=cl, n_resamples=2000)
    sums = (a - b).groupby(cl).sum().to_numpy()
    assert rc.test == "cluster_permutation"
    assert rc.p_value == pytest.approx(sign_flip_test(sums, n_resamples=2000)[1])
    # 6 clusters: the exact test has 64 sign patterns, so p ≥ 2/64
    assert rc.p_value >= 2 / 64 - 1e-12
