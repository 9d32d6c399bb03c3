"""Report blocks of the scorer kinds: risk scorers, two-class scorers and subgroups.

The numbers come from :class:`~analyze_experiment.analysis.Analysis` (``risk``,
``auc_tests``, ``classification``, ``subgroups``, ``subgroup_tests``); this module only
formats them. A report without such scorers gets no block at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.analysis import Analysis
from analyze_experiment.report.doc import Bullets, Figure, Paragraph, PlotLike, Section, Table

RISK_PLOTS = "risk"
"""``PlotInfo.section`` of the ROC and reliability figures (shown in the risk block)."""


def _cand(run: Any, epoch: Any) -> str:
    return str(run) if fmt.is_missing(epoch) else f"{run} (epoch {fmt.epoch(epoch)})"


def _empty(df: pd.DataFrame | None) -> bool:
    return df is None or not len(df)


def risk_table(analysis: Analysis) -> pd.DataFrame:
    """One row per risk candidate: calibration, discrimination and the rates at 0.5."""
    r = analysis.risk
    level = round(analysis.confidence * 100)
    rows = []
    for x in r.itertuples(index=False):
        rows.append({
            "task": x.task, "scorer": x.scorer, "candidate": _cand(x.run, x.epoch),
            "n": fmt.integer(x.n), "unreadable": fmt.integer(x.n_unparsed),
            f"positives ('{x.positive_label}')": f"{fmt.integer(x.n_pos)} ({x.prevalence:.0%})",
            f"Brier ↓ [{level}% CI]": fmt.ci(x.brier, x.brier_ci_low, x.brier_ci_high),
            f"AUC ↑ [{level}% DeLong CI]": fmt.ci(x.auc, x.auc_ci_low, x.auc_ci_high),
            "ECE ↓": fmt.num(x.ece), "risk calibration error ↓": fmt.num(x.risk_calibration_error),
            "mean risk": fmt.num(x.mean_risk),
            "accuracy@0.5": fmt.num(x.accuracy), "balanced accuracy": fmt.num(x.balanced_accuracy),
            "F1": fmt.num(x.f1), "precision": fmt.num(x.precision), "recall": fmt.num(x.recall),
            "TP / FP / TN / FN": " / ".join(fmt.integer(v) for v in (x.tp, x.fp, x.tn, x.fn)),
        })
    return pd.DataFrame(rows)


def auc_tests_table(analysis: Analysis) -> pd.DataFrame:
    """DeLong's paired AUC tests, with the plan's adjusted p-value and verdict."""
    t = analysis.auc_tests
    level = round(analysis.confidence * 100)
    rows = []
    for x in t.itertuples(index=False):
        rows.append({
            "task": x.task, "scorer": x.scorer, "A": _cand(x.a, x.epoch_a), "B": _cand(x.b, x.epoch_b),
            "AUC A": fmt.num(x.auc_a), "AUC B": fmt.num(x.auc_b), "diff A−B": fmt.num(x.diff),
            f"unadjusted {level}% CI": f"{fmt.num(x.ci_low)} to {fmt.num(x.ci_high)}",
            "DeLong z": fmt.num(x.statistic, 2), "p": fmt.pvalue(x.p_value), "Holm p": fmt.pvalue(x.p_holm),
            "adjusted p": fmt.pvalue(getattr(x, "p_adjusted", None)),
            "significant": "yes" if bool(getattr(x, "significant", False)) else "no",
            "n paired": fmt.integer(x.n_paired), "family": getattr(x, "family", "—") or "—",
        })
    return pd.DataFrame(rows)


def classification_table(analysis: Analysis) -> pd.DataFrame:
    """One row per candidate of a two-class scorer: confusion counts and imbalance-aware rates."""
    c = analysis.classification
    rows = []
    for x in c.itertuples(index=False):
        rows.append({
            "task": x.task, "scorer": x.scorer, "candidate": _cand(x.run, x.epoch), "n": fmt.integer(x.n),
            f"positives ('{x.positive_label}')": f"{fmt.integer(x.n_pos)} ({x.prevalence:.0%})",
            "accuracy": fmt.num(x.accuracy), "balanced accuracy": fmt.num(x.balanced_accuracy),
            "F1": fmt.num(x.f1), "precision": fmt.num(x.precision), "recall": fmt.num(x.recall),
            "specificity": fmt.num(x.specificity),
            "TP / FP / TN / FN": " / ".join(fmt.integer(v) for v in (x.tp, x.fp, x.tn, x.fn)),
            "other": fmt.integer(x.other),
        })
    return pd.DataFrame(rows)


def subgroups_table(analysis: Analysis) -> pd.DataFrame:
    """One row per candidate × category, one column per level: ``value [CI] (n)``.

    A value read only from inspect's grouped header metric (the candidate has no per-sample
    rows) is marked ``(log header)``; the long table with both values is tables/subgroups.csv.
    """
    s = analysis.subgroups
    rows: dict[tuple[Any, ...], dict[str, str]] = {}
    levels: dict[tuple[Any, ...], list[str]] = {}
    for x in s.sort_values(["task", "scorer", "metric", "key", "run", "level"], kind="stable").itertuples(index=False):
        group = (x.task, x.scorer, x.metric, x.key)
        key = (*group, _cand(x.run, x.epoch))
        row = rows.setdefault(key, {"task": str(x.task), "scorer": str(x.scorer), "metric": str(x.metric),
                                    "category": str(x.key), "candidate": key[-1]})
        cell = fmt.ci(x.value, x.ci_low, x.ci_high)
        cell += " (log header)" if x.source == "log header" else f" (n {fmt.integer(x.n)})"
        row[str(x.level)] = cell
        lv = levels.setdefault(group, [])
        if str(x.level) not in lv:
            lv.append(str(x.level))
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(list(rows.values())).fillna("—")
    order = ["task", "scorer", "metric", "category", "candidate"]
    return df[order + [c for c in df.columns if c not in order]]


def subgroup_tests_table(analysis: Analysis) -> pd.DataFrame:
    """The heterogeneity tests: per-level gains, F, Holm and the plan's adjusted p."""
    t = analysis.subgroup_tests
    rows = []
    for x in t.itertuples(index=False):
        try:
            gains = json.loads(x.gains) if isinstance(x.gains, str) else {}
        except ValueError:
            gains = {}
        rows.append({
            "task": x.task, "scorer": x.scorer, "metric": x.metric, "category": x.key,
            "gain of": _cand(x.a, x.epoch_a), "over": _cand(x.b, x.epoch_b),
            "gain per level": ", ".join(f"{k} {fmt.num(v)}" for k, v in gains.items()),
            "F": fmt.num(x.statistic, 2), "df": f"{fmt.integer(x.df1)}, {fmt.integer(x.df2)}",
            "p": fmt.pvalue(x.p_value), "Holm p": fmt.pvalue(x.p_holm),
            "adjusted p": fmt.pvalue(getattr(x, "p_adjusted", None)),
            "significant": "yes" if bool(getattr(x, "significant", False)) else "no",
            "family": getattr(x, "family", "—") or "—",
        })
    return pd.DataFrame(rows)


