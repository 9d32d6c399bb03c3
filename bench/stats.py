"""Benchmark: all-pairs checkpoint families, pair by pair vs at once, in the same process.

- binary: 101 candidates × 1,000 samples (5,050 exact McNemar tests), the matrix shortcut
  (``stats.paired.mcnemar_matrix``) vs ``compare`` per pair (tests/test_stats_all_pairs.py);
- continuous: 41 candidates × 1,000 samples (820 paired permutation tests of 10,000 sign
  patterns each, the report's default), ``stats.paired.sign_flip_all_pairs`` vs ``compare`` per pair
  (tests/test_stats_scale.py: the same p-values for the same seed).

CPU seconds and their ratios are printed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

K, N = 101, 1000
K_CONT = 41


def _family(binary: bool = True):
    from analyze_experiment.stats.candidates import Family

    rng = np.random.default_rng(0)
    fam = Family("qa", "match" if binary else "closeness", "accuracy" if binary else "mean", binary=binary)
    idx = pd.Index([f"s{i:04d}" for i in range(N)])
    for c in range(K if binary else K_CONT):
        x = (rng.random(N) < 0.5 + 0.003 * c).astype(float) if binary else rng.random(N) + 0.002 * c
        fam.scores[(f"run{c:03d}", None)] = pd.Series(x, idx)
    return fam


def _time(fam, shortcut: bool, n_resamples: int = 1000) -> float:
    from analyze_experiment.stats import comparisons

    saved = comparisons._binary_matrix, comparisons._continuous_matrix
    if not shortcut:
        comparisons._binary_matrix = lambda fam: None
        comparisons._continuous_matrix = lambda *a: None
    try:
        iv = comparisons.family_intervals(fam, 0.95)
        t = time.process_time()
        comparisons.family_comparisons(fam, iv, [], confidence=0.95, margin=0.05, n_resamples=n_resamples, seed=0,
                                       pairs_out=[])
        return time.process_time() - t
    finally:
        comparisons._binary_matrix, comparisons._continuous_matrix = saved


def main() -> dict[str, Any]:
    fam = _family()
    fast = _time(fam, True)
    slow = _time(fam, False)
    out = {"candidates": K, "samples": N, "pairs": K * (K - 1) // 2, "matrix_cpu_s": round(fast, 2),
           "pair_by_pair_cpu_s": round(slow, 2), "ratio": round(slow / fast, 1)}
    print(f"all-pairs family, {K} candidates x {N} samples: matrix {fast:.2f} s CPU, pair by pair {slow:.2f} s "
          f"CPU: {slow / fast:.1f}x less CPU")
    cont = _family(binary=False)
    fast = _time(cont, True, 10_000)
    slow = _time(cont, False, 10_000)
    out |= {"continuous_candidates": K_CONT, "continuous_pairs": K_CONT * (K_CONT - 1) // 2,
            "continuous_matrix_cpu_s": round(fast, 2), "continuous_pair_by_pair_cpu_s": round(slow, 2),
            "continuous_ratio": round(slow / fast, 1)}
    print(f"all-pairs permutation family, {K_CONT} candidates x {N} samples: at once {fast:.2f} s CPU, pair by pair "
          f"{slow:.2f} s CPU: {slow / fast:.1f}x less CPU")
    return out


if __name__ == "__main__":
    main()
