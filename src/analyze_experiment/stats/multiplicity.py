"""Multiple-comparison correction within one family of comparisons.

A sweep of 12 runs compared with the best gives 11 tests; at α = 0.05 about one of them
is "significant" by chance if nothing differs. Holm (1979) controls the family-wise
error rate and is uniformly more powerful than Bonferroni; Benjamini–Hochberg (1995)
q-values control the false discovery rate for screening tables with many cells.
"""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN p-values stay NaN and are not counted)."""
    return _adjust(p, "holm")


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (NaN p-values stay NaN and are not counted)."""
    return _adjust(p, "fdr_bh")
