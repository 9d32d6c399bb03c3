"""What every findings rule may read besides the :class:`~analyze_experiment.analysis.Analysis`:
the sweep's runs and variables, the baselines, which runs failed, and how candidates are named.

One typed record instead of a dictionary of loosely named keys: a rule that asks for something
the context does not hold fails when it is written, not on the sweep that first reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class FindingContext:
    """Built once per report by :func:`analyze_experiment.report.findings.build_findings`."""

    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The runs table (one row per run, ``type`` filled)."""
    variables: list[str] = field(default_factory=list)
    """The varied parameters, the seed excluded."""
    baselines: list[str] = field(default_factory=list)
    margin: float | None = None
    """``--margin`` (None: each family's own default)."""
    seed_var: str | None = None
    train_steps: pd.DataFrame | None = None
    hypotheses: list[Any] = field(default_factory=list)
    """The design's expectations (ingest/design_hypotheses.py)."""
    multi_scorer: set[str] = field(default_factory=set)
    """Tasks scored by more than one scorer: their sentences name the scorer."""
    multi_epoch: set[str] = field(default_factory=set)
    """Runs evaluated at more than one epoch: their candidates name the epoch."""
    failed: set[str] = field(default_factory=set)
    """Runs kept out of best and production (empty with ``--include-failed``)."""
    failed_marks: dict[str, str] = field(default_factory=dict)
    """Every failed run -> its mark in the tables."""
    include_failed: bool = False

    @property
    def n_runs(self) -> int:
        return len(self.runs)
