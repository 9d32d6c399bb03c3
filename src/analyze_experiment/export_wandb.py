"""``analyze-experiment export EXP --format wandb``: the sweep as offline Weights & Biases runs.

One W&B run per run of the experiment, written with the real ``wandb`` package in offline
mode (no network, no account); ``wandb sync <out>/wandb/offline-run-*`` uploads them later.
What each run holds (docs/wandb.md has the full key list):

* **config**: the run's parameters, with their original types (``lora_rank: 4``).
* **history**, at the global optimizer step: the ``train_steps`` columns as ``train/<column>``
  (loss, lr, tokens/s, grad norm, peak memory, recipe-specific keys) and ``val_loss`` as
  ``val/loss`` when the training output had validation.
* **summary**: every evaluated task x scorer x metric at the run's last evaluated checkpoint
  with its interval (``eval/<task>/<scorer>/<metric>`` plus ``…_ci_low``, ``…_ci_high``,
  ``…_stderr``, ``…_n``, ``…_epoch``), the training summary (``training/…``) and the
  validation summary (``val/final_loss``, ``val/best_loss``, ``val/best_step``,
  ``val/train_gap``, ``val/overfitting``); the ``val/loss`` history comes from the metric logger,
  or from the printed ``Validation loss:`` lines where the metric logger gave none.
* **tables**: ``eval/evaluations`` (every epoch's intervals) and ``eval/samples`` (the
  per-sample results, one row per sample x sample epoch x scorer).
* **media**: the report's figures as images under ``plots/<name>``, drawn by the same code as
  the report from the same analysis, so they never disagree with the numbers beside them.

Nothing here is read back from W&B: the export is a pure function of the tidy tables and
the analysis, so two exports of the same inputs log the same values.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Experiment
from analyze_experiment.ingest import validation as val

if TYPE_CHECKING:  # the optional extra; imported on use with an install hint
    import wandb  # noqa: F401

WANDB_PIN = "wandb==0.29.0"
"""The version the export is tested with (the ``wandb`` extra pins it)."""

STEP_KEYS = ("run", "epoch", "step", "source")
"""``train_steps`` columns that are coordinates or provenance, not metrics."""

VAL_COLUMN = "val_loss"
"""The ``train_steps`` column that holds the validation loss (DiskLogger ``Step N | val_loss:…``)."""

TRAINING_SUMMARY = ("status", "final_loss", "min_loss", "steps", "epochs_done", "train_time_s", "gpu_hours",
                    "tokens_per_second_per_gpu", "peak_memory_gib", "convergence")
"""``runs`` columns copied into each W&B run's summary as ``training/<column>``."""

MAX_TAG = 64
"""W&B rejects longer tags."""

INTERVAL_FIELDS = ("ci_low", "ci_high", "stderr", "n")
SAMPLE_COLUMNS = ("task", "epoch", "sample_id", "sample_epoch", "scorer", "score", "value_raw", "answer", "target")

_DIR_VARS = ("WANDB_DATA_DIR", "WANDB_CACHE_DIR")
_PROJECT_BAD = re.compile(r"[/\\#?%:\s]+")


class WandbExportError(ValueError):
    """The W&B export cannot run (``wandb`` missing, nothing to export)."""


def _wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise WandbExportError(
            "the W&B export needs the wandb package: pip install 'analyze-experiment[wandb]' "
            f"(tested with {WANDB_PIN})"
        ) from exc
    return wandb


def project_name(name: str) -> str:
    """A W&B project name from an experiment name (W&B rejects ``/ \\ # ? % :``).

    >>> project_name("cap: rank/lr sweep")
    'cap-rank-lr-sweep'
    """
    return _PROJECT_BAD.sub("-", str(name)).strip("-") or "analyze-experiment"


