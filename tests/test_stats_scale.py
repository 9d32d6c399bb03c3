"""Statistics that scale: the all-pairs permutation family at once equals pair by pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyze_experiment.stats import comparisons
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.paired import compare, sign_flip_all_pairs


def _matrix(k: int, n: int, seed: int, levels: tuple[float, ...] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if levels is None:
        return rng.random((k, n)) + np.linspace(0, 0.08, k)[:, None]
    return rng.choice(levels, size=(k, n))


@pytest.mark.parametrize("levels", [None, (0.0, 0.5, 1.0), (1.0, 2.0, 3.0, 4.0, 5.0)])
def test_all_pairs_equal_pair_by_pair(levels):
    x = _matrix(6, 150, 1, levels)
    x[4] = x[3]  # two identical candidates: p = 1, difference 0
    got = sign_flip_all_pairs(x, 0.95, n_resamples=3000, seed=7)
    assert got is not None
    idx = pd.Index(range(x.shape[1]))
    for i in range(6):
        for j in range(i + 1, 6):
            r = compare(pd.Series(x[i], idx), pd.Series(x[j], idx), binary=False, n_resamples=3000, seed=7)
            assert r.test == "paired_permutation"
            assert (got["p_value"][i, j], got["diff"][i, j], got["ci_low"][i, j], got["ci_high"][i, j]) == (
                r.p_value, r.diff, r.ci_low, r.ci_high), (i, j)
            assert (got["p_mc_se"][i, j], got["n_resamples"][i, j]) == (r.p_mc_se, r.n_resamples)
    assert got["p_value"][3, 4] == 1.0 and got["diff"][3, 4] == 0.0
    if levels is None:  # the planted trend is found: the last candidate beats the first
        assert got["diff"][0, 5] < 0 and got["p_value"][0, 5] < 0.05


def test_pairs_near_alpha_are_redrawn_as_pair_by_pair():
    """A p within 3 Monte Carlo SEs of α is redrawn with 10× the resamples, as compare() does."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=300)
    x = np.vstack([base + rng.normal(0, 1, 300) * s + m for s, m in ((1, 0), (1, 0.17), (1, 0.16), (1, 0.5))])
    got = sign_flip_all_pairs(x, 0.95, n_resamples=500, seed=1)
    idx = pd.Index(range(300))
    redrawn = 0
    for i in range(4):
        for j in range(i + 1, 4):
            r = compare(pd.Series(x[i], idx), pd.Series(x[j], idx), binary=False, n_resamples=500, seed=1)
            assert got["p_value"][i, j] == r.p_value and got["n_resamples"][i, j] == r.n_resamples
            redrawn += r.n_resamples == 5000
    assert redrawn >= 1  # the case this test is about did occur


def test_exact_sizes_go_pair_by_pair():
    assert sign_flip_all_pairs(_matrix(4, 10, 0), n_resamples=10_000) is None
    assert sign_flip_all_pairs(_matrix(4, 40, 0), n_resamples=10_000) is not None


def _family(k: int, n: int) -> Family:
    fam = Family("qa", "closeness", "mean", binary=False)
    x = _matrix(k, n, 5)
    idx = pd.Index([f"s{i:03d}" for i in range(n)])
    for c in range(k):
        fam.scores[(f"run{c:02d}", None)] = pd.Series(x[c], idx)
    return fam


def test_family_comparisons_same_with_and_without_the_matrix(monkeypatch):
    fam = _family(7, 120)
    iv = comparisons.family_intervals(fam, 0.95)

    def run():
        out: list = []
        comp, _, best, _ = comparisons.family_comparisons(fam, iv, ["run00"], confidence=0.95, margin=0.05,
                                                          n_resamples=2000, seed=3, pairs_out=out)
        return comp, best, out

    fast_comp, fast_best, fast_pairs = run()
    monkeypatch.setattr(comparisons, "_continuous_matrix", lambda *a, **k: None)
    slow_comp, slow_best, slow_pairs = run()
    pd.testing.assert_frame_equal(fast_comp, slow_comp)
    assert fast_best == slow_best
    fast_pairs, slow_pairs = pd.concat(fast_pairs), pd.concat(slow_pairs)
    assert len(fast_pairs) == len(slow_pairs) == 7 * 6 // 2
    pd.testing.assert_frame_equal(fast_pairs, slow_pairs)  # NaN epochs: not ==
    # the best is the candidate with the largest planted shift
    assert fast_best.run == "run06"
