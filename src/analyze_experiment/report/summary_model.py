"""The ``summary.json`` contract as pydantic models (schema_version 2, docs/summary-schema.md).

The models are the single source of the contract: :func:`json_schema` generates the JSON
Schema shipped as ``analyze_experiment/schema/summary.schema.json`` (``make schema`` writes it,
a test checks the committed file equals the generated one), and :mod:`.summary_json` fills
them from the tidy tables.

Unknown is ``null``, never guessed. Values arrive from pandas as numpy scalars, ``pd.NA`` and
NaN; the field types say what each value becomes:

* :data:`Num` — a number; NaN/inf are *kept* in the model (they are what the analysis
  found) and written as ``null`` by its serialiser.
* :data:`Int` — an integer; a float that holds one (``1.0``, the epoch of a float column) is
  accepted, NaN/NA become ``None``.
* :data:`Cell` — any cell of a tidy table (rows of the tables that are passed through as
  they are): numpy scalars become Python values, timestamps ISO strings, and non-finite
  floats ``null`` on the way out.

Optional top-level keys (``design_facts``, ``risk`` …) are left out of the file when ``None``;
table rows keep their columns in the table's order (:class:`Row`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    model_serializer,
    model_validator,
)

from analyze_experiment.tables import RunStatus

SCHEMA_VERSION = 2
"""2: each scorer's metric directions and primary metric (``scorers``), ``direction`` and
``primary`` on every best, ``best`` is a primary metric's, ``continuous`` (parse rates)."""


def _missing(value: Any) -> bool:
    """True for ``None``, ``pd.NA`` and ``pd.NaT`` (not NaN: a NaN float is a number)."""
    return value is None or value is pd.NA or value is pd.NaT


