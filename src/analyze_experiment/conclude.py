"""Conclusions: run every statistical procedure over the experiment, register each claim in one
error-control plan, and have report/findings word them. :func:`analyze` builds the :class:`Analysis`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pandas as pd

from analyze_experiment.analysis import COMPARISONS, EQUIVALENCE, INTERVALS, Analysis, Best
from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.report.findings import build_findings
from analyze_experiment.report.retrospective import retrospective
from analyze_experiment.stats import health
from analyze_experiment.stats.blas import one_blas_thread
from analyze_experiment.stats.candidates import Family, build_families, label
from analyze_experiment.stats.comparisons import PAIR_TESTS, best_record, family_comparisons, family_intervals
from analyze_experiment.stats.cost import pareto_table
from analyze_experiment.stats.effects import anova, diminishing_returns, grid_epoch_values, main_effects
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


@dataclass
class _Sweep:
    """What every step of :func:`analyze` reads: the experiment seen once, failed runs known."""

    experiment: Experiment
    options: Options
    runs: pd.DataFrame
    baselines: list[str]
    variables: list[str]
    seed_var: str | None
    excluded: set[str]
    """Failed runs, left out of every family unless ``--include-failed``."""
    all_families: list[Family]
    families: list[Family]
    """The families that decide: ``all_families`` without the failed runs' candidates."""
    metric_table: pd.DataFrame
    failed_runs: pd.DataFrame
    values: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Intervals of the runs that decide."""
    configs: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    primary: set = field(default_factory=set)
    """The confirmatory task × scorer × metric keys."""

    @property
    def factors(self) -> list[str]:
        return [v for v in self.variables if v != self.seed_var]

    @property
    def alpha(self) -> float:
        return 1 - self.options.confidence

    def guarded(self, what: str, fn: Callable[[], T], default: T) -> T:
        return _guarded(self.experiment, what, fn, default)


def analyze(experiment: Experiment, options: Options | None = None) -> Analysis:
    """Every statistic of the report, computed once from the experiment's tidy tables.

    Never changes the experiment's tables (an optional stage that fails on odd input is
    recorded as a warning in ``experiment.diagnostics`` and left out); an experiment
    without evaluations gives an empty Analysis whose findings say so. Permutation and
    bootstrap results are reproducible with ``options.seed``.

    The steps, in order: the families and their paired tests; the sweep-level tables (seeds,
    effects, ANOVA, cost, outliers); one error-control plan for the whole report; the best of
    each family re-read from that plan; the tests that need the best (non-inferiority,
    references, seeds); last the sentences, worded from the registered claims.

    Args:
        experiment: the loaded experiment.
        options: analysis settings (confidence, clusters, baselines, margin, cost, seed).

    Returns:
        The :class:`~analyze_experiment.analysis.Analysis`.
    """
    with one_blas_thread():  # small matrix products: threads only spin (stats/blas.py)
        s = _sweep(experiment, options or Options())
        a = _family_tests(s)
        _sweep_tables(s, a)
        _error_control(s, a)
        a.best = [_reread_best(s, a, b) for b in a.best]
        _tests_of_the_best(s, a)
        _words(s, a)
    return a


def _sweep(experiment: Experiment, options: Options) -> _Sweep:
    """Runs, baselines, variables and families. Run health gates inference: failed runs'
    candidates stay in the interval table (marked in the report) but are dropped from every
    family before anything is ranked (stats/health.py)."""
    runs = _runs(experiment)
    variables = variables_of(experiment)
    failed_runs = health.failed_runs(runs)
    excluded = set() if options.include_failed else failed_set(failed_runs)
    all_families, metric_table = derive_families(experiment, options, build_families(experiment, options))
    families = health.without(all_families, excluded)
    _warn_few_clusters(experiment, families, options, 1 - options.confidence)
    return _Sweep(experiment, options, runs, baseline_runs(experiment, options), variables,
                  seed_variable(variables), excluded, all_families, families, metric_table, failed_runs)


def _family_tests(s: _Sweep) -> Analysis:
    """Intervals of every family; paired comparisons, equivalence and the best of each ranked one."""
    conf, options = s.options.confidence, s.options
    intervals, comparisons, equivalence, best, power, pair_rows = [], [], [], [], [], []
    if s.excluded:  # every candidate keeps its interval; only the deciding families are tested
        intervals += [family_intervals(fam, conf) for fam in s.all_families]
    for fam in s.families:
        iv = family_intervals(fam, conf)
        if not s.excluded:
            intervals.append(iv)
        if fam.direction == "descriptive":  # described (value, interval), never ranked or tested
            continue
        comp, eq, b, pw = family_comparisons(
            fam, iv, s.baselines, confidence=conf, margin=_margin(fam, iv, options),
            n_resamples=options.n_permutations, seed=options.seed, pairs_out=pair_rows,
        )
        comparisons.append(comp)
        equivalence.append(eq)
        best += [b] if b is not None else []
        power += [pw] if pw is not None else []
    a = Analysis(confidence=conf)
    a.facts = getattr(s.experiment, "facts", a.facts)
    a.intervals = _concat(intervals, INTERVALS)
    a.comparisons = _concat(comparisons, COMPARISONS)
    a.equivalence = _concat(equivalence, EQUIVALENCE)
    # one table per family, built column by column (k(k-1)/2 rows per metric)
    a.pair_tests = (pd.concat(pair_rows, ignore_index=True)[PAIR_TESTS] if pair_rows
                    else pd.DataFrame(columns=PAIR_TESTS))
    a.best, a.power = best, power
    a.failed_runs, a.include_failed = s.failed_runs, options.include_failed
    a.metrics = s.metric_table
    a.intervals = mark_saturated(a.intervals, s.metric_table)
    a.continuous = s.guarded("continuous scorers", lambda: continuous_table(s.experiment, conf), a.continuous)
    s.guarded("parse-failure warnings", lambda: warn_continuous(s.experiment, a.continuous), None)
    s.values = a.intervals[~a.intervals["run"].astype(str).isin(s.excluded)] if s.excluded else a.intervals
    return a


def _without_failed(frame: pd.DataFrame | None, excluded: set[str]) -> pd.DataFrame | None:
    if excluded and frame is not None and "run" in frame.columns:
        return frame[~frame["run"].astype(str).isin(excluded)]
    return frame


def _sweep_tables(s: _Sweep, a: Analysis) -> None:
    """Seed replicates, main effects, ANOVA, diminishing returns, cost and outliers (in place)."""
    if s.values.empty:
        return
    conf, options, values, factors = s.options.confidence, s.options, s.values, s.factors
    train_steps = _without_failed(s.experiment.train_steps, s.excluded)
    eval_samples = _without_failed(s.experiment.eval_samples, s.excluded)
    ft = s.runs[s.runs["type"] == "fine-tuned"][["run", *[v for v in factors if v in s.runs.columns]]]
    s.configs = configs = s.guarded("seed replicate groups", lambda: config_labels(s.runs, s.variables),
                                    pd.Series(dtype=object))
    a.configs = configs
    a.seeds, a.seed_comparisons = s.guarded(
        "seed statistics",
        lambda: seed_tables(values, configs, confidence=conf, n_boot=options.n_bootstrap, seed=options.seed),
        (a.seeds, a.seed_comparisons))
    grid = _grid(values)
    a.effects = s.guarded("main effects", lambda: main_effects(values, ft, factors, conf, s.families, configs,
                                                               grid=grid), a.effects)
    # a mean of accuracies is an accuracy: its interval stays in [0, 1] (issue 11)
    proportions = {(f.task, f.scorer, f.metric) for f in s.families if is_proportion(f.metric, f.binary)}
    a.seeds, a.effects = bounded_rows(a.seeds, proportions), bounded_rows(a.effects, proportions)
    a.anova, a.anova_note = s.guarded("ANOVA", lambda: anova(values, ft, factors, s.families, grid),
                                      (a.anova, None))
    a.diminishing = s.guarded("diminishing returns", lambda: diminishing_returns(
        s.families, values, ft, factors, confidence=conf, n_resamples=options.n_permutations,
        seed=options.seed, grid=grid), a.diminishing)
    a.pareto = s.guarded("cost and Pareto front", lambda: pareto_table(values, s.runs, options.gpu_hour_cost),
                         a.pareto)
    a.outliers = s.guarded("outliers", lambda: pd.concat(
        [group_outliers(values, configs, s.runs), loss_curve_outliers(train_steps, configs),
         suspicious_evals(eval_samples, values, s.experiment.eval_logs)], ignore_index=True), a.outliers)


def _grid(values: pd.DataFrame) -> tuple[pd.DataFrame, list[str]] | None:
    """Every run at the grid's one epoch, computed once for main effects, ANOVA and diminishing
    returns (each took it again). None when it fails: each of those stages then computes it
    itself and its own failure becomes its own warning, as before."""
    try:
        return grid_epoch_values(values)
    except Exception:  # reported by the stages that need it (above)
        return None


def _error_control(s: _Sweep, a: Analysis) -> None:
    """One error-control plan for the whole report (every verdict is re-read from it); the
    scorer-kind tables (risk, two-class, subgroups) first, as their tests join the plan."""
    keys = [(f.task, f.scorer, f.metric) for f in s.families]
    scorer_order = list(s.experiment.design.scorers)
    s.primary = primary = primary_keys(keys, confirmatory_table(a.metrics, scorer_order), scorer_order,
                                       s.options.confirmatory)
    sk = s.guarded("risk, two-class and subgroup tables", lambda: scorer_tables(
        s.experiment.eval_samples, s.experiment.eval_scores, s.families, a.best, primary, s.baselines,
        s.options.confidence, s.excluded), ScorerTables())
    a.risk, a.auc_tests, a.risk_curves = sk.risk, sk.auc_tests, sk.risk_curves
    a.classification, a.subgroups, a.subgroup_tests = sk.classification, sk.subgroups, sk.subgroup_tests
    plan_keys = primary | discrimination_keys(a.auc_tests, primary, s.options.confirmatory)
    a.families = apply_plan(a, plan_keys, s.alpha)
    if "p_value" in a.outliers.columns:  # keep the tested seeds that are outliers, and every other flag
        tested = a.outliers["kind"].isin(["metric", "loss", "loss_curve"])
        sig = a.outliers.get("significant", pd.Series(False, index=a.outliers.index))
        a.outliers = a.outliers[~tested | sig.fillna(False).astype(bool)].reset_index(drop=True)


def _reread_best(s: _Sweep, a: Analysis, b: Best) -> Best:
    """The best of one family re-read from the plan's adjusted p-values; a secondary metric is
    described, never a winner; the winner's-curse adjustment added."""
    key = (b.task, b.scorer, b.metric)
    fam = {(f.task, f.scorer, f.metric): f for f in s.families}[key]
    comp = a.comparisons
    if not comp.empty:
        comp = comp[(comp["task"] == b.task) & (comp["scorer"] == b.scorer) & (comp["metric"] == b.metric)]
    v = s.values
    iv = v[(v["task"] == b.task) & (v["scorer"] == b.scorer) & (v["metric"] == b.metric)]
    nb = best_record(fam, iv, comp, s.alpha, b)
    if key not in s.primary:
        nb.clear_winner = False
        nb.reason = (f"{b.scorer} {b.metric} is a secondary metric here, described but not tested "
                     "(--confirmatory all makes it confirmatory)")
    s.guarded("winner's curse adjustment", lambda: _adjust_selection(fam, nb, s.options), None)
    return nb


