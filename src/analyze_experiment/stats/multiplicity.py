"""Multiple-comparison correction within one family of comparisons.

A sweep of 12 runs compared with the best gives 11 tests; at α = 0.05 about one of them
is "significant" by chance if nothing differs. Holm (1979) controls the family-wise
error rate and is uniformly more powerful than Bonferroni; Benjamini–Hochberg (1995)
q-values control the false discovery rate for screening tables with many cells.

Both are a few lines of numpy, checked against statsmodels' ``multipletests`` in the
tests (whose Holm path runs a full ``gc.collect()`` per call — slow inside a pipeline
holding large frames).
"""

from __future__ import annotations

import numpy as np


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎).

    NaN p-values stay NaN and are not counted in m.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(adj)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values: min over j ≥ i of min(1, m·p₍ⱼ₎/j).

    NaN p-values stay NaN and are not counted in m.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        q = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(q[::-1])[::-1])
    return out
