"""The report's first section when any run failed (issue 11, stats/health.py).

It comes before the Overview because it changes how everything after it reads: a failed
run's evaluations stay in the tables (marked), but it never decides a best, a production
pick or an estimate unless ``--include-failed`` was given — which this section then says.
"""

from __future__ import annotations

import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.analysis import Analysis
from analyze_experiment.report.doc import Bullets, Paragraph, Section, Table


def failed_runs_table(analysis: Analysis) -> pd.DataFrame:
    """Run, status, first bad step, steps done / planned, evidence, file (formatted strings)."""
    fr = analysis.failed_runs
    if fr is None or fr.empty:
        return pd.DataFrame()
    rows = []
    for r in fr.to_dict(orient="records"):
        steps = fmt.integer(r.get("steps"))
        if not fmt.is_missing(r.get("planned_steps")):
            steps = f"{steps} / {fmt.integer(r.get('planned_steps'))}"
        rows.append({"run": r["run"], "status": r["status"], "first bad step": fmt.integer(r.get("step")),
                     "steps done / planned": steps, "evidence": r.get("evidence") or "—",
                     "file": r.get("file") or "—"})
    return pd.DataFrame(rows).fillna("—").astype(str)


def failed_section(analysis: Analysis) -> Section | None:
    """``## Failed Runs``: one sentence per failed run (rule ``failed_run``) and the table;
    None when every run's training succeeded (or is still running)."""
    table = failed_runs_table(analysis)
    if not len(table):
        return None
    n = len(table)
    if analysis.include_failed:
        lead = (f"{n} run{'s' if n != 1 else ''} failed during training. --include-failed was given: "
                "failed runs are included in the choice of best and production and in every estimate below, and every "
                "sentence naming one carries its mark.")
    else:
        lead = (f"{n} run{'s' if n != 1 else ''} failed during training. Their evaluations stay in the tables, "
                "marked \"failed\", but a failed run is never the best or the production pick and is left out of "
                "every estimate (effects, ANOVA, comparisons with the best, seeds, outliers, Pareto front); "
                "--include-failed puts failed runs back.")
    s = Section("Failed Runs", [Paragraph(lead)], anchor="failed-runs")
    sentences = [f.text for f in analysis.section("failed_runs")]
    if sentences:
        s.blocks.append(Bullets(sentences))
    s.blocks.append(Table(table, caption="Runs whose training failed", name="failed_runs"))
    return s


def failed_note(analysis: Analysis) -> Paragraph | None:
    """The first paragraph of Data Quality when runs failed: where they are listed."""
    fr = analysis.failed_runs
    if fr is None or fr.empty:
        return None
    n = len(fr)
    how = ("included in every estimate (--include-failed)" if analysis.include_failed
           else "left out of the best, the production pick and every estimate")
    runs = ", ".join(f"{r} ({st})" for r, st in zip(fr["run"], fr["status"], strict=True))
    return Paragraph(f"{n} run{'s' if n != 1 else ''} failed during training — {runs} — and "
                     f"{'are' if n != 1 else 'is'} {how}; evidence in Failed Runs, at the top of this report.")
