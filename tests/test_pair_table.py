"""The all-pairs family's table built column by column equals the pair-by-pair tests.

Every pair of a checkpoint family is in its Holm family (the best is picked after seeing the
data), so a sweep of k candidates has k(k − 1)/2 rows per metric. The table is read from the
all-pairs matrices as arrays (``comparisons._matrix_table``) and the exact McNemar numbers are
computed once per distinct pair of discordant counts (``paired.mcnemar_matrix``); these tests
hold both to scipy's exact binomial test, statsmodels' Holm and the k × k computation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from analyze_experiment.stats import comparisons
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.paired import _mcnemar_cells, mcnemar_matrix


def _family(k: int, n: int, seed: int) -> Family:
    rng = np.random.default_rng(seed)
    fam = Family("qa", "match", "accuracy", binary=True)
    idx = pd.Index([f"s{i:03d}" for i in range(n)])
    for c in range(k):  # accuracy rising with the index: the last candidate is the best
        fam.scores[(f"run{c:02d}", None)] = pd.Series((rng.random(n) < 0.35 + 0.05 * c).astype(float), idx)
    return fam


def _pairs(fam: Family, baselines: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    iv = comparisons.family_intervals(fam, 0.95)
    out: list[pd.DataFrame] = []
    comp, _eq, _best, _power = comparisons.family_comparisons(fam, iv, baselines, confidence=0.95, margin=0.05,
                                                              n_resamples=1000, seed=0, pairs_out=out)
    assert len(out) == 1  # one table per family
    return comp, out[0]


def test_every_pair_once_with_scipy_mcnemar_and_statsmodels_holm():
    k, n = 9, 240
    fam = _family(k, n, seed=4)
    comp, pt = _pairs(fam, ["run00"])
    assert list(pt.columns) == comparisons.PAIR_TESTS
    assert len(pt) == k * (k - 1) // 2 == 36
    assert {frozenset((a, b)) for a, b in zip(pt["a"], pt["b"], strict=True)} == {
        frozenset((f"run{i:02d}", f"run{j:02d}")) for i in range(k) for j in range(i + 1, k)}
    # the stated pairs come first, in the comparison table's order
    assert pt[["a", "b"]].iloc[: len(comp)].values.tolist() == comp[["a", "b"]].values.tolist()
    assert (pt["family_size"] == 36).all() and (pt["n_paired"] == n).all()
    assert pt["test"].eq("mcnemar_exact").all()
    for r in pt.itertuples():
        x, y = fam.scores[(r.a, None)].to_numpy(), fam.scores[(r.b, None)].to_numpy()
        b, c = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
        assert r.statistic == min(b, c)
        assert r.diff == pytest.approx((x.sum() - y.sum()) / n, abs=1e-12)
        oracle = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
        assert r.p_value == pytest.approx(oracle, rel=1e-9, abs=1e-15), (r.a, r.b)
        ci = binomtest(b, b + c).proportion_ci(0.95, method="exact") if b + c else None
        if ci is not None:  # McNemar-consistent interval: (m/n)(2π − 1) at the exact π bounds
            share = (b + c) / n
            assert (r.ci_low, r.ci_high) == pytest.approx(
                (share * (2 * ci.low - 1), share * (2 * ci.high - 1)), abs=1e-9)
    holm = multipletests(pt["p_value"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(pt["p_holm"].to_numpy(), holm, rtol=1e-12, atol=0)
    # the stated rows carry the same Holm p as the table of every pair
    np.testing.assert_array_equal(comp["p_holm"].to_numpy(), pt["p_holm"].to_numpy()[: len(comp)])
    # the planted trend: the best beats the worst candidate after Holm over all 36 pairs
    worst = pt[(pt["a"] == "run08") & (pt["b"] == "run00")]
    assert len(worst) == 1 and float(worst["diff"].iloc[0]) > 0.3 and float(worst["p_holm"].iloc[0]) < 0.05


def test_matrix_table_equals_the_pair_by_pair_table(monkeypatch):
    fam = _family(7, 150, seed=11)
    fast_comp, fast = _pairs(fam, ["run00"])
    monkeypatch.setattr(comparisons, "_binary_matrix", lambda *a: None)  # every pair through compare()
    slow_comp, slow = _pairs(fam, ["run00"])
    pd.testing.assert_frame_equal(fast_comp, slow_comp)
    assert fast.dtypes.to_dict() == slow.dtypes.to_dict()
    exact = ["task", "scorer", "metric", "a", "epoch_a", "b", "epoch_b", "diff", "test", "statistic", "p_value",
             "n_paired", "family_size"]
    pd.testing.assert_frame_equal(fast[exact], slow[exact])
    # the matrix takes the interval's ends from the beta quantile, compare() from a root search
    pd.testing.assert_frame_equal(fast[["ci_low", "ci_high", "p_holm"]], slow[["ci_low", "ci_high", "p_holm"]],
                                  check_exact=False, rtol=1e-9, atol=1e-9)


def _mcnemar_every_cell(x: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """The k × k computation the distinct-count shortcut replaced: the cell formula applied to
    every cell of the discordance matrices (the formula itself is checked against scipy above)."""
    a_only = x @ (1.0 - x).T
    p, lo, hi = _mcnemar_cells(a_only, a_only.T, x.shape[1], confidence)
    return {"ci_low": lo, "ci_high": hi, "statistic": np.minimum(a_only, a_only.T), "p_value": p}


@pytest.mark.parametrize(("k", "n", "confidence"), [(4, 1, 0.95), (12, 9, 0.9), (40, 120, 0.95), (25, 300, 0.99)])
def test_distinct_counts_give_the_numbers_of_every_cell(k, n, confidence):
    rng = np.random.default_rng(k * 1000 + n)
    x = (rng.random((k, n)) < rng.random((k, 1))).astype(float)
    x[1] = x[0]  # identical candidates: no discordant pairs
    got = mcnemar_matrix(x, confidence)
    want = _mcnemar_every_cell(x, confidence)
    for key, arr in want.items():
        np.testing.assert_array_equal(got[key], arr, err_msg=key)  # bit for bit, not within rounding
    assert got["p_value"][0, 1] == 1.0 and got["ci_low"][0, 1] == got["ci_high"][0, 1] == 0.0
    assert np.isfinite(got["p_value"]).all() and ((got["p_value"] > 0) & (got["p_value"] <= 1)).all()
