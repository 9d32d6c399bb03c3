"""Runs and evals that depart from their peers, or look broken.

Replicate runs (seeds of one configuration) are tested only in groups of at least
``MIN_GROUP`` = 5: with 3 seeds the MAD is the distance to one neighbour and robust z flags
29% of perfectly normal groups. Each seed is tested against the others with the
leave-one-out t test (the externally studentized residual of a mean model, t with n − 2 df;
statsmodels ``outlier_test``), Holm within the report's ``outliers`` family (stats/plan.py);
the robust z (Iglewicz & Hoaglin 1993: 0.6745·(x − median)/MAD) is shown beside it as a
description, never as the verdict. Suspicious evals: every answer identical, a metric of
exactly 0% or 100%, or many errored samples — usually a broken prompt, scorer or model
load rather than a result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import OUTLIERS
from analyze_experiment.stats.distributions import t_sf
from analyze_experiment.tables import by_epoch

Z_THRESHOLD = 3.5
MIN_GROUP = 5
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


OUTLIER_COLUMNS = [*OUTLIERS, "scorer", "metric", "statistic", "p_value", "n_group"]
"""OUTLIERS plus the test: leave-one-out t (``statistic``), its raw two-sided p, group size."""


def loo_t(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out t of each value against the others and its two-sided p (t with n − 2 df).

    t_i = (x_i − mean₍₋ᵢ₎) / (s₍₋ᵢ₎·√(1 + 1/(n − 1))): exact under normality, the externally
    studentized residual of an intercept-only model. NaN when the others have no spread.
    """
    x = np.asarray(x, float)
    n = len(x)
    t = np.full(n, np.nan)
    if n < 3:
        return t, np.full(n, np.nan)
    for i in range(n):
        rest = np.delete(x, i)
        s = float(np.std(rest, ddof=1))
        if s > 0:
            t[i] = (x[i] - rest.mean()) / (s * math.sqrt(1 + 1 / (n - 1)))
    p = np.where(np.isnan(t), np.nan, 2 * t_sf(np.abs(t), n - 2))
    return t, p


def _tested_rows(g: pd.DataFrame, col: str, base: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """One row per member of a group of ≥ MIN_GROUP replicates (every member is a test of the family)."""
    x = g[col].to_numpy(float)
    t, p = loo_t(x)
    z = robust_z(x)
    med = float(np.median(x))
    rows = []
    for (_, r), ti, pi, zi in zip(g.iterrows(), t, p, z, strict=True):
        rows.append({**base, "run": r["run"], "detail": f"{what} (median of the group {med:.4g})",
                     "value": float(r[col]), "robust_z": float(zi), "statistic": float(ti), "p_value": float(pi),
                     "n_group": len(g)})
    return rows


def group_outliers(values: pd.DataFrame, configs: pd.Series, runs: pd.DataFrame) -> pd.DataFrame:
    """Metric and final-loss tests among replicate runs of one config (≥ ``MIN_GROUP`` runs).

    Every member of every group is a row (a test); plan.apply_plan decides which are
    significant after Holm over the family. Groups smaller than ``MIN_GROUP`` are not tested.
    """
    rows: list[dict[str, Any]] = []
    if not configs.empty and not values.empty:
        v = values[values["run"].isin(configs.index)].copy()
        v["config"] = v["run"].map(configs)
        keys = ["task", "scorer", "metric", "epoch", "config"]
        # only the groups large enough to test (a sweep without seeds has none): the rest are
        # never materialised, one sub-frame per candidate
        d = v.dropna(subset=[k for k in keys if k != "epoch"])
        v = d[by_epoch(d, keys)["run"].transform("size").to_numpy() >= MIN_GROUP]
        for (task, scorer, metric, _, cfg), g in by_epoch(v, keys):
            if len(g) < MIN_GROUP:
                continue
            rows.extend(_tested_rows(g, "value", {"task": task, "scorer": scorer, "metric": metric, "kind": "metric"},
                                     f"{scorer} {metric} against the other seeds of {cfg}"))
    if not configs.empty and not runs.empty and "final_loss" in runs.columns:
        r2 = runs[runs["run"].isin(configs.index)].copy()
        r2["config"] = r2["run"].map(configs)
        r2["final_loss"] = pd.to_numeric(r2["final_loss"], errors="coerce")
        for cfg, g in r2.dropna(subset=["final_loss"]).groupby("config"):
            if len(g) < MIN_GROUP:
                continue
            rows.extend(_tested_rows(g, "final_loss", {"task": None, "scorer": None, "metric": None, "kind": "loss"},
                                     f"final training loss against the other seeds of {cfg}"))
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS)


