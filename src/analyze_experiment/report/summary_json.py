"""``summary.json``: the machine-readable contract (schema_version 2, docs/summary-schema.md).

Built from the tidy tables and the :class:`Analysis` only, into the pydantic models of
:mod:`.summary_model` (which also generate the JSON Schema). Unknown values are ``null``,
never guessed: the models' serialisers write every NaN/inf as ``null``.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment import __version__
from analyze_experiment.analysis import Analysis
from analyze_experiment.analysis import Best as BestResult
from analyze_experiment.experiment import Experiment
from analyze_experiment.ingest import validation as val
from analyze_experiment.report import summary_model as sm
from analyze_experiment.report.summary_model import SCHEMA_VERSION, rows

__all__ = ["SCHEMA_VERSION", "build_summary", "dumps", "scorer_summary", "summary_model"]


def _epoch(value: Any) -> int | None:
    """A 0-based epoch as an int (None for a base/control model)."""
    return None if value is None or pd.isna(value) else int(value)


def _value(value: Any) -> Any:
    """A cell without its NA (the models do the rest: numpy -> Python, NaN -> null)."""
    return None if value is None or (not isinstance(value, list | tuple | np.ndarray) and pd.isna(value)) else value


def _same_epoch(a: Any, b: Any) -> bool:
    return _epoch(a) == _epoch(b)


def _rows_by_run(frame: pd.DataFrame) -> dict[Any, list[Any]]:
    """The rows of ``frame`` (as ``itertuples`` gives them) grouped by run, in table order:
    one pass over the table, so that each run's evaluations are found without filtering the
    whole table again (filtering per run made the summary O(runs x rows))."""
    out: dict[Any, list[Any]] = {}
    if frame is None or not len(frame):
        return out
    for row in frame.itertuples(index=False):
        out.setdefault(row.run, []).append(row)
    return out


def _run_evals(exp: Experiment, analysis: Analysis, run: str) -> list[sm.Eval]:
    """One run's evaluations (the tables grouped for this run alone; see :func:`_evals`)."""
    return _evals(_rows_by_run(exp.eval_scores).get(run, []), _rows_by_run(analysis.intervals).get(run, []))


def _evals(scores: list[Any], intervals: list[Any]) -> list[sm.Eval]:
    """A run's evaluations from its rows of eval_scores and of the intervals: one entry per
    (task, epoch, scorer), header metrics first, each metric with its interval."""
    keys: list[tuple[Any, Any, Any]] = []
    for rows_ in (scores, intervals):
        for r in rows_:
            k = (r.task, _epoch(r.epoch), r.scorer)
            if k not in keys:
                keys.append(k)
    out = []
    for task, epoch, scorer in keys:
        sc = [r for r in scores if r.task == task and r.scorer == scorer and _same_epoch(r.epoch, epoch)]
        metrics: dict[str, dict[str, Any]] = {}
        log = None
        n = None
        for row in sc:
            if row.metric == "stderr":
                continue
            metrics[str(row.metric)] = {"value": _value(row.value), "stderr": _value(row.stderr)}
            log = log or _value(row.log)
            n = n if n is not None else _value(row.n)
        stderr_rows = [r for r in sc if r.metric == "stderr"]
        if stderr_rows:
            # inspect's separate ``stderr`` metric is the standard error of the scorer's mean: it
            # belongs to that one metric, never to grouped or other metrics of the scorer
            owner = _stderr_owner(list(metrics))
            if owner is not None and metrics[owner]["stderr"] is None:
                metrics[owner]["stderr"] = _value(stderr_rows[0].value)
        iv = [r for r in intervals if r.task == task and r.scorer == scorer and _same_epoch(r.epoch, epoch)]
        for row in iv:
            m = metrics.setdefault(str(row.metric), {"value": _value(row.value), "stderr": None})
            m.update(
                {
                    "stderr": _value(row.stderr) if _value(row.stderr) is not None else m.get("stderr"),
                    "ci_low": _value(row.ci_low),
                    "ci_high": _value(row.ci_high),
                    "ci_method": _value(row.method),
                }
            )
            n = _value(row.n) if _value(row.n) is not None else n
        for m in metrics.values():
            m.setdefault("ci_low", None)
            m.setdefault("ci_high", None)
        out.append(sm.Eval(task=task, epoch=epoch, scorer=scorer, n_samples=None if n is None else int(n),
                           metrics={k: sm.MetricValue(**v) for k, v in metrics.items()}, log=log))
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


