"""Runs and evals that depart from their peers, or look broken.

Robust z (Iglewicz & Hoaglin 1993): z = 0.6745·(x − median)/MAD, flagged when |z| > 3.5.
Median and MAD are not dragged by the outlier itself, unlike mean and SD, which with 3–5
seeds can never flag anything. Suspicious evals: every answer identical, a metric of
exactly 0% or 100%, or many errored samples — usually a broken prompt, scorer or model
load rather than a result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import OUTLIERS

Z_THRESHOLD = 3.5
MIN_GROUP = 3
ERROR_SHARE = 0.05
MIN_CONSTANT_ANSWERS = 10


def robust_z(x: np.ndarray) -> np.ndarray:
    """0.6745·(x − median)/MAD; NaN when the MAD is 0 (no spread to compare with)."""
    x = np.asarray(x, float)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    if mad == 0:
        return np.full(x.shape, np.nan)
    return 0.6745 * (x - med) / mad


def group_outliers(values: pd.DataFrame, configs: pd.Series, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric and final-loss outliers among replicate runs of one config (≥ 3 runs)."""
    rows: list[dict[str, Any]] = []
    if not configs.empty and not values.empty:
        v = values[values["run"].isin(configs.index)].copy()
        v["config"] = v["run"].map(configs)
        v["_ep"] = pd.to_numeric(v["epoch"], errors="coerce").fillna(-1.0)
        for (task, scorer, metric, _, cfg), g in v.groupby(["task", "scorer", "metric", "_ep", "config"]):
            if len(g) < MIN_GROUP:
                continue
            z = robust_z(g["value"].to_numpy(float))
            for (_, r), zi in zip(g.iterrows(), z, strict=True):
                if not math.isnan(zi) and abs(zi) > Z_THRESHOLD:
                    rows.append({"run": r["run"], "task": task, "kind": "metric",
                                 "detail": f"{scorer} {metric} departs from the other seeds of {cfg} "
                                           f"(median {np.median(g['value']):.4g})",
                                 "value": float(r["value"]), "robust_z": float(zi)})
    if not configs.empty and not runs.empty and "final_loss" in runs.columns:
        r2 = runs[runs["run"].isin(configs.index)].copy()
        r2["config"] = r2["run"].map(configs)
        r2["final_loss"] = pd.to_numeric(r2["final_loss"], errors="coerce")
        for cfg, g in r2.dropna(subset=["final_loss"]).groupby("config"):
            if len(g) < MIN_GROUP:
                continue
            z = robust_z(g["final_loss"].to_numpy(float))
            for (_, r), zi in zip(g.iterrows(), z, strict=True):
                if not math.isnan(zi) and abs(zi) > Z_THRESHOLD:
                    rows.append({"run": r["run"], "task": None, "kind": "loss",
                                 "detail": f"final training loss departs from the other seeds of {cfg} "
                                           f"(median {g['final_loss'].median():.4g})",
                                 "value": float(r["final_loss"]), "robust_z": float(zi)})
    return pd.DataFrame(rows, columns=OUTLIERS)


def loss_curve_outliers(train_steps: pd.DataFrame, configs: pd.Series) -> pd.DataFrame:
    """Runs whose loss curve departs from the other seeds of their config (≥ 3 runs).

    The curve is summarised by its mean loss over the second half of the steps all runs of
    the group reached: a seed that trains differently shows there even when its final loss
    happens to land near the others.
    """
    rows: list[dict[str, Any]] = []
    if train_steps is None or train_steps.empty or configs.empty:
        return pd.DataFrame(rows, columns=OUTLIERS)
    ts = train_steps[train_steps["run"].isin(configs.index)].copy()
    ts["loss"] = pd.to_numeric(ts["loss"], errors="coerce")
    ts["step"] = pd.to_numeric(ts["step"], errors="coerce")
    ts = ts.dropna(subset=["loss", "step"])
    ts = ts[np.isfinite(ts["loss"])]
    for cfg, runs in configs.groupby(configs):
        g = ts[ts["run"].isin(runs.index)]
        if g["run"].nunique() < MIN_GROUP:
            continue
        common = float(g.groupby("run")["step"].max().min())
        tail = g[(g["step"] > common / 2) & (g["step"] <= common)]
        summary = tail.groupby("run")["loss"].mean()
        if len(summary) < MIN_GROUP:
            continue
        z = robust_z(summary.to_numpy(float))
        for (run, v), zi in zip(summary.items(), z, strict=True):
            if not math.isnan(zi) and abs(zi) > Z_THRESHOLD:
                rows.append({"run": run, "task": None, "kind": "loss_curve",
                             "detail": f"mean training loss over steps {int(common // 2) + 1}–{int(common)} departs "
                                       f"from the other seeds of {cfg} (median {summary.median():.4g})",
                             "value": float(v), "robust_z": float(zi)})
    return pd.DataFrame(rows, columns=OUTLIERS)


def suspicious_evals(samples: pd.DataFrame, intervals: pd.DataFrame, eval_logs: pd.DataFrame) -> pd.DataFrame:
    """Constant answers, 0%/100% accuracies and evals with many errored samples."""
    rows: list[dict[str, Any]] = []
    if samples is not None and not samples.empty and "answer" in samples.columns:
        s = samples.copy()
        s["_ep"] = pd.to_numeric(s["epoch"], errors="coerce").fillna(-1.0)
        for (run, task, _), g in s.groupby(["run", "task", "_ep"], sort=True):
            ans = g.drop_duplicates(["sample_id", "sample_epoch"])["answer"].dropna().astype(str)
            if len(ans) >= MIN_CONSTANT_ANSWERS and ans.nunique() == 1:
                rows.append({"run": run, "task": task, "kind": "constant_answers",
                             "detail": f"all {len(ans)} answers are {ans.iloc[0][:40]!r}",
                             "value": float(len(ans)), "robust_z": math.nan})
    if not intervals.empty:
        acc = intervals[(intervals["metric"] == "accuracy") & intervals["value"].isin([0.0, 1.0])]
        for _, r in acc.iterrows():
            rows.append({"run": r["run"], "task": r["task"], "kind": f"accuracy_{int(r['value'] * 100)}",
                         "detail": f"{r['scorer']} accuracy is exactly {r['value']:.0%} on {r['n']} samples",
                         "value": float(r["value"]), "robust_z": math.nan})
    if eval_logs is not None and not eval_logs.empty:
        lg = eval_logs.copy()
        if "used" in lg.columns:
            lg = lg[lg["used"].fillna(True).astype(bool)]
        tot = pd.to_numeric(lg["total_samples"], errors="coerce")
        err = pd.to_numeric(lg["errored_samples"], errors="coerce")
        for (_, r), t, e in zip(lg.iterrows(), tot, err, strict=True):
            if t and t > 0 and e and e / t > ERROR_SHARE:
                rows.append({"run": r["run"], "task": r["task"], "kind": "errored_samples",
                             "detail": f"{int(e)} of {int(t)} samples errored ({e / t:.0%}) in {r['log']}",
                             "value": float(e / t), "robust_z": math.nan})
    return pd.DataFrame(rows, columns=OUTLIERS)