def _tests_of_the_best(s: _Sweep, a: Analysis) -> None:
    """Failed runs that would rank first, non-inferiority of cheaper runs, reference numbers and
    the seed-level check of the best — each registered as its own family."""
    a.failed_ahead = s.guarded("failed runs ahead of the best",
                               lambda: health.ahead_of_best(s.families, a.intervals, a.best, s.excluded),
                               a.failed_ahead)
    a.noninferiority = s.guarded("non-inferiority tests", lambda: noninferiority_table(
        s.families, a.best, margin=s.options.margin, alpha=s.alpha, confirmatory=s.primary,
        failed=failed_set(a.failed_runs)), a.noninferiority)
    ni = a.noninferiority
    if not ni.empty:
        for _, g in ni.groupby("family", sort=True):
            key = (str(g["task"].iloc[0]), str(g["scorer"].iloc[0]), str(g["metric"].iloc[0]))
            a.families, _ = add_family(a.families, "non-inferiority", key, len(g), s.alpha,
                                       bool(g["confirmatory"].iloc[0]))
    s.guarded("reference numbers", lambda: _references(s.experiment, a, s.families, s.primary, s.options), None)
    if not s.values.empty:
        s.guarded("seed-level check of the best",
                  lambda: seed_aware_best(a.best, a.seeds, a.seed_comparisons, s.configs), None)


def _words(s: _Sweep, a: Analysis) -> None:
    """The findings, worded by report/findings.py from the registered claims, then the
    retrospective (what the sweep settled, what it cost, the next design)."""
    experiment = s.experiment

    def skipped(rule: str, err: Exception) -> None:
        experiment.diagnostics.warn(None, f"statistics: findings rule {rule} failed ({type(err).__name__}: "
                                    f"{err}); its sentences are left out of the report", stage="stats")

    from analyze_experiment.ingest.design_hypotheses import design_hypotheses

    a.findings = build_findings(a, runs=s.runs, variables=s.factors, baselines=s.baselines, options=s.options,
                                seed_var=s.seed_var, train_steps=experiment.train_steps, on_error=skipped,
                                hypotheses=design_hypotheses(experiment.design, _levels(experiment, s.factors)))
    if a.intervals.empty:  # with nothing evaluated there is nothing settled to look back on
        return
    retro = s.guarded("retrospective", lambda: retrospective(
        a, s.runs, experiment.design, s.variables, s.seed_var, s.options.gpu_hour_cost,
        getattr(experiment, "facts", None), getattr(experiment, "planned_vs_found", None)), None)
    if retro is not None:
        a.findings += retro[0]
        a.next_design = retro[1]
