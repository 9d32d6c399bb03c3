"""Sentences about the metrics themselves: saturation and parse failures (rules of findings.py).

Both are descriptive (counts and values with their intervals), so they carry no claim; the
parse-rate comparison between runs is the ``parse_rate`` checkpoint family's exact McNemar test,
reported in the comparison table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Best, Finding
from analyze_experiment.formatting import fmt_value
from analyze_experiment.metrics import direction_text
from analyze_experiment.report.context import FindingContext
from analyze_experiment.stats.candidates import label


def metric_direction(metrics: pd.DataFrame, task: Any, scorer: Any, metric: Any) -> str:
    """The direction of one task × scorer × metric in the metrics table (default ``higher``)."""
    if metrics is None or metrics.empty or "direction" not in metrics.columns:
        return "higher"
    g = metrics[(metrics["task"].astype(str) == str(task)) & (metrics["scorer"].astype(str) == str(scorer))
                & (metrics["metric"].astype(str) == str(metric))]
    return str(g["direction"].iloc[0]) if len(g) else "higher"


def primary_best(best: list[Best], metrics: pd.DataFrame) -> list[Best]:
    """The bests of each scorer's primary metric (all of them when the table has no ``primary``)."""
    if metrics is None or metrics.empty or "primary" not in metrics.columns:
        return list(best)
    prim = {(str(t), str(s), str(m)) for t, s, m, p in
            zip(metrics["task"], metrics["scorer"], metrics["metric"], metrics["primary"], strict=True) if bool(p)}
    scorers = {(t, s) for t, s, _ in prim}
    return [b for b in best if (b.task, b.scorer, b.metric) in prim or (b.task, b.scorer) not in scorers]


def _on(ctx: FindingContext, task: str, scorer: str) -> str:
    return f"{task} ({scorer})" if task in ctx.multi_scorer else str(task)


def rule_saturated(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``saturated``: a rate at ≥ 95% (higher is better) or ≤ 5% (lower is better) for some
    candidates of a family: the scale has little room left, so differences there say little."""
    iv = a.intervals
    if iv.empty or "saturated" not in iv.columns:
        return []
    out = []
    primary = {(b.task, b.scorer, b.metric) for b in a.best}  # findings see each scorer's primary metric
    for (task, scorer, metric), g in iv.groupby(["task", "scorer", "metric"], sort=True):
        if (task, scorer, metric) not in primary:
            continue
        sat = g[g["saturated"].fillna(False).astype(bool)]
        if sat.empty:
            continue
        direction = str(sat["direction"].iloc[0]) if "direction" in sat.columns else "higher"
        edge = "≥ 95%" if direction == "higher" else "≤ 5%"
        names = [label((str(r), None if pd.isna(e) else float(e))) for r, e in zip(sat["run"], sat["epoch"],
                                                                                     strict=True)]
        vals = ", ".join(f"{n} {fmt_value(metric, v)}" for n, v in zip(names, sat["value"], strict=True))
        out.append(Finding("key_findings", f"On {_on(ctx, task, scorer)}, {metric} is saturated "
                           f"({direction_text(direction)}, {edge} of its scale) for {len(sat)} of {len(g)} "
                           f"candidates ({vals}): differences there say little; a harder eval set would separate "
                           "them.", "saturated",
                           {"task": task, "scorer": scorer, "metric": metric, "runs": names,
                            "values": [float(v) for v in sat["value"]], "direction": direction}))
    return out


def rule_parse_failures(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``parse_failures``: per continuous scorer, the candidates whose answers had no readable
    number (share > 5%), with the parse rate and its Wilson CI: left out of the MAE, never
    counted as zero error; the parse-rate difference is the exact McNemar test of the
    ``parse_rate`` family (comparison table)."""
    c = a.continuous
    if c is None or c.empty:
        return []
    out = []
    for (task, scorer), g in c.groupby(["task", "scorer"], sort=True):
        bad = g[g["n_unparsed"] / g["n"].clip(lower=1) > 0.05]
        if bad.empty:
            continue
        items = "; ".join(
            f"{label((str(r['run']), None if pd.isna(r['epoch']) else float(r['epoch'])))} {int(r['n_unparsed'])} of "
            f"{int(r['n'])} ({r['n_unparsed'] / r['n']:.1%}; parse rate {r['parse_rate']:.1%}, "
            f"{a.confidence:.0%} Wilson CI {r['parse_ci_low']:.1%} to {r['parse_ci_high']:.1%})"
            for _, r in bad.iterrows())
        out.append(Finding("key_findings", f"On {_on(ctx, task, scorer)}, answers without a readable number "
                           f"(parse failures): {items}. They are left out of the MAE, not counted as zero error, "
                           "so a run is never ranked better for answers it failed to give; its MAE covers only the "
                           "answers it parsed.", "parse_failures",
                           {"task": task, "scorer": scorer, "runs": [str(r) for r in bad["run"]],
                            "n_unparsed": [int(x) for x in bad["n_unparsed"]],
                            "parse_rate": [float(x) for x in bad["parse_rate"]]}))
    return out


def continuous_report_table(a: Analysis) -> pd.DataFrame:
    """The report's continuous-scorer table (formatted strings), one row per candidate."""
    c = a.continuous
    if c is None or c.empty:
        return pd.DataFrame()

    def num(v: Any) -> str:
        return "—" if v is None or pd.isna(v) else f"{float(v):.4g}"

    rows = []
    for _, r in c.iterrows():
        rows.append({
            "run": r["run"], "task": r["task"], "epoch": "—" if pd.isna(r["epoch"]) else str(int(r["epoch"])),
            "scorer": r["scorer"], "parsed": f"{int(r['n_parsed'])} / {int(r['n'])}",
            "parse rate [CI]": f"{r['parse_rate']:.1%} [{r['parse_ci_low']:.1%}, {r['parse_ci_high']:.1%}]",
            "MAE (lower is better)": num(r["mae"]), "RMSE (lower is better)": num(r["rmse"]),
            "R² (higher is better)": num(r["r_squared"]),
            "header MAE / RMSE / R²": f"{num(r['header_mae'])} / {num(r['header_rmse'])} / {num(r['header_r_squared'])}",
            "agrees with header": "yes" if bool(r["header_agrees"]) else "NO",
        })
    return pd.DataFrame(rows)