def _claims(analysis: Analysis) -> list[sm.Claim]:
    """The claims registry: every sentence that asserts (or denies) a difference, an effect, a
    winner, an outlier, equivalence or non-inferiority, with the test behind it."""
    out = []
    for f in analysis.claims:
        c = f.claim
        assert c is not None
        out.append(sm.Claim(kind=c.kind, text=f.text, section=f.section, rule=f.rule, test=c.test,
                            statistic=c.statistic, p=c.p_value, p_adjusted=c.p_adjusted, family=c.family,
                            correction=c.correction, significant=c.significant))
    return out


def _training(row: dict[str, Any]) -> sm.Training:
    verdict = row.get("convergence")
    return sm.Training(
        status=row.get("status") or ("missing" if row.get("type") == "fine-tuned" else None),
        final_loss=row.get("final_loss"),
        min_loss=row.get("min_loss"),
        steps=row.get("steps"),
        planned_steps=row.get("planned_steps"),
        epochs=row.get("epochs_done"),
        planned_epochs=row.get("planned_epochs"),
        train_time_s=row.get("train_time_s"),
        train_time_source=row.get("train_time_source"),
        converged=None if verdict in (None, "too short to tell") else verdict == "converged",
        convergence=verdict,
        tokens_per_second_per_gpu=row.get("tokens_per_second_per_gpu"),
        peak_memory_gib=row.get("peak_memory_gib"),
        gpu_hours=row.get("gpu_hours"),
        n_gpus=row.get("n_gpus"),
        evidence=sm.Evidence(line=row.get("status_evidence"), file=row.get("status_file")),
        log=row.get("training_log"),
        validation=_validation(row),
    )


def _validation(row: dict[str, Any]) -> sm.Validation | None:
    """Validation during training (analyze_experiment.ingest.validation); None when the run logged none."""
    if not row.get("val_evaluations"):
        return None
    return sm.Validation(
        evaluations=row.get("val_evaluations"),
        final_loss=row.get("val_loss_final"),
        best_loss=row.get("val_loss_best"),
        best_step=row.get("val_loss_best_step"),
        gap_to_training=row.get("val_train_gap"),
        overfitting=row.get("overfitting"),
        patience=val.OVERFIT_PATIENCE,
        source=row.get("val_loss_source"),
    )


def _best(b: BestResult, metrics: pd.DataFrame | None) -> sm.Best:
    """A best candidate with its metric's ``direction`` and ``primary`` (from the metrics table)."""
    return sm.Best(task=b.task, scorer=b.scorer, metric=b.metric, run=b.run, epoch=b.epoch, value=b.value,
                   ci_low=b.ci_low, ci_high=b.ci_high, clear_winner=b.clear_winner, reason=b.reason,
                   tied_with=list(b.tied_with), **_metric_info(metrics, b))


def _metric_info(metrics: pd.DataFrame | None, b: BestResult) -> dict[str, Any]:
    """``direction`` and ``primary`` of a best's metric (from the metrics table)."""
    if metrics is None or metrics.empty:
        return {"direction": "higher", "primary": True}
    g = metrics[(metrics["task"] == b.task) & (metrics["scorer"] == b.scorer) & (metrics["metric"] == b.metric)]
    if g.empty:
        return {"direction": "higher", "primary": True}
    return {"direction": str(g["direction"].iloc[0]), "primary": bool(g["primary"].iloc[0])}


def _scorers(metrics: pd.DataFrame | None) -> list[sm.Scorer]:
    """Per task × scorer: its kind, primary metric (and its direction), and every metric's
    direction with where it came from."""
    out: list[sm.Scorer] = []
    if metrics is None or metrics.empty:
        return out
    for (task, scorer), g in metrics.groupby(["task", "scorer"], sort=True):
        prim = g[g["primary"].astype(bool)]
        out.append(sm.Scorer(
            task=str(task), scorer=str(scorer), kind=str(g["kind"].iloc[0]),
            primary_metric=str(prim["metric"].iloc[0]) if len(prim) else None,
            direction=str(prim["direction"].iloc[0]) if len(prim) else None,
            metrics={str(r["metric"]): sm.ScorerMetric(direction=str(r["direction"]),
                                                       direction_source=str(r["direction_source"]),
                                                       primary=bool(r["primary"]),
                                                       compared=bool(r.get("family", False)),
                                                       note=r["note"] if isinstance(r["note"], str) else None)
                     for _, r in g.iterrows()},
        ))
    return out


