"""The all-pairs McNemar shortcut gives exactly what comparing pair by pair gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.stats import comparisons
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.comparisons import family_comparisons, family_intervals
from analyze_experiment.stats.paired import compare, mcnemar_matrix


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 60), st.integers(0, 2**32 - 1), st.sampled_from([0.9, 0.95, 0.99]))
def test_matrix_equals_compare_pair_by_pair(k, n, seed, conf):
    rng = np.random.default_rng(seed)
    x = (rng.random((k, n)) < rng.random((k, 1))).astype(float)
    idx = pd.Index([f"s{i:03d}" for i in range(n)])
    mc = mcnemar_matrix(x, conf)
    for i in range(k):
        for j in range(i + 1, k):
            r = compare(pd.Series(x[i], idx), pd.Series(x[j], idx), binary=True, confidence=conf)
            assert r.test == "mcnemar_exact"
            assert mc["p_value"][i, j] == pytest.approx(r.p_value, rel=1e-9, abs=1e-15)
            assert mc["diff"][i, j] == pytest.approx(r.diff, abs=1e-12)
            assert (mc["ci_low"][i, j], mc["ci_high"][i, j]) == pytest.approx((r.ci_low, r.ci_high), abs=1e-9)
            assert mc["statistic"][i, j] == r.statistic
            assert (mc["n_a_only"][i, j], mc["n_b_only"][i, j]) == (r.n_a_only, r.n_b_only)


def _family(k: int, n: int, seed: int = 1) -> Family:
    rng = np.random.default_rng(seed)
    fam = Family("qa", "match", "accuracy", binary=True)
    idx = pd.Index([f"s{i:04d}" for i in range(n)])
    for c in range(k):
        fam.scores[(f"run{c:03d}", None)] = pd.Series((rng.random(n) < 0.5 + 0.004 * c).astype(float), idx)
    return fam


def test_family_results_are_identical_with_and_without_the_shortcut(monkeypatch):
    fam = _family(12, 300)
    iv = family_intervals(fam, 0.95)

    def run():
        rows: list[pd.DataFrame] = []
        comp, _eq, best, _power = family_comparisons(fam, iv, ["run000"], confidence=0.95, margin=0.05,
                                                   n_resamples=1000, seed=0, pairs_out=rows)
        return comp, pd.concat(rows, ignore_index=True), best

    fast = run()
    monkeypatch.setattr(comparisons, "_binary_matrix", lambda *a: None)
    slow = run()
    pd.testing.assert_frame_equal(fast[0], slow[0])
    cols = ["a", "b", "diff", "ci_low", "ci_high", "test", "statistic", "p_value", "p_holm", "n_paired"]
    pd.testing.assert_frame_equal(fast[1][cols], slow[1][cols], check_exact=False, atol=1e-9, rtol=1e-9)
    assert fast[2].run == slow[2].run and fast[2].clear_winner == slow[2].clear_winner