def _scalar(v: Any) -> Any:
    """A JSON-friendly Python scalar (numpy -> Python); None for missing values."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _number(v: Any) -> float | None:
    """A float, or None when missing or not a number."""
    v = _scalar(v)
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def history_rows(steps: pd.DataFrame) -> list[tuple[int, dict[str, float]]]:
    """One run's ``train_steps`` -> (global step, {W&B key: value}) in step order.

    Metric columns become ``train/<column>``, ``val_loss`` becomes ``val/loss``. Missing
    values are left out, so W&B shows a gap, never an invented value: a step without
    validation logs no ``val/loss``. A ``nan`` cell cannot be told apart from a value the step
    did not log (a DiskLogger line with only ``val_loss`` leaves ``loss`` empty), so a ``nan``
    loss is left out too and the run's ``training/status`` (``diverged``) says why the curve
    stops; an infinite value is unambiguous and is logged. A repeated step keeps its last row
    (as the readers do for repeated progress-bar frames), because W&B drops a step that goes
    backwards.

    >>> df = pd.DataFrame({"run": ["a", "a"], "epoch": [0, 0], "step": [1, 2], "loss": [2.0, float("nan")],
    ...                    "lr": [0.1, None], "val_loss": [None, 1.5], "source": ["bar", "bar"]})
    >>> history_rows(df)
    [(1, {'train/epoch': 0.0, 'train/loss': 2.0, 'train/lr': 0.1}), (2, {'train/epoch': 0.0, 'val/loss': 1.5})]
    """
    if not len(steps):
        return []
    df = steps[pd.to_numeric(steps["step"], errors="coerce").notna()].copy()
    df["step"] = pd.to_numeric(df["step"]).astype(int)
    df = df.sort_values("step", kind="stable").drop_duplicates("step", keep="last")
    metrics = [c for c in df.columns if c not in STEP_KEYS]
    rows: list[tuple[int, dict[str, float]]] = []
    for rec in df.to_dict("records"):
        values: dict[str, float] = {}
        epoch = _number(rec.get("epoch"))
        if epoch is not None:
            values["train/epoch"] = epoch
        for col in metrics:
            num = _number(rec.get(col))
            if num is None:
                continue
            values["val/loss" if col == VAL_COLUMN else f"train/{col}"] = num
        rows.append((int(rec["step"]), values))
    return rows


def validation_summary(steps: pd.DataFrame) -> dict[str, Any]:
    """Final and best validation loss of one run, its gap to the training loss and the
    overfitting flag (:mod:`analyze_experiment.ingest.validation`); empty when it logged none."""
    if VAL_COLUMN not in steps.columns:
        return {}
    s = val.run_summary(steps)
    if not s["val_evaluations"]:
        return {}
    out: dict[str, Any] = {"val/final_loss": s["val_loss_final"], "val/best_loss": s["val_loss_best"],
                           "val/best_step": s["val_loss_best_step"], "val/evaluations": s["val_evaluations"]}
    if s["val_train_gap"] is not None:
        out["val/train_gap"] = s["val_train_gap"]
    if s["overfitting"] is not None:
        out["val/overfitting"] = s["overfitting"]
    return out


def eval_summary(intervals: pd.DataFrame, confidence: float) -> dict[str, Any]:
    """One run's intervals -> flat summary keys, at the last evaluated checkpoint.

    Per task x scorer x metric: ``eval/<task>/<scorer>/<metric>`` is the value, with
    ``_ci_low``/``_ci_high`` (the ``confidence`` interval), ``_stderr``, ``_n`` and ``_epoch``
    (0-based checkpoint; None for a base model) beside it.
    """
    out: dict[str, Any] = {}
    if not len(intervals):
        return out
    iv = intervals.copy()
    iv["_epoch_order"] = pd.to_numeric(iv["epoch"], errors="coerce")
    iv = iv.sort_values("_epoch_order", kind="stable", na_position="first")  # base model first
    for (task, scorer, metric), g in iv.groupby(["task", "scorer", "metric"], sort=True, dropna=False):
        last = g.iloc[-1]
        key = f"eval/{task}/{scorer}/{metric}"
        out[key] = _number(last["value"])
        for f in INTERVAL_FIELDS:
            val = _number(last.get(f))
            out[f"{key}_{f}"] = int(val) if f == "n" and val is not None else val
        epoch = _number(last.get("epoch"))
        out[f"{key}_epoch"] = None if epoch is None else int(epoch)
    out["eval/confidence"] = confidence
    return out


def training_summary(run_row: dict[str, Any]) -> dict[str, Any]:
    """``training/<column>`` summary entries from one ``runs`` row (missing values left out)."""
    out = {}
    for col in TRAINING_SUMMARY:
        v = _scalar(run_row.get(col))
        if v is not None:
            out[f"training/{col}"] = v
    return out


def _table_frame(df: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    cols = [c for c in columns if c in df.columns] + sorted(c for c in df.columns if str(c).startswith("meta."))
    data = [[_scalar(v) for v in row] for row in df[cols].itertuples(index=False, name=None)]
    return cols, data


@contextmanager
def _private_dirs(wandb_dir: Path) -> Iterator[None]:
    """Keep W&B's staging and cache files with the runs instead of the user's home folder.

    In offline mode W&B stages each logged table as an artifact file under its data folder
    (``~/.local/share/wandb``) and writes service logs under its cache folder; nothing ever
    uploads or cleans those, so they would pile up outside ``out``. The variables are set for
    the export only (they are process-wide: do not run two exports in parallel threads).
    """
    saved = {k: os.environ.get(k) for k in _DIR_VARS}
    os.environ[_DIR_VARS[0]] = str(wandb_dir / ".data")
    os.environ[_DIR_VARS[1]] = str(wandb_dir / ".cache")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _figures(experiment: Experiment, analysis: Analysis, enabled: bool) -> Iterator[list[Path]]:
    """The report's figures as PNG files in a temporary folder (removed afterwards)."""
    if not enabled:
        yield []
        return
    from analyze_experiment.report.plots.static import render_plots

    with tempfile.TemporaryDirectory(prefix="analyze-experiment-wandb-") as tmp:
        infos = render_plots(experiment, analysis, Path(tmp), Diagnostics())
        yield [Path(tmp) / f"{i.name}.png" for i in infos if (Path(tmp) / f"{i.name}.png").is_file()]


