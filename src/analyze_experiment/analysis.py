"""The results of the statistics stage, as tables the report, plots and summary.json read.

:func:`analyze_experiment.stats.analyze` builds an :class:`Analysis` from an
:class:`~analyze_experiment.experiment.Experiment`; plots and reports never recompute a
statistic, they only format these tables.

The unit compared is a *candidate*: one run evaluated at one checkpoint epoch on one task
with one scorer. ``run`` + ``epoch`` identify it (``epoch`` NaN for control models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

INTERVALS = [
    "run", "task", "epoch", "scorer", "metric",
    "value",  # mean of per-sample scores (after reducing sample epochs)
    "stderr",  # standard error (clustered when clusters were used)
    "ci_low", "ci_high",
    "n",  # samples (clusters: still samples; n_clusters separately)
    "n_clusters",
    "method",  # "wilson" | "t" | "clustered_t" | "from_log" (no per-sample data)
    "binary",  # bool: every score is 0/1
    "too_small",  # bool: n < 10 (stats.intervals.MIN_N_FOR_VERDICT): shown, never a verdict
]

COMPARISONS = [
    "task", "scorer", "metric",
    "a", "epoch_a", "b", "epoch_b",
    "kind",  # "vs_best" | "vs_baseline"
    "diff",  # mean(a) - mean(b) over paired samples
    "ci_low", "ci_high",  # paired CI of diff
    "test",  # "mcnemar_exact" | "paired_permutation"
    "statistic",
    "p_value",
    "p_adjusted",  # Holm over every pair of candidates of the task x scorer x metric
    # (the best is chosen after seeing the data, so the family is all k(k-1)/2 pairs,
    # of which only vs-best and vs-baseline rows are reported; see family_size)
    "q_value",  # Benjamini-Hochberg within the family
    "significant",  # p_adjusted < alpha
    "n_paired",
    "n_a_only",  # binary: a right, b wrong
    "n_b_only",  # binary: b right, a wrong
    "correlation",  # Pearson correlation of per-sample scores
]

EFFECTS = [
    "task", "scorer", "metric", "variable", "level",
    "mean", "ci_low", "ci_high", "n_runs", "n_samples",
]

ANOVA = [
    "task", "scorer", "metric", "term", "sum_sq", "df", "F", "p_value",
    "partial_eta_sq", "omega_sq",
]

SEEDS = [
    "task", "scorer", "metric", "config",  # config: params other than seed, as "k=v, k=v"
    "n_seeds", "mean", "sd", "ci_low", "ci_high", "runs",
]

PARETO = [
    "task", "scorer", "metric", "run", "epoch", "value", "gpu_hours", "cost_usd", "pareto",
]

OUTLIERS = ["run", "task", "kind", "detail", "value", "robust_z"]

EQUIVALENCE = [
    "task", "scorer", "metric", "a", "epoch_a", "b", "epoch_b", "margin",
    "diff", "ci_low", "ci_high", "p_tost", "equivalent",
]

REFERENCES = [
    "reference", "source", "task", "scorer", "metric", "run", "epoch", "value", "reference_value",
    "reference_n", "diff", "ci_low", "ci_high", "test", "statistic", "p_value", "p_adjusted", "significant",
    "better", "family",
]
"""Columns of :attr:`Analysis.references`: one row per reference number × candidate."""

DIMINISHING = [
    "task", "scorer", "metric", "variable", "from_level", "to_level",
    "gain", "ci_low", "ci_high", "p_value", "significant",
]


@dataclass(frozen=True)
class Claim:
    """The registered test behind a sentence that asserts something.

    Every sentence of the report that asserts a difference, an effect, a winner, an outlier or
    equivalence carries one; summary.json's ``claims`` lists them. A sentence without a claim
    only describes (a value, an interval, a count).
    """

    kind: str
    """``difference`` | ``effect`` | ``winner`` | ``outlier`` | ``equivalence`` | ``non_inferiority``."""
    family: str
    """Name of the error-control family the test belongs to (listed in Statistical Summary)."""
    test: str
    """The test's name (``mcnemar_exact``, ``paired_permutation``, ``welch``, ``tost`` …)."""
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    """Adjusted within ``family`` by ``correction``."""
    correction: str
    """``holm`` | ``none`` (a family of one test)."""
    significant: bool


@dataclass(frozen=True)
class Finding:
    """One generated sentence, with the rule that produced it and its numbers."""

    section: str
    """``key_findings`` | ``best_performers`` | ``recommendations`` | ``next_steps``
    | ``statistical_summary`` | ``data_quality`` | ``retrospective``."""
    text: str
    rule: str
    """Identifier of the rule (documented in docs/statistics.md)."""
    data: dict[str, Any] = field(default_factory=dict)
    claim: Claim | None = None
    """The registered test when the sentence asserts something (None: descriptive)."""


