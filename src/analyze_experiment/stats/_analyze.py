"""The statistics stage: :func:`analyze` builds an :class:`Analysis` from an Experiment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from analyze_experiment.analysis import COMPARISONS, EQUIVALENCE, INTERVALS, Analysis
from analyze_experiment.model import Experiment, Options
from analyze_experiment.stats.candidates import build_families
from analyze_experiment.stats.comparisons import family_comparisons, family_intervals
from analyze_experiment.stats.cost import pareto_table
from analyze_experiment.stats.effects import anova, diminishing_returns, main_effects
from analyze_experiment.stats.findings import build_findings
from analyze_experiment.stats.outliers import group_outliers, loss_curve_outliers, suspicious_evals
from analyze_experiment.stats.seeds import config_labels, seed_aware_best, seed_tables, seed_variable

T = TypeVar("T")


def baseline_runs(experiment: Experiment, options: Options) -> list[str]:
    """``options.baselines``, else the runs of type ``control`` (runs table, then design)."""
    if options.baselines:
        return list(options.baselines)
    runs = experiment.runs
    out: list[str] = []
    if runs is not None and not runs.empty and "type" in runs.columns:
        out = [str(r) for r in runs.loc[runs["type"] == "control", "run"]]
    if not out:
        out = [r.name for r in experiment.design.runs if r.type == "control"]
    return out


def variables_of(experiment: Experiment) -> list[str]:
    """The varied parameters (``param_names``, else the design's variables)."""
    return list(experiment.param_names or experiment.design.variables.keys())


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _guarded(experiment: Experiment, what: str, fn: Callable[[], T], default: T) -> T:
    """Run one optional stage; a failure becomes a warning, never a crash of the report.

    The core (intervals, comparisons, best) is not guarded: without it there is no report
    worth writing, and a failure there is a bug the tests must see.
    """
    try:
        return fn()
    except Exception as err:  # the report must survive odd inputs (DESIGN: never crash)
        experiment.diagnostics.warn(None, f"statistics: {what} could not be computed "
                                    f"({type(err).__name__}: {err}); left out of the report", stage="stats")
        return default


def _runs(experiment: Experiment) -> pd.DataFrame:
    """The runs table with ``run``/``type`` present and one row per run (the last wins)."""
    runs = experiment.runs if experiment.runs is not None else pd.DataFrame()
    runs = runs.copy()
    for col in ("run", "type"):
        if col not in runs.columns:
            runs[col] = pd.Series(dtype=object)
    runs["type"] = runs["type"].fillna("fine-tuned")
    return runs.dropna(subset=["run"]).drop_duplicates("run", keep="last").reset_index(drop=True)


def analyze(experiment: Experiment, options: Options | None = None) -> Analysis:
    """Every statistic of the report, computed once from the experiment's tidy tables.

    Never changes the experiment's tables (an optional stage that fails on odd input is
    recorded as a warning in ``experiment.diagnostics`` and left out); an experiment
    without evaluations gives an empty Analysis whose findings say so. Permutation and
    bootstrap results are reproducible with ``options.seed``.

    Args:
        experiment: the loaded experiment.
        options: analysis settings (confidence, clusters, baselines, margin, cost, seed).

    Returns:
        The :class:`~analyze_experiment.analysis.Analysis`.
    """
    options = options or Options()
    conf = options.confidence
    runs = _runs(experiment)
    baselines = baseline_runs(experiment, options)
    variables = variables_of(experiment)
    seed_var = seed_variable(variables)
    factors = [v for v in variables if v != seed_var]
    families = build_families(experiment, options)

    intervals, comparisons, equivalence, best, power = [], [], [], [], []
    for fam in families:
        iv = family_intervals(fam, conf)
        comp, eq, b, pw = family_comparisons(
            fam, iv, baselines, confidence=conf, margin=options.margin,
            n_resamples=options.n_permutations, seed=options.seed,
        )
        intervals.append(iv)
        comparisons.append(comp)
        equivalence.append(eq)
        if b is not None:
            best.append(b)
        if pw is not None:
            power.append(pw)
    a = Analysis(confidence=conf)
    a.intervals = _concat(intervals, INTERVALS)
    a.comparisons = _concat(comparisons, COMPARISONS)
    a.equivalence = _concat(equivalence, EQUIVALENCE)
    a.best, a.power = best, power

    values = a.intervals
    ft = runs[runs["type"] == "fine-tuned"][["run", *[v for v in factors if v in runs.columns]]]
    if not values.empty:
        configs = _guarded(experiment, "seed replicate groups", lambda: config_labels(runs, variables),
                           pd.Series(dtype=object))
        a.seeds, a.seed_comparisons = _guarded(
            experiment, "seed statistics",
            lambda: seed_tables(values, configs, confidence=conf, n_boot=options.n_bootstrap, seed=options.seed),
            (a.seeds, a.seed_comparisons))
        _guarded(experiment, "seed-level check of the best",
                 lambda: seed_aware_best(a.best, a.seeds, a.seed_comparisons, configs), None)
        a.effects = _guarded(experiment, "main effects",
                             lambda: main_effects(values, ft, factors, conf, families, configs), a.effects)
        a.anova, a.anova_note = _guarded(experiment, "ANOVA", lambda: anova(values, ft, factors, families),
                                         (a.anova, None))
        a.diminishing = _guarded(experiment, "diminishing returns", lambda: diminishing_returns(
            families, values, ft, factors, confidence=conf, n_resamples=options.n_permutations,
            seed=options.seed), a.diminishing)
        a.pareto = _guarded(experiment, "cost and Pareto front",
                            lambda: pareto_table(values, runs, options.gpu_hour_cost), a.pareto)
        a.outliers = _guarded(experiment, "outliers", lambda: pd.concat(
            [group_outliers(values, configs, runs), loss_curve_outliers(experiment.train_steps, configs),
             suspicious_evals(experiment.eval_samples, values, experiment.eval_logs)], ignore_index=True),
            a.outliers)
    def skipped(rule: str, err: Exception) -> None:
        experiment.diagnostics.warn(None, f"statistics: findings rule {rule} failed ({type(err).__name__}: "
                                    f"{err}); its sentences are left out of the report", stage="stats")

    a.findings = build_findings(a, runs=runs, variables=factors, baselines=baselines, options=options,
                                seed_var=seed_var, on_error=skipped)
    return a
