"""Which runs are replicates of one configuration: the runs that differ only in their seed.

Naming configurations is a fact about the design and the runs table (every stage needs it:
the design facts, the statistics that pool seeds, the plots that must never use the seed as
an axis), so it is read once here.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

SEED_NAME = re.compile(r"(^|_)(random_)?seeds?$", re.IGNORECASE)


def seed_variable(param_names: list[str]) -> str | None:
    """The parameter that names the seed (``seed``, ``random_seed``, ``data_seed`` …)."""
    for p in param_names:
        if SEED_NAME.search(p):
            return p
    return None


def _fmt_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return str(v)


def config_labels(runs: pd.DataFrame, param_names: list[str]) -> pd.Series:
    """Run -> config label (``k=v, k=v`` over the parameters that vary, except the seed).

    Only fine-tuned runs get a label (``all`` when only the seed varies); runs sharing a
    label are replicates.
    """
    if runs is None or runs.empty or not param_names:
        return pd.Series(dtype=object)
    seed = seed_variable(param_names)
    ft = runs[runs["type"].fillna("fine-tuned") == "fine-tuned"] if "type" in runs.columns else runs
    keys = [p for p in param_names if p != seed and p in ft.columns and ft[p].nunique() > 1]
    out = {}
    for _, r in ft.iterrows():
        parts = [f"{k}={_fmt_value(r[k])}" for k in keys if not pd.isna(r[k])]
        if parts or seed:
            out[str(r["run"])] = ", ".join(parts) if parts else "all"
    return pd.Series(out, dtype=object)
