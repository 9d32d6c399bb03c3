"""Run health: a run whose training failed never decides anything (issue 11).

A checkpoint of a run whose loss went NaN is garbage; a run cut by the time limit at 171 of
16,000 planned steps is not the configuration the design asked about. Both may still have
been evaluated, and either may even score best. So a *failed run* — training ``diverged``,
ran out of memory (``oom``/``cuda_oom``), ``failed``, was ``cancelled`` or hit the time
limit (``timeout``) — is:

* listed first in the report and in the terminal, with its status and the evidence (the
  line that decided it, and the first bad step);
* never the best or the production pick, and left out of every estimate (effects, ANOVA,
  diminishing returns, comparisons with the best, seed statistics, outliers, Pareto front):
  its candidates are dropped from the families before anything is computed;
* still in the tables, marked (``failed: timeout``). When one of its candidates would rank
  above the best it is named as "best so far", with how far it got in the same sentence.

``--include-failed`` (:attr:`Options.include_failed`) keeps failed runs in; the report then
says so and every sentence naming one carries its mark.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Finding
from analyze_experiment.formatting import fmt_ci, fmt_value
from analyze_experiment.stats.candidates import Family, label

FAILED_STATUSES = ("diverged", "oom", "cuda_oom", "failed", "cancelled", "timeout")
"""Training statuses (tables.RUN_STATUSES) that make a run a failed run. ``running`` and
``missing`` are not failures: a run still going, or one without training output."""

FAILED_RUNS = ["run", "status", "evidence", "file", "step", "steps", "planned_steps", "mark"]
"""Columns of ``Analysis.failed_runs``: ``step`` is the first bad step (the first non-finite
loss of a diverged run; else the last step reached), ``steps`` the last step reached,
``planned_steps`` what the training config asked for, ``mark`` the short label tables and
sentences carry (``failed: timeout; did not finish (171/16,000 steps)``)."""

AHEAD = ["task", "scorer", "metric", "run", "epoch", "value", "ci_low", "ci_high", "best_run", "best_epoch",
         "best_value"]
"""Columns of :func:`ahead_of_best`: failed candidates that would rank above the best."""

_WHAT = {
    "diverged": "training diverged",
    "oom": "ran out of host memory",
    "cuda_oom": "ran out of GPU memory",
    "failed": "training failed",
    "cancelled": "was cancelled",
    "timeout": "hit the time limit",
}


def _int(v: Any) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else int(f)


def progress(steps: Any, planned: Any) -> str | None:
    """``did not finish (171/16,000 steps)`` when fewer steps than planned were done."""
    s, p = _int(steps), _int(planned)
    if p is None or p <= 0 or (s is not None and s >= p):
        return None
    return f"did not finish ({s or 0:,}/{p:,} steps)"


def _mark(status: str, step: int | None, steps: int | None, planned: int | None) -> str:
    parts = ["failed" if status == "failed" else f"failed: {status}"]
    if status == "diverged" and step is not None:
        parts.append(f"loss not finite from step {step}")
    done = progress(steps, planned)
    if done and status != "diverged":
        parts.append(done)
    return "; ".join(parts)


def failed_runs(runs: pd.DataFrame | None) -> pd.DataFrame:
    """One row per fine-tuned run whose training status is a failure (:data:`FAILED_STATUSES`)."""
    if runs is None or runs.empty or "status" not in runs.columns:
        return pd.DataFrame(columns=FAILED_RUNS)
    rows = []
    for r in runs.drop_duplicates("run", keep="last").to_dict(orient="records"):
        status = r.get("status")
        if status not in FAILED_STATUSES:
            continue
        steps = _int(r.get("steps"))
        planned = _int(r.get("planned_steps"))
        first = _int(r.get("first_nonfinite_step")) if status == "diverged" else None
        step = first if first is not None else steps
        rows.append({"run": str(r["run"]), "status": status, "evidence": r.get("status_evidence"),
                     "file": r.get("status_file"), "step": step, "steps": steps, "planned_steps": planned,
                     "mark": _mark(str(status), step, steps, planned)})
    return pd.DataFrame(rows, columns=FAILED_RUNS)


def marks(failed: pd.DataFrame | None) -> dict[str, str]:
    """Run -> its mark (empty when no run failed)."""
    if failed is None or failed.empty or "run" not in failed.columns:
        return {}
    if "mark" not in failed.columns:  # a table built by hand: the status alone
        status = failed["status"] if "status" in failed.columns else pd.Series("failed", index=failed.index)
        return {str(r): "failed" if st in (None, "failed") else f"failed: {st}"
                for r, st in zip(failed["run"], status, strict=True)}
    return {str(r): str(m) for r, m in zip(failed["run"], failed["mark"], strict=True)}


def without(families: list[Family], runs: set[str]) -> list[Family]:
    """The families with every candidate of ``runs`` removed (families left empty are dropped)."""
    if not runs:
        return list(families)
    out = []
    for f in families:
        g = replace(f, scores={k: s for k, s in f.scores.items() if k[0] not in runs},
                    from_log={k: d for k, d in f.from_log.items() if k[0] not in runs})
        if g.candidates():
            out.append(g)
    return out


def ahead_of_best(families: list[Family], intervals: pd.DataFrame, best: list[Any], failed: set[str]) -> pd.DataFrame:
    """Candidates of failed runs that rank above their family's best (the best of the runs that
    did not fail): the "best so far" sentences read this."""
    rows: list[dict[str, Any]] = []
    if not failed or intervals.empty:
        return pd.DataFrame(rows, columns=AHEAD)
    direction = {(f.task, f.scorer, f.metric): f.direction for f in families}
    for b in best:
        sign = {"higher": 1.0, "lower": -1.0}.get(direction.get((b.task, b.scorer, b.metric), "higher"))
        if sign is None:
            continue
        iv = intervals[(intervals["task"] == b.task) & (intervals["scorer"] == b.scorer)
                       & (intervals["metric"] == b.metric) & intervals["run"].astype(str).isin(failed)]
        for r in iv.itertuples(index=False):
            if pd.notna(r.value) and sign * float(r.value) > sign * float(b.value):
                rows.append({"task": b.task, "scorer": b.scorer, "metric": b.metric, "run": str(r.run),
                             "epoch": r.epoch, "value": float(r.value), "ci_low": r.ci_low, "ci_high": r.ci_high,
                             "best_run": b.run, "best_epoch": b.epoch, "best_value": b.value,
                             "_rank": sign * float(r.value)})
    df = pd.DataFrame(rows, columns=[*AHEAD, "_rank"])
    return df.sort_values(["task", "scorer", "metric", "_rank"], ascending=[True, True, True, False],
                          kind="stable").drop(columns="_rank").reset_index(drop=True)


# --- sentences (appended to stats.findings.RULES) -------------------------------------------


def context(a: Analysis, include_failed: bool) -> dict[str, Any]:
    """What the findings rules need: ``failed`` (runs kept out of best/production),
    ``failed_marks`` (run -> mark, every failed run) and ``include_failed``."""
    m = marks(a.failed_runs)
    return {"failed": set() if include_failed else set(m), "failed_marks": m, "include_failed": include_failed}


def _cand(ctx: dict[str, Any], run: str, epoch: Any) -> str:
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    return label((str(run), ep if str(run) in ctx.get("multi_epoch", set()) else None))


def _on(ctx: dict[str, Any], task: str, scorer: str) -> str:
    return f"{task} ({scorer})" if task in ctx.get("multi_scorer", set()) else str(task)


def rule_failed_runs(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``failed_run``: one sentence per failed run — what happened, how far it got, the evidence
    line (for a diverged run it names the first non-finite step) and its file. Whether failed
    runs were excluded is said once, by the section (report/failed.py)."""
    out: list[Finding] = []
    fr = a.failed_runs
    if fr is None or fr.empty:
        return out
    for r in fr.to_dict(orient="records"):
        status = str(r["status"])
        text = f"{r['run']} {_WHAT.get(status, status)}"
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


