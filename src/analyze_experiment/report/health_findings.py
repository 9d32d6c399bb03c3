"""Failed runs in words: the sentences the report opens with when a run failed, and the
"best so far" sentence for a failed run that would otherwise rank first. The evidence (which
runs failed, how far they got, who would rank ahead of the best) is :mod:`analyze_experiment.stats.health`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Finding
from analyze_experiment.formatting import fmt_ci, fmt_value
from analyze_experiment.report.context import FindingContext
from analyze_experiment.stats.candidates import label
from analyze_experiment.stats.health import STATUS_WORDS, as_int, marks, progress


def failed_marks(a: Analysis) -> dict[str, str]:
    """Every failed run -> its mark in the tables (``failed: timeout; …``)."""
    return marks(a.failed_runs)


def _cand(ctx: FindingContext, run: str, epoch: Any) -> str:
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    return label((str(run), ep if str(run) in ctx.multi_epoch else None))


def _on(ctx: FindingContext, task: str, scorer: str) -> str:
    return f"{task} ({scorer})" if task in ctx.multi_scorer else str(task)


def rule_failed_runs(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``failed_run``: one sentence per failed run — what happened, how far it got, the evidence
    line (for a diverged run it names the first non-finite step) and its file. Whether failed
    runs were excluded is said once, by the section (report/failed.py)."""
    out: list[Finding] = []
    fr = a.failed_runs
    if fr is None or fr.empty:
        return out
    for r in fr.to_dict(orient="records"):
        status = str(r["status"])
        text = f"{r['run']} {STATUS_WORDS.get(status, status)}"
        done = progress(r.get("steps"), r.get("planned_steps"))
        if done and status != "diverged":
            text += f" and {done}"
        evidence = r.get("evidence")
        if isinstance(evidence, str) and evidence:
            text += f": {evidence}"
        if isinstance(r.get("file"), str) and r.get("file"):
            text += f" ({r['file']})"
        out.append(Finding("failed_runs", text, "failed_run",
                           {k: r.get(k) for k in ("run", "status", "evidence", "file", "step", "steps",
                                                  "planned_steps")}))
    return out


def rule_best_so_far(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``best_so_far``: a failed run's candidate ranks above the best of the runs that did not
    fail. Named once per family (the highest-ranked such candidate), with its failure — and,
    for a run cut short, "did not finish (a/b steps)" — in the same sentence."""
    out: list[Finding] = []
    ahead = a.failed_ahead
    if ahead is None or ahead.empty or ctx.include_failed:
        return out
    ranked = {(b.task, b.scorer, b.metric) for b in a.best}  # the metrics the report ranks by
    ahead = ahead[[k in ranked for k in zip(ahead["task"], ahead["scorer"], ahead["metric"], strict=True)]]
    for (task, scorer, metric), g in ahead.groupby(["task", "scorer", "metric"], sort=True):
        r = g.iloc[0]  # ahead_of_best lists each family's candidates best first
        fr = a.failed_runs[a.failed_runs["run"] == r["run"]].iloc[0]
        status = str(fr["status"])
        done = progress(fr["steps"], fr["planned_steps"])
        if done and status != "diverged":
            head, why = "is the best so far", f"it {done} ({STATUS_WORDS.get(status, status)})"
        else:
            head, why = "would rank first", f"it {STATUS_WORDS.get(status, status)}"
            if status == "diverged" and as_int(fr["step"]) is not None:
                why = f"its training diverged (first non-finite loss at step {as_int(fr['step'])})"
        text = (f"On {_on(ctx, task, scorer)}, {_cand(ctx, r['run'], r['epoch'])} {head} with {metric} "
                f"{fmt_value(metric, r['value'])} ({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence)}), above "
                f"the best {_cand(ctx, r['best_run'], r['best_epoch'])} ({fmt_value(metric, r['best_value'])}), but "
                f"{why}, so it is neither the best nor a production candidate")
        out.append(Finding("best_performers", text, "best_so_far",
                           {"task": task, "scorer": scorer, "metric": metric, "run": r["run"],
                            "epoch": None if pd.isna(r["epoch"]) else float(r["epoch"]), "value": float(r["value"]),
                            "best_run": r["best_run"], "status": status, "steps": as_int(fr["steps"]),
                            "planned_steps": as_int(fr["planned_steps"])}))
    return out


def _names(fr: pd.DataFrame) -> str:
    items = [f"{r['run']} ({r['mark'] if isinstance(r.get('mark'), str) else 'failed: ' + str(r['status'])})"
             for r in fr.to_dict(orient="records")]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def rule_failed_key(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``failed_runs_excluded`` / ``failed_runs_included``: Key Findings open with the failed
    runs and what was done with them, so no later sentence is read without it."""
    fr = a.failed_runs
    if fr is None or fr.empty:
        return []
    n = len(fr)
    subject = f"{n} run{'s' if n != 1 else ''} failed during training: {_names(fr)}"
    if ctx.include_failed:
        return [Finding("key_findings", f"{subject}; --include-failed keeps {'them' if n != 1 else 'it'} in the choice "
                        "of best and production and in every estimate below", "failed_runs_included",
                        {"runs": [str(r) for r in fr["run"]]})]
    return [Finding("key_findings", f"{subject}; {'they are' if n != 1 else 'it is'} left out of the best, the "
                    "production pick and every estimate below (--include-failed puts failed runs back)",
                    "failed_runs_excluded", {"runs": [str(r) for r in fr["run"]]})]


def rule_rerun_failed(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``rerun_failed``: the failed runs' configurations have not been measured; name each with
    what stopped it (runs cut short: how far they got)."""
    fr = a.failed_runs
    if fr is None or fr.empty:
        return []
    parts = []
    for r in fr.to_dict(orient="records"):
        status = str(r["status"])
        done = progress(r.get("steps"), r.get("planned_steps"))
        if status in ("timeout", "cancelled") and done:
            parts.append(f"{r['run']} ({STATUS_WORDS[status]} and {done}: resume it from a saved checkpoint or give it "
                         "more time)")
        elif status == "diverged":
            step = as_int(r.get("step"))
            parts.append(f"{r['run']} (its loss went non-finite{f' at step {step}' if step is not None else ''}: "
                         "check its learning rate and precision, then re-run)")
        else:
            parts.append(f"{r['run']} ({STATUS_WORDS.get(status, status)}: see its evidence in Failed Runs)")
    text = ("Re-run the failed runs before drawing conclusions about their configurations, which this sweep did "
            "not measure: " + "; ".join(parts))
    return [Finding("next_steps", text, "rerun_failed", {"runs": [str(r) for r in fr["run"]]})]
