"""The objects the library hands around: the design, analysis options and the Experiment.

Everything heavier than a handful of fields is a tidy DataFrame (see :mod:`tables`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics

FACTS = ["kind", "severity", "runs", "param", "message", "qualifier", "detail"]
"""Columns of ``Experiment.facts``: ``kind`` (``same_seed``, ``param_conflict``, ``name_guess``,
``planned_missing``, ``unplanned``, ``duplicate_log``, ``identical_curves``), the runs it concerns,
the parameter it touches, the sentence for Data Quality, the caveat added to findings and, per run,
the caveat of a finding that names that run (``detail``: run -> text)."""
PLANNED = ["run", "task", "epoch", "status", "log"]


@dataclass
class RunSpec:
    """One run as the design document describes it."""

    name: str
    type: str = "fine-tuned"
    """``fine-tuned`` | ``control`` | ``eval-only`` (normalised from ``Fine-tuned``/``Control``)."""
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """snake_case parameter name -> value (numbers parsed; ``-`` entries left out)."""
    eval_tasks: list[str] = field(default_factory=list)
    """Tasks the evaluation matrix plans for this run (empty when unknown)."""
    eval_epochs: list[int] | None = None
    """0-based epochs the matrix plans (None for control/eval-only or unknown)."""
    vis_label: str | None = None


@dataclass
class Hypothesis:
    """One expectation about one variable, from the design (structured or read from its text).

    ``expect`` is one of ``A > B``, ``A < B``, ``A >= B`` (no worse), ``A <= B`` (no better),
    ``A = B`` (no difference) with levels of ``variable``, or ``matters`` / ``no effect`` /
    ``higher`` (larger levels better) / ``lower``. The report answers each with a verdict
    from the registered tests (report/hypotheses.py).
    """

    variable: str
    expect: str
    margin: float | None = None
    """Smallest gap (metric units) the expectation claims: ``32 > 8`` by at least this much."""
    task: str | None = None
    scorer: str | None = None
    metric: str | None = None
    source: str = "yaml"
    """``yaml`` (the design's ``hypotheses:`` list, exact), ``hypothesis`` or ``question`` (read
    from that free text)."""
    text: str = ""
    """The words it was read from (the clause of the free text, or the YAML entry)."""
    unsure: str | None = None
    """Why the reading of free text may be wrong (None when it is exact)."""


@dataclass
class Design:
    """What the experiment meant to do (from ``experiment_summary.md`` or ``.yaml``)."""

    name: str
    source: str | None = None
    """Relative path of the design document (None when there was none)."""
    question: str | None = None
    hypothesis: str | None = None
    purpose: str | None = None
    date: str | None = None
    variables: dict[str, list[Any]] = field(default_factory=dict)
    """snake_case variable -> levels, in the document's order."""
    controls: dict[str, Any] = field(default_factory=dict)
    """Fixed settings (epochs, batch_size, …) when the document states them."""
    runs: list[RunSpec] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    scorers: list[str] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)
    """Metric (or ``scorer/metric``, or scorer) -> ``higher`` | ``lower`` | ``descriptive``: the
    design's ``evaluation.metrics`` (see :mod:`analyze_experiment.metrics`)."""
    references: list[Any] = field(default_factory=list)
    """``references:`` of a YAML design: numbers from elsewhere to compare the runs with
    (:class:`~analyze_experiment.stats.references.Reference`)."""
    hypotheses: list[Hypothesis] = field(default_factory=list)
    """``hypotheses:`` of a YAML design: the structured expectations the report answers exactly
    (the free-text hypothesis and question are read at analysis time)."""

    def run(self, name: str) -> RunSpec | None:
        """The design's entry for ``name`` (None when the design does not list it)."""
        for r in self.runs:
            if r.name == name:
                return r
        return None


