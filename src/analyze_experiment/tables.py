"""Column specifications of the tidy tables every stage exchanges.

One row per observation, long format (DESIGN.md §2). Readers yield records; each table is
built once with :func:`frame`, which guarantees the listed columns exist (in this order,
extra columns kept after them) even when there are no rows — so downstream steps never
special-case an empty sweep.

Conventions shared by all tables:

* ``run`` is the run name (directory name under the experiment, or the design's name).
* ``epoch`` is the **0-based** checkpoint epoch (``epoch_0`` = after the first epoch),
  in training *and* evaluation tables: a nullable integer (``Int64``), ``<NA>`` for
  base/control models. Group with :func:`by_epoch` (a missing epoch is a group of its own, no
  sentinel value) and select with :func:`at_epoch`.
* Unknown values are NaN/None, never guessed.
* Paths are relative to the experiment directory (POSIX separators).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import pandas as pd

RUN_TYPES = ("fine-tuned", "control", "eval-only")

RunStatus = Literal["completed", "timeout", "cancelled", "oom", "cuda_oom", "diverged", "failed", "running", "missing"]
"""A run's training status (see docs/training.md)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
"""Closed vocabulary of a run's training status, in the order of :data:`RunStatus`."""

CONVERGENCE_VERDICTS = ("converged", "still improving", "oscillating", "diverged", "too short to tell")

# --- runs: one row per run (designed or found on disk) --------------------------------
RUN_IDENTITY = [
    "run",  # run name
    "type",  # fine-tuned | control | eval-only
    "model",  # base model name when known
    "in_design",  # bool: listed in the design document
    "on_disk",  # bool: a run directory exists
    "run_dir",  # relative path of the run directory (None when absent)
]
"""The ``runs`` columns every run has, trained or not (the design and discovery give them)."""


