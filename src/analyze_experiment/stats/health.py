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

from analyze_experiment.stats.candidates import Family
from analyze_experiment.tables import RunStatus

FAILED_STATUSES: tuple[RunStatus, ...] = ("diverged", "oom", "cuda_oom", "failed", "cancelled", "timeout")
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

STATUS_WORDS = {
    "diverged": "training diverged",
    "oom": "ran out of host memory",
    "cuda_oom": "ran out of GPU memory",
    "failed": "training failed",
    "cancelled": "was cancelled",
    "timeout": "hit the time limit",
}


def as_int(v: Any) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else int(f)


def progress(steps: Any, planned: Any) -> str | None:
    """``did not finish (171/16,000 steps)`` when fewer steps than planned were done."""
    s, p = as_int(steps), as_int(planned)
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
        steps = as_int(r.get("steps"))
        planned = as_int(r.get("planned_steps"))
        first = as_int(r.get("first_nonfinite_step")) if status == "diverged" else None
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
