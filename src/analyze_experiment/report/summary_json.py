"""``summary.json``: the machine-readable contract (schema_version 2, docs/summary-schema.md).

Built from the tidy tables and the :class:`Analysis` only. Unknown values are ``null``,
never guessed: every NaN/inf becomes ``null`` on the way out.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment import __version__
from analyze_experiment.analysis import Analysis, Best
from analyze_experiment.experiment import Experiment
from analyze_experiment.ingest import validation as val
from analyze_experiment.report.story import story_summary

SCHEMA_VERSION = 2
"""2: each scorer's metric directions and primary metric (``scorers``), ``direction`` and
``primary`` on every best, ``best`` is a primary metric's, ``continuous`` (parse rates)."""


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf/NA -> None, numpy scalars -> Python, timestamps -> ISO strings."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, pd.Timestamp | _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, int | str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _epoch(value: Any) -> int | None:
    v = clean(value)
    return None if v is None else int(v)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [clean(r) for r in df.to_dict(orient="records")] if len(df) else []


def _same_epoch(a: Any, b: Any) -> bool:
    return _epoch(a) == _epoch(b)


def _at_epoch(frame: pd.DataFrame, epoch: Any) -> pd.DataFrame:
    """Rows of ``frame`` at ``epoch``. A boolean array, not a list: an empty list would
    select no *columns* and the next column lookup would fail (a run whose logs gave
    per-sample scores but no header metrics)."""
    return frame[np.array([_same_epoch(e, epoch) for e in frame["epoch"]], dtype=bool)]


def _run_evals(exp: Experiment, analysis: Analysis, run: str) -> list[dict[str, Any]]:
    scores = exp.eval_scores[exp.eval_scores["run"] == run]
    intervals = analysis.intervals[analysis.intervals["run"] == run] if len(analysis.intervals) else analysis.intervals
    keys: list[tuple[Any, Any, Any]] = []
    for frame in (scores, intervals):
        for t, e, s in frame[["task", "epoch", "scorer"]].itertuples(index=False):
            k = (t, _epoch(e), s)
            if k not in keys:
                keys.append(k)
    out = []
    for task, epoch, scorer in keys:
        sc = scores[(scores["task"] == task) & (scores["scorer"] == scorer)]
        sc = _at_epoch(sc, epoch)
        metrics: dict[str, dict[str, Any]] = {}
        log = None
        n = None
        for row in sc.itertuples(index=False):
            if row.metric == "stderr":
                continue
            metrics[str(row.metric)] = {"value": clean(row.value), "stderr": clean(row.stderr)}
            log = log or clean(row.log)
            n = n if n is not None else clean(row.n)
        stderr_rows = sc[sc["metric"] == "stderr"]
        if len(stderr_rows):
            # inspect's separate ``stderr`` metric is the standard error of the scorer's mean: it
            # belongs to that one metric, never to grouped or other metrics of the scorer
            owner = _stderr_owner(list(metrics))
            if owner is not None and metrics[owner]["stderr"] is None:
                metrics[owner]["stderr"] = clean(stderr_rows["value"].iloc[0])
        iv = intervals[(intervals["task"] == task) & (intervals["scorer"] == scorer)] if len(intervals) else intervals
        if len(iv):
            iv = _at_epoch(iv, epoch)
        for row in iv.itertuples(index=False):
            m = metrics.setdefault(str(row.metric), {"value": clean(row.value), "stderr": None})
            m.update(
                {
                    "stderr": clean(row.stderr) if clean(row.stderr) is not None else m.get("stderr"),
                    "ci_low": clean(row.ci_low),
                    "ci_high": clean(row.ci_high),
                    "ci_method": clean(row.method),
                }
            )
            n = clean(row.n) if clean(row.n) is not None else n
        for m in metrics.values():
            m.setdefault("ci_low", None)
            m.setdefault("ci_high", None)
        out.append(
            {
                "task": task,
                "epoch": epoch,
                "scorer": scorer,
                "n_samples": None if n is None else int(n),
                "metrics": metrics,
                "log": log,
            }
        )
    return out


