"""The statistics stage: :func:`analyze` builds an :class:`Analysis` from an Experiment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from analyze_experiment.analysis import COMPARISONS, EQUIVALENCE, INTERVALS, Analysis, Best
from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.report.findings import build_findings
from analyze_experiment.stats import health
from analyze_experiment.stats.candidates import Family, build_families, label
from analyze_experiment.stats.comparisons import PAIR_TESTS, best_record, family_comparisons, family_intervals
from analyze_experiment.stats.cost import pareto_table
from analyze_experiment.stats.effects import anova, diminishing_returns, main_effects
from analyze_experiment.stats.equivalence import default_margin
from analyze_experiment.stats.intervals import SMALL_CLUSTERS, bounded_rows, is_proportion
from analyze_experiment.stats.metric_families import (
    confirmatory_table,
    continuous_table,
    derive_families,
    mark_saturated,
    warn_continuous,
)
from analyze_experiment.stats.outliers import group_outliers, loss_curve_outliers, suspicious_evals
from analyze_experiment.stats.plan import add_family, apply_plan, primary_keys
from analyze_experiment.stats.production import failed_set, noninferiority_table
from analyze_experiment.stats.references import reference_table
from analyze_experiment.stats.retrospective import retrospective
from analyze_experiment.stats.scorer_kinds import ScorerTables, discrimination_keys, scorer_tables
from analyze_experiment.stats.seeds import config_labels, seed_aware_best, seed_tables, seed_variable
from analyze_experiment.stats.selection import selection_adjusted

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


def _levels(experiment: Experiment, variables: list[str]) -> dict[str, list]:
    """Each varied parameter's levels: the design's, else the values the runs table holds."""
    out = {k: list(v) for k, v in experiment.design.variables.items() if k in variables}
    runs = experiment.runs
    for v in variables:
        if v not in out and runs is not None and v in runs.columns:
            out[v] = sorted(runs[v].dropna().unique().tolist(), key=str)
    return out


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


def _margin(fam: Family, intervals: pd.DataFrame, options: Options) -> float:
    """The family's equivalence margin: ``--margin``, else a fraction of the best's CI width
    (in the metric's own units; see stats/equivalence.py)."""
    if intervals.empty:
        return options.margin if options.margin is not None else float("nan")
    sign = -1.0 if fam.direction == "lower" else 1.0
    top = intervals.assign(_v=sign * intervals["value"]).sort_values(["_v", "run"], ascending=[False, True]).iloc[0]
    return default_margin(top["ci_low"], top["ci_high"], options.margin)[0]


def _adjust_selection(fam: Family, b: Best, options: Options) -> None:
    """Winner's-curse adjusted value and P(best) on the :class:`Best` (in place)."""
    scores = {label(k): s for k, s in fam.scores.items()}
    sel = selection_adjusted(scores, direction=fam.direction, confidence=options.confidence,
                             n_boot=options.n_bootstrap, seed=options.seed)
    if sel is None or sel.best != label((b.run, b.epoch)):
        return
    b.adjusted_value, b.adjusted_ci_low, b.adjusted_ci_high = sel.adjusted, sel.ci_low, sel.ci_high
    b.p_best = sel.p_best


def _warn_few_clusters(experiment: Experiment, families: list[Family], options: Options, alpha: float) -> None:
    """``--cluster-by`` with few clusters: say what the tests can and cannot do."""
    if not options.cluster_by:
        return
    for fam in families:
        if fam.clusters is None:
            continue
        g = int(fam.clusters.nunique())
        if g >= SMALL_CLUSTERS:
            continue
        floor = 2.0 / 2**g if g < 60 else 0.0
        text = (f"--cluster-by {options.cluster_by}: {fam.task}/{fam.scorer} has only {g} clusters (< "
                f"{SMALL_CLUSTERS}); intervals use the CR2 small-cluster correction with {g - 1} degrees of "
                "freedom and the paired tests flip signs per cluster (wild cluster bootstrap)")
        if floor >= alpha:
            text += (f"; with {g} clusters the smallest attainable p-value is {floor:.3g} ≥ α = {alpha:.2g}, so "
                     "no difference can be declared significant: evaluate more clusters")
        experiment.diagnostics.warn(None, text, stage="stats")


def _references(experiment: Experiment, a: Analysis, families: list[Family], primary: set, options: Options) -> None:
    """Compare every candidate with the design's and ``--reference`` numbers (in place on ``a``);
    register one family per target and warn about references that match nothing."""
    refs = list(getattr(experiment.design, "references", []) or []) + list(options.references)
    if not refs:
        return
    table, unmatched = reference_table(families, refs, primary, confidence=options.confidence)
    for ref in unmatched:
        have = sorted({f"{f.task}/{f.metric}" for f in families})
        experiment.diagnostics.warn(None, f"reference {ref.name!r} (task={ref.task or 'any'}, metric="
                                    f"{ref.metric or 'primary'}) matches no evaluated task and metric; evaluated: "
                                    f"{', '.join(have) or 'none'}", stage="stats")
    a.references = table
    for _, g in table.groupby("family", sort=True):
        a.families, _ = add_family(a.families, "reference", (str(g["task"].iloc[0]), str(g["scorer"].iloc[0]),
                                   str(g["metric"].iloc[0])), int(g["p_value"].notna().sum()), 1 - options.confidence,
                                   True)


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
    # run health gates inference: failed runs' candidates stay in the interval table (marked in
    # the report) but are dropped from every family before anything is ranked (stats/health.py)
    failed_runs = health.failed_runs(runs)
    excluded = set() if options.include_failed else failed_set(failed_runs)
    all_families, metric_table = derive_families(experiment, options, build_families(experiment, options))
    families = health.without(all_families, excluded)
    _warn_few_clusters(experiment, families, options, 1 - conf)

    intervals, comparisons, equivalence, best, power, pair_rows = [], [], [], [], [], []
    for fam in all_families:
        if excluded:
            intervals.append(family_intervals(fam, conf))
    for fam in families:
        iv = family_intervals(fam, conf)
        if fam.direction == "descriptive":  # described (value, interval), never ranked or tested
            if not excluded:
                intervals.append(iv)
            continue
        comp, eq, b, pw = family_comparisons(
            fam, iv, baselines, confidence=conf, margin=_margin(fam, iv, options),
            n_resamples=options.n_permutations, seed=options.seed, pairs_out=pair_rows,
        )
        if not excluded:
            intervals.append(iv)
        comparisons.append(comp)
        equivalence.append(eq)
        if b is not None:
            best.append(b)
        if pw is not None:
            power.append(pw)
    a = Analysis(confidence=conf)
    a.facts = getattr(experiment, "facts", a.facts)
    a.intervals = _concat(intervals, INTERVALS)
    a.comparisons = _concat(comparisons, COMPARISONS)
    a.equivalence = _concat(equivalence, EQUIVALENCE)
    a.pair_tests = pd.DataFrame(pair_rows, columns=PAIR_TESTS)
    a.best, a.power = best, power
    a.failed_runs, a.include_failed = failed_runs, options.include_failed
    a.metrics = metric_table
    a.intervals = mark_saturated(a.intervals, metric_table)
    a.continuous = _guarded(experiment, "continuous scorers", lambda: continuous_table(experiment, conf),
                            a.continuous)
    _guarded(experiment, "parse-failure warnings", lambda: warn_continuous(experiment, a.continuous), None)

    values = a.intervals[~a.intervals["run"].astype(str).isin(excluded)] if excluded else a.intervals
    train_steps, eval_samples = experiment.train_steps, experiment.eval_samples
    if excluded and train_steps is not None and "run" in train_steps.columns:
        train_steps = train_steps[~train_steps["run"].astype(str).isin(excluded)]
    if excluded and eval_samples is not None and "run" in eval_samples.columns:
        eval_samples = eval_samples[~eval_samples["run"].astype(str).isin(excluded)]
    ft = runs[runs["type"] == "fine-tuned"][["run", *[v for v in factors if v in runs.columns]]]
    configs = pd.Series(dtype=object)
    if not values.empty:
        configs = _guarded(experiment, "seed replicate groups", lambda: config_labels(runs, variables),
                           pd.Series(dtype=object))
        a.configs = configs
        a.seeds, a.seed_comparisons = _guarded(
            experiment, "seed statistics",
            lambda: seed_tables(values, configs, confidence=conf, n_boot=options.n_bootstrap, seed=options.seed),
            (a.seeds, a.seed_comparisons))
        a.effects = _guarded(experiment, "main effects",
                             lambda: main_effects(values, ft, factors, conf, families, configs), a.effects)
        # a mean of accuracies is an accuracy: its interval stays in [0, 1] (issue 11)
        proportions = {(f.task, f.scorer, f.metric) for f in families if is_proportion(f.metric, f.binary)}
        a.seeds, a.effects = bounded_rows(a.seeds, proportions), bounded_rows(a.effects, proportions)
        a.anova, a.anova_note = _guarded(experiment, "ANOVA", lambda: anova(values, ft, factors, families),
                                         (a.anova, None))
        a.diminishing = _guarded(experiment, "diminishing returns", lambda: diminishing_returns(
            families, values, ft, factors, confidence=conf, n_resamples=options.n_permutations,
            seed=options.seed), a.diminishing)
        a.pareto = _guarded(experiment, "cost and Pareto front",
                            lambda: pareto_table(values, runs, options.gpu_hour_cost), a.pareto)
        a.outliers = _guarded(experiment, "outliers", lambda: pd.concat(
            [group_outliers(values, configs, runs), loss_curve_outliers(train_steps, configs),
             suspicious_evals(eval_samples, values, experiment.eval_logs)], ignore_index=True),
            a.outliers)
    # one error-control plan for the whole report, then every verdict is re-read from it
    keys = [(f.task, f.scorer, f.metric) for f in families]
    scorer_order = list(experiment.design.scorers)
    primary = primary_keys(keys, confirmatory_table(a.metrics, scorer_order), scorer_order, options.confirmatory)
    sk = _guarded(experiment, "risk, two-class and subgroup tables", lambda: scorer_tables(
        experiment.eval_samples, experiment.eval_scores, families, a.best, primary, baselines, conf, excluded),
        ScorerTables())
    a.risk, a.auc_tests, a.risk_curves = sk.risk, sk.auc_tests, sk.risk_curves
    a.classification, a.subgroups, a.subgroup_tests = sk.classification, sk.subgroups, sk.subgroup_tests
    plan_keys = primary | discrimination_keys(a.auc_tests, primary, options.confirmatory)
    a.families = apply_plan(a, plan_keys, 1 - conf)
    if "p_value" in a.outliers.columns:  # keep the tested seeds that are outliers, and every other flag
        tested = a.outliers["kind"].isin(["metric", "loss", "loss_curve"])
        sig = a.outliers.get("significant", pd.Series(False, index=a.outliers.index))
        a.outliers = a.outliers[~tested | sig.fillna(False).astype(bool)].reset_index(drop=True)
    fam_by_key = {(f.task, f.scorer, f.metric): f for f in families}
    rebuilt = []
    for b in a.best:
        fam = fam_by_key[(b.task, b.scorer, b.metric)]
        comp = a.comparisons[(a.comparisons["task"] == b.task) & (a.comparisons["scorer"] == b.scorer)
                             & (a.comparisons["metric"] == b.metric)] if not a.comparisons.empty else a.comparisons
        iv = values[(values["task"] == b.task) & (values["scorer"] == b.scorer) & (values["metric"] == b.metric)]
        nb = best_record(fam, iv, comp, 1 - conf, b)
        if (b.task, b.scorer, b.metric) not in primary:
            nb.clear_winner = False
            nb.reason = (f"{b.scorer} {b.metric} is a secondary metric here, described but not tested "
                         "(--confirmatory all makes it confirmatory)")
        _guarded(experiment, "winner's curse adjustment", lambda fam=fam, nb=nb: _adjust_selection(fam, nb, options),
                 None)
        rebuilt.append(nb)
    a.best = rebuilt
    a.failed_ahead = _guarded(experiment, "failed runs ahead of the best",
                              lambda: health.ahead_of_best(families, a.intervals, a.best, excluded), a.failed_ahead)
    a.noninferiority = _guarded(experiment, "non-inferiority tests", lambda: noninferiority_table(
        families, a.best, margin=options.margin, alpha=1 - conf, confirmatory=primary,
        failed=failed_set(a.failed_runs)), a.noninferiority)
    ni = a.noninferiority
    if not ni.empty:
        for _, g in ni.groupby("family", sort=True):
            a.families, _ = add_family(a.families, "non-inferiority", (str(g["task"].iloc[0]), str(g["scorer"].iloc[0]),
                                       str(g["metric"].iloc[0])), len(g), 1 - conf, bool(g["confirmatory"].iloc[0]))
    _guarded(experiment, "reference numbers", lambda: _references(experiment, a, families, primary, options), None)
    if not values.empty:
        _guarded(experiment, "seed-level check of the best",
                 lambda: seed_aware_best(a.best, a.seeds, a.seed_comparisons, configs), None)
    def skipped(rule: str, err: Exception) -> None:
        experiment.diagnostics.warn(None, f"statistics: findings rule {rule} failed ({type(err).__name__}: "
                                    f"{err}); its sentences are left out of the report", stage="stats")

    from analyze_experiment.ingest.design_hypotheses import design_hypotheses

    a.findings = build_findings(a, runs=runs, variables=factors, baselines=baselines, options=options,
                                seed_var=seed_var, train_steps=experiment.train_steps, on_error=skipped,
                                hypotheses=design_hypotheses(experiment.design, _levels(experiment, factors)))
    retro = None
    if not a.intervals.empty:  # with nothing evaluated there is nothing settled to look back on
        retro = _guarded(experiment, "retrospective", lambda: retrospective(
            a, runs, experiment.design, variables, seed_var, options.gpu_hour_cost,
            getattr(experiment, "facts", None), getattr(experiment, "planned_vs_found", None)), None)
    if retro is not None:
        a.findings += retro[0]
        a.next_design = retro[1]
    return a
