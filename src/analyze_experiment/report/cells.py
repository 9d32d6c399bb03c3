"""Table cells and headers as a reader should see them.

A column named ``p_adjusted`` is a data name, not a heading: :func:`human_header` turns such
names into words for the HTML report (the CSVs keep the data names, so scripts can rely on
them). :func:`cell_text` shows a list as the items it holds, never as Python's ``['a', 'b']``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pandas import NA

WORDS = {
    "ci_low": "CI low", "ci_high": "CI high", "p_value": "p", "p_adjusted": "adjusted p", "p_holm": "Holm p",
    "p_tost": "TOST p", "q_value": "BH q", "reference_value": "reference", "eta_sq": "η²", "omega_sq": "ω²",
    "partial_eta_sq": "partial η²", "gpu_hours": "GPU-hours", "cost_usd": "cost (USD)", "n_runs": "runs",
    "n_samples": "samples", "n_paired": "n paired", "n_clusters": "clusters", "epoch_a": "epoch A",
    "epoch_b": "epoch B", "from_level": "from", "to_level": "to", "paired_t_runs": "paired t over runs",
    "sum_sq": "sum of squares", "mean_sq": "mean square",
}
"""Data names whose words are not just the name with spaces."""

ACRONYMS = {"ci": "CI", "gpu": "GPU", "usd": "USD", "id": "ID", "auc": "AUC", "mae": "MAE", "rmse": "RMSE",
            "sd": "SD", "se": "SE", "lr": "LR", "tost": "TOST", "bh": "BH", "anova": "ANOVA", "f": "F"}


def human_header(name: object) -> str:
    """``p_adjusted`` -> ``adjusted p``, ``n_paired`` -> ``n paired``; headers that are already
    words (no underscore) are kept as they are.

    >>> human_header("ci_low"), human_header("lora_rank"), human_header("final loss")
    ('CI low', 'lora rank', 'final loss')
    """
    s = str(name)
    if "_" not in s or " " in s:
        return s
    if s in WORDS:
        return WORDS[s]
    return " ".join(ACRONYMS.get(w, w) for w in s.split("_") if w)


def cell_text(v: object) -> str:
    """A cell's text: empty for a missing value (None, NaN, ``pd.NA``), a list's items joined
    by commas."""
    if v is None or v is NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (list, tuple, set, frozenset)) or (hasattr(v, "tolist") and not isinstance(v, str)
                                                        and isinstance(v.tolist(), list)):
        items: Iterable[object] = (sorted(v, key=str) if isinstance(v, (set, frozenset))
                                   else v.tolist() if hasattr(v, "tolist") else v)  # type: ignore[union-attr]
        return ", ".join(cell_text(x) for x in items)
    return str(v)
