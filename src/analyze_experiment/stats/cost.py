"""Cost–benefit: metric against GPU-hours (and dollars), and the Pareto-optimal candidates.

A run's training cost is ``gpu_hours`` from the runs table (train time × GPUs). An
intermediate checkpoint (epoch k of E) cost (k+1)/E of the run, since it existed after
k+1 of E epochs. Control/base models were not trained here: their training cost is 0.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analyze_experiment.analysis import PARETO


def candidate_cost(run: pd.Series | None, epoch: float | None) -> float:
    """GPU-hours spent to produce the checkpoint (NaN when unknown, never guessed)."""
    if run is None:
        return math.nan
    if str(run.get("type")) in ("control", "eval-only"):
        return 0.0
    gh = pd.to_numeric(run.get("gpu_hours"), errors="coerce")
    if pd.isna(gh):
        return math.nan
    if epoch is None:
        return float(gh)
    total = pd.to_numeric(run.get("epochs_done"), errors="coerce")
    if pd.isna(total) or total <= 0:
        total = pd.to_numeric(run.get("planned_epochs"), errors="coerce")
    if pd.isna(total) or total <= 0 or epoch + 1 >= total:
        return float(gh)
    return float(gh) * (epoch + 1) / float(total)


def pareto_front(value: pd.Series, cost: pd.Series) -> pd.Series:
    """True where no other point has value ≥ and cost ≤ with one strictly better.

    Points with unknown cost are never on the front.
    """
    v, c = value.to_numpy(float), cost.to_numpy(float)
    out = []
    for i in range(len(v)):
        if math.isnan(c[i]) or math.isnan(v[i]):
            out.append(False)
            continue
        dominated = any(
            (v[j] >= v[i] and c[j] <= c[i] and (v[j] > v[i] or c[j] < c[i]))
            for j in range(len(v)) if j != i and not math.isnan(c[j]) and not math.isnan(v[j])
        )
        out.append(not dominated)
    return pd.Series(out, index=value.index)


def _direction(values: pd.DataFrame, g: pd.DataFrame) -> str:
    d = values.loc[g.index.intersection(values.index), "direction"] if "direction" in values.columns else []
    return str(d.iloc[0]) if len(d) else "higher"


def pareto_table(values: pd.DataFrame, runs: pd.DataFrame, gpu_hour_cost: float | None) -> pd.DataFrame:
    """One row per candidate: value, GPU-hours, dollars, and Pareto membership per family."""
    if values.empty:
        return pd.DataFrame(columns=PARETO)
    info = {str(r["run"]): r for _, r in runs.iterrows()} if not runs.empty else {}
    rows: list[dict[str, Any]] = []
    for _, r in values.iterrows():
        ep = pd.to_numeric(r["epoch"], errors="coerce")
        gh = candidate_cost(info.get(str(r["run"])), None if pd.isna(ep) else float(ep))
        rows.append({"task": r["task"], "scorer": r["scorer"], "metric": r["metric"], "run": r["run"],
                     "epoch": ep, "value": r["value"], "gpu_hours": gh,
                     "cost_usd": gh * gpu_hour_cost if gpu_hour_cost is not None else math.nan})
    df = pd.DataFrame(rows, columns=PARETO[:-1])
    df["pareto"] = False
    for _, g in df.groupby(["task", "scorer", "metric"], sort=False):
        # a lower-is-better metric (mae, brier_score) is on the front where it is small
        sign = -1.0 if "direction" in values.columns and _direction(values, g) == "lower" else 1.0
        df.loc[g.index, "pareto"] = pareto_front(sign * g["value"], g["gpu_hours"])
    return df[PARETO]