def _primary(best: list[sm.Best], tasks: list[str], scorers: list[str]) -> sm.Best | None:
    """The headline ranking: the design's first task and scorer when it names them."""
    if not best:
        return None

    def rank(b: sm.Best) -> tuple[int, int]:
        t = tasks.index(b.task) if b.task in tasks else len(tasks)
        s = scorers.index(b.scorer) if b.scorer in scorers else len(scorers)
        return (t, s)

    return min(best, key=rank)


def _failed_runs(analysis: Analysis) -> list[sm.FailedRun]:
    """Runs whose training failed (stats/health.py), each with ``excluded``: left out of best,
    production and every estimate (false with ``--include-failed``)."""
    fr = analysis.failed_runs
    if fr is None or fr.empty:
        return []
    return [sm.FailedRun(run=r["run"], status=r["status"], evidence=r.get("evidence"), file=r.get("file"),
                         step=r.get("step"), steps=r.get("steps"), planned_steps=r.get("planned_steps"),
                         excluded=not analysis.include_failed)
            for r in fr.to_dict(orient="records")]


def _run(exp: Experiment, row: dict[str, Any], scores: list[Any], intervals: list[Any]) -> sm.Run:
    row = {k: _value(v) for k, v in row.items()}
    name = row["run"]
    given = exp.run_params.get(name, {})
    return sm.Run(
        name=name,
        type=row.get("type"),
        params={p: given.get(p, row.get(p)) for p in exp.param_names if given.get(p, row.get(p)) is not None},
        in_design=row.get("in_design"),
        dir=row.get("run_dir"),
        training=_training(row) if row.get("type") == "fine-tuned" else None,
        evals=_evals(scores, intervals),
    )


def _runs(exp: Experiment, analysis: Analysis) -> list[sm.Run]:
    """Every run with its training and evaluations; the score and interval tables are grouped
    by run once."""
    scores, intervals = _rows_by_run(exp.eval_scores), _rows_by_run(analysis.intervals)
    return [_run(exp, row, scores.get(row["run"], []), intervals.get(row["run"], []))
            for row in exp.runs.to_dict(orient="records")]


def summary_model(exp: Experiment, analysis: Analysis, *, command: str | None = None) -> sm.Summary:
    """The summary.json document as its model."""
    d = exp.design
    best_all = [_best(b, analysis.metrics) for b in analysis.best]
    return sm.Summary(
        schema_version=SCHEMA_VERSION,
        experiment=sm.ExperimentInfo(name=d.name, question=d.question, hypothesis=d.hypothesis,
                                     variables=d.variables, design_document=d.source, layout=exp.layout),
        runs=_runs(exp, analysis),
        comparisons=rows(sm.Comparison, analysis.comparisons),
        best=_primary([b for b in best_all if b.primary] or best_all, d.tasks, d.scorers),
        best_by_task=best_all,
        scorers=_scorers(analysis.metrics),
        continuous=rows(sm.Continuous, analysis.continuous),
        effects=rows(sm.Row, analysis.effects),
        anova=rows(sm.Row, analysis.anova),
        pareto=rows(sm.Row, analysis.pareto),
        outliers=rows(sm.Row, analysis.outliers),
        equivalence=rows(sm.Row, analysis.equivalence),
        claims=_claims(analysis),
        families=rows(sm.Family, analysis.families),
        seeds=rows(sm.Row, analysis.seeds),
        seed_comparisons=rows(sm.Row, analysis.seed_comparisons),
        noninferiority=rows(sm.Row, analysis.noninferiority),
        references=rows(sm.Row, analysis.references),
        retrospective=sm.Retrospective(
            sentences=[sm.RetroSentence(rule=f.rule, text=f.text, basis=f.data.get("basis", []))
                       for f in analysis.section("retrospective")],
            next_design=analysis.next_design,
        ),
        failed_runs=_failed_runs(analysis),
        power=[sm.Row.model_validate(p) for p in analysis.power],
        confidence=analysis.confidence,
        **_facts(exp),
        **_configurations(analysis),
        warnings=[sm.Warning_(file=w.file, message=w.message, severity=w.severity, stage=w.stage)
                  for w in exp.diagnostics.warnings],
        generated_by=sm.GeneratedBy(tool="analyze-experiment", version=__version__, command=command,
                                    created=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()),
        **scorer_summary(analysis),
        **_story(analysis),
    )