def loss_curve_outliers(train_steps: pd.DataFrame, configs: pd.Series) -> pd.DataFrame:
    """Runs whose loss curve departs from the other seeds of their config (≥ ``MIN_GROUP`` runs).

    The curve is summarised by its mean loss over the second half of the steps all runs of
    the group reached: a seed that trains differently shows there even when its final loss
    happens to land near the others.
    """
    rows: list[dict[str, Any]] = []
    if train_steps is None or train_steps.empty or configs.empty:
        return pd.DataFrame(rows, columns=OUTLIER_COLUMNS)
    ts = train_steps[train_steps["run"].isin(configs.index)].copy()
    ts["loss"] = pd.to_numeric(ts["loss"], errors="coerce")
    ts["step"] = pd.to_numeric(ts["step"], errors="coerce")
    ts = ts.dropna(subset=["loss", "step"])
    ts = ts[np.isfinite(ts["loss"])]
    # configs with fewer than MIN_GROUP runs in the table are skipped without filtering it (at
    # 100 single-seed configurations that was 100 scans of every training step for nothing)
    present = configs[configs.index.isin(ts["run"].unique())]
    sizes = present.groupby(present).size()
    for cfg, runs in configs.groupby(configs):
        if sizes.get(cfg, 0) < MIN_GROUP:
            continue
        g = ts[ts["run"].isin(runs.index)]
        if g["run"].nunique() < MIN_GROUP:
            continue
        common = float(g.groupby("run")["step"].max().min())
        tail = g[(g["step"] > common / 2) & (g["step"] <= common)]
        summary = tail.groupby("run")["loss"].mean()
        if len(summary) < MIN_GROUP:
            continue
        g2 = pd.DataFrame({"run": summary.index, "loss": summary.to_numpy(float)})
        rows.extend(_tested_rows(g2, "loss", {"task": None, "scorer": None, "metric": None, "kind": "loss_curve"},
                                 f"mean training loss over steps {int(common // 2) + 1}–{int(common)} against the "
                                 f"other seeds of {cfg}"))
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS)


def _constant_answers(samples: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per eval (run × task × epoch) whose ≥ MIN_CONSTANT_ANSWERS answers (each sample
    once) are all the same text."""
    rows: list[dict[str, Any]] = []
    if not isinstance(samples["answer"].dtype, pd.StringDtype):  # str() may merge distinct values
        for (run, task, _), g in by_epoch(samples, ["run", "task", "epoch"]):
            ans = g.drop_duplicates(["sample_id", "sample_epoch"])["answer"].dropna().astype(str)
            if len(ans) >= MIN_CONSTANT_ANSWERS and ans.nunique() == 1:
                rows.append(_constant_row(run, task, len(ans), ans.iloc[0]))
        return rows
    # text answers: counted per eval in one groupby rather than one drop_duplicates per eval
    # (each sample once: the first of its rows, as the per-eval loop above keeps it)
    keys = ["run", "task", "epoch"]
    once = samples.dropna(subset=["run", "task"]).drop_duplicates([*keys, "sample_id", "sample_epoch"])
    per_eval = by_epoch(once, keys)["answer"].agg(["count", "nunique", "first"])
    hit = per_eval[(per_eval["count"] >= MIN_CONSTANT_ANSWERS) & (per_eval["nunique"] == 1)]
    for (run, task, _), n, first in zip(hit.index, hit["count"], hit["first"], strict=True):
        rows.append(_constant_row(run, task, int(n), first))
    return rows


def _constant_row(run: Any, task: Any, n: int, answer: str) -> dict[str, Any]:
    return {"run": run, "task": task, "kind": "constant_answers", "detail": f"all {n} answers are {answer[:40]!r}",
            "value": float(n), "robust_z": math.nan}


def suspicious_evals(samples: pd.DataFrame, intervals: pd.DataFrame, eval_logs: pd.DataFrame) -> pd.DataFrame:
    """Constant answers, 0%/100% accuracies and evals with many errored samples."""
    rows: list[dict[str, Any]] = []
    if samples is not None and not samples.empty and "answer" in samples.columns:
        rows += _constant_answers(samples)
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
