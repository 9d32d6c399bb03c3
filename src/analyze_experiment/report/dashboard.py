"""What the HTML report needs beyond the text: which rows stand out, which metric a figure
shows, each run's parameters.

The flags come from the Analysis (the best candidates the statistics chose, the failed-run
table, the registered comparisons' ``significant``), never from re-reading formatted cells, so
a highlighted row says what the report's findings say. :func:`annotate` fills the document
model's optional fields in place; the markdown report ignores them.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.doc import Figure, MetricChoice, ReportDoc, Section, Table
from analyze_experiment.report.metric_findings import primary_best
from analyze_experiment.stats.metric_families import confirmatory_table
from analyze_experiment.stats.plan import primary_keys

T = TypeVar("T")

FLAG_ORDER = ("failed", "best", "significant", "baseline")
"""A row with several flags is coloured by the first (a failed best run reads as failed)."""

APPENDIX = ("statistical-summary", "retrospective")
"""Sections (by anchor) that are reference material, folded away in the HTML report unless the
builder already said otherwise."""

_SUFFIX = re.compile(r" \((failed|epoch)\b.*\)$")


def _run_key(text: str, runs: set[str]) -> str | None:
    """The run a ``run`` cell names: the cell itself, or without the ``(failed: …)`` note the
    evaluation tables add."""
    if text in runs:
        return text
    bare = _SUFFIX.sub("", text)
    return bare if bare in runs else None


def _blocks(sections: list[Section], kind: type[T]) -> list[T]:
    """Every block of ``kind`` in ``sections`` and their subsections, in document order."""
    out: list[T] = []
    for s in sections:
        for b in s.blocks:
            if isinstance(b, kind):
                out.append(b)
            elif isinstance(b, Section):
                out.extend(_blocks([b], kind))
    return out


def _tables(sections: list[Section]) -> list[Table]:
    return _blocks(sections, Table)


def _figures(sections: list[Section]) -> list[Figure]:
    return _blocks(sections, Figure)


def metric_choices(analysis: Analysis, scorer_order: list[str]) -> list[MetricChoice]:
    """Every task × scorer × metric with intervals; marked primary: the one per task the
    significance claims are made on (the statistics stage's choice, same scorer order)."""
    iv = analysis.intervals
    if iv is None or not len(iv):
        return []
    keys = list(dict.fromkeys(zip(iv["task"].astype(str), iv["scorer"].astype(str), iv["metric"].astype(str),
                                  strict=True)))
    table = analysis.metrics
    if table is not None and {"primary", "direction", "family"} <= set(table.columns):
        table = confirmatory_table(table, scorer_order)
    primary = primary_keys(keys, table, scorer_order)
    return [MetricChoice(t, s, m, (t, s, m) in primary) for t, s, m in keys]


def _row_flags(table: Table, runs: set[str], failed: set[str], best: list[Any], primary: set[tuple[str, str, str]],
               baselines: set[str], analysis: Analysis) -> list[tuple[str, ...]]:
    df = table.df
    flags: list[set[str]] = [set() for _ in range(len(df))]
    if "run" in df.columns:
        keys = [_run_key(str(v), runs) for v in df["run"]]
        for i, run in enumerate(keys):
            if run in failed:
                flags[i].add("failed")
            if run in baselines:
                flags[i].add("baseline")
        per_scorer = "scorer" in df.columns  # else only the best on each task's primary metric
        for i, run in enumerate(keys):
            for b in best:
                if run != str(b.run) or not (per_scorer or (b.task, b.scorer, b.metric) in primary):
                    continue
                same = all(str(df[c].iloc[i]) == v for c, v in
                           (("task", str(b.task)), ("scorer", str(b.scorer)),
                            ("epoch", fmt.epoch(b.epoch))) if c in df.columns)
                if same:
                    flags[i].add("best")
    if table.name == "comparisons" and len(analysis.comparisons) == len(df) \
            and "significant" in analysis.comparisons.columns:
        for i, sig in enumerate(analysis.comparisons["significant"]):
            if not pd.isna(sig) and bool(sig):
                flags[i].add("significant")
    if "significant" in df.columns:
        for i, v in enumerate(df["significant"]):
            if str(v).strip().lower() in ("true", "yes"):
                flags[i].add("significant")
    return [tuple(f for f in FLAG_ORDER if f in row) for row in flags]


def _tag_figures(doc: ReportDoc, analysis: Analysis) -> None:
    from analyze_experiment.report.plots import _select as sel

    slugs = sorted(((t.slug, t) for t in sel.targets(analysis)), key=lambda st: -len(st[0]))
    for f in _figures(doc.sections):
        if f.task is not None:
            continue
        for slug, t in slugs:
            if f.name.endswith(f"_{slug}"):
                f.task, f.scorer, f.metric = t.task, t.scorer, t.metric
                break


def annotate(doc: ReportDoc, exp: Experiment, analysis: Analysis) -> ReportDoc:
    """Fill the optional dashboard fields of ``doc`` (row flags and runs, figure metrics, run
    parameters, metric choices) from the experiment and its analysis; returns ``doc``."""
    runs_df = exp.runs
    runs = {str(r) for r in runs_df["run"]} if len(runs_df) else set()
    failed = {str(r) for r in analysis.failed_runs.get("run", [])}
    baselines = ({str(r) for r, t in zip(runs_df["run"], runs_df["type"], strict=True) if t != "fine-tuned"}
                 if len(runs_df) and "type" in runs_df.columns else set())
    best = primary_best(analysis.best, analysis.metrics)
    doc.metric_choices = metric_choices(analysis, [str(s) for s in exp.design.scorers])
    primary = {(c.task, c.scorer, c.metric) for c in doc.metric_choices if c.primary}
    for table in _tables(doc.sections):
        flags = _row_flags(table, runs, failed, best, primary, baselines, analysis)
        if any(flags):
            table.row_flags = flags
        if "run" in table.df.columns:
            table.row_runs = [_run_key(str(v), runs) for v in table.df["run"]]
    doc.run_params = {
        str(r["run"]): {p: fmt.value(r.get(p)) for p in exp.param_names}
        for r in runs_df.to_dict(orient="records")
    } if len(runs_df) and exp.param_names else {}
    for s in doc.sections:
        s.appendix = s.appendix or s.anchor in APPENDIX
    _tag_figures(doc, analysis)
    return doc