@dataclass
class Best:
    """The best candidate of one task x scorer x metric, and whether it clearly wins."""

    task: str
    scorer: str
    metric: str
    run: str
    epoch: float | None
    value: float
    ci_low: float | None
    ci_high: float | None
    clear_winner: bool
    reason: str
    """Why (not) a clear winner, with numbers."""
    tied_with: list[str] = field(default_factory=list)
    """Runs not significantly worse than the best after correction."""
    adjusted_value: float | None = None
    """The best's value corrected for being picked as the largest (winner's curse: bootstrap of
    the selection, :mod:`analyze_experiment.stats.selection`)."""
    adjusted_ci_low: float | None = None
    adjusted_ci_high: float | None = None
    p_best: dict[str, float] = field(default_factory=dict)
    """Candidate label -> share of bootstrap resamples in which it is the best."""


@dataclass
class Analysis:
    """Everything the statistics stage computed."""

    confidence: float = 0.95
    intervals: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=INTERVALS))
    comparisons: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COMPARISONS))
    best: list[Best] = field(default_factory=list)
    seeds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SEEDS))
    seed_comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    effects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EFFECTS))
    anova: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ANOVA))
    anova_note: str | None = None
    diminishing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DIMINISHING))
    pareto: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PARETO))
    equivalence: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EQUIVALENCE))
    outliers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=OUTLIERS))
    power: list[dict[str, Any]] = field(default_factory=list)
    """Per task x scorer: ``{"task", "scorer", "n", "mdd", "alpha", "power"}``: the minimum
    detectable paired difference at 80% power."""
    findings: list[Finding] = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per task × scorer × metric: ``direction`` (higher | lower | descriptive), ``primary`` (bool: the
    scorer's primary metric), ``direction_source`` (registry | design | cli | default), ``kind``
    (binary | continuous | risk | numeric), ``note``, ``family`` (compared per sample, or header
    only) — :data:`analyze_experiment.metrics.METRICS`."""
    failed_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Runs whose training failed (``stats.health.FAILED_RUNS``: run, status, evidence, file, step —
    the first bad step —, steps, planned_steps, mark): never best or production, left out of every
    estimate unless ``--include-failed``."""
    families: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The error-control plan: one row per family of tests (``stats.plan.FAMILIES``: family,
    kind, task, scorer, metric, size, alpha, correction, confirmatory, unit)."""
    noninferiority: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Each candidate against its family's best at the non-inferiority margin
    (``stats.production.NONINFERIORITY``); the production pick reads it."""
    pair_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Every paired checkpoint test of each family (reported or not; ``comparisons`` holds the
    reported vs-best and vs-baseline rows): task, scorer, metric, a, epoch_a, b, epoch_b, diff,
    p_value, p_holm, p_adjusted, significant, family."""
    configs: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    """Fine-tuned run -> its configuration label (``lora_rank=32``): runs sharing a label are
    seed replicates, and "best", "production" and "more seeds" name configurations
    (:mod:`analyze_experiment.stats.configs`)."""
    facts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """``Experiment.facts``: what the design and the files say about each other (same seed for
    every replicate, design/config conflicts …); their caveats qualify the findings they touch."""
    risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per candidate of every risk scorer (``stats.risk.RISK_TABLE``): n, unreadable outputs,
    class balance, Brier with its CI, AUC with DeLong's CI, ECE, risk calibration error, mean
    risk, the rates at 0.5 and the confusion counts."""
    auc_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    """DeLong's paired AUC test for every pair of candidates of a risk scorer
    (``stats.risk.AUC_TESTS`` + family, confirmatory, p_adjusted, significant)."""
    risk_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """ROC points and reliability bins per risk candidate (``stats.scorer_kinds.RISK_CURVES``)."""
    classification: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per candidate of every two-class right/wrong scorer (``stats.classification.CLASSIFICATION``):
    confusion counts, class balance, accuracy, balanced accuracy, F1, precision, recall, "other"."""
    subgroups: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Each confirmatory family's value per level of each sample category
    (``stats.scorer_kinds.SUBGROUP_COLUMNS``), with inspect's ``grouped`` header value beside it."""
    subgroup_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Heterogeneity of the best's gain across the levels of each category
    (``stats.subgroups.SUBGROUP_TESTS`` + family, confirmatory, p_adjusted, significant)."""

    continuous: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per candidate of each continuous (regression) scorer: parse rate with its Wilson CI, MAE,
    RMSE and R² recomputed from the samples, the log header's values and whether they agree
    (``stats.metric_families.CONTINUOUS``)."""
    failed_ahead: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Candidates of failed runs that rank above their family's best (``stats.health.AHEAD``):
    named "best so far" with how far their training got, never the best."""
    include_failed: bool = False
    """``--include-failed``: failed runs were kept in the choice of best and every estimate."""

    references: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REFERENCES))
    """Each candidate against each reference number (``stats.references.REFERENCES``: value,
    difference with its interval, the test, Holm within the ``reference:`` family)."""

    next_design: dict[str, Any] = field(default_factory=dict)
    """The follow-up sweep the retrospective drafts (an upstream ``experiment_summary.yaml``
    mapping; :mod:`analyze_experiment.report.retrospective`)."""

    @property
    def claims(self) -> list[Finding]:
        """The findings that assert something, each with its registered test."""
        return [f for f in self.findings if f.claim is not None]

    def section(self, name: str) -> list[Finding]:
        """Findings of one report section, in rule order."""
        return [f for f in self.findings if f.section == name]