def _python(value: Any) -> Any:
    """A table cell as a Python value: numpy scalars and arrays unwrapped, NA -> None,
    timestamps -> ISO strings. NaN stays a float: the serialiser decides how it is written."""
    if _missing(value):
        return None
    if isinstance(value, np.ndarray | list | tuple):
        return [_python(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, dict):
        return {str(k): _python(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp | _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _finite(value: Any) -> Any:
    """Serialiser: non-finite floats are written as ``null`` (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _known(value: Any) -> Any:
    """Validator of typed fields: NaN/NA -> None (unknown), numpy -> Python. A whole float then
    passes as an int (an epoch read from a float column)."""
    value = _python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(value: Any) -> Any:
    value = _python(value)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Num = Annotated[float | None, BeforeValidator(_num), PlainSerializer(_finite, return_type=float | None)]
"""A number; NaN/inf written as null."""

Int = Annotated[int | None, BeforeValidator(_known)]
"""An integer or null (NaN/NA read as null)."""

Count = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_known)]
"""A non-negative integer (an epoch, a sample count) or null."""

Cell = Annotated[Any, BeforeValidator(_python), PlainSerializer(_finite)]
"""Any table cell, JSON-safe on the way out."""

Str = Annotated[str | None, BeforeValidator(_known)]
Bool = Annotated[bool | None, BeforeValidator(_known)]

Direction = Literal["higher", "lower", "descriptive"]


class _Model(BaseModel):
    """Closed object: every key declared."""

    model_config = ConfigDict(extra="forbid")


class Row(BaseModel):
    """A row of a tidy table, passed through with its columns in the table's order.

    Subclasses declare the columns the contract promises (typed, required); any other column
    the table carries is kept as a :data:`Cell`.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Cell] = Field(init=False)  # type: ignore[assignment]
    _order: list[str] = PrivateAttr(default_factory=list)
    epoch_columns: ClassVar[tuple[str, ...]] = ()
    """Columns written as integers even when the table holds them as floats."""

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, dict) and cls.epoch_columns:
            data = {k: (_known(v) if k in cls.epoch_columns else v) for k, v in data.items()}
            data = {k: (int(v) if k in cls.epoch_columns and isinstance(v, float) else v) for k, v in data.items()}
        row = handler(data)
        if isinstance(data, dict):
            row._order = [str(k) for k in data]
        return row

    @model_serializer(mode="wrap")
    def _in_order(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        ordered = {k: out[k] for k in self._order if k in out}
        return ordered | {k: v for k, v in out.items() if k not in ordered}


def rows(model: type[Row], df: pd.DataFrame | None) -> list[Any]:
    """The rows of ``df`` as ``model`` instances (an empty list for no table)."""
    if df is None or not len(df):
        return []
    return [model.model_validate(r) for r in df.to_dict(orient="records")]


# --- experiment and runs ------------------------------------------------------------------


class ExperimentInfo(_Model):
    name: str
    question: Str
    hypothesis: Str
    variables: dict[str, list[Cell]]
    design_document: Str
    layout: Literal["oct2025", "early2026", "mid2026", "unknown"]


class Evidence(_Model):
    line: Str
    file: Str


class Validation(_Model):
    evaluations: Int
    final_loss: Num
    best_loss: Num
    best_step: Int
    gap_to_training: Num
    overfitting: Bool
    patience: int
    source: Str


class Training(_Model):
    status: RunStatus | None
    final_loss: Num
    min_loss: Num
    steps: Int
    planned_steps: Int
    epochs: Int
    planned_epochs: Int
    train_time_s: Num
    train_time_source: Str
    converged: bool | None
    convergence: Literal["converged", "still improving", "oscillating", "diverged", "too short to tell"] | None
    tokens_per_second_per_gpu: Num
    peak_memory_gib: Num
    gpu_hours: Num
    n_gpus: Int
    evidence: Evidence
    log: Str
    validation: Validation | None


class MetricValue(_Model):
    value: Num
    stderr: Num
    ci_low: Num = None
    ci_high: Num = None
    ci_method: Str = Field(default=None, exclude_if=lambda v: v is None)


class Eval(_Model):
    task: str
    epoch: Count
    scorer: str
    n_samples: Count
    metrics: dict[str, MetricValue]
    log: Str


class Run(_Model):
    name: str
    type: Literal["fine-tuned", "control", "eval-only"] | None
    params: dict[str, Cell]
    in_design: Bool
    dir: Str
    training: Training | None
    evals: list[Eval]


# --- results ------------------------------------------------------------------------------


class Comparison(Row):
    task: str
    scorer: str
    metric: str
    a: str
    epoch_a: Int
    b: str
    epoch_b: Int
    kind: Literal["vs_best", "vs_baseline"] | None = None
    diff: Num
    ci_low: Num
    ci_high: Num
    test: Str
    p_value: Num
    p_adjusted: Num
    significant: Bool = None
    n_paired: Int


class Best(_Model):
    task: str
    scorer: Str
    metric: str
    run: str
    epoch: Int
    value: Num
    ci_low: Num
    ci_high: Num
    clear_winner: bool
    reason: Str
    tied_with: list[str]
    direction: Direction
    primary: bool


class ScorerMetric(_Model):
    direction: Direction
    direction_source: Literal["cli", "design", "registry", "default"]
    primary: bool
    compared: bool
    note: Str


class Scorer(_Model):
    task: str
    scorer: str
    kind: Literal["binary", "continuous", "risk", "numeric"]
    primary_metric: Str
    direction: Direction | None
    metrics: dict[str, ScorerMetric]


class Continuous(Row):
    task: str
    scorer: str
    run: str
    n: Cell
    n_parsed: Cell
    parse_rate: Num


class Claim(_Model):
    kind: Literal["difference", "effect", "winner", "outlier", "equivalence", "non_inferiority"]
    text: str
    section: str
    rule: str
    test: str
    statistic: Num
    p: Num
    p_adjusted: Num
    family: str
    correction: str
    significant: bool


class Family(Row):
    family: str
    kind: str
    size: Int


class RetroSentence(_Model):
    rule: str
    text: str
    basis: list[Cell]


class Retrospective(_Model):
    sentences: list[RetroSentence]
    next_design: dict[str, Cell]


class FailedRun(_Model):
    run: str
    status: Literal["timeout", "cancelled", "oom", "cuda_oom", "diverged", "failed"]
    evidence: Str
    file: Str
    step: Int
    steps: Int
    planned_steps: Int
    excluded: bool


class DesignFact(_Model):
    kind: Literal["same_seed", "param_conflict", "name_guess", "planned_missing", "unplanned", "duplicate_log",
                  "identical_curves"]
    severity: Literal["info", "warning", "error"]
    runs: list[str]
    param: Str
    message: str


class BestConfiguration(_Model):
    task: str
    scorer: str
    config: str
    runs: list[str]
    epoch: Int
    mean: Num
    sd: Num
    n_seeds: int
    ci_low: Num
    ci_high: Num
    clear_winner: bool
    tied_with: list[str]


class PlannedVsFound(_Model):
    run: str
    task: str
    epoch: Int
    status: Literal["missing", "unplanned"]
    log: Str


class Warning_(_Model):
    file: Str
    message: str
    severity: Literal["info", "warning", "error"]
    stage: Str


class GeneratedBy(_Model):
    tool: Literal["analyze-experiment"]
    version: str
    command: Str
    created: str


# --- optional scorer-kind tables -------------------------------------------------------------


class RiskCandidate(Row):
    epoch_columns = ("epoch", "epoch_a", "epoch_b")
    task: str
    scorer: str
    run: str
    epoch: Int
    n: Num
    n_unparsed: Num
    brier: Num
    auc: Num
    ece: Num
    risk_calibration_error: Num


class AucTest(Row):
    epoch_columns = ("epoch", "epoch_a", "epoch_b")
    task: str
    scorer: str
    a: str
    epoch_a: Int
    b: str
    epoch_b: Int
    auc_a: Num
    auc_b: Num
    diff: Num
    p_value: Num
    p_holm: Num
    p_adjusted: Num
    significant: bool
    family: str


class Risk(_Model):
    candidates: list[RiskCandidate]
    auc_tests: list[AucTest]


class Classification(Row):
    epoch_columns = ("epoch", "epoch_a", "epoch_b")
    task: str
    scorer: str
    run: str
    epoch: Int
    positive_label: Cell
    negative_label: Cell
    n: Cell
    accuracy: Num
    balanced_accuracy: Num
    f1: Num
    other: Cell
    tp: Cell
    fp: Cell
    tn: Cell
    fn: Cell


class SubgroupLevel(Row):
    epoch_columns = ("epoch", "epoch_a", "epoch_b")
    task: str
    scorer: str
    metric: str
    key: str
    level: Cell
    run: str
    epoch: Int
    value: Num
    source: Literal["samples", "log header"]


class SubgroupTest(Row):
    epoch_columns = ("epoch", "epoch_a", "epoch_b")
    task: str
    scorer: str
    metric: str
    key: str
    a: Cell
    b: Cell
    gains: Cell
    statistic: Num
    p_value: Num
    p_holm: Num
    p_adjusted: Num
    significant: bool
    family: str


class Subgroups(_Model):
    levels: list[SubgroupLevel]
    tests: list[SubgroupTest]


class BottomLineLink(_Model):
    text: str
    target: str = Field(description="The report table (evaluation, comparisons, seeds) or section anchor "
                                    "(failed-runs, data-quality, question-and-hypothesis, next-steps) holding the numbers.")


class BottomLineItem(_Model):
    """One line of the report's Bottom Line (report/bottom_line.py)."""

    rule: str
    text: str
    links: list[BottomLineLink] = Field(default_factory=list)


class HypothesisVerdict(_Model):
    """One design expectation answered on one task's lead metric (report/hypotheses.py)."""

    variable: str
    expect: str
    margin: Num = None
    source: Literal["yaml", "hypothesis", "question"]
    from_text: str | None = None
    unsure: str | None = None
    task: str | None = None
    scorer: str | None = None
    metric: str | None = None
    verdict: Literal["supported", "contradicted", "inconclusive"]
    why: str | None = None
    evidence: str | None = None
    gap: Num = None
    p_adjusted: Num = None
    tested: bool


def _absent(value: Any) -> bool:
    return value is None


class Summary(_Model):
    """The whole document, in the order the keys are written."""

    model_config = ConfigDict(
        extra="forbid",
        title="analyze-experiment summary.json, schema_version 2",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "analyze-experiment/summary.schema.json",
            "description": "Generated from analyze_experiment.report.summary_model (make schema); documented field "
                           "by field in docs/summary-schema.md. Unknown values are null, never guessed.",
        },
    )

    schema_version: Literal[2]
    experiment: ExperimentInfo
    runs: list[Run]
    comparisons: list[Comparison]
    best: Best | None
    best_by_task: list[Best]
    scorers: list[Scorer]
    continuous: list[Continuous]
    effects: list[Row]
    anova: list[Row]
    pareto: list[Row]
    outliers: list[Row]
    equivalence: list[Row]
    claims: list[Claim]
    families: list[Family]
    seeds: list[Row]
    seed_comparisons: list[Row]
    noninferiority: list[Row]
    references: list[Row]
    retrospective: Retrospective
    failed_runs: list[FailedRun] = Field(default_factory=list, description="Absent from older files.")
    power: list[Row]
    confidence: Annotated[float, Field(gt=0, lt=1)]
    design_facts: list[DesignFact] | None = Field(default=None, exclude_if=_absent)
    planned_vs_found: list[PlannedVsFound] | None = Field(default=None, exclude_if=_absent)
    best_configurations: list[BestConfiguration] | None = Field(default=None, exclude_if=_absent)
    warnings: list[Warning_]
    generated_by: GeneratedBy
    risk: Risk | None = Field(default=None, exclude_if=_absent)
    classification: list[Classification] | None = Field(default=None, exclude_if=_absent)
    subgroups: Subgroups | None = Field(default=None, exclude_if=_absent)
    bottom_line: Annotated[list[BottomLineItem], Field(max_length=10)] | None = Field(default=None, exclude_if=_absent)
    hypotheses: list[HypothesisVerdict] | None = Field(default=None, exclude_if=_absent)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Summary` (what ``schema/summary.schema.json`` holds)."""
    schema = Summary.model_json_schema(mode="validation")
    head = {k: schema.pop(k) for k in ("$schema", "$id", "title", "description") if k in schema}
    return head | schema


def schema_text() -> str:
    """:func:`json_schema` as the committed file's text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema" / "summary.schema.json"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write :func:`schema_text` to the shipped schema file (``make schema``)."""
    path.write_text(schema_text(), encoding="utf-8")
    return path


def dumps(summary: Summary) -> str:
    """Serialise with strict JSON (no NaN: the serialisers wrote them as null)."""
    return json.dumps(summary.model_dump(mode="json"), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