_MEAN_METRICS = ("accuracy", "mean")


def _stderr_owner(names: list[str]) -> str | None:
    """The metric inspect's ``stderr`` metric belongs to: the scorer's one mean-type metric
    (``accuracy`` or ``mean``), or its only metric; None when that is ambiguous."""
    means = [n for n in names if n in _MEAN_METRICS]
    if len(means) == 1:
        return means[0]
    if len(names) == 1:
        return names[0]
    return None


def _claims(analysis: Analysis) -> list[dict[str, Any]]:
    """The claims registry: every sentence that asserts (or denies) a difference, an effect, a
    winner, an outlier, equivalence or non-inferiority, with the test behind it."""
    out = []
    for f in analysis.claims:
        c = f.claim
        assert c is not None
        out.append({"kind": c.kind, "text": f.text, "section": f.section, "rule": f.rule, "test": c.test,
                    "statistic": c.statistic, "p": c.p_value, "p_adjusted": c.p_adjusted, "family": c.family,
                    "correction": c.correction, "significant": c.significant})
    return out


def _int(value: Any) -> int | None:
    v = clean(value)
    return None if v is None else int(v)


def _training(row: dict[str, Any]) -> dict[str, Any]:
    verdict = row.get("convergence")
    return {
        "status": row.get("status") or ("missing" if row.get("type") == "fine-tuned" else None),
        "final_loss": row.get("final_loss"),
        "min_loss": row.get("min_loss"),
        "steps": _int(row.get("steps")),
        "planned_steps": _int(row.get("planned_steps")),
        "epochs": _int(row.get("epochs_done")),
        "planned_epochs": _int(row.get("planned_epochs")),
        "train_time_s": row.get("train_time_s"),
        "train_time_source": row.get("train_time_source"),
        "converged": None if verdict in (None, "too short to tell") else verdict == "converged",
        "convergence": verdict,
        "tokens_per_second_per_gpu": row.get("tokens_per_second_per_gpu"),
        "peak_memory_gib": row.get("peak_memory_gib"),
        "gpu_hours": row.get("gpu_hours"),
        "n_gpus": _int(row.get("n_gpus")),
        "evidence": {"line": row.get("status_evidence"), "file": row.get("status_file")},
        "log": row.get("training_log"),
        "validation": _validation(row),
    }


def _validation(row: dict[str, Any]) -> dict[str, Any] | None:
    """Validation during training (analyze_experiment.ingest.validation); None when the run logged none."""
    if not row.get("val_evaluations"):
        return None
    return {
        "evaluations": _int(row.get("val_evaluations")),
        "final_loss": row.get("val_loss_final"),
        "best_loss": row.get("val_loss_best"),
        "best_step": _int(row.get("val_loss_best_step")),
        "gap_to_training": row.get("val_train_gap"),
        "overfitting": row.get("overfitting"),
        "patience": val.OVERFIT_PATIENCE,
        "source": row.get("val_loss_source"),
    }


def _best(b: Best) -> dict[str, Any]:
    return clean(
        {
            "task": b.task,
            "scorer": b.scorer,
            "metric": b.metric,
            "run": b.run,
            "epoch": _epoch(b.epoch),
            "value": b.value,
            "ci_low": b.ci_low,
            "ci_high": b.ci_high,
            "clear_winner": b.clear_winner,
            "reason": b.reason,
            "tied_with": list(b.tied_with),
        }
    )


def _metric_info(metrics: pd.DataFrame, b: Best) -> dict[str, Any]:
    """``direction`` and ``primary`` of a best's metric (from the metrics table)."""
    if metrics is None or metrics.empty:
        return {"direction": "higher", "primary": True}
    g = metrics[(metrics["task"] == b.task) & (metrics["scorer"] == b.scorer) & (metrics["metric"] == b.metric)]
    if g.empty:
        return {"direction": "higher", "primary": True}
    return {"direction": str(g["direction"].iloc[0]), "primary": bool(g["primary"].iloc[0])}


