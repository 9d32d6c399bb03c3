"""``load(path) -> Experiment``: design, discovery and ingestion into tidy tables.

The order mirrors DESIGN.md §2: read the design, discover runs and files, parse every
run's training output and every evaluation log, then join them into one ``runs`` table.
Every problem goes to the experiment's :class:`Diagnostics`; nothing here raises for bad
input (only for a path that is not a directory, which is a usage error).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.executor import LOCAL, ExecutorSpec, map_ordered
from analyze_experiment.experiment import Design, Experiment, RunSpec
from analyze_experiment.ingest.design import params_from_run_name, read_design
from analyze_experiment.ingest.design_facts import check_facts
from analyze_experiment.ingest.design_values import coerce_value
from analyze_experiment.ingest.discover import Discovery, discover
from analyze_experiment.ingest.evals import EvalFile, collect_evals
from analyze_experiment.ingest.records import records_frame
from analyze_experiment.ingest.training import (
    TrainingFiles,
    TrainingResult,
    find_training_files,
    read_training,
)
from analyze_experiment.progress import Progress, silent

if TYPE_CHECKING:
    from analyze_experiment.ingest.cache import Cache

DESIGN_FILES = ("experiment_summary.yaml", "experiment_summary.md")

# Parsing in worker processes pays off only when there is real work: below this many bytes
# of training output the pool's start-up (importing pandas twice) costs more than it saves.
PARALLEL_TRAINING_BYTES = 64 * 1024 * 1024

# Design parameter -> where torchtune's resolved config keeps it (dotted path).
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "lora_rank": ("model.lora_rank",),
    "lora_alpha": ("model.lora_alpha",),
    "learning_rate": ("optimizer.lr",),
    "batch_size": ("batch_size",),
    "epochs": ("epochs",),
    "gradient_accumulation_steps": ("gradient_accumulation_steps",),
    "seed": ("seed",),
    "max_steps_per_epoch": ("max_steps_per_epoch",),
}


class NotADirectory(ValueError):
    """The path given is not an existing directory (a usage error, exit code 2)."""


def load(
    path: str | os.PathLike[str] = ".", *, now: float | None = None, cache: Cache | None = None,
    executor: ExecutorSpec = LOCAL, progress: Progress = silent,
) -> Experiment:
    """Read an experiment directory into an :class:`Experiment`.

    Args:
        path: the experiment directory (holding ``experiment_summary.md``/``.yaml``), or any
            directory whose subdirectories hold runs.
        now: the time used to decide whether a log is still being written (tests pin it).
        cache: keeps each input file's parsed result between runs (:mod:`analyze_experiment.ingest.cache`);
            None (the default) reads every file.
        executor: where files are parsed: local processes (default) or a Dask cluster
            (:mod:`analyze_experiment.executor`); the result is the same either way.
        progress: called as ``progress(stage, done, total)`` after each file read
            (:mod:`analyze_experiment.progress`); the CLI draws its bar from it.

    Returns:
        The experiment with its design, tidy tables and the warnings met on the way.

    Raises:
        NotADirectory: ``path`` does not exist or is not a directory.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotADirectory(f"{root} is not a directory")
    root = root.resolve()
    diag = Diagnostics(root=root)

    diag.act("START", f"Analysing {root}")
    design, has_doc = _read_design(root, diag, cache)
    found = _discover(root, design, has_doc, diag)
    training, jobs = _read_all_training(root, design, found, diag, now=now, cache=cache, executor=executor,
                                        progress=progress)
    eval_files, (eval_logs, eval_scores, eval_samples) = _read_evals(root, found, diag, cache=cache,
                                                                      executor=executor, progress=progress)
    inputs = [str(root / n) for n in DESIGN_FILES if (root / n).is_file()]
    inputs += [str(p) for f in jobs.values() for p in (*f.slurm_outputs, *f.disk_logs, *f.gpu_metrics, *f.seff)]
    inputs += [str(f.path) for f in eval_files]

    runs, param_names, run_params, param_sources, conflicts = _runs_table(design, found, training, diag)
    exp = Experiment(
        root=root,
        layout=found.layout,
        design=design,
        has_design_doc=has_doc,
        runs=runs,
        train_steps=tables.compact(records_frame(tables.TRAIN_STEPS, [t.steps for t in training.values()])),
        train_epochs=tables.frame(tables.TRAIN_EPOCHS, (r for t in training.values() for r in t.epochs)),
        gpu=tables.frame(tables.GPU, (r for t in training.values() for r in t.gpu)),
        eval_logs=eval_logs,
        eval_scores=eval_scores,
        eval_samples=eval_samples,
        diagnostics=diag,
        param_names=param_names,
        run_params=run_params,
        inputs=inputs,
        param_sources=param_sources,
        param_conflicts=conflicts,
    )
    check_facts(exp, [f.path for f in eval_files])
    diag.act(
        "LOADED",
        f"{len(runs)} runs, {len(exp.train_steps)} training steps, {len(eval_scores)} eval metric values",
        result=f"{len(diag.warnings)} warnings",
    )
    return exp


