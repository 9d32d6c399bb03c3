"""What each kind of scorer needs beyond a mean: risk, two-class and per-subgroup tables.

Why a stage of its own: a risk scorer is judged on calibration and discrimination (Brier,
AUC, ECE), a two-class ``match`` scorer on its confusion matrix and class balance, and any
scorer whose samples carry categories on whether the gain holds in every category. The pure
statistics live in :mod:`.risk`, :mod:`.classification` and :mod:`.subgroups`; this module
runs them over an experiment and returns the tables :class:`~analyze_experiment.analysis.Analysis`
stores, plus the two families of tests that can make claims:

* ``discrimination`` — DeLong's paired AUC test between every pair of candidates of a risk
  task × scorer (Holm within). It is confirmatory when the task × scorer holds a confirmatory
  metric (its primary metric, or every metric with ``--confirmatory all``);
* ``heterogeneity`` — the gain of a confirmatory family's best across the levels of each
  sample-metadata category (:func:`.subgroups.heterogeneity_tests`, Holm within).

Both are difference families: they share the report's α with the checkpoint families
(stats/plan.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Best
from analyze_experiment.stats.candidates import CandKey, Family, epoch_key
from analyze_experiment.stats.classification import CLASSIFICATION, classification_table
from analyze_experiment.stats.risk import (
    AUC_TESTS,
    RISK_TABLE,
    auc_tests,
    reliability,
    risk_samples,
    risk_scorers,
    risk_table,
    roc_points,
)
from analyze_experiment.stats.subgroups import (
    SUBGROUP_TESTS,
    SUBGROUPS,
    category_keys,
    comparison_set,
    heterogeneity_tests,
    subgroup_table,
)
from analyze_experiment.tables import by_epoch

Key = tuple[str, str, str]

RISK_CURVES = ["task", "scorer", "run", "epoch", "curve", "x", "y", "n"]
"""ROC points (curve ``roc``: x = false positive rate, y = true positive rate) and the
reliability diagram's bins (curve ``reliability``: x = mean predicted risk, y = share
positive, n = samples in the bin), per candidate of every risk scorer."""

SUBGROUP_COLUMNS = [*SUBGROUPS, "source", "header_value"]
"""The subgroup table: :data:`.subgroups.SUBGROUPS`, ``source`` (``samples`` | ``log header``)
and inspect's own ``grouped`` value for the level when the log header has it."""

AUC_METRIC = "auc"
"""The metric name of the discrimination families (``discrimination: task/scorer/auc``)."""

GROUPED = "grouped/"
"""inspect's ``grouped()`` metric: one header value per level, ``grouped/<level>``."""


@dataclass
class ScorerTables:
    """The tables of this stage (each may be empty)."""

    risk: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RISK_TABLE))
    auc_tests: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=AUC_TESTS))
    risk_curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RISK_CURVES))
    classification: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CLASSIFICATION))
    subgroups: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUBGROUP_COLUMNS))
    subgroup_tests: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUBGROUP_TESTS))


def risk_curves(rs: pd.DataFrame) -> pd.DataFrame:
    """ROC points and reliability bins of every candidate (rows of :func:`.risk.risk_samples`)."""
    rows: list[dict[str, Any]] = []
    ok = rs[rs["parsed"]]
    for (task, scorer, run, ep), g in by_epoch(ok, ["task", "scorer", "run", "epoch"]):
        base = {"task": task, "scorer": scorer, "run": run, "epoch": epoch_key(ep)}
        r, y = g["risk"].to_numpy(float), g["y"].to_numpy(float)
        if 0 < y.sum() < len(y):
            for x, t in zip(*roc_points(r, y)[["fpr", "tpr"]].to_numpy().T, strict=True):
                rows.append({**base, "curve": "roc", "x": float(x), "y": float(t), "n": math.nan})
        for _, b in reliability(r, y).iterrows():
            rows.append({**base, "curve": "reliability", "x": float(b["mean_risk"]), "y": float(b["observed"]),
                         "n": int(b["n"])})
    return pd.DataFrame(rows, columns=RISK_CURVES)


def discrimination_keys(auc: pd.DataFrame, confirmatory: Iterable[Key], mode: str = "primary") -> set[Key]:
    """The ``(task, scorer, "auc")`` keys whose DeLong tests may make claims.

    A risk scorer's AUC family is confirmatory when its task × scorer holds a confirmatory
    metric (``mode == "all"``: always).
    """
    if auc is None or auc.empty:
        return set()
    pairs = {(str(t), str(s)) for t, s in zip(auc["task"], auc["scorer"], strict=True)}
    allowed = {(k[0], k[1]) for k in confirmatory}
    return {(t, s, AUC_METRIC) for t, s in pairs if mode == "all" or (t, s) in allowed}


def _header_groups(scores: pd.DataFrame | None) -> dict[tuple[str, str, CandKey], dict[str, float]]:
    """(task, scorer, candidate) -> {level: value} of inspect's ``grouped/<level>`` header metrics
    (``all`` included: it is the check that the header measures what the family measures)."""
    out: dict[tuple[str, str, CandKey], dict[str, float]] = {}
    if scores is None or scores.empty or "metric" not in scores.columns:
        return out
    g = scores[scores["metric"].astype(str).str.startswith(GROUPED)]
    for _, r in g.iterrows():
        v = pd.to_numeric(r["value"], errors="coerce")
        if pd.isna(v):
            continue
        key = (str(r["task"]), str(r["scorer"]), (str(r["run"]), epoch_key(r["epoch"])))
        out.setdefault(key, {})[str(r["metric"])[len(GROUPED):]] = float(v)
    return out