def _story(analysis: Analysis) -> dict[str, Any]:
    """Optional ``bottom_line`` and ``hypotheses`` (report/story.py; docs/summary-schema.md)."""
    from analyze_experiment.report.story import story_summary

    found = story_summary(analysis)
    out: dict[str, Any] = {}
    if "bottom_line" in found:
        out["bottom_line"] = [sm.BottomLineItem.model_validate(d) for d in found["bottom_line"]]
    if "hypotheses" in found:
        out["hypotheses"] = [sm.HypothesisVerdict.model_validate(d) for d in found["hypotheses"]]
    return out


def build_summary(exp: Experiment, analysis: Analysis, *, command: str | None = None) -> dict[str, Any]:
    """The summary.json document as a plain JSON-safe dict (the model's serialisation)."""
    return summary_model(exp, analysis, command=command).model_dump(mode="json")


def scorer_summary(analysis: Analysis) -> dict[str, Any]:
    """The optional keys ``risk``, ``classification`` and ``subgroups`` (only when the sweep has
    such scorers or categories; docs/summary-schema.md)."""
    out: dict[str, Any] = {}
    risk = getattr(analysis, "risk", None)
    if risk is not None and len(risk):
        out["risk"] = sm.Risk(candidates=rows(sm.RiskCandidate, risk),
                              auc_tests=rows(sm.AucTest, getattr(analysis, "auc_tests", None)))
    cls = getattr(analysis, "classification", None)
    if cls is not None and len(cls):
        out["classification"] = rows(sm.Classification, cls)
    sub = getattr(analysis, "subgroups", None)
    if sub is not None and len(sub):
        out["subgroups"] = sm.Subgroups(levels=rows(sm.SubgroupLevel, sub),
                                        tests=rows(sm.SubgroupTest, getattr(analysis, "subgroup_tests", None)))
    return out


def _configurations(analysis: Analysis) -> dict[str, Any]:
    """Optional ``best_configurations``: with seed replicates, the best configuration of each
    task × scorer (mean and spread across seeds) — the unit "best" and "production" name."""
    keys = ("task", "scorer", "config", "runs", "epoch", "mean", "sd", "n_seeds", "ci_low", "ci_high",
            "clear_winner", "tied_with")
    found = [sm.BestConfiguration(**{k: f.data.get(k) for k in keys})
             for f in analysis.findings if f.rule == "best_config"]
    return {"best_configurations": found} if found else {}


def _facts(exp: Experiment) -> dict[str, Any]:
    """Optional keys: the design's own facts and the evaluation matrix checked against the logs
    (present only when there is something to say; docs/summary-schema.md)."""
    out: dict[str, Any] = {}
    facts = getattr(exp, "facts", None)
    if facts is not None and len(facts):
        out["design_facts"] = [sm.DesignFact(**{k: r.get(k) for k in ("kind", "severity", "runs", "param", "message")})
                               for r in facts.to_dict("records")]
    pvf = getattr(exp, "planned_vs_found", None)
    if pvf is not None and len(pvf):
        out["planned_vs_found"] = [sm.PlannedVsFound(run=r["run"], task=r["task"], epoch=r["epoch"],
                                                     status=r["status"], log=r["log"])
                                   for r in pvf.to_dict("records")]
    return out


def dumps(summary: dict[str, Any] | sm.Summary) -> str:
    """Serialise with strict JSON (no NaN): the model through its serialisers, or a document
    already serialised (``build_summary``, or read back from an unchanged report)."""
    if isinstance(summary, sm.Summary):
        return sm.dumps(summary)
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