@dataclass
class Options:
    """Analysis settings (CLI flags map one to one)."""

    confidence: float = 0.95
    cluster_by: str | None = None
    """Sample metadata key whose values define clusters for clustered standard errors."""
    baselines: list[str] = field(default_factory=list)
    """Runs every other run is compared against; default: the design's control runs."""
    margin: float | None = None
    """Equivalence / non-inferiority margin in the metric's own units (0.01 = 1 percentage point
    of an accuracy, 0.5 rubric points, …); None: half the width of the best's CI per family."""
    gpu_hour_cost: float | None = None
    seed: int = 0
    """Seed for permutation/bootstrap procedures (results are reproducible)."""
    n_permutations: int = 10_000
    n_bootstrap: int = 2_000
    metric_directions: dict[str, str] = field(default_factory=dict)
    """Metric name -> ``higher`` | ``lower`` | ``descriptive`` (``--metric-direction``); wins over
    the design's ``evaluation.metrics`` and the built-in registry (:mod:`analyze_experiment.metrics`)."""
    primary_metrics: dict[str, str] = field(default_factory=dict)
    """Scorer -> the metric that decides "best" for it (``--primary-metric SCORER=METRIC``)."""
    include_failed: bool = False
    """Keep failed runs (diverged, OOM, cancelled, timed out, …) in effect estimates and in the
    choice of best/production (``--include-failed``); the report then says so."""
    confirmatory: str = "primary"
    """``primary``: only each task's primary scorer × metric makes significance claims, the rest is
    descriptive; ``all``: every scorer × metric is confirmatory (``--confirmatory all``)."""
    references: list[Any] = field(default_factory=list)
    """:class:`~analyze_experiment.stats.references.Reference` numbers to compare against
    (``--reference``), added to the design's ``references:``."""


@dataclass
class Experiment:
    """An experiment directory read into tidy tables.

    Built by :func:`analyze_experiment.load`; nothing here touches the disk again.
    """

    root: Path
    layout: str
    """``oct2025`` | ``early2026`` | ``mid2026`` | ``unknown``."""
    design: Design
    has_design_doc: bool
    runs: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.RUNS))
    train_steps: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.TRAIN_STEPS))
    train_epochs: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.TRAIN_EPOCHS))
    gpu: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.GPU))
    eval_logs: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.EVAL_LOGS))
    eval_scores: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.EVAL_SCORES))
    eval_samples: pd.DataFrame = field(default_factory=lambda: tables.frame(tables.EVAL_SAMPLES))
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    param_names: list[str] = field(default_factory=list)
    """Parameter columns of ``runs`` that vary across the sweep (design variables first)."""
    run_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Run -> its parameters with their original types (a DataFrame column turns ints with
    gaps into floats; summary.json must say ``lora_rank: 4``, as the design does)."""

    inputs: list[str] = field(default_factory=list)
    """Absolute paths of every file read (design document, training output, evaluation logs):
    what the report's fingerprint digests (:func:`analyze_experiment.ingest.cache.fingerprint`)."""
    param_sources: dict[str, dict[str, str]] = field(default_factory=dict)
    """Run -> parameter -> where its value came from: ``design``, ``run name`` (a guess from the
    directory name) or ``training config`` (the config overrode a name's guess)."""
    param_conflicts: list[dict[str, Any]] = field(default_factory=list)
    """Design/run-name values the training config contradicts (run, param, value, source,
    config_key, config_value, used, file); see :mod:`analyze_experiment.ingest.design_facts`."""
    facts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FACTS))
    """What the design, the training output and the logs say about each other that changes what the
    numbers mean (:func:`analyze_experiment.ingest.design_facts.check_facts`): one row per fact."""
    planned_vs_found: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PLANNED))
    """The design's evaluation matrix against the logs: run, task, epoch, status (``missing``:
    planned, no log; ``unplanned``: a log nobody planned), log."""

    @property
    def warnings(self) -> pd.DataFrame:
        """The ``warnings`` tidy table."""
        return self.diagnostics.frame()

    @property
    def analysable(self) -> bool:
        """True when at least one run has training steps or evaluation scores."""
        return bool(len(self.train_steps) or len(self.eval_scores) or len(self.eval_samples))

    def tables(self) -> dict[str, pd.DataFrame]:
        """All tidy tables by name (for exports)."""
        return {
            "runs": self.runs,
            "train_steps": self.train_steps,
            "train_epochs": self.train_epochs,
            "gpu": self.gpu,
            "eval_logs": self.eval_logs,
            "eval_scores": self.eval_scores,
            "eval_samples": self.eval_samples,
            "warnings": self.warnings,
        }
