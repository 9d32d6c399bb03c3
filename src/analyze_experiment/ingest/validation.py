"""Validation loss during training: the per-run curve, its summary and the overfitting flag.

A recipe that validates during training writes the validation loss twice: exactly through the
metric logger (DiskLogger/StdoutLogger ``Step N | val_loss:…``, a ``val_loss`` column of
``train_steps``) and rounded to 4 decimals through the recipe logger into ``slurm-*.out``
(``Validation loss: 1.2345``, :mod:`analyze_experiment.sources.validation`). The metric
logger's value wins; the printed line fills only the steps the metric logger did not give, and
``val_loss_source`` says which one every value came from.

Overfitting rule (docs/training.md): with ``k = OVERFIT_PATIENCE`` evaluations of patience,
a run is flagged when its best (lowest) validation loss was reached at least ``k`` evaluations
before the last one — so each of the last ``k`` evaluations is above it — while the training
loss fell over the same stretch: the mean training loss of the steps leading to the last
evaluation is below that of the steps leading to the best one. This is early stopping's
patience read backwards: a trainer with patience ``k`` would have stopped at the best.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

OVERFIT_PATIENCE = 3
"""k: evaluations after the best validation loss, all above it, before a run is flagged."""

VAL_COLUMN = "val_loss"
SOURCE_COLUMN = "val_loss_source"
"""``train_steps`` column naming where a step's ``val_loss`` came from (``disklogger`` |
``stdout`` | ``jsonl`` | ``slurm``)."""

RUN_COLUMNS = [
    "val_evaluations",  # validation evaluations with a finite loss
    "val_loss_final",  # validation loss at the last evaluation
    "val_loss_best",  # lowest validation loss
    "val_loss_best_step",  # global step of the lowest
    "val_train_gap",  # final validation loss - mean training loss of the steps leading to it
    "overfitting",  # bool (None: fewer than k + 1 evaluations)
    "val_loss_source",  # where the values came from ("disklogger", "slurm", "disklogger+slurm" …)
]
"""Columns each run gets in the ``runs`` table (None when the run logged no validation)."""

CURVE_COLUMNS = ["run", "step", "epoch", "val_loss", "train_loss", "source"]
"""Columns of :func:`validation_curve`: one row per evaluation, with the mean training loss of
the steps since the previous evaluation (inclusive)."""


def fill_from_printed(step_rows: list[dict[str, Any]], printed: pd.DataFrame, run: str) -> int:
    """Fill ``val_loss`` from ``Validation loss:`` lines where the metric logger gave none.

    ``step_rows`` (one dict per global step, step order) is changed in place: every row with a
    ``val_loss`` gets ``val_loss_source`` (the row's metric-logger source, or ``slurm``); a
    printed step with no row yet gets one. Returns the number of values taken from the print.
    """
    by_step = {int(r["step"]): r for r in step_rows if r.get("step") is not None}
    for r in step_rows:
        if _has(r.get(VAL_COLUMN)):
            r[SOURCE_COLUMN] = r.get("source")
    filled = 0
    for rec in printed.itertuples(index=False):
        step = int(rec.step)
        row = by_step.get(step)
        if row is None:
            row = {"run": run, "epoch": None if pd.isna(rec.epoch) else int(rec.epoch), "step": step,
                   "source": "slurm"}
            by_step[step] = row
            step_rows.append(row)
        if _has(row.get(VAL_COLUMN)):
            continue
        row[VAL_COLUMN] = float(rec.val_loss)
        row[SOURCE_COLUMN] = "slurm"
        filled += 1
    step_rows.sort(key=lambda r: (r.get("step") is None, r.get("step") or 0))
    return filled


def _has(v: Any) -> bool:
    return isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))


def validation_curve(steps: pd.DataFrame) -> pd.DataFrame:
    """One run's evaluations (``CURVE_COLUMNS``) from its ``train_steps`` rows.

    The training loss beside each evaluation is the mean over the steps since the previous
    evaluation (this one's step included): one step's loss is one batch's, too noisy to set
    against a loss over the whole validation set.
    """
    if not len(steps) or VAL_COLUMN not in steps.columns:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    df = steps.copy()
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df = df[df["step"].notna()].sort_values("step", kind="stable").drop_duplicates("step", keep="last")
    val = pd.to_numeric(df[VAL_COLUMN], errors="coerce")
    loss = pd.to_numeric(df["loss"], errors="coerce") if "loss" in df.columns else pd.Series(np.nan, index=df.index)
    rows = []
    prev = -math.inf
    for idx in df.index[val.notna()]:
        step = float(df.at[idx, "step"])
        window = loss[(df["step"] > prev) & (df["step"] <= step)]
        window = window[np.isfinite(window)]
        rows.append({
            "run": df.at[idx, "run"] if "run" in df.columns else None, "step": int(step), "epoch": df.at[idx, "epoch"] if "epoch" in df else None,
            "val_loss": float(val[idx]), "train_loss": float(window.mean()) if len(window) else math.nan,
            "source": df.at[idx, SOURCE_COLUMN] if SOURCE_COLUMN in df.columns else None,
        })
        prev = step
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def overfitting(curve: pd.DataFrame, patience: int = OVERFIT_PATIENCE) -> bool | None:
    """The overfitting flag of one run's curve (module docstring); None when it cannot tell.

    >>> c = pd.DataFrame({"val_loss": [3.0, 2.0, 2.5, 2.6, 2.7], "train_loss": [3.0, 2.5, 2.0, 1.8, 1.5]})
    >>> overfitting(c)
    True
    >>> overfitting(c.iloc[:4])
    False
    """
    v = curve[np.isfinite(curve["val_loss"].astype(float))]
    if len(v) < patience + 1:
        return None
    vals = v["val_loss"].to_numpy(dtype=float)
    best = int(np.argmin(vals))
    if best > len(vals) - 1 - patience:
        return False
    train_best, train_last = float(v["train_loss"].iloc[best]), float(v["train_loss"].iloc[-1])
    if not (math.isfinite(train_best) and math.isfinite(train_last)):
        return None
    return bool(train_last < train_best)


def run_summary(steps: pd.DataFrame, patience: int = OVERFIT_PATIENCE) -> dict[str, Any]:
    """The ``RUN_COLUMNS`` values of one run (all None when it logged no validation loss)."""
    out: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    curve = validation_curve(steps)
    curve = curve[np.isfinite(curve["val_loss"].astype(float))]
    if not len(curve):
        return out
    best = curve.loc[curve["val_loss"].astype(float).idxmin()]
    last = curve.iloc[-1]
    gap = float(last["val_loss"]) - float(last["train_loss"])
    sources = [str(s) for s in dict.fromkeys(curve["source"].dropna())]
    out.update({
        "val_evaluations": len(curve),
        "val_loss_final": float(last["val_loss"]),
        "val_loss_best": float(best["val_loss"]),
        "val_loss_best_step": int(best["step"]),
        "val_train_gap": gap if math.isfinite(gap) else None,
        "overfitting": overfitting(curve, patience),
        "val_loss_source": "+".join(sources) or None,
    })
    return out


def overfit_evidence(curve: pd.DataFrame) -> dict[str, float]:
    """Numbers behind a flag: best and last validation loss with their steps and training loss."""
    best_i = int(np.argmin(curve["val_loss"].to_numpy(dtype=float)))
    best, last = curve.iloc[best_i], curve.iloc[-1]
    return {"best_step": int(best["step"]), "best_val": float(best["val_loss"]),
            "best_train": float(best["train_loss"]), "last_step": int(last["step"]),
            "last_val": float(last["val_loss"]), "last_train": float(last["train_loss"]),
            "evaluations_after_best": len(curve) - 1 - best_i}
