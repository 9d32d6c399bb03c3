"""A run's training output → per-step and per-epoch records, GPU samples and a run summary.

Sources, in order of authority (docs/training.md): the DiskLogger file, the StdoutLogger
``Step N |`` lines, the progress bar, the wandb summary block (rounded), then the config
banner, memory/checkpoint lines, ``gpu_metrics.csv`` and ``seff``. The status of a run is
decided from the newest SLURM file's end markers; every status carries the line that
decided it and that line's file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest import validation as val
from analyze_experiment.ingest.discover import Problem, Walker, skip_dir
from analyze_experiment.ingest.records import Records
from analyze_experiment.sources import gpu as gpu_source
from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources import validation as val_source

if TYPE_CHECKING:
    from analyze_experiment.ingest.cache import Cache

STAGE = "training"
T = TypeVar("T")
RUNNING_WINDOW_S = 1800.0
"""A log without end marker counts as ``running`` when written to within this many seconds."""
MAX_DIR_ENTRIES = 20_000
"""Directory entries looked at per run when searching for training output."""
MAX_DEPTH = 4

# convergence rule (docs/training.md)
CONV_MIN_STEPS = 20
CONV_TAIL = 0.2
CONV_IMPROVING = -0.05
CONV_RISING = 0.10
CONV_OSCILLATION = 0.10
CONV_BLOWUP = 1.5

_DISK_RE = re.compile(r"^log_\d+\.(?:txt|jsonl)$")
_SLURM_RE = re.compile(r"^slurm[-_].*\.(?:out|err|txt|log)$|.*\.out$")
_JOB_RE = re.compile(r"(\d{2,})")
_GPU_RE = re.compile(r"^gpu_metrics.*\.csv$")
_SEFF_RE = re.compile(r"^seff.*|.*\.seff$")
_SNIFF_RE = re.compile(rb"torchtune|\|Loss: |Running \w+ with resolved config")
_STEP_COLUMNS = set(tables.TRAIN_STEPS)


@dataclass
class TrainingFiles:
    """Training output found for one run."""

    slurm_outputs: list[Path] = field(default_factory=list)
    """slurm-*.out and other SLURM/stdout captures, newest job last."""
    disk_logs: list[Path] = field(default_factory=list)
    """log_<ts>.txt / .jsonl DiskLogger files."""
    gpu_metrics: list[Path] = field(default_factory=list)
    seff: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    """(path, what happened) for directories that could not be read and symlinks not followed
    while searching; :func:`read_training` turns each into a warning naming the path."""


@dataclass
class TrainingResult:
    """Tidy records of one run's training plus its summary values."""

    steps: Records = field(default_factory=Records)
    """One row per global step, by column (:mod:`.records`: the cache keeps them as buffers)."""
    epochs: list[dict] = field(default_factory=list)
    gpu: list[dict] = field(default_factory=list)
    summary: tables.RunTraining = field(default_factory=tables.RunTraining)
    """The run's ``runs`` columns (status, losses, steps, time, validation …)."""
    config: dict = field(default_factory=dict)


# ---- finding files ---------------------------------------------------------------------------
def _problems(out: list[tuple[Path, str]]) -> Problem:
    """A walker's problems as (path, what happened), for :func:`read_training` to warn about."""

    def problem(kind: str, path: Path, detail: str) -> None:
        if kind == "unlistable":
            out.append((path, f"the directory could not be read ({detail}); training output in it was not looked for"))
        elif kind == "symlink":
            what = "points outside the experiment directory" if detail == "points outside" else detail
            out.append((path, f"the symlink {what}; not followed"))
        elif kind == "alias" and path.is_symlink():
            out.append((path, "the symlink leads to a directory already read (loop or alias); not read again"))
        elif kind == "unexaminable":
            out.append((path, f"could not be examined ({detail}); skipped"))

    return problem


def _not_training_dir(name: str) -> bool:
    """Folders never searched for training output: the skipped ones and ``eval/`` (its logs are found
    by discovery)."""
    return skip_dir(name) or name == "eval"


