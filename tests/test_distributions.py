"""stats/distributions.py against scipy.stats, bit for bit.

The report computes its t, normal, binomial, beta and noncentral-t probabilities through
scipy.special so that it need not import scipy.stats; these tests hold each function to the
scipy.stats call it replaces, with ``np.array_equal`` (not a tolerance), over the values the
report uses and the edge cases (q = 0 or 1, df ≤ 0, infinite df, NaN, far tails). A scipy
upgrade that changed either side would fail here before it moved a number in a report.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from analyze_experiment.stats import distributions as dist

RNG = np.random.default_rng(20261202)
Q = np.concatenate([[0.0, 1.0, 0.5, 0.975, 0.95, 0.995, 0.8, 0.025, 1e-300, 1 - 1e-16, 1.5, -0.1, np.nan],
                    RNG.uniform(0, 1, 400)])
DF = [0.0, -1.0, 0.5, 1.0, 2.0, 3.0, 9.0, 99.0, 1e10, np.inf, np.nan]
X = np.concatenate([[0.0, -0.0, 1.96, -3.0, 40.0, -40.0, np.inf, -np.inf, np.nan, 1e-300],
                    RNG.normal(0, 4, 400)])


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True) and np.shape(a) == np.shape(b)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("df", DF)
def test_t_matches_scipy_stats(df):
    assert same(dist.t_ppf(Q, df), stats.t.ppf(Q, df))
    assert same(dist.t_sf(X, df), stats.t.sf(X, df))
    assert same(dist.t_cdf(X, df), stats.t.cdf(X, df))


def test_t_quantile_at_zero_is_minus_infinity():
    """scipy.special's stdtrit(df, 0) is +inf; the quantile (and scipy.stats) is −inf."""
    assert dist.t_ppf(0.0, 5) == -np.inf == stats.t.ppf(0.0, 5)
    assert dist.t_ppf(1.0, 5) == np.inf


def test_scalars_stay_scalars_and_arrays_stay_arrays():
    for got, want in [(dist.t_ppf(0.975, 4), stats.t.ppf(0.975, 4)), (dist.t_sf(2.0, 4), stats.t.sf(2.0, 4)),
                      (dist.norm_sf(1.0), stats.norm.sf(1.0)), (dist.nct_sf(2.0, 9, 1.0), stats.nct.sf(2.0, 9, 1.0))]:
        assert type(got) is type(want) is np.float64
        assert got == want
    assert dist.t_ppf(np.array([0.9, 0.95]), 3).shape == (2,)
    assert float(dist.t_ppf(0.975, 4)) == pytest.approx(2.776445105, abs=1e-9)  # the printed t table


def test_normal_matches_scipy_stats():
    assert same(dist.norm_ppf(Q), stats.norm.ppf(Q))
    assert same(dist.norm_cdf(X), stats.norm.cdf(X))
    assert same(dist.norm_sf(X), stats.norm.sf(X))


def test_binomial_cdf_matches_scipy_stats_where_mcnemar_uses_it():
    """k = min(b, c) discordant pairs out of m, p = ½ — and a few other p for good measure."""
    m = np.concatenate([np.arange(1, 301), RNG.integers(301, 20000, 300)]).astype(float)
    k = np.floor(RNG.uniform(0, 1, m.size) * (m + 1)).clip(0, m)
    for p in (0.5, 0.1, 0.9):
        assert same(dist.binom_cdf(k, m, p), stats.binom.cdf(k, m, p))
    assert dist.binom_cdf(0, 1, 0.5) == 0.5
    assert dist.binom_cdf(3, 3, 0.5) == 1.0


def test_beta_quantile_matches_scipy_stats_for_clopper_pearson():
    m = RNG.integers(1, 2000, 500).astype(float)
    a = np.floor(RNG.uniform(0, 1, m.size) * m)
    for q in (0.025, 0.975, 0.005, 0.995, 0.05):
        lo = (a > 0)
        assert same(dist.beta_ppf(q, a[lo], (m - a + 1)[lo]), stats.beta.ppf(q, a[lo], (m - a + 1)[lo]))
        hi = (a < m)
        assert same(dist.beta_ppf(q, (a + 1)[hi], (m - a)[hi]), stats.beta.ppf(q, (a + 1)[hi], (m - a)[hi]))


def test_noncentral_t_matches_scipy_stats_including_where_it_fails():
    """The power function asks for tails at df = n − 1 and δ = d·√n; far out scipy gives NaN,
    which paired_power replaces by the normal limit — the NaNs must be in the same places."""
    df = RNG.integers(1, 5000, 600).astype(float)
    nc = RNG.uniform(0, 40, 600)
    x = RNG.normal(2, 3, 600)
    assert same(dist.nct_cdf(x, df, nc), stats.nct.cdf(x, df, nc))
    assert same(dist.nct_sf(x, df, nc), stats.nct.sf(x, df, nc))
    assert np.isnan(stats.nct.cdf(x, df, nc)).any()  # the grid reaches where scipy gives up
