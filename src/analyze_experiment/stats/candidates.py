"""From the tidy eval tables to *families* of candidates compared with each other.

A candidate is one run at one checkpoint epoch on one task × scorer. A family is every
candidate of one task × scorer × metric: the unit of "which is best" and of the Holm
correction. Sample epochs (inspect's repeats) are averaged per sample first, because the
sample — not the repeat — is the independent unit (Miller 2024, §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.tables import by_epoch

CandKey = tuple[str, float | None]
"""(run, 0-based epoch or None for control/base models)."""

_NOT_METRICS = {"stderr", "std", "var", "count"}


def epoch_key(value: object) -> float | None:
    """A hashable epoch: float, or None for NaN/None (control/base models)."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def label(key: CandKey) -> str:
    """``run`` or ``run@epoch N`` for reports."""
    run, ep = key
    return run if ep is None else f"{run} (epoch {int(ep)})"


@dataclass
class Family:
    """All candidates of one task × scorer × metric."""

    task: str
    scorer: str
    metric: str
    binary: bool
    """Every raw score of the scorer is 0 or 1."""
    scores: dict[CandKey, pd.Series] = field(default_factory=dict)
    """Per-sample scores (sample epochs averaged), indexed by sample id."""
    clusters: pd.Series | None = None
    """Sample id -> cluster value when ``options.cluster_by`` applies."""
    from_log: dict[CandKey, dict[str, Any]] = field(default_factory=dict)
    """Candidates with no per-sample rows: inspect's ``value``/``stderr``/``n``."""
    direction: str = "higher"
    """``higher`` | ``lower`` | ``descriptive`` (never ranked): which way is better."""

    def candidates(self) -> list[CandKey]:
        """Every candidate, sample-based first."""
        return list(self.scores) + [k for k in self.from_log if k not in self.scores]


def reduce_samples(samples: pd.DataFrame, cluster_by: str | None) -> pd.DataFrame:
    """One row per run × task × epoch × scorer × sample id: the mean over sample epochs.

    Unscored rows (NaN score) are dropped. Adds ``cluster`` when ``cluster_by`` names a
    ``meta.<key>`` column.
    """
    cols = ["run", "task", "epoch", "scorer", "sample_id", "score"]
    if samples is None or samples.empty:
        return pd.DataFrame(columns=[*cols, "cluster"])
    df = samples.copy()
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    df = df[df["score"].notna()]
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce").astype(float)  # NaN: base/control
    df["sample_id"] = df["sample_id"].astype(str)
    ccol = f"meta.{cluster_by}" if cluster_by else None
    df["cluster"] = df[ccol].astype(object) if ccol and ccol in df.columns else None
    out = df.groupby(["run", "task", "epoch", "scorer", "sample_id"], sort=True, dropna=False).agg(
        score=("score", "mean"), cluster=("cluster", "first")
    )
    return out.reset_index()


def _log_metric(rows: pd.DataFrame, preferred: str | None) -> pd.Series | None:
    metrics = rows[~rows["metric"].astype(str).isin(_NOT_METRICS)]
    if metrics.empty:
        return None
    for name in (preferred, "accuracy", "mean"):
        if name is not None and (metrics["metric"] == name).any():
            return metrics[metrics["metric"] == name].iloc[-1]
    return metrics.iloc[-1]


def _candidate_scores(g: pd.DataFrame) -> dict[CandKey, pd.Series]:
    """Each candidate's scores indexed by sample id (name ``score``, index ``sample_id``), in
    the groupby's order — sliced from the family's columns by each group's row positions
    rather than a sub-frame, ``set_index`` and ``astype`` per candidate (0.1 s at 100 runs)."""
    by = g.groupby(["run", "epoch"], sort=True, dropna=False)
    ids = g["sample_id"].array
    values = g["score"].to_numpy(float)
    codes = by.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=by.ngroups))
    out: dict[CandKey, pd.Series] = {}
    shared: pd.Index | None = None
    for (run, ep), start, end in zip(by.size().index, [0, *ends[:-1]], ends, strict=True):
        pos = order[start:end]
        cand_ids = ids.take(pos)
        if shared is not None and len(shared) == len(cand_ids) and bool((shared.array == cand_ids).all()):
            index = shared  # the same samples: one Index object, so every later equals() is an identity
        else:  # check and is_unique / is_monotonic_increasing are computed once, not per pair
            index = shared = pd.Index(cand_ids, name="sample_id")
        out[(str(run), epoch_key(ep))] = pd.Series(values[pos], index=index, name="score")
    return out


def build_families(experiment: Experiment, options: Options) -> list[Family]:
    """Group the experiment's evaluations into families (sorted by task, scorer)."""
    red = reduce_samples(experiment.eval_samples, options.cluster_by)
    fams: dict[tuple[str, str], Family] = {}
    raw = experiment.eval_samples
    for (task, scorer), g in red.groupby(["task", "scorer"], sort=True):
        raw_scores = pd.to_numeric(
            raw.loc[(raw["task"] == task) & (raw["scorer"] == scorer), "score"], errors="coerce"
        ).dropna()
        binary = bool(len(raw_scores)) and bool(raw_scores.isin([0.0, 1.0]).all())
        fam = Family(str(task), str(scorer), "accuracy" if binary else "mean", binary)
        fam.scores.update(_candidate_scores(g))
        if options.cluster_by and g["cluster"].notna().any():
            cl = g.dropna(subset=["cluster"]).groupby("sample_id")["cluster"].first()
            fam.clusters = cl.astype(str)
        fams[(str(task), str(scorer))] = fam
    scores = experiment.eval_scores
    if scores is not None and not scores.empty:
        sc = scores.copy()
        sc["value"] = pd.to_numeric(sc["value"], errors="coerce")
        for (run, task, ep, scorer), g in by_epoch(sc, ["run", "task", "epoch", "scorer"]):
            key: CandKey = (str(run), epoch_key(ep))
            fam = fams.get((str(task), str(scorer)))
            if fam is not None and key in fam.scores:
                continue
            row = _log_metric(g, fam.metric if fam else None)
            if row is None or pd.isna(row["value"]):
                continue
            if fam is None:
                metric = str(row["metric"])
                fam = Family(str(task), str(scorer), metric, metric == "accuracy")
                fams[(str(task), str(scorer))] = fam
            fam.from_log[key] = {
                "metric": str(row["metric"]),  # the log's own metric (accuracy: a proportion)
                "value": float(row["value"]),
                "stderr": pd.to_numeric(row.get("stderr"), errors="coerce"),
                "n": pd.to_numeric(row.get("n"), errors="coerce"),
            }
    return [fams[k] for k in sorted(fams)]
