"""``analyze-experiment show``: the sweep at a glance — runs × what changed × status × results.

One row per run: the parameters that differ between runs (the ones that do not are the same
for every row, so they are left out, as ``dvc exp show --only-changed`` does), the training
status (a failed run says how it failed), steps done of planned, final loss, GPU-hours, and
for each task's primary metric the run's best checkpoint value with its epoch. The family's
best is starred. Numbers come from the same tables as the report.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.metric_findings import metric_direction


def changed_params(exp: Experiment) -> list[str]:
    """Parameters with more than one value across the runs (constant ones say nothing here)."""
    runs = exp.runs
    out = []
    for p in exp.param_names:
        if p in runs.columns and runs[p].dropna().astype(str).nunique() > 1:
            out.append(p)
    return out


def _primary_keys(a: Analysis) -> list[tuple[str, str, str]]:
    m = a.metrics
    if m is not None and not m.empty and "primary" in m.columns:
        p = m[m["primary"].fillna(False).astype(bool)]
        keys = list(dict.fromkeys(zip(p["task"].astype(str), p["scorer"].astype(str), p["metric"].astype(str),
                                      strict=True)))
        if keys:
            return keys
    return list(dict.fromkeys((b.task, b.scorer, b.metric) for b in a.best))


def runs_overview(exp: Experiment, a: Analysis) -> pd.DataFrame:
    """The table ``show`` prints (cells are formatted text)."""
    runs = exp.runs.drop_duplicates("run", keep="last")
    params = changed_params(exp)
    failed = {} if a.failed_runs is None or a.failed_runs.empty else dict(
        zip(a.failed_runs["run"].astype(str), a.failed_runs["status"].astype(str), strict=True))
    keys = _primary_keys(a)
    best = {(b.task, b.scorer, b.metric): (b.run, b.epoch) for b in a.best}
    tasks = [k[0] for k in keys]
    multi_task = len(set(tasks)) > 1
    rows: list[dict[str, Any]] = []
    iv = a.intervals
    for r in runs.to_dict(orient="records"):
        run = str(r["run"])
        row: dict[str, Any] = {"run": run, "type": r.get("type") or ""}
        for p in params:
            row[p] = fmt.value(r.get(p))
        status = r.get("status")
        row["status"] = (f"FAILED: {failed[run]}" if run in failed else
                         "" if status is None or (isinstance(status, float) and math.isnan(status)) else str(status))
        steps, planned = r.get("steps"), r.get("planned_steps")
        row["steps"] = "" if fmt.is_missing(steps) else (
            f"{fmt.integer(steps)}/{fmt.integer(planned)}" if not fmt.is_missing(planned) else fmt.integer(steps))
        row["final loss"] = "" if fmt.is_missing(r.get("final_loss")) else f"{float(r['final_loss']):.4f}"
        row["GPU-h"] = "" if fmt.is_missing(r.get("gpu_hours")) else f"{float(r['gpu_hours']):.3g}"
        for key in keys:
            col = f"{key[1]} {key[2]}" if tasks.count(key[0]) > 1 else key[2]
            col = f"{key[0]} {col}" if multi_task else col
            direction = metric_direction(a.metrics, *key)
            col += " ↓" if direction == "lower" else " ↑" if direction == "higher" else ""
            g = iv[(iv["run"].astype(str) == run) & (iv["task"] == key[0]) & (iv["scorer"] == key[1])
                   & (iv["metric"] == key[2])] if len(iv) else iv
            g = g[pd.to_numeric(g["value"], errors="coerce").notna()] if len(g) else g
            if not len(g):
                row[col] = ""
                continue
            top = g.sort_values("value", ascending=direction == "lower").iloc[0]
            text = f"{float(top['value']):.3f}"
            if not fmt.is_missing(top["epoch"]) and g["epoch"].nunique() > 1:
                text += f" @ep{fmt.epoch(top['epoch'])}"
            b = best.get(key)
            if b is not None and b[0] == run:
                text += " ★"
            row[col] = text
        rows.append(row)
    return pd.DataFrame(rows)