def _header_key(levels: set[str], keys: dict[str, pd.Series]) -> str:
    """The sample-metadata key whose levels the header's groups are (else ``grouped``)."""
    for key, lv in keys.items():
        if levels <= {str(x) for x in lv.unique()}:
            return key
    return "grouped"


def _family_mean(fam: Family, cand: CandKey) -> float | None:
    if cand in fam.scores and len(fam.scores[cand]):
        return float(fam.scores[cand].mean())
    if cand in fam.from_log:
        return float(fam.from_log[cand]["value"])
    return None


def subgroup_tables(samples: pd.DataFrame, scores: pd.DataFrame | None, families: list[Family],
                    best: list[Best], confirmatory: set[Key], baselines: list[str],
                    confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-category table and the heterogeneity tests of every confirmatory family.

    Levels come from sample metadata (``meta.<key>``, 2–8 text levels) and from inspect's
    ``grouped`` header metrics. A header value is shown beside the sample-based one only when
    the header's ``all`` group equals the family's own value for the candidate (then both
    measure the same thing); a candidate without per-sample rows gets the header's values
    alone (no interval, no test).
    """
    header = _header_groups(scores)
    best_of = {(b.task, b.scorer, b.metric): b for b in best}
    tables, tests = [], []
    for fam in families:
        k = (fam.task, fam.scorer, fam.metric)
        if k not in confirmatory:
            continue
        keys = category_keys(samples, fam.task)
        tab = subgroup_table(fam, keys, confidence)
        tab["source"] = "samples"
        tab["header_value"] = math.nan
        extra = []
        for cand in fam.candidates():
            groups = header.get((fam.task, fam.scorer, cand))
            mean = _family_mean(fam, cand)
            if not groups or mean is None or "all" not in groups or not math.isclose(groups["all"], mean,
                                                                                       abs_tol=1e-6):
                continue
            levels = {lv: v for lv, v in groups.items() if lv != "all"}
            key = _header_key(set(levels), keys)
            same = pd.Series([epoch_key(e) == cand[1] for e in tab["epoch"]], index=tab.index, dtype=bool)
            sel = (tab["key"] == key) & (tab["run"].astype(str) == cand[0]) & same
            for lv, v in sorted(levels.items()):
                hit = tab.index[sel & (tab["level"].astype(str) == lv)]
                if len(hit):
                    tab.loc[hit, "header_value"] = v
                else:
                    extra.append({"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "key": key,
                                  "level": lv, "run": cand[0], "epoch": cand[1], "n": math.nan, "value": v,
                                  "ci_low": math.nan, "ci_high": math.nan, "source": "log header",
                                  "header_value": v})
        if extra:
            tab = pd.concat([tab, pd.DataFrame(extra, columns=SUBGROUP_COLUMNS)], ignore_index=True)
        if len(tab):
            tables.append(tab[SUBGROUP_COLUMNS])
        b = best_of.get(k)
        if b is None or not keys:
            continue
        bk = (str(b.run), epoch_key(b.epoch))
        t = heterogeneity_tests(fam, keys, bk, comparison_set(fam, bk, baselines))
        if len(t):
            tests.append(t)
    sub = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=SUBGROUP_COLUMNS)
    het = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame(columns=SUBGROUP_TESTS)
    return sub, het


def scorer_tables(samples: pd.DataFrame, scores: pd.DataFrame | None, families: list[Family], best: list[Best],
                  confirmatory: set[Key], baselines: list[str], confidence: float = 0.95,
                  excluded: set[str] | None = None) -> ScorerTables:
    """Every table of this stage from the per-sample table and the header scores.

    ``excluded``: failed runs (stats/health.py). Their rows stay in the descriptive tables
    (risk, two-class, curves) but never enter a test: the AUC tests leave them out, and the
    subgroup tests read ``families``, from which they are already dropped.
    """
    out = ScorerTables()
    if samples is None or samples.empty:
        return out
    rs = risk_samples(samples)
    if len(rs):
        out.risk = risk_table(rs, confidence)
        tested = rs[~rs["run"].astype(str).isin(excluded or set())]
        out.auc_tests = auc_tests(tested, confidence) if len(tested) else out.auc_tests
        out.risk_curves = risk_curves(rs)
    out.classification = classification_table(samples, exclude=set(risk_scorers(samples)))
    out.subgroups, out.subgroup_tests = subgroup_tables(samples, scores, families, best, confirmatory, baselines,
                                                        confidence)
    return out


def gains(row: pd.Series) -> dict[str, float]:
    """The per-level gains of a heterogeneity test row (``gains`` is JSON text)."""
    try:
        g = json.loads(row["gains"]) if isinstance(row["gains"], str) else dict(row["gains"])
    except (TypeError, ValueError):
        return {}
    return {str(k): float(v) for k, v in g.items() if v is not None and np.isfinite(float(v))}