def export_wandb(
    experiment: Experiment,
    analysis: Analysis,
    out: Path,
    *,
    project: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    runs: Sequence[str] | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write one offline W&B run per run of the experiment under ``out/wandb/``.

    Args:
        experiment: the loaded experiment.
        analysis: its statistics (intervals at ``analysis.confidence``).
        out: folder given to W&B as its ``dir`` (created); runs land in ``out/wandb/offline-run-*``.
        project: W&B project (default: the experiment's name, made W&B-safe).
        metric: keep only this metric in the summary and tables.
        task: keep only this task in the summary and tables.
        runs: export only these runs.
        plots: attach the report's figures as images.

    Returns:
        The offline run folders, in run order (what ``wandb sync`` takes).

    Raises:
        WandbExportError: ``wandb`` is not installed, a name in ``runs`` is not a run of the
            experiment, or there is no run at all.
    """
    from analyze_experiment.export import filter_table

    wandb = _wandb()
    project = project_name(project or experiment.design.name or experiment.root.name)
    group = project_name(experiment.design.name or experiment.root.name)
    known = experiment.runs["run"].astype(str).tolist()
    unknown = [r for r in (runs or []) if str(r) not in known]
    if unknown:  # a typo must not silently drop a run from what gets shared
        raise WandbExportError(f"unknown run(s) {', '.join(map(repr, unknown))}; the experiment's runs are: "
                               f"{', '.join(known) or 'none'}")
    run_table = filter_table(experiment.runs, runs=runs)
    if not len(run_table):
        raise WandbExportError(f"no run to export in {experiment.root}")
    intervals = filter_table(analysis.intervals, metric=metric, task=task, runs=runs)
    samples = filter_table(experiment.eval_samples, task=task, runs=runs)
    out.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(mode="offline", console="off", silent=True, x_disable_stats=True,
                              x_disable_meta=True, x_save_requirements=False, save_code=False, disable_git=True,
                              disable_job_creation=True)
    caller_has_run = wandb.run is not None
    try:
        with _private_dirs(out / "wandb"):
            return _write_runs(wandb, experiment, analysis, run_table, intervals, samples, out, project, group,
                               settings, plots)
    finally:
        if not caller_has_run:  # stop W&B's background service, unless the caller is using it
            wandb.teardown()


def _write_runs(wandb: Any, experiment: Experiment, analysis: Analysis, run_table: pd.DataFrame,
                intervals: pd.DataFrame, samples: pd.DataFrame, out: Path, project: str, group: str,
                settings: Any, plots: bool) -> list[Path]:
    steps_all = experiment.train_steps
    written: list[Path] = []
    with _figures(experiment, analysis, plots) as figures:
        for row in run_table.to_dict("records"):
            name = str(row["run"])
            steps = steps_all[steps_all["run"].astype(str) == name] if len(steps_all) else steps_all
            history = history_rows(steps)
            status = _scalar(row.get("status"))
            run = wandb.init(
                project=project, group=group, name=name, dir=str(out), settings=settings,
                job_type=str(_scalar(row.get("type")) or "run"),
                tags=[str(t)[:MAX_TAG] for t in (status, _scalar(row.get("model"))) if t],
                config=dict(experiment.run_params.get(name, {})), reinit="create_new",  # a caller's run is left alone
            )
            try:
                for step, values in history:
                    run.log(values, step=step)
                last = history[-1][0] if history else 0
                media: dict[str, Any] = {}
                iv = intervals[intervals["run"].astype(str) == name] if len(intervals) else intervals
                if len(iv):
                    cols = ["task", "scorer", "metric", "epoch", "value", "ci_low", "ci_high", "stderr", "n", "method"]
                    c, data = _table_frame(iv, cols)
                    media["eval/evaluations"] = wandb.Table(columns=c, data=data, allow_mixed_types=True)
                sm = samples[samples["run"].astype(str) == name] if len(samples) else samples
                if len(sm):
                    c, data = _table_frame(sm, SAMPLE_COLUMNS)
                    media["eval/samples"] = wandb.Table(columns=c, data=data, allow_mixed_types=True)
                for png in figures:
                    media[f"plots/{png.stem}"] = wandb.Image(str(png))
                if media:
                    run.log(media, step=last)
                run.summary.update({**training_summary(row), **validation_summary(steps),
                                    **eval_summary(iv, analysis.confidence)})
                written.append(Path(run.dir).parent)
            finally:
                run.finish()
    return written
