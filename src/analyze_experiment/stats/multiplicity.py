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

from collections.abc import Callable

import numpy as np


def _step(p: np.ndarray, adjust: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a step-wise correction to the sorted non-NaN p-values and put them back in place.

    ``adjust`` receives the ascending p-values (ties in input order) and returns the adjusted
    ones in the same order; NaN p-values stay NaN and are not counted in m.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        out[order] = adjust(p[order])
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎).

    NaN p-values stay NaN and are not counted in m.
    """
    def step_down(s: np.ndarray) -> np.ndarray:
        m = len(s)
        return np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * s))

    return _step(p, step_down)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values: min over j ≥ i of min(1, m·p₍ⱼ₎/j).

    NaN p-values stay NaN and are not counted in m.
    """
    def step_up(s: np.ndarray) -> np.ndarray:
        m = len(s)
        q = s * m / np.arange(1, m + 1)
        return np.minimum(1.0, np.minimum.accumulate(q[::-1])[::-1])

    return _step(p, step_up)
