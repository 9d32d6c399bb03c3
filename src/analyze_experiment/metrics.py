"""Which way each metric is better, as data: the registry, the user's declarations, the primary.

A report that ranks runs must know whether a larger value is better. inspect-ai's logs do not
say: ``accuracy`` is better high, ``mae`` or ``brier_score`` low, and ``mean_risk_score`` is a
description that must never be ranked. So the direction is looked up, in this order:

1. ``--metric-direction NAME=lower|higher|descriptive`` (``Options.metric_directions``);
2. the design's ``evaluation.metrics: {NAME: lower}`` (``Design.metrics``);
3. the built-in :data:`REGISTRY` (and a few suffix rules: ``*_calibration_error`` is lower);
4. a default: ``higher`` for a scorer whose values are C/I/P (0/1 scores: a share of correct
   answers) and for ``mean`` (inspect's default aggregate of a scorer's own values, such as
   rubric points), else ``descriptive`` — an unknown number is described, never ranked, and the
   report says how to declare its direction.

``NAME`` may be a metric (``mae``), ``scorer/metric`` (``judge/mean``) or a scorer name (every
metric of that scorer the registry does not know).

Each scorer has one *primary* metric, the one that decides "best", findings and
recommendations: ``accuracy`` for C/I scorers, ``mae`` for continuous scorers, ``brier_score``
for risk scorers, else the scorer's own first metric (``--primary-metric SCORER=METRIC``
overrides). The others are reported beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

HIGHER, LOWER, DESCRIPTIVE = "higher", "lower", "descriptive"
DIRECTIONS = (HIGHER, LOWER, DESCRIPTIVE)

REGISTRY: dict[str, str] = {
    **dict.fromkeys((
        "accuracy", "auc", "auc_score", "roc_auc", "f1", "f1_score", "precision", "recall", "specificity",
        "sensitivity", "r_squared", "r2", "balanced_accuracy", "parse_rate", "exact_match", "match", "bleu",
        "rouge", "rouge_l", "pass_at_1", "pass@1", "win_rate",
    ), HIGHER),
    **dict.fromkeys((
        "mae", "rmse", "mse", "brier", "brier_score", "expected_calibration_error", "risk_calibration_error",
        "calibration_error", "ece", "loss", "perplexity", "error", "error_rate", "wer", "cer", "log_loss",
        "nll", "mape",
    ), LOWER),
    **dict.fromkeys((
        "mean_risk_score", "mean_risk", "std", "stderr", "var", "count", "n", "median", "min", "max",
        "mean_prediction",
    ), DESCRIPTIVE),
}
"""Metric name (lower case) -> direction. ``mean`` is absent on purpose: the mean of a scorer's
values is as good as the values are (C/I scores: higher; anything else: declare it)."""

SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_calibration_error", LOWER), ("_error", LOWER), ("_loss", LOWER), ("_accuracy", HIGHER),
    ("_auc", HIGHER), ("_f1", HIGHER),
)

PRIMARY_BY_KIND = {"binary": "accuracy", "continuous": "mae", "risk": "brier_score"}
"""Default primary metric of each scorer kind (``numeric``: the scorer's own first metric)."""

METRICS = ["task", "scorer", "metric", "direction", "primary", "direction_source", "kind", "note"]
"""Columns of :attr:`Analysis.metrics <analyze_experiment.analysis.Analysis.metrics>`."""


def registry_direction(name: str) -> str | None:
    """The built-in direction of a metric name (None when unknown).

    >>> registry_direction("mae"), registry_direction("risk_calibration_error"), registry_direction("zzz")
    ('lower', 'lower', None)
    """
    key = str(name).strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    for suffix, direction in SUFFIXES:
        if key.endswith(suffix):
            return direction
    return None


def _declared(declared: Mapping[str, str], scorer: str, metric: str) -> str | None:
    for key in (f"{scorer}/{metric}", metric, scorer):
        d = declared.get(key)
        if d is None:
            d = {k.lower(): v for k, v in declared.items()}.get(key.lower())
        if d is not None:
            return str(d).strip().lower()
    return None


def resolve_direction(scorer: str, metric: str, *, binary: bool, cli: Mapping[str, str] | None = None,
                      design: Mapping[str, str] | None = None) -> tuple[str, str, str | None]:
    """``(direction, source, note)`` of one scorer × metric (see the module docstring).

    ``source`` is ``cli`` | ``design`` | ``registry`` | ``default``; ``note`` says how to declare
    the direction of a metric that fell back to ``descriptive``.

    >>> resolve_direction("continuous_scorer", "mae", binary=False)[:2]
    ('lower', 'registry')
    >>> resolve_direction("judge", "mean", binary=True)[:2]
    ('higher', 'default')
    >>> resolve_direction("rubric", "mean", binary=False)[:2]
    ('higher', 'default')
    >>> resolve_direction("verbosity", "words", binary=False, cli={"words": "lower"})[:2]
    ('lower', 'cli')
    """
    for source, table in (("cli", cli or {}), ("design", design or {})):
        d = _declared(table, scorer, metric)
        if d in DIRECTIONS:
            return d, source, None
    d = registry_direction(metric)
    if d is not None:
        return d, "registry", None
    if binary:
        return HIGHER, "default", None
    if str(metric).strip().lower() == "mean":
        # inspect's default aggregate of a scorer's own values (rubric points, partial credit):
        # a larger score is better unless the user says otherwise
        return HIGHER, "default", (f"{scorer} {metric}: assumed higher is better (the mean of the scorer's values); "
                                   f"declare --metric-direction {scorer}/{metric}=lower if smaller is better")
    note = (f"{scorer} {metric}: direction unknown, so it is described and never ranked; declare it with "
            f"--metric-direction {metric}=lower (or higher), or in the design as "
            f"evaluation.metrics: {{{metric}: lower}}")
    return DESCRIPTIVE, "default", note


def parse_assignments(items: Iterable[str], what: str, allowed: Iterable[str] | None = None) -> dict[str, str]:
    """``["mae=lower", …]`` -> ``{"mae": "lower"}``; raises ValueError naming ``what`` on a bad item.

    >>> parse_assignments(["words=Lower"], "--metric-direction", DIRECTIONS)
    {'words': 'lower'}
    """
    allowed_set = {a.lower() for a in allowed} if allowed is not None else None
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name, value = name.strip(), value.strip()
        if allowed_set is not None:
            value = value.lower()
        if not sep or not name or not value or (allowed_set is not None and value not in allowed_set):
            expected = "|".join(sorted(allowed_set)) if allowed_set else "VALUE"
            raise ValueError(f"{what} expects NAME={expected}, got {item!r}")
        out[name] = value
    return out


def default_primary(kind: str, metrics: list[str]) -> str | None:
    """The primary metric of a scorer of ``kind`` among ``metrics`` (its families, then header).

    >>> default_primary("continuous", ["mae", "parse_rate", "rmse"])
    'mae'
    >>> default_primary("numeric", ["words"])
    'words'
    """
    want = PRIMARY_BY_KIND.get(kind)
    if want is not None and want in metrics:
        return want
    for m in metrics:
        if m not in ("stderr", "std", "var", "count"):
            return m
    return None


def metrics_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The METRICS table from rows (missing columns filled with None)."""
    import pandas as pd  # here: the CLI reads DIRECTIONS at start-up, before any table exists

    return pd.DataFrame([{c: r.get(c) for c in METRICS} for r in rows], columns=METRICS)


def direction_text(direction: str) -> str:
    """"lower is better" | "higher is better" | "descriptive, not ranked"."""
    return {LOWER: "lower is better", HIGHER: "higher is better"}.get(direction, "descriptive, not ranked")


SATURATION = 0.95
"""A rate at or above this (higher is better), or at or below 1 − this (lower is better), is
saturated: the scale has little room left, and differences there say little."""

RATES = {
    "accuracy", "balanced_accuracy", "parse_rate", "auc", "auc_score", "roc_auc", "f1", "f1_score", "precision",
    "recall", "specificity", "sensitivity", "r_squared", "r2", "exact_match", "brier", "brier_score", "ece",
    "expected_calibration_error", "risk_calibration_error", "calibration_error", "error_rate", "pass_at_1",
    "pass@1", "win_rate",
}
"""Metrics on a [0, 1] scale (besides any 0/1-valued scorer's mean)."""


def saturated(metric: str, direction: str, value: Any, binary: bool = False) -> bool:
    """Whether a value of a [0, 1] rate is at the end of its scale that is better.

    >>> saturated("accuracy", "higher", 0.96), saturated("brier_score", "lower", 0.03), saturated("mae", "lower", 0.01)
    (True, True, False)
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    if v != v or not (binary or str(metric).lower() in RATES or str(metric).lower().endswith("_calibration_error")):
        return False
    if direction == HIGHER:
        return v >= SATURATION
    if direction == LOWER:
        return v <= 1 - SATURATION
    return False