def scorer_sections(analysis: Analysis, plots: Sequence[PlotLike] = ()) -> list[Section]:
    """The level-3 blocks of Evaluation Results for risk scorers, two-class scorers and subgroups."""
    out: list[Section] = []
    level = round(analysis.confidence * 100)
    if not _empty(getattr(analysis, "risk", None)):
        s = Section("Risk Scorers", level=3, anchor="risk-scorers")
        s.blocks.append(Paragraph(
            "Recomputed from each sample's risk score (P(positive)) and target. Brier: mean squared error of the "
            f"risk (lower is better; {level}% t interval); AUC: discrimination with DeLong's interval (higher is "
            "better); ECE: calibration of the confidence max(p, 1 − p) against being right at 0.5; risk calibration "
            "error: calibration of p against the outcome (10 equal-width bins each); rates at the 0.5 threshold. "
            "Unreadable outputs are left out of Brier, AUC and ECE and count as wrong at 0.5."))
        s.blocks.append(Table(risk_table(analysis), caption="Risk scorers: calibration and discrimination",
                              name="risk"))
        if not _empty(getattr(analysis, "auc_tests", None)):
            s.blocks.append(Table(
                auc_tests_table(analysis), name="auc_tests",
                caption="AUC comparisons (DeLong's paired test on the samples both candidates read; Holm within the "
                        "discrimination family, adjusted p across the report's difference families)"))
        s.blocks.extend(Figure(name=p.name, title=p.title, caption=p.caption, interactive=p.interactive)
                        for p in plots if p.section == RISK_PLOTS)
        out.append(s)
    if not _empty(getattr(analysis, "classification", None)):
        s = Section("Two-Class Scorers", level=3, anchor="two-class-scorers")
        s.blocks.append(Paragraph(
            "Scorers whose targets take two labels: the confusion matrix of each candidate (positive label named), "
            "the eval set's class balance, and balanced accuracy and F1 beside accuracy, which a constant answer "
            "cannot inflate. 'other': answers that are neither label (counted wrong)."))
        s.blocks.append(Table(classification_table(analysis), caption="Two-class scorers", name="classification"))
        out.append(s)
    if not _empty(getattr(analysis, "subgroups", None)):
        s = Section("Subgroups", level=3, anchor="subgroups")
        s.blocks.append(Paragraph(
            "The primary metric per level of each sample category (sample metadata with 2–8 text levels, and "
            "inspect's grouped metrics from the log header). The heterogeneity test asks whether the best's gain is "
            "the same in every level: a one-way ANOVA of the per-sample paired differences across levels, Holm "
            "within the family."))
        s.blocks.append(Table(subgroups_table(analysis), name="subgroups",
                              caption=f"Primary metric per subgroup ({level}% CI; Wilson for 0/1 scores)"))
        if not _empty(getattr(analysis, "subgroup_tests", None)):
            s.blocks.append(Table(subgroup_tests_table(analysis), caption="Is the gain the same in every subgroup?",
                                  name="subgroup_tests"))
        out.append(s)
    return out


def data_quality_notes(analysis: Analysis) -> list[Bullets]:
    """The scorer notes of Data Quality (findings of section ``data_quality``)."""
    items = [f.text for f in analysis.section("data_quality")]
    return [Bullets(items)] if items else []
