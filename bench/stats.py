"""Benchmark: the all-pairs checkpoint family of a 101-candidate sweep (5,050 exact McNemar
tests on 1,000 samples each), pair by pair vs the matrix shortcut, in the same process.

The reference is the pair-by-pair path (``compare`` per pair) that the shortcut replaces; the
two give the same rows (tests/test_stats_all_pairs.py). CPU seconds and their ratio are printed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

K, N = 101, 1000


def _family():
    from analyze_experiment.stats.candidates import Family

    rng = np.random.default_rng(0)
    fam = Family("qa", "match", "accuracy", binary=True)
    idx = pd.Index([f"s{i:04d}" for i in range(N)])
    for c in range(K):
        fam.scores[(f"run{c:03d}", None)] = pd.Series((rng.random(N) < 0.5 + 0.003 * c).astype(float), idx)
    return fam


def _time(fam, shortcut: bool) -> float:
    from analyze_experiment.stats import comparisons

    saved = comparisons._binary_matrix
    if not shortcut:
        comparisons._binary_matrix = lambda fam: None
    try:
        iv = comparisons.family_intervals(fam, 0.95)
        t = time.process_time()
        comparisons.family_comparisons(fam, iv, [], confidence=0.95, margin=0.05, n_resamples=1000, seed=0,
                                       pairs_out=[])
        return time.process_time() - t
    finally:
        comparisons._binary_matrix = saved


def main() -> dict[str, Any]:
    fam = _family()
    fast = _time(fam, True)
    slow = _time(fam, False)
    out = {"candidates": K, "samples": N, "pairs": K * (K - 1) // 2, "matrix_cpu_s": round(fast, 2),
           "pair_by_pair_cpu_s": round(slow, 2), "ratio": round(slow / fast, 1)}
    print(f"all-pairs family, {K} candidates x {N} samples: matrix {fast:.2f} s CPU, pair by pair {slow:.2f} s "
          f"CPU: {slow / fast:.1f}x less CPU")
    return out


if __name__ == "__main__":
    main()
