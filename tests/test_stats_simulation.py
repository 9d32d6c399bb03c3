"""Simulation: no true difference → few false claims; a planted difference → found.

The best candidate is chosen after seeing the data, so "best vs X" tests are selected
hypotheses; the Holm family therefore spans every pair (see stats/comparisons.py). Under
the null the share of repetitions with *any* significant claim must stay ≤ α.
"""

import numpy as np
import pandas as pd
from scipy import stats

from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.comparisons import family_comparisons, family_intervals
from analyze_experiment.stats.multiplicity import holm
from analyze_experiment.stats.paired import mcnemar_exact

ALPHA = 0.05
REPS = 200


def _family(rng, accs, n, corr=1.0):
    off = rng.normal(0, corr, n)
    fam = Family("t", "m", "accuracy", True)
    ids = pd.Index([f"s{i:04d}" for i in range(n)])
    for j, acc in enumerate(accs):
        p = 1 / (1 + np.exp(-(np.log(acc / (1 - acc)) + off)))
        fam.scores[(f"r{j}", 0.0)] = pd.Series((rng.random(n) < p).astype(float), index=ids)
    return fam


def _run(fam, baselines=()):
    comp, _, best, _ = family_comparisons(fam, family_intervals(fam, 1 - ALPHA), list(baselines),
                                          confidence=1 - ALPHA, margin=0.01, n_resamples=500, seed=0)
    return comp, best


def test_no_true_difference_keeps_false_claims_at_or_below_alpha():
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(REPS):
        comp, best = _run(_family(rng, [0.7] * 4, 100), baselines=("r0",))
        hits += bool(comp["significant"].any())
        assert not best.clear_winner or comp["significant"].all()
    rate = hits / REPS
    assert rate <= ALPHA
    # and not merely by luck of this seed: the excess over α is not even suggestive
    assert stats.binomtest(hits, REPS, ALPHA, alternative="greater").pvalue > 0.5


def test_holm_over_reported_pairs_only_would_not_have_been_enough():
    """Why the family spans every pair: max-vs-rest with Holm over k−1 tests overshoots α."""
    rng = np.random.default_rng(7)
    naive = 0
    for _ in range(1000):
        fam = _family(rng, [0.7] * 8, 100)
        x = np.array([s.to_numpy() for s in fam.scores.values()])
        best = int(np.argmax(x.mean(axis=1)))
        p = np.array([mcnemar_exact(int(((x[best] == 1) & (x[j] == 0)).sum()), int(((x[best] == 0) & (x[j] == 1)).sum()))
                      for j in range(len(x)) if j != best])
        naive += bool((holm(p) < ALPHA).any())
    assert naive / 1000 > ALPHA + 0.02


def test_planted_difference_is_found():
    rng = np.random.default_rng(99)
    found = 0
    for _ in range(100):
        _, best = _run(_family(rng, [0.6, 0.6, 0.6, 0.78], 300))
        found += best.run == "r3" and best.clear_winner
    assert found >= 90
