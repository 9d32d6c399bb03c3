"""The statistics stage: :func:`analyze` builds an :class:`Analysis` from an Experiment."""

from __future__ import annotations

import pandas as pd

from analyze_experiment.analysis import COMPARISONS, EQUIVALENCE, INTERVALS, Analysis
from analyze_experiment.model import Experiment, Options
from analyze_experiment.stats.candidates import build_families
from analyze_experiment.stats.comparisons import family_comparisons, family_intervals
from analyze_experiment.stats.cost import pareto_table
from analyze_experiment.stats.effects import anova, diminishing_returns, main_effects
from analyze_experiment.stats.findings import build_findings
from analyze_experiment.stats.outliers import group_outliers, suspicious_evals
from analyze_experiment.stats.seeds import config_labels, seed_tables, seed_variable


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


def analyze(experiment: Experiment, options: Options | None = None) -> Analysis:
    """Every statistic of the report, computed once from the experiment's tidy tables.

    Never mutates ``experiment``; an experiment without evaluations gives an empty
    Analysis whose findings say so. Permutation and bootstrap results are reproducible
    with ``options.seed``.

    Args:
        experiment: the loaded experiment.
        options: analysis settings (confidence, clusters, baselines, margin, cost, seed).

    Returns:
        The :class:`~analyze_experiment.analysis.Analysis`.
    """
    options = options or Options()
    conf = options.confidence
    runs = experiment.runs if experiment.runs is not None else pd.DataFrame(columns=["run"])
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
    run_params = runs[["run", "type", *[v for v in factors if v in runs.columns]]] if not runs.empty else runs
    if not values.empty:
        configs = config_labels(runs, variables)
        a.seeds, a.seed_comparisons = seed_tables(values, configs, confidence=conf,
                                                  n_boot=options.n_bootstrap, seed=options.seed)
        ft = run_params[run_params["type"] == "fine-tuned"] if "type" in run_params.columns else run_params
        a.effects = main_effects(values, ft.drop(columns=["type"], errors="ignore"), factors, conf,
                                 families, configs)
        a.anova, a.anova_note = anova(values, ft.drop(columns=["type"], errors="ignore"), factors)
        a.diminishing = diminishing_returns(
            families, values, ft.drop(columns=["type"], errors="ignore"), factors, confidence=conf,
            n_resamples=options.n_permutations, seed=options.seed)
        a.pareto = pareto_table(values, runs, options.gpu_hour_cost)
        a.outliers = pd.concat(
            [group_outliers(values, configs, runs),
             suspicious_evals(experiment.eval_samples, values, experiment.eval_logs)], ignore_index=True)
    a.findings = build_findings(a, runs=runs, variables=factors, baselines=baselines, options=options,
                                seed_var=seed_var)
    return a