@dataclass(slots=True)
class RunTraining:
    """What one run's training output says, one field per ``runs`` column after
    :data:`RUN_IDENTITY`: the single declaration of those columns (:data:`RUNS` is derived from
    it), so the record the training ingest fills and the table it lands in cannot drift apart.
    Unknown values stay None (control and eval-only runs have no record: every field is empty)."""

    status: RunStatus = "missing"
    """One of :data:`RUN_STATUSES`; ``missing`` until the status is decided."""
    status_evidence: str | None = None
    """The line that decided the status."""
    status_file: str | None = None
    """Relative path of the file holding that line."""
    final_loss: float | None = None
    """Loss at the last step (None if NaN/inf)."""
    min_loss: float | None = None
    """Smallest finite loss."""
    steps: int | None = None
    """Last global optimizer step reached."""
    planned_steps: int | None = None
    """Epochs × steps per epoch when known."""
    epochs_done: int | None = None
    """Number of completed epochs."""
    planned_epochs: int | None = None
    train_time_s: float | None = None
    """Training time in seconds."""
    train_time_source: str | None = None
    """``bar`` (sum of epoch elapsed) | ``checkpoint`` | ``slurm`` | None."""
    tokens_per_second_per_gpu: float | None = None
    """Mean excluding the warm-up step."""
    peak_memory_gib: float | None = None
    gpu_util_mean_pct: float | None = None
    n_gpus: int | None = None
    gpu_hours: float | None = None
    """``train_time_s / 3600 * n_gpus``."""
    convergence: str | None = None
    """One of :data:`CONVERGENCE_VERDICTS`."""
    training_log: str | None = None
    """Relative path of the main training output file."""
    attempts: int = 0
    """Training attempts found (requeued/resubmitted jobs); the last one gives status and curve."""
    # validation during training (analyze_experiment.ingest.validation; None when the run logged none)
    val_evaluations: int | None = None
    """Evaluations with a finite validation loss."""
    val_loss_final: float | None = None
    """Validation loss at the last evaluation."""
    val_loss_best: float | None = None
    """Lowest validation loss."""
    val_loss_best_step: int | None = None
    """Global step of the lowest."""
    val_train_gap: float | None = None
    """Final validation loss minus the mean training loss of the steps leading to it."""
    overfitting: bool | None = None
    """Validation rose for the last k evaluations while training loss fell."""
    val_loss_source: str | None = None
    """``disklogger`` | ``stdout`` | ``slurm`` (printed, 4 decimals), ``+``-joined when mixed."""
    first_nonfinite_step: int | None = None
    """First global step whose training loss is NaN/inf (a diverged run's first bad step)."""
    train_seed: int | None = None
    """Seed the training really used (torchtune's ``Setting manual seed`` line, else config seed)."""
    recipe: str | None = None
    """Recipe class named by the config banner."""
    final_loss_source: str | None = None
    """Where ``final_loss`` came from (a step source, or ``wandb summary (rounded)``)."""
    peak_memory_source: str | None = None
    """Which value ``peak_memory_gib`` is (a per-step key, the wandb summary, ``gpu_metrics.csv``)."""
    n_gpus_source: str | None = None
    """How ``n_gpus`` was found (torchrun, a config key, rank prefixes, GPU samples, ``assumed``)."""

    def as_record(self) -> dict[str, Any]:
        """The record's ``runs`` columns in table order, as a plain dict: the runs table is built
        from one record per run, the identity columns and parameters added beside these."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


RUNS = RUN_IDENTITY + [f.name for f in fields(RunTraining)]
"""Columns of ``runs``: :data:`RUN_IDENTITY`, then the :class:`RunTraining` fields. Parameters
follow as extra columns, one per parameter name (snake_case, e.g. ``lora_rank``,
``learning_rate``); ``Experiment.param_names`` lists them."""

# --- train_steps: one row per run x global step ---------------------------------------
TRAIN_STEPS = [
    "run",
    "epoch",  # 0-based epoch index (bar's epoch - 1)
    "step",  # global optimizer step (1-based)
    "loss",
    "lr",
    "tokens_per_second_per_gpu",
    "grad_norm",
    "peak_memory_active",
    "peak_memory_alloc",
    "peak_memory_reserved",
    "source",  # "disklogger" | "stdout" | "bar" | "jsonl"
]
"""Extra recipe-specific keys (``class_loss``, ``kd_loss``, ``rewards/chosen``,
``val_loss`` …) are kept as additional columns; ``val_loss_source`` says where each ``val_loss``
came from (the metric logger's source, or ``slurm`` for a printed ``Validation loss:`` line used
because the metric logger gave none)."""

# --- train_epochs: one row per run x epoch ---------------------------------------------
TRAIN_EPOCHS = [
    "run",
    "epoch",  # 0-based
    "steps_in_epoch",  # bar total
    "last_step",  # global step at the end of the epoch
    "elapsed_s",  # bar elapsed at its last frame of the epoch
    "complete",  # bool: the bar reached total/total
    "checkpoint_saved",  # bool
    "checkpoint_s",  # seconds spent saving the checkpoint, when logged
]

# --- gpu: one row per run x sample time x GPU ------------------------------------------
GPU = [
    "run",
    "time",  # pandas Timestamp
    "gpu",  # GPU index
    "utilization_pct",
    "memory_used_mib",
    "memory_total_mib",
    "power_w",
]

# --- eval_logs: one row per evaluation log file ------------------------------------------
EVAL_LOGS = [
    "log",  # relative path
    "run",
    "task",
    "epoch",  # 0-based checkpoint epoch, NaN for control/base
    "epoch_source",  # metadata | cell_dir | model_path | model_name | file_name | None
    "model",
    "status",  # success | error | cancelled | started
    "created",  # pandas Timestamp (UTC)
    "total_samples",
    "completed_samples",
    "errored_samples",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "duration_s",
    "eval_epochs",  # inspect's epochs (repeats per sample)
    "used",  # bool: False when superseded by a newer duplicate or unusable
    "note",  # why not used
]

# --- eval_scores: one row per run x task x epoch x scorer x metric ---------------------
EVAL_SCORES = [
    "run",
    "task",
    "epoch",
    "scorer",
    "metric",
    "value",
    "stderr",
    "n",  # scored samples behind the metric
    "log",
]

# --- eval_samples: one row per sample x sample-epoch x scorer --------------------------
EVAL_SAMPLES = [
    "run",
    "task",
    "epoch",
    "sample_id",  # str
    "sample_epoch",  # inspect's 1-based repeat index
    "scorer",
    "score",  # float (C=1, I=0, P=0.5, N=0; bool -> 0/1)
    "value_raw",  # the original value as a string ("C", "0.5", ...)
    "answer",  # model's answer, truncated
    "target",
    "log",
]
"""Sample metadata scalars are extra columns named ``meta.<key>``."""

WARNINGS = ["file", "severity", "stage", "message"]

DTYPES: dict[str, str] = {
    "epoch": "Int64",
    "step": "Int64",
    "sample_epoch": "Int64",
}
"""Column dtypes, the same in every table that has the column: epochs and steps are whole
numbers that may be unknown (a base model has no epoch), so nullable integers — never floats
with NaN, which printed as ``1.0`` and needed a sentinel to be grouped."""

TABLES: dict[str, list[str]] = {
    "runs": RUNS,
    "train_steps": TRAIN_STEPS,
    "train_epochs": TRAIN_EPOCHS,
    "gpu": GPU,
    "eval_logs": EVAL_LOGS,
    "eval_scores": EVAL_SCORES,
    "eval_samples": EVAL_SAMPLES,
    "warnings": WARNINGS,
}


def frame(columns: list[str], records: Iterable[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Build a table from records, with every spec column present (extra keys kept after).

    >>> frame(["run", "loss"], [{"run": "a", "loss": 1.0, "lr": 0.1}]).columns.tolist()
    ['run', 'loss', 'lr']
    >>> frame(["run", "loss"]).shape
    (0, 2)
    """
    df = pd.DataFrame.from_records(list(records or []))
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(dtype="object")
    extra = [c for c in df.columns if c not in columns]
    return typed(df[columns + extra])


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column of :data:`DTYPES` it has cast to its declared dtype (in place).

    >>> typed(pd.DataFrame({"epoch": [1.0, None]}))["epoch"].tolist()
    [1, <NA>]
    """
    for c, dtype in DTYPES.items():
        if c in df.columns and df[c].dtype != dtype:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(dtype)
    return df


def by_epoch(df: pd.DataFrame, keys: Sequence[str], *, epoch: str = "epoch", sort: bool = True) -> Any:
    """``df.groupby(keys)`` in which a missing epoch (a base/control model) is a group of its
    own; rows missing any *other* key are left out, as a plain groupby does.

    >>> df = pd.DataFrame({"run": ["b", "a", "a"], "epoch": pd.array([None, 0, 1], dtype="Int64")})
    >>> [k for k, _ in by_epoch(df, ["run", "epoch"])]
    [('a', 0), ('a', 1), ('b', <NA>)]
    """
    others = [k for k in keys if k != epoch]
    d = df.dropna(subset=others) if others else df
    return d.groupby(list(keys), sort=sort, dropna=False)


def at_epoch(epochs: pd.Series, epoch: Any) -> pd.Series:
    """Boolean mask of ``epochs`` equal to ``epoch``; a missing epoch matches the missing ones.

    >>> at_epoch(pd.Series(pd.array([0, None], dtype="Int64")), None).tolist()
    [False, True]
    """
    e = pd.to_numeric(epochs, errors="coerce")
    if epoch is None or pd.isna(epoch):
        return e.isna()
    return (e == float(epoch)).fillna(False).astype(bool)


CATEGORICAL = ("run", "task", "scorer", "log", "value_raw", "source")
"""Columns of the long tables that repeat a few values over many rows (a 1,000-run sweep has
2 M sample rows and 1,000 run names): stored as pandas categoricals, one copy of each string."""


def compact(df: pd.DataFrame, columns: Iterable[str] = CATEGORICAL) -> pd.DataFrame:
    """``df`` with ``columns`` (those present, holding strings) as categoricals. The values are
    unchanged — comparisons, grouping (observed categories only), CSV and Parquet output read
    the same — at a fraction of the memory."""
    for c in columns:
        if (c in df.columns and len(df) and not isinstance(df[c].dtype, pd.CategoricalDtype)
                and pd.api.types.infer_dtype(df[c], skipna=True) == "string"):  # strings (and gaps) only
            df[c] = df[c].astype("category")
    return df