def _fingerprint(path: Path) -> tuple[int, str] | None:
    """Size plus a hash of the first and last MiB: identical copies share it."""
    try:
        size = path.stat().st_size
        h = hashlib.sha1()
        with open(path, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
        return size, h.hexdigest()
    except OSError:
        return None


def _sniff(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return _SNIFF_RE.search(fh.read(256 << 10)) is not None
    except OSError:
        return False


def _job_key(path: Path) -> tuple[int, float, str]:
    m = _JOB_RE.search(path.name)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (int(m.group(1)) if m else -1, mtime, path.as_posix())


def _shared_name_and_size(files: list[Path]) -> set[Path]:
    """The files whose name and size another file of ``files`` has too (a file that cannot be
    examined counts as shared: :func:`_fingerprint` decides about it, as before)."""
    seen: dict[tuple[str, int | None], list[Path]] = {}
    for path in dict.fromkeys(files):
        try:
            size: int | None = path.stat().st_size
        except OSError:
            size = None
        seen.setdefault((path.name, size), []).append(path)
    return {p for (_, size), group in seen.items() if len(group) > 1 or size is None for p in group}


def _sort_into(files: list[Path], out: TrainingFiles) -> TrainingFiles:
    """Each file into its kind (DiskLogger, GPU metrics, seff, SLURM output — a ``.log``/``.txt``
    only when it looks like torchtune output); a symlink to a file already found and an
    identical copy (same name, size and ends) are the same file, counted once."""
    prints: set[tuple[int, str]] = set()
    sniffed = 0
    # Only a file another one shares its name and size with can be a copy: the others are not
    # opened to be hashed (a 100-run sweep read 200 files' first MiB for nothing).
    shared = _shared_name_and_size(files)
    # shortest paths first so that the original wins over copies under artifacts/epoch_N/
    real_seen: set[Path] = set()
    for path in sorted(dict.fromkeys(files), key=lambda p: (len(p.parts), p.as_posix())):
        name = path.name
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            real = path
        if real in real_seen:  # a symlink to a file already found is the same file, not another attempt
            continue
        real_seen.add(real)
        if _DISK_RE.match(name):
            bucket = out.disk_logs
        elif _GPU_RE.match(name):
            bucket = out.gpu_metrics
        elif _SEFF_RE.match(name):
            bucket = out.seff
        elif _SLURM_RE.match(name):
            bucket = out.slurm_outputs
        elif path.suffix in (".log", ".txt") and sniffed < 50:
            sniffed += 1
            if not _sniff(path):
                continue
            bucket = out.slurm_outputs
        else:
            continue
        fp = _fingerprint(path) if path in shared else None
        if fp is not None:
            if (name, *fp) in prints:
                continue
            prints.add((name, *fp))
        bucket.append(path)
    return out


def find_training_files(
    run_dir: Path | None, extra_dirs: Sequence[Path] = (), *, experiment: Path | None = None
) -> TrainingFiles:
    """Find a run's training output in all three layouts.

    ``<run>/slurm-*.out``, ``<run>/artifacts/…`` (copies under ``artifacts/epoch_N/`` are
    counted once), ``ck-out-*`` and ``logs/`` dirs given in ``extra_dirs``. Weight files are
    skipped by extension without being opened; ``<run>/eval/`` is never entered; at most
    MAX_DIR_ENTRIES directory entries are looked at. Symlinks are followed only while they
    stay inside ``experiment`` (default: the run directory's parent); a directory that cannot
    be read and a symlink not followed are kept in ``problems`` for a warning.
    """
    roots = [Path(d) for d in ([run_dir] if run_dir is not None else []) + list(extra_dirs)]
    boundary = Path(experiment) if experiment is not None else (roots[0].parent if roots else Path("/"))
    with contextlib.suppress(OSError, RuntimeError):
        boundary = boundary.resolve()
    problems: list[tuple[Path, str]] = []
    walker = Walker(boundary, _problems(problems), max_entries=MAX_DIR_ENTRIES, boundary=boundary)
    files: list[Path] = []
    for root in roots:
        try:
            exists = root.is_dir()
        except OSError:
            exists = True  # let the listing say why it cannot be read
        if exists:
            files.extend(walker.files(root, max_depth=MAX_DEPTH, prune=_not_training_dir))
    out = _sort_into(files, TrainingFiles(problems=problems))
    out.slurm_outputs.sort(key=_job_key)
    out.disk_logs.sort(key=lambda p: (int(re.sub(r"\D", "", p.stem) or 0), p.as_posix()))
    return out


# ---- reading -------------------------------------------------------------------------------------
def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def convergence_verdict(losses: Sequence[float]) -> str:
    """Verdict on a loss curve (one value per step, in step order); rule in docs/training.md.

    >>> convergence_verdict([1.0] * 5)
    'too short to tell'
    >>> convergence_verdict([2.0 - i / 100 for i in range(100)])
    'still improving'
    >>> convergence_verdict([1.0 + (0.001 if i % 2 else 0.0) for i in range(100)])
    'converged'
    """
    y = np.asarray(losses, dtype=float)
    if len(y) and not math.isfinite(y[-1]):
        return "diverged"
    y = y[np.isfinite(y)]
    if len(y) < CONV_MIN_STEPS:
        return "too short to tell"
    w = max(1, len(y) // 10)
    smooth = np.convolve(y, np.ones(w) / w, mode="valid")
    n_tail = max(5, round(len(smooth) * CONV_TAIL))
    tail = smooth[-n_tail:]
    level = float(np.mean(np.abs(tail)))
    if level == 0:
        return "converged"
    if tail[-1] > CONV_BLOWUP * float(np.min(smooth)) and float(np.min(smooth)) > 0:
        return "diverged"
    x = np.arange(n_tail, dtype=float)
    slope, intercept = np.polyfit(x, tail, 1)
    rel_change = slope * (n_tail - 1) / level
    amplitude = float(np.max(tail - (slope * x + intercept)) - np.min(tail - (slope * x + intercept))) / level
    if amplitude > CONV_OSCILLATION:
        return "oscillating"
    if rel_change <= CONV_IMPROVING:
        return "still improving"
    if rel_change >= CONV_RISING:
        return "diverged"
    return "converged"


def _guarded(reader: Callable[[Path], T], path: Path, what: str, diag: Diagnostics) -> T | None:
    """Run one reader; an unreadable file or a reader bug becomes a warning, never a crash."""
    try:
        return reader(path)
    except OSError as exc:
        diag.warn(path, f"could not read {what} ({exc.strerror or exc}): skipped", severity="error", stage=STAGE)
    except Exception as exc:  # a reader bug on odd input must not stop the analysis
        diag.warn(path, f"could not parse {what} ({type(exc).__name__}: {exc}): skipped", severity="error",
                  stage=STAGE)
    return None


def _cached(cache: Cache | None, kind: str, path: Path, diag: Diagnostics,
            reader: Callable[[Path, Diagnostics], T | None]) -> T | None:
    """``reader(path, diag)``, or its stored result and warnings when the file is unchanged."""
    if cache is None:
        return reader(path, diag)
    return cache.cached_read(kind, path, diag, lambda d: reader(path, d))


def _read_slurm(path: Path, diag: Diagnostics) -> tt.SlurmOutput | None:
    out = _guarded(tt.read_slurm_output, path, "training output", diag)
    if out is None:
        return None
    if out.n_bytes == 0:
        diag.warn(path, "empty training output file: nothing read", stage=STAGE)
    elif not out.looks_like_torchtune and not out.events:
        diag.warn(path, "no torchtune output (no progress bar, Step lines or config banner): not used for "
                  "training values", stage=STAGE)
    if out.long_lines:
        diag.warn(path, f"{out.long_lines} line(s) longer than {tt.MAX_SEGMENT:,} bytes without line break: "
                  f"kept the first {tt.MAX_SEGMENT:,} bytes of each", stage=STAGE)
    if out.config_error:
        diag.warn(path, f"{out.config_error}: run parameters not cross-checked from it", stage=STAGE)
    _warn_unread_frames(path, out, diag)
    return out


def _warn_unread_frames(path: Path, out: tt.SlurmOutput, diag: Diagnostics) -> None:
    """Name progress frames the reader saw but could not use (issues 12 and 16)."""
    read = len(out.bar_step) or bool(out.stdout_steps)
    if out.unparsed_frames:
        then = ("other steps were read" if read else
                "no training steps were read from this file (per-step values only from a DiskLogger file, if any)")
        diag.warn(path, f"the progress bar is in a format this version does not read: {out.unparsed_frames:,} "
                  f"frame(s) mentioning loss/step/epoch were not read (first: {out.first_unparsed!r}); {then}",
                  stage=STAGE)
    if out.other_rank_frames and not len(out.bar_step):
        ranks = ", ".join(str(r) for r in sorted(out.ranks - {0})) or "other than 0"
        diag.warn(path, f"{out.other_rank_frames:,} progress-bar frame(s) of rank(s) {ranks} were left out: the curve "
                  "comes from rank 0, which this file does not show", stage=STAGE)
    if out.undecoded_frames:
        diag.warn(path, f"{out.undecoded_frames:,} progress-bar frame(s) with a `|Loss: ` description could not be "
                  f"decoded and were left out (first: {out.first_undecoded!r})", stage=STAGE)


def _read_disk(path: Path, diag: Diagnostics) -> tt.DiskLog | None:
    log = _guarded(tt.read_disk_log, path, "DiskLogger file", diag)
    if log is None:
        return None
    if log.bad_lines:
        diag.warn(path, f"{log.bad_lines} line(s) not in the `Step N | key:value` format skipped "
                  f"(first: {log.first_bad!r})", stage=STAGE)
    if not log.steps:
        what = "is empty" if not log.lines else "holds no Step lines"
        diag.warn(path, f"DiskLogger file {what}: not used (per-step lr, tokens/s and memory unknown)", stage=STAGE)
    return log


def _merge_steps(
    run: str,
    slurms: list[tt.SlurmOutput],
    disks: list[tt.DiskLog],
    steps_per_epoch: int | None,
    diag: Diagnostics,
) -> tuple[list[dict], set[int]]:
    """One record per global step; DiskLogger > StdoutLogger > bar, disagreements logged."""
    recs: dict[int, dict[str, Any]] = {}
    bar_epoch: dict[int, int] = {}
    warmup: set[int] = set()
    for out in slurms:
        for s, e, lo in zip(out.bar_step.tolist(), out.bar_epoch.tolist(), out.bar_loss.tolist(), strict=True):
            recs[s] = {"loss": lo, "source": "bar"}
            bar_epoch[s] = e
    bar_loss = {s: r["loss"] for s, r in recs.items()}
    disagreements: list[str] = []

    def overlay(step: int, values: dict[str, Any], source: str, file: Path) -> None:
        values = {k: v for k, v in values.items() if not (k in _STEP_COLUMNS and isinstance(v, str))}
        if not values:
            return
        rec = recs.setdefault(step, {})
        if "loss" in values and step in bar_loss and not _same(values["loss"], bar_loss[step]):
            disagreements.append(f"{diag.rel(file)} step {step}: {values['loss']!r} vs bar {bar_loss[step]!r}")
        rec.update(values)
        rec["source"] = source

    for out in slurms:
        if out.stdout_steps:
            warmup.add(min(out.stdout_steps))
        for s, values in sorted(out.stdout_steps.items()):
            overlay(s, values, "stdout", out.path)
    for log in disks:
        if log.steps:
            warmup.add(min(log.steps))
        for s, values in sorted(log.steps.items()):
            overlay(s, values, log.fmt, log.path)
    if disagreements:
        diag.warn(None, f"run {run}: {len(disagreements)} step loss(es) differ between the metric log and the "
                  f"progress bar; the metric log was used (first: {disagreements[0]})", severity="info",
                  stage=STAGE)
        diag.act("training.loss_disagreement", f"run {run}: metric log preferred over the progress bar",
                 details=disagreements[:50], result=f"{len(disagreements)} step(s)")
    rows = []
    for s in sorted(recs):
        rec = recs[s]
        if s in bar_epoch:
            epoch: int | None = bar_epoch[s] - 1
        elif steps_per_epoch:
            epoch = (s - 1) // steps_per_epoch
        else:
            epoch = None
        row: dict[str, Any] = {"run": run, "epoch": epoch, "step": s}
        for k, v in rec.items():
            row[k] = v
        rows.append(row)
    return rows, warmup


def _fill_printed_validation(run: str, step_rows: list[dict], slurms: list[tt.SlurmOutput],
                             diag: Diagnostics) -> None:
    """``val_loss`` from the SLURM files' ``Validation loss:`` lines where no metric logger gave it."""
    frames = []
    for out in slurms:
        lines = _guarded(val_source.read_validation, out.path, "validation loss lines", diag)
        if lines:
            frames.append(val_source.validation_frame(run, lines))
    printed = (pd.concat(frames).drop_duplicates("step", keep="last") if frames
               else pd.DataFrame(columns=val_source.VALIDATION_COLUMNS))
    filled = val.fill_from_printed(step_rows, printed, run)
    if filled:
        diag.act("training.validation", f"run {run}: validation loss from the printed lines",
                 details=[diag.rel(o.path) or "" for o in slurms],
                 result=f"{filled} evaluation(s) without a metric-logger value (4 decimals)")


def _events_status(out: tt.SlurmOutput) -> tuple[tables.RunStatus, str] | None:
    """Status from SLURM/failure lines of one file, with the deciding line."""
    order: list[tuple[tables.RunStatus, tuple[str, ...]]] = [
        ("cuda_oom", ("cuda_oom",)),
        ("oom", ("oom",)),
        ("timeout", ("timeout",)),
        ("cancelled", ("cancelled", "preempted", "node_failure", "requeued")),
    ]
    for status, kinds in order:
        for offset, ev in out.events:
            if ev.kind in kinds:
                if (
                    status in ("timeout", "cancelled")
                    and out.final_checkpoint_offset is not None
                    and offset > out.final_checkpoint_offset
                ):
                    return "completed", f"{out.final_checkpoint} (before: {ev.line})"
                return status, ev.line
    return None


def _failure(out: tt.SlurmOutput) -> str | None:
    kinds = ("exception", "child_failed", "slurm_failed", "memory_error", "killed", "traceback")
    for kind in kinds:
        for _, ev in out.events:
            if ev.kind == kind:
                return ev.line
    return None


_SEFF_STATUS: dict[str, tables.RunStatus] = {
    "TIMEOUT": "timeout",
    "OUT_OF_MEMORY": "oom",
    "CANCELLED": "cancelled",
    "PREEMPTED": "cancelled",
    "NODE_FAIL": "cancelled",
    "FAILED": "failed",
    "COMPLETED": "completed",
}


def read_training(
    run: str, files: TrainingFiles, diag: Diagnostics, *, now: float | None = None, cache: Cache | None = None
) -> TrainingResult:
    """Read one run's training output. Never raises for bad input: warnings go to ``diag``.

    Several attempts of one run (a requeued job appended to its file, several jobs' files,
    several DiskLogger files) are told apart first (:func:`split_attempts`): the last attempt
    alone gives the curve, the epochs and the status; the earlier ones are listed in an info
    note and counted in the ``attempts`` column.
    """
    now = time.time() if now is None else now
    for path, what in files.problems:
        diag.warn(path, f"run {run}: {what}", severity="error" if "could not" in what else "warning", stage=STAGE)
    if cache is None:
        return _read_training(run, files, diag, now=now, cache=None)
    # The whole run's result, valid while none of its files changed: merging a cached run's
    # steps again costs 20x what loading this entry does. A run still counted as running is
    # decided again (its status changes with the clock alone).
    paths = [*files.slurm_outputs, *files.disk_logs, *files.gpu_metrics, *files.seff]
    extra = (str(diag.root), [str(p) for p in paths])
    found, value, warnings = cache.get_group("run", f"{diag.root}\0{run}", paths, extra)
    if found and value.summary.status != "running":
        cache.hits += len(files.slurm_outputs) + len(files.disk_logs)  # the files the per-file cache counts
        diag.warnings.extend(warnings)
        _act_read(run, files, value, diag)
        return value
    sub = Diagnostics(root=diag.root)
    result = _read_training(run, files, sub, now=now, cache=cache)
    diag.extend(sub)
    cache.put_group("run", f"{diag.root}\0{run}", paths, result, sub.warnings, extra)
    return result


def _act_read(run: str, files: TrainingFiles, result: TrainingResult, diag: Diagnostics) -> None:
    diag.act(
        "training.read",
        f"run {run}: read training output",
        details=[diag.rel(p) or "" for p in [*files.slurm_outputs, *files.disk_logs, *files.gpu_metrics]],
        result=f"status {result.summary.status}, {len(result.steps)} steps",
    )


def _read_training(
    run: str, files: TrainingFiles, diag: Diagnostics, *, now: float, cache: Cache | None
) -> TrainingResult:
    slurms = [o for o in (_cached(cache, "slurm", p, diag, _read_slurm) for p in files.slurm_outputs) if o is not None]
    all_disks = [d for d in (_cached(cache, "disk", p, diag, _read_disk) for p in files.disk_logs) if d is not None]
    all_tt = [o for o in slurms if o.looks_like_torchtune or o.events]
    _check_disk_names(run, all_tt, files, diag)
    attempts = split_attempts(all_tt, all_disks)
    tt_slurms, disks = attempts.final_slurms, attempts.final_disks

    config, recipe = _config(tt_slurms)
    epochs_info, ckpt_s, ckpt_epochs = _epoch_facts(tt_slurms)
    totals = [i.total for _, i in sorted(epochs_info.items()) if i.total]
    steps_per_epoch = totals[0] if totals else None

    step_rows, warmup = _merge_steps(run, tt_slurms, disks, steps_per_epoch, diag)
    _fill_printed_validation(run, step_rows, tt_slurms, diag)
    epoch_rows = _epoch_rows(run, epochs_info, step_rows, ckpt_s, ckpt_epochs)
    gpu_rows = _gpu_rows(run, files.gpu_metrics, diag)
    seffs = [s for s in (_read_seff(p, diag) for p in files.seff) if s is not None]

    main_log = tt_slurms[-1].path if tt_slurms else (disks[-1].path if disks else None)
    summary = tables.RunTraining(recipe=recipe, training_log=diag.rel(main_log))
    _fill_values(summary, step_rows, warmup, epochs_info, config, tt_slurms, gpu_rows, seffs)
    summary = dataclasses.replace(summary, **val.run_summary(pd.DataFrame(step_rows)))
    _fill_status(summary, run, files, tt_slurms, slurms, disks, seffs, now, diag)
    summary.attempts = attempts.count
    summary.train_seed = _train_seed(tt_slurms, config)
    _note_attempts(run, attempts, summary, diag)
    result = TrainingResult(Records.from_dicts(step_rows), epoch_rows, gpu_rows, summary, config)
    _act_read(run, files, result, diag)
    return result


def _config(slurms: list[tt.SlurmOutput]) -> tuple[dict[str, Any], str | None]:
    """The resolved config and recipe of the newest file that printed them."""
    config: dict[str, Any] = {}
    recipe = None
    for o in slurms:
        if o.config:
            config = o.config
        recipe = o.recipe or recipe
    return config, recipe


def _epoch_facts(slurms: list[tt.SlurmOutput]) -> tuple[dict[int, tt.EpochInfo], dict[int, float], set[int]]:
    """What the bar says of each epoch, the seconds spent saving each epoch's checkpoint, and the
    epochs with a model or adapter checkpoint (later files win)."""
    epochs_info: dict[int, tt.EpochInfo] = {}
    ckpt_s: dict[int, float] = {}
    ckpt_epochs: set[int] = set()
    for o in slurms:
        epochs_info.update(o.epochs)
        ckpt_s.update(o.checkpoint_s)
        ckpt_epochs.update(c.epoch for c in o.checkpoints if c.epoch is not None and c.kind != "Recipe")
    return epochs_info, ckpt_s, ckpt_epochs


def _train_seed(slurms: list[tt.SlurmOutput], config: dict[str, Any]) -> int | None:
    """The seed the last attempt trained with: torchtune's ``Setting manual seed`` line, else the
    config's ``seed`` (a design's seeds mean nothing if every run really used one seed)."""
    for o in reversed(slurms):
        if o.local_seed is not None:
            return o.local_seed
    seed = config.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


@dataclass
class Attempts:
    """A run's training output split into attempts (issue 12)."""

    final_slurms: list[tt.SlurmOutput]
    """The last attempt's SLURM/stdout outputs (one job: its ``.out`` and ``.err``)."""
    final_disks: list[tt.DiskLog]
    """The last attempt's DiskLogger file (empty when none belongs to it)."""
    earlier: list[tuple[Path, tuple[int, int] | None, str, int | None]] = field(default_factory=list)
    """Earlier attempts, oldest first: (file, byte range or None for the whole file, how it
    ended, last step)."""

    @property
    def count(self) -> int:
        """Number of attempts (1 for an ordinary run, 0 without training output)."""
        return len(self.earlier) + (1 if self.final_slurms or self.final_disks else 0)


def _ended(out: tt.SlurmOutput) -> str:
    decided = _events_status(out)
    if decided is not None:
        return f"{decided[0]} ({decided[1][:160]})"
    if out.final_checkpoint:
        return f"completed ({out.final_checkpoint})"
    failure = _failure(out)
    return f"failed ({failure[:160]})" if failure else "ended without an end marker"


def _last_step(steps: Sequence[int]) -> int | None:
    return max(steps) if len(steps) else None


def _disk_last_step(log: tt.DiskLog | dict[int, Any]) -> int | None:
    steps = log.steps if isinstance(log, tt.DiskLog) else log
    return max(steps) if steps else None


def split_attempts(slurms: list[tt.SlurmOutput], disks: list[tt.DiskLog]) -> Attempts:
    """Tell a run's attempts apart; the last one decides status and curve, nothing is spliced.

    * One SLURM file may hold several attempts (``--requeue`` appends; the reader splits it
      where a banner follows output or the step counter goes backwards).
    * SLURM files of different jobs are different attempts (the job id orders them); the
      ``.out`` and ``.err`` of one job are one attempt.
    * Each DiskLogger file is the log of one attempt (a step counter going backwards inside
      it also starts a new attempt). The last attempt's DiskLogger file is the one its
      ``Writing logs to`` line names, else the newest one.
    """
    groups: list[list[tt.SlurmOutput]] = []
    keys: list[int] = []
    for o in slurms:  # already sorted by job id, then time
        job = _job_key(o.path)[0]
        if groups and job >= 0 and keys[-1] == job:
            groups[-1].append(o)
        else:
            groups.append([o])
            keys.append(job)
    earlier: list[tuple[Path, tuple[int, int] | None, str, int | None]] = []
    for group in groups:
        for o in group:
            for e in o.earlier_attempts:
                earlier.append((o.path, e.byte_range, _ended(e), _last_step(e.bar_step.tolist() or list(e.stdout_steps))))
    for group in groups[:-1]:
        o = group[-1]
        earlier.append((o.path, None, _ended(o), _last_step(o.bar_step.tolist() or list(o.stdout_steps))))
    final_slurms = groups[-1] if groups else []
    named = {n.rsplit("/", 1)[-1] for o in final_slurms for n in o.disk_log_names}
    final_disks = [d for d in disks if d.path.name in named][-1:]
    if not final_disks and (not named or (len(disks) == 1 and not earlier)):
        # no name to match (or nothing to confuse it with): the newest file is this attempt's
        final_disks = disks[-1:]
    for d in disks:
        for steps in d.earlier_attempts:
            earlier.append((d.path, None, "restarted (the step counter went backwards)", _disk_last_step(steps)))
        if not final_slurms and d not in final_disks:
            earlier.append((d.path, None, "superseded by a newer DiskLogger file", _disk_last_step(d)))
    return Attempts(final_slurms, final_disks, earlier)


def _note_attempts(run: str, attempts: Attempts, summary: tables.RunTraining, diag: Diagnostics) -> None:
    if not attempts.earlier:
        return
    listed = []
    for path, rng, ended, last in attempts.earlier:
        where = diag.rel(path) or ""
        if rng is not None:
            where += f" bytes {rng[0]:,}-{rng[1]:,}"
        listed.append(f"{where}: {ended}" + (f", last step {last}" if last is not None else ""))
    diag.warn(
        summary.training_log,
        f"run {run}: {attempts.count} training attempts (requeued or resubmitted); the last attempt decides "
        f"the status ({summary.status}) and supplies the curve, steps are never combined across "
        f"attempts; earlier attempts, not drawn: " + "; ".join(listed),
        severity="info",
        stage=STAGE,
    )
    diag.act("training.attempts", f"run {run}: {attempts.count} attempts", details=listed,
             result=f"last attempt: {summary.status}")


def _check_disk_names(run: str, slurms: list[tt.SlurmOutput], files: TrainingFiles, diag: Diagnostics) -> None:
    """The SLURM file names its DiskLogger file by a cluster path; say when it is not here."""
    have = {p.name for p in files.disk_logs}
    for o in slurms:
        for name in o.disk_log_names:
            base = name.rsplit("/", 1)[-1]
            if base not in have:
                diag.warn(o.path, f"run {run}: the metric log {base} named in `Writing logs to` was not found in "
                          "the run's directories; per-step lr/tokens/memory come from what else was found",
                          severity="info", stage=STAGE)


def _read_seff(path: Path, diag: Diagnostics) -> gpu_source.Seff | None:
    try:
        s = gpu_source.read_seff(path)
    except Exception as exc:  # unreadable or odd file: warn and go on
        diag.warn(path, f"could not read seff output ({type(exc).__name__}: {exc}): skipped", stage=STAGE)
        return None
    if s is None:
        diag.warn(path, "not seff output (no State/Wall-clock lines): skipped", stage=STAGE)
    return s


def _epoch_rows(
    run: str,
    info: dict[int, tt.EpochInfo],
    step_rows: list[dict],
    ckpt_s: dict[int, float],
    ckpt_epochs: set[int],
) -> list[dict]:
    last_step: dict[int, int] = {}
    for r in step_rows:
        if r["epoch"] is not None:
            last_step[r["epoch"]] = max(last_step.get(r["epoch"], 0), r["step"])
    epochs = sorted({e - 1 for e in info} | set(last_step) | ckpt_epochs)
    rows = []
    for e in epochs:
        i = info.get(e + 1)
        rows.append(
            {
                "run": run,
                "epoch": e,
                "steps_in_epoch": i.total if i else None,
                "last_step": last_step.get(e),
                "elapsed_s": (i.elapsed_s if i.complete else i.last_elapsed_s) if i else None,
                "complete": bool(i.complete) if i else (e in ckpt_epochs),
                "checkpoint_saved": e in ckpt_epochs,
                "checkpoint_s": ckpt_s.get(e),
            }
        )
    return rows


def _gpu_rows(run: str, paths: list[Path], diag: Diagnostics) -> list[dict]:
    rows: list[dict] = []
    for p in paths:
        try:
            g = gpu_source.read_gpu_metrics(p)
        except Exception as exc:  # unreadable or odd file: warn and go on
            diag.warn(p, f"could not read GPU samples ({type(exc).__name__}: {exc}): skipped", stage=STAGE)
            continue
        for prob in g.problems:
            diag.warn(p, prob, stage=STAGE)
        if g.na_values:
            diag.warn(p, f"{g.na_values} value(s) reported as [N/A] (e.g. MIG slices): left empty", severity="info",
                      stage=STAGE)
        for r in g.rows:
            rows.append({"run": run, **{k: r.get(k) for k in tables.GPU if k != "run"}})
    return rows


def _fill_values(
    summary: tables.RunTraining,
    step_rows: list[dict],
    warmup: set[int],
    epochs_info: dict[int, tt.EpochInfo],
    config: dict[str, Any],
    slurms: list[tt.SlurmOutput],
    gpu_rows: list[dict],
    seffs: list[gpu_source.Seff],
) -> None:
    losses = [r.get("loss") for r in step_rows if isinstance(r.get("loss"), int | float)]
    if step_rows:
        last = step_rows[-1]
        summary.steps = last["step"]
        fl = last.get("loss")
        summary.final_loss = float(fl) if _finite(fl) else None
        summary.final_loss_source = last.get("source")
        finite = [x for x in losses if math.isfinite(x)]
        summary.min_loss = min(finite) if finite else None
        # the first non-finite loss, not the last step: where the run went wrong (issue 11)
        bad = [r["step"] for r in step_rows
               if isinstance(r.get("loss"), int | float) and not math.isfinite(r["loss"])]
        summary.first_nonfinite_step = min(bad) if bad else None
    else:
        wb = next((o.wandb_summary for o in reversed(slurms) if o.wandb_summary), {})
        if _finite(wb.get("loss")):
            summary.final_loss = float(wb["loss"])
            summary.final_loss_source = "wandb summary (rounded)"
        if _finite(wb.get("global_step")):
            summary.steps = int(wb["global_step"])
    planned_epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    summary.planned_epochs = planned_epochs
    totals = [i.total for _, i in sorted(epochs_info.items()) if i.total]
    if planned_epochs and totals:
        summary.planned_steps = planned_epochs * totals[0]
    elif (planned_epochs and isinstance(config.get("max_steps_per_epoch"), int)
          and not isinstance(config["max_steps_per_epoch"], bool) and config["max_steps_per_epoch"] > 0):
        # stopped before the first progress bar: the config's cap is the only steps-per-epoch known
        summary.planned_steps = planned_epochs * config["max_steps_per_epoch"]
    complete = sum(1 for i in epochs_info.values() if i.complete)
    summary.epochs_done = complete if epochs_info else None
    # training time: sum of the bar's per-epoch elapsed, else SLURM's wall time
    times = [(i.elapsed_s if i.complete else i.last_elapsed_s) for i in epochs_info.values()]
    if times and all(t is not None for t in times):
        summary.train_time_s = float(sum(t for t in times if t is not None))
        summary.train_time_source = "bar"
    elif seffs and seffs[-1].wall_s is not None:
        summary.train_time_s = seffs[-1].wall_s
        summary.train_time_source = "slurm"
    tps = [r["tokens_per_second_per_gpu"] for r in step_rows
           if _finite(r.get("tokens_per_second_per_gpu")) and r["step"] not in warmup]
    summary.tokens_per_second_per_gpu = float(np.mean(tps)) if tps else None
    _fill_memory(summary, step_rows, slurms, gpu_rows)
    utils = [r["utilization_pct"] for r in gpu_rows if _finite(r.get("utilization_pct"))]
    summary.gpu_util_mean_pct = float(np.mean(utils)) if utils else None
    n, source = _n_gpus(slurms, gpu_rows)
    summary.n_gpus, summary.n_gpus_source = n, source
    if summary.train_time_s is not None:
        summary.gpu_hours = summary.train_time_s / 3600.0 * n
    summary.convergence = convergence_verdict(losses) if losses else None


def _fill_memory(summary: tables.RunTraining, step_rows: list[dict], slurms: list[tt.SlurmOutput],
                 gpu_rows: list[dict]) -> None:
    for key in ("peak_memory_reserved", "peak_memory_alloc", "peak_memory_active"):
        vals = [r[key] for r in step_rows if _finite(r.get(key))]
        if vals:
            summary.peak_memory_gib = float(max(vals))
            summary.peak_memory_source = key
            return
    wb = next((o.wandb_summary for o in reversed(slurms) if o.wandb_summary), {})
    for key in ("peak_memory_reserved", "peak_memory_alloc", "peak_memory_active"):
        if _finite(wb.get(key)):
            summary.peak_memory_gib = float(wb[key])
            summary.peak_memory_source = f"wandb summary {key} (rounded)"
            return
    used = [r["memory_used_mib"] for r in gpu_rows if _finite(r.get("memory_used_mib"))]
    if used:
        summary.peak_memory_gib = float(max(used)) / 1024.0
        summary.peak_memory_source = "gpu_metrics.csv memory.used"


def _n_gpus(slurms: list[tt.SlurmOutput], gpu_rows: list[dict]) -> tuple[int, str]:
    for o in reversed(slurms):
        if o.n_gpus:
            return o.n_gpus, o.n_gpus_source or "torchrun"
    for o in reversed(slurms):
        for key in ("world_size", "nproc_per_node", "num_gpus", "n_gpus"):
            v = o.config.get(key)
            if isinstance(v, int) and v > 0:
                return v, f"config {key}"
    ranks = set().union(*(o.ranks for o in slurms)) if slurms else set()
    if ranks:
        return max(ranks) + 1, "rank prefixes"
    ids = {r.get("gpu") for r in gpu_rows if r.get("gpu") is not None}
    if ids:
        return len(ids), "gpu_metrics.csv"
    return 1, "assumed"


def _fill_status(
    summary: tables.RunTraining,
    run: str,
    files: TrainingFiles,
    tt_slurms: list[tt.SlurmOutput],
    all_slurms: list[tt.SlurmOutput],
    disks: list[tt.DiskLog],
    seffs: list[gpu_source.Seff],
    now: float,
    diag: Diagnostics,
) -> None:
    status, evidence, file = _decide_status(summary, files, tt_slurms, all_slurms, disks, seffs, now)
    summary.status = status
    summary.status_evidence = evidence
    summary.status_file = diag.rel(file) if file is not None else None


def _decide_status(
    summary: tables.RunTraining,
    files: TrainingFiles,
    tt_slurms: list[tt.SlurmOutput],
    all_slurms: list[tt.SlurmOutput],
    disks: list[tt.DiskLog],
    seffs: list[gpu_source.Seff],
    now: float,
) -> tuple[tables.RunStatus, str, Path | None]:
    has_steps = summary.steps is not None
    if not tt_slurms and not any(d.steps for d in disks):
        if all_slurms:
            return "missing", "no torchtune output in the SLURM file(s)", all_slurms[-1].path
        return "missing", "no training output found", None
    last = tt_slurms[-1] if tt_slurms else None
    if last is not None:
        decided = _events_status(last)
        if decided is not None and decided[0] != "completed":
            return decided[0], decided[1], last.path
        if decided is not None:
            return "completed", decided[1], last.path
    if has_steps and summary.final_loss is None and summary.final_loss_source != "wandb summary (rounded)":
        src = last.path if last is not None else disks[-1].path
        first = summary.first_nonfinite_step or summary.steps
        text = f"loss is not finite (NaN/inf) from step {first}"
        if first != summary.steps:
            text += f" (last step {summary.steps})"
        return "diverged", text, src
    if last is not None and last.final_checkpoint:
        return "completed", last.final_checkpoint, last.path
    planned = summary.planned_steps
    if planned and has_steps and summary.steps >= planned:
        src = last.path if last is not None else disks[-1].path
        return "completed", f"all {planned} planned steps done (step {summary.steps})", src
    if last is not None:
        line = _failure(last)
        if line:
            return "failed", line, last.path
    for s in reversed(seffs):
        if s.state in _SEFF_STATUS and s.state_line:
            return _SEFF_STATUS[s.state], s.state_line, s.path
    paths = [*files.slurm_outputs, *files.disk_logs]
    mtimes = []
    for p in paths:
        try:
            mtimes.append((p.stat().st_mtime, p))
        except OSError:
            continue
    where = f"step {summary.steps}" if has_steps else "the start"
    if mtimes:
        mtime, newest = max(mtimes)
        age = now - mtime
        stamp = _dt.datetime.fromtimestamp(mtime, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if 0 <= age <= RUNNING_WINDOW_S or (age < 0 and age > -RUNNING_WINDOW_S):
            return "running", f"no end marker; output written {max(age, 0):.0f} s ago (at {where})", newest
        return "failed", (f"output ends at {where} without an end marker or SLURM message "
                          f"(last written {stamp})"), newest
    return "failed", f"output ends at {where} without an end marker", None