def _read_evals(
    root: Path, found: Discovery, diag: Diagnostics, *, cache: Cache | None, executor: ExecutorSpec,
    progress: Progress,
) -> tuple[list[EvalFile], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """Every run's evaluation logs read into the three eval tables, logged (after the cache's
    account of both readings)."""
    eval_files = [
        EvalFile(run=name, path=p, run_dir=loc.run_dir)
        for name, loc in found.runs.items()
        for p in loc.eval_files
    ]
    eval_logs, eval_scores, eval_samples = collect_evals(root, eval_files, diag, cache=cache, executor=executor,
                                                         progress=progress)
    if cache is not None:  # what the cache saved, training and evaluation logs alike
        cache.report(diag)
    diag.act(
        "READ_EVALS",
        f"Read {len(eval_logs)} evaluation logs",
        result=(
            f"{int(eval_logs['used'].fillna(False).astype(bool).sum()) if len(eval_logs) else 0} used, "
            f"{len(eval_scores)} metric values, {len(eval_samples)} per-sample scores"
        ),
    )
    return eval_files, (eval_logs, eval_scores, eval_samples)


def _read_design(root: Path, diag: Diagnostics, cache: Cache | None = None) -> tuple[Design, bool]:
    """The design and whether a design document was found, logged."""
    design, has_doc = _cached_design(root, diag, cache)
    if has_doc:
        diag.act(
            "READ_DESIGN",
            f"Read design document {design.source}",
            details=[
                f"experiment: {design.name}",
                f"variables: {', '.join(f'{k}={v}' for k, v in design.variables.items()) or 'none'}",
                f"runs designed: {len(design.runs)}",
            ],
        )
    else:
        diag.act(
            "READ_DESIGN",
            "No design document (experiment_summary.md/.yaml): analysing every run directory found",
        )
    return design, has_doc


def _cached_design(root: Path, diag: Diagnostics, cache: Cache | None) -> tuple[Design, bool]:
    """:func:`read_design`, or its stored result and warnings while the design documents keep
    their size and ``mtime_ns`` and the package is unchanged (parsing a 100-run YAML design
    cost a re-run more than reading every other cached input). Not counted in the cache's file
    tally, which counts training and evaluation files."""
    paths = [p for p in (root / n for n in DESIGN_FILES) if p.is_file()]
    if cache is None or not paths:
        return read_design(root, diag)
    from analyze_experiment.ingest.cache import package_digest

    name, extra = f"{root}\0design", [package_digest(), [str(p) for p in paths]]
    found, value, warnings = cache.get_group("design", name, paths, extra)
    if found and isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Design):
        diag.warnings.extend(warnings)
        return value
    sub = Diagnostics(root=diag.root)
    value = read_design(root, sub)
    diag.extend(sub)
    cache.put_group("design", name, paths, value, sub.warnings, extra)
    return value


def _discover(root: Path, design: Design, has_doc: bool, diag: Diagnostics) -> Discovery:
    """The runs on disk, with a warning for each run only the design or only the disk has."""
    found = discover(root, design, diag)
    diag.act(
        "DISCOVER",
        f"Layout {found.layout}: {len(found.runs)} runs",
        result=(
            f"designed but absent: {', '.join(found.in_design_only) or 'none'}; "
            f"on disk but not designed: {', '.join(found.on_disk_only) or 'none'}"
        ),
    )
    for name in found.in_design_only:
        diag.warn(None, f"run {name!r} is in the design but has no directory or logs on disk", stage="discover")
    if has_doc:
        for name in found.on_disk_only:
            diag.warn(
                diag.rel(found.runs[name].run_dir) if found.runs[name].run_dir else None,
                f"run {name!r} was found on disk but is not in the design; analysed with parameters "
                "read from its name",
                stage="discover",
            )
    return found


# --- training ----------------------------------------------------------------------------


def _read_one(
    root: Path, now: float | None, cache: Cache | None, job: tuple[str, TrainingFiles]
) -> tuple[TrainingResult, Diagnostics, Cache | None]:
    """Worker body: parse one run with its own collector (merged by the caller)."""
    d = Diagnostics(root=root)
    return read_training(job[0], job[1], d, now=now, cache=cache), d, cache


def _read_all_training(
    root: Path, design: Design, found: Discovery, diag: Diagnostics, *, now: float | None,
    cache: Cache | None = None, executor: ExecutorSpec = LOCAL, progress: Progress = silent,
) -> tuple[dict[str, TrainingResult], dict[str, TrainingFiles]]:
    jobs: dict[str, TrainingFiles] = {}
    for name, loc in found.runs.items():
        spec = design.run(name)
        if spec is not None and spec.type in ("control", "eval-only"):
            continue  # nothing was trained in this experiment
        jobs[name] = find_training_files(loc.run_dir, loc.training_dirs, experiment=root)

    size = sum(_size(p) for f in jobs.values() for p in (*f.slurm_outputs, *f.disk_logs))
    out: dict[str, TrainingResult] = {}
    now = time.time() if now is None else now
    local_pays = size > PARALLEL_TRAINING_BYTES and (os.cpu_count() or 1) > 1
    if len(jobs) > 1 and (executor.distributed or local_pays):
        done = itertools.count(1)
        results = map_ordered(executor, functools.partial(_read_one, root, now, cache), list(jobs.items()),
                              min(len(jobs), os.cpu_count() or 2),
                              on_result=lambda: progress("training logs", next(done), len(jobs)))
        for name, (res, d, worker_cache) in zip(jobs, results, strict=True):
            diag.extend(d)
            out[name] = res
            if cache is not None and worker_cache is not None:
                cache.merge(worker_cache)
    else:
        for i, (name, files) in enumerate(jobs.items(), start=1):
            out[name] = read_training(name, files, diag, now=now, cache=cache)
            progress("training logs", i, len(jobs))
    if not jobs:
        progress("training logs", 0, 0)
    return out, jobs


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