def _scorers(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task × scorer: its kind, primary metric (and its direction), and every metric's
    direction with where it came from."""
    out: list[dict[str, Any]] = []
    if metrics is None or metrics.empty:
        return out
    for (task, scorer), g in metrics.groupby(["task", "scorer"], sort=True):
        prim = g[g["primary"].astype(bool)]
        out.append(clean({
            "task": str(task), "scorer": str(scorer), "kind": str(g["kind"].iloc[0]),
            "primary_metric": str(prim["metric"].iloc[0]) if len(prim) else None,
            "direction": str(prim["direction"].iloc[0]) if len(prim) else None,
            "metrics": {str(r["metric"]): {"direction": str(r["direction"]), "direction_source": str(r["direction_source"]),
                                           "primary": bool(r["primary"]), "compared": bool(r.get("family", False)),
                                           "note": r["note"] if isinstance(r["note"], str) else None}
                        for _, r in g.iterrows()},
        }))
    return out


def _primary(best: list[dict[str, Any]], tasks: list[str], scorers: list[str]) -> dict[str, Any] | None:
    """The headline ranking: the design's first task and scorer when it names them."""
    if not best:
        return None

    def rank(b: dict[str, Any]) -> tuple[int, int]:
        t = tasks.index(b["task"]) if b.get("task") in tasks else len(tasks)
        s = scorers.index(b["scorer"]) if b.get("scorer") in scorers else len(scorers)
        return (t, s)

    return min(best, key=rank)


def _failed_runs(analysis: Analysis) -> list[dict[str, Any]]:
    """Runs whose training failed (stats/health.py), each with ``excluded``: left out of best,
    production and every estimate (false with ``--include-failed``)."""
    fr = analysis.failed_runs
    if fr is None or fr.empty:
        return []
    return [{"run": r["run"], "status": r["status"], "evidence": r.get("evidence"), "file": r.get("file"),
             "step": _int(r.get("step")), "steps": _int(r.get("steps")), "planned_steps": _int(r.get("planned_steps")),
             "excluded": not analysis.include_failed}
            for r in (clean(x) for x in fr.to_dict(orient="records"))]


def build_summary(exp: Experiment, analysis: Analysis, *, command: str | None = None) -> dict[str, Any]:
    """The summary.json document (a plain dict, JSON-safe)."""
    d = exp.design
    runs = []
    for row in exp.runs.to_dict(orient="records"):
        row = clean(row)
        name = row["run"]
        runs.append(
            {
                "name": name,
                "type": row.get("type"),
                "params": {
                    p: exp.run_params.get(name, {}).get(p, row.get(p))
                    for p in exp.param_names
                    if exp.run_params.get(name, {}).get(p, row.get(p)) is not None
                },
                "in_design": row.get("in_design"),
                "dir": row.get("run_dir"),
                "training": _training(row) if row.get("type") == "fine-tuned" else None,
                "evals": _run_evals(exp, analysis, name),
            }
        )
    comparisons = _records(analysis.comparisons)
    for c in comparisons:
        c["epoch_a"] = _epoch(c.get("epoch_a"))
        c["epoch_b"] = _epoch(c.get("epoch_b"))
    best_all = [_best(b) | _metric_info(analysis.metrics, b) for b in analysis.best]
    doc = clean(
        {
            "schema_version": SCHEMA_VERSION,
            "experiment": {
                "name": d.name,
                "question": d.question,
                "hypothesis": d.hypothesis,
                "variables": d.variables,
                "design_document": d.source,
                "layout": exp.layout,
            },
            "runs": runs,
            "comparisons": comparisons,
            "best": _primary([b for b in best_all if b.get("primary", True)] or best_all, d.tasks, d.scorers),
            "best_by_task": best_all,
            "scorers": _scorers(analysis.metrics),
            "continuous": _records(analysis.continuous),
            "effects": _records(analysis.effects),
            "anova": _records(analysis.anova),
            "pareto": _records(analysis.pareto),
            "outliers": _records(analysis.outliers),
            "equivalence": _records(analysis.equivalence),
            "claims": _claims(analysis),
            "families": _records(analysis.families),
            "seeds": _records(analysis.seeds),
            "seed_comparisons": _records(analysis.seed_comparisons),
            "noninferiority": _records(analysis.noninferiority),
            "references": _records(analysis.references),
            "retrospective": {
                "sentences": [{"rule": f.rule, "text": f.text, "basis": f.data.get("basis", [])}
                              for f in analysis.section("retrospective")],
                "next_design": analysis.next_design,
            },
            "failed_runs": _failed_runs(analysis),
            "power": analysis.power,
            "confidence": analysis.confidence,
            **_facts(exp),
            **_configurations(analysis),
            "warnings": [
                {"file": w.file, "message": w.message, "severity": w.severity, "stage": w.stage}
                for w in exp.diagnostics.warnings
            ],
            "generated_by": {
                "tool": "analyze-experiment",
                "version": __version__,
                "command": command,
                "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            },
        }
    )
    doc.update(clean(scorer_summary(analysis)))
    doc.update(clean(story_summary(analysis)))
    return doc


def _table(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Rows of a scorer-kind table with epochs as 0-based integers (null for base models)."""
    rows = _records(df) if df is not None and len(df) else []
    for r in rows:
        for k in ("epoch", "epoch_a", "epoch_b"):
            if k in r:
                r[k] = _epoch(r[k])
    return rows


def scorer_summary(analysis: Analysis) -> dict[str, Any]:
    """The optional keys ``risk``, ``classification`` and ``subgroups`` (only when the sweep has
    such scorers or categories; docs/summary-schema.md)."""
    out: dict[str, Any] = {}
    risk = getattr(analysis, "risk", None)
    if risk is not None and len(risk):
        out["risk"] = {"candidates": _table(risk), "auc_tests": _table(getattr(analysis, "auc_tests", None))}
    cls = getattr(analysis, "classification", None)
    if cls is not None and len(cls):
        out["classification"] = _table(cls)
    sub = getattr(analysis, "subgroups", None)
    if sub is not None and len(sub):
        out["subgroups"] = {"levels": _table(sub), "tests": _table(getattr(analysis, "subgroup_tests", None))}
    return out


def _configurations(analysis: Analysis) -> dict[str, Any]:
    """Optional ``best_configurations``: with seed replicates, the best configuration of each
    task × scorer (mean and spread across seeds) — the unit "best" and "production" name."""
    keys = ("task", "scorer", "config", "runs", "epoch", "mean", "sd", "n_seeds", "ci_low", "ci_high",
            "clear_winner", "tied_with")
    rows = [{k: f.data.get(k) for k in keys} for f in analysis.findings if f.rule == "best_config"]
    for r in rows:
        r["epoch"] = _epoch(r["epoch"])
    return {"best_configurations": rows} if rows else {}


def _facts(exp: Experiment) -> dict[str, Any]:
    """Optional keys: the design's own facts and the evaluation matrix checked against the logs
    (present only when there is something to say; docs/summary-schema.md)."""
    out: dict[str, Any] = {}
    facts = getattr(exp, "facts", None)
    if facts is not None and len(facts):
        out["design_facts"] = [{k: r.get(k) for k in ("kind", "severity", "runs", "param", "message")}
                               for r in facts.to_dict("records")]
    pvf = getattr(exp, "planned_vs_found", None)
    if pvf is not None and len(pvf):
        out["planned_vs_found"] = [{"run": r["run"], "task": r["task"], "epoch": _epoch(r["epoch"]),
                                    "status": r["status"], "log": r["log"]} for r in pvf.to_dict("records")]
    return out


def dumps(summary: dict[str, Any]) -> str:
    """Serialise with strict JSON (no NaN)."""
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