def rule_best_so_far(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``best_so_far``: a failed run's candidate ranks above the best of the runs that did not
    fail. Named once per family (the highest-ranked such candidate), with its failure — and,
    for a run cut short, "did not finish (a/b steps)" — in the same sentence."""
    out: list[Finding] = []
    ahead = a.failed_ahead
    if ahead is None or ahead.empty or ctx.get("include_failed"):
        return out
    ranked = {(b.task, b.scorer, b.metric) for b in a.best}  # the metrics the report ranks by
    ahead = ahead[[k in ranked for k in zip(ahead["task"], ahead["scorer"], ahead["metric"], strict=True)]]
    for (task, scorer, metric), g in ahead.groupby(["task", "scorer", "metric"], sort=True):
        r = g.iloc[0]  # ahead_of_best lists each family's candidates best first
        fr = a.failed_runs[a.failed_runs["run"] == r["run"]].iloc[0]
        status = str(fr["status"])
        done = progress(fr["steps"], fr["planned_steps"])
        if done and status != "diverged":
            head, why = "is the best so far", f"it {done} ({_WHAT.get(status, status)})"
        else:
            head, why = "would rank first", f"it {_WHAT.get(status, status)}"
            if status == "diverged" and _int(fr["step"]) is not None:
                why = f"its training diverged (first non-finite loss at step {_int(fr['step'])})"
        text = (f"On {_on(ctx, task, scorer)}, {_cand(ctx, r['run'], r['epoch'])} {head} with {metric} "
                f"{fmt_value(metric, r['value'])} ({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence)}), above "
                f"the best {_cand(ctx, r['best_run'], r['best_epoch'])} ({fmt_value(metric, r['best_value'])}), but "
                f"{why}, so it is neither the best nor a production candidate")
        out.append(Finding("best_performers", text, "best_so_far",
                           {"task": task, "scorer": scorer, "metric": metric, "run": r["run"],
                            "epoch": None if pd.isna(r["epoch"]) else float(r["epoch"]), "value": float(r["value"]),
                            "best_run": r["best_run"], "status": status, "steps": _int(fr["steps"]),
                            "planned_steps": _int(fr["planned_steps"])}))
    return out


def _names(fr: pd.DataFrame) -> str:
    items = [f"{r['run']} ({r['mark'] if isinstance(r.get('mark'), str) else 'failed: ' + str(r['status'])})"
             for r in fr.to_dict(orient="records")]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def rule_failed_key(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``failed_runs_excluded`` / ``failed_runs_included``: Key Findings open with the failed
    runs and what was done with them, so no later sentence is read without it."""
    fr = a.failed_runs
    if fr is None or fr.empty:
        return []
    n = len(fr)
    subject = f"{n} run{'s' if n != 1 else ''} failed during training: {_names(fr)}"
    if ctx.get("include_failed"):
        return [Finding("key_findings", f"{subject}; --include-failed keeps {'them' if n != 1 else 'it'} in the choice "
                        "of best and production and in every estimate below", "failed_runs_included",
                        {"runs": [str(r) for r in fr["run"]]})]
    return [Finding("key_findings", f"{subject}; {'they are' if n != 1 else 'it is'} left out of the best, the "
                    "production pick and every estimate below (--include-failed puts failed runs back)",
                    "failed_runs_excluded", {"runs": [str(r) for r in fr["run"]]})]


def rule_rerun_failed(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
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
            parts.append(f"{r['run']} ({_WHAT[status]} and {done}: resume it from a saved checkpoint or give it "
                         "more time)")
        elif status == "diverged":
            step = _int(r.get("step"))
            parts.append(f"{r['run']} (its loss went non-finite{f' at step {step}' if step is not None else ''}: "
                         "check its learning rate and precision, then re-run)")
        else:
            parts.append(f"{r['run']} ({_WHAT.get(status, status)}: see its evidence in Failed Runs)")
    text = ("Re-run the failed runs before drawing conclusions about their configurations, which this sweep did "
            "not measure: " + "; ".join(parts))
    return [Finding("next_steps", text, "rerun_failed", {"runs": [str(r) for r in fr["run"]]})]