# --- runs table ------------------------------------------------------------------------------


def _runs_table(
    design: Design, found: Discovery, training: dict[str, TrainingResult], diag: Diagnostics
) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]], dict[str, dict[str, str]], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    all_params: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    conflicts: list[dict[str, Any]] = []
    for name, loc in found.runs.items():
        spec = design.run(name)
        source = "design"
        if spec is None:
            spec = RunSpec(name=name, params=params_from_run_name(name))
            source = "run name"
            if name.endswith("_base"):
                spec.type = "control"
        params = dict(spec.params)
        all_params[name] = params
        sources[name] = dict.fromkeys(params, source)
        rec: dict[str, Any] = {
            "run": name,
            "type": spec.type,
            "model": spec.model,
            "in_design": design.run(name) is not None,
            "on_disk": loc.run_dir is not None,
            "run_dir": diag.rel(loc.run_dir) if loc.run_dir else None,
        }
        res = training.get(name)
        if res is not None:
            rec.update(res.summary.as_record())
            conflicts.extend(_cross_check(name, params, res, diag, source=source, sources=sources[name]))
        records.append(rec)

    param_names = _param_names(design, all_params)
    for rec in records:
        for p in param_names:
            rec[p] = all_params[rec["run"]].get(p)
    runs = tables.frame(tables.RUNS, records)
    for col in ("in_design", "on_disk"):
        runs[col] = runs[col].astype(bool)
    return runs, param_names, all_params, sources, conflicts


def _param_names(design: Design, all_params: dict[str, dict[str, Any]]) -> list[str]:
    """Design variables first, then any other parameter whose value differs between runs."""
    names = list(design.variables)
    keys: list[str] = []
    for params in all_params.values():
        for k in params:
            if k not in names and k not in keys:
                keys.append(k)
    for k in keys:
        values = {repr(p.get(k)) for p in all_params.values() if k in p}
        if len(values) > 1:
            names.append(k)
    return names


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    cur: Any = config
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _same(a: Any, b: Any) -> bool:
    """Whether a design value and a config value are the same setting.

    Numbers written as text compare as numbers: YAML 1.1 reads ``lr: 1e-5`` (no dot) as the
    string ``"1e-5"`` while torchtune reads it as a float, and designs quote values (``"0.0001"``).

    >>> _same("1e-5", 1e-05), _same(1e-05, "1.0e-05"), _same("2e-5", 1e-5), _same(8, "8")
    (True, True, False, True)
    """
    a, b = coerce_value(a), coerce_value(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return str(a) == str(b)


def _cross_check(
    run: str, params: dict[str, Any], res: TrainingResult, diag: Diagnostics, *, source: str = "design",
    sources: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Warn when the training config disagrees with the design or the run name; return the conflicts.

    A mislabelled run is a wrong number. A value the design states is kept (and the conflict
    leads the report's Data Quality section); a value only guessed from the run's name never
    overrides what the training config recorded: the config's value replaces it in ``params``.
    The seed is checked against the seed the training really used (torchtune's ``Setting
    manual seed`` line) when the config does not state one.
    """
    out: list[dict[str, Any]] = []
    if not res.config and res.summary.train_seed is None:
        return out
    for key, paths in CONFIG_KEYS.items():
        if key not in params:
            continue
        for dotted in paths:
            got = _lookup(res.config, dotted)
            if key == "seed" and got is None:
                got, dotted = res.summary.train_seed, "local seed"
            if got is None:
                continue
            if _same(got, params[key]):
                if source == "run name" and sources is not None:
                    sources[key] = "training config"  # the name's guess is what the config recorded
                continue
            value = params[key]
            if source == "run name":
                used = coerce_value(got)
                params[key] = used
                if sources is not None:
                    sources[key] = "training config"
                text = (f"run {run!r}: {key}={value!r} is from the run name, but the training config has "
                        f"{dotted}={got!r}; the training config's value is used")
            else:
                used = value
                text = (f"run {run!r}: the design says {key}={value!r} but the training config has "
                        f"{dotted}={got!r}; the design's value is used")
            diag.warn(res.summary.training_log, text, stage="training")
            out.append({"run": run, "param": key, "value": value, "source": source, "config_key": dotted,
                        "config_value": coerce_value(got), "used": used,
                        "file": res.summary.training_log})
    return out
