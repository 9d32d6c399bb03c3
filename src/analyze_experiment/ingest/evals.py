"""Evaluation logs → the ``eval_logs``, ``eval_scores`` and ``eval_samples`` tables.

Each log is read by :mod:`analyze_experiment.sources.inspect_log` (in a process pool of two
workers when there are many), attached to its run (given by the caller from the directory
layout) and to a checkpoint epoch by the rules in :func:`epoch_of`, and de-duplicated:
for one run × task × epoch the newest successful log by ``eval.created`` is used, the
others are listed with ``used=False`` and a note (docs/evals.md).
"""

from __future__ import annotations

import gc
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.executor import LOCAL, ExecutorSpec, map_ordered
from analyze_experiment.ingest.eval_consistency import missing_samples, reconcile
from analyze_experiment.progress import Progress, silent
from analyze_experiment.sources import inspect_log

if TYPE_CHECKING:
    from analyze_experiment.ingest.cache import Cache

STAGE = "evals"
POOL_MIN_LOGS = 8
"""Below this many logs a process pool costs more than it saves."""
DEFAULT_WORKERS = 2

_CELL_DIR = re.compile(r"^(?P<task>.+?)_epoch_?(?P<epoch>\d+)$")
_EPOCH_PATH = re.compile(r"(?:^|[/\\])epoch_(?P<epoch>\d+)[/\\]?$")
_MODEL_NAME = re.compile(r"_epoch_(?P<epoch>\d+)$")
_FILE_NAME = re.compile(r"(?:^|[^a-z])epoch[_-]?(?P<epoch>\d+)(?![\d])", re.IGNORECASE)


@dataclass
class EvalFile:
    """One evaluation log found by discovery."""

    run: str
    """Run the directory layout assigns (the caller knows it)."""
    path: Path
    """Absolute path of the ``.eval``/``.json`` file."""
    run_dir: Path | None
    """The run directory (to find cell dirs like ``<run>/eval/<task>_epoch<N>/logs/``)."""


# --- reading (runs in worker processes) --------------------------------------------------


def _read_one(path: str) -> dict[str, Any]:
    """Everything the tables need from one log, or the reason it could not be read.

    The cyclic garbage collector is paused meanwhile: parsing allocates ~10^5 acyclic
    containers per log, and the collector's repeated passes over them cost time for nothing.
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return _read_one_unguarded(path)
    finally:
        if gc_was_on:
            gc.enable()


def _read_one_unguarded(path: str) -> dict[str, Any]:
    try:
        data = inspect_log.read_log(path)
        info = inspect_log.log_record(data)
        cols = inspect_log.sample_columns(data)
        scores = inspect_log.score_records(data)
        if not data.samples_unusable and info["status"] == "success":
            short = missing_samples(scores, cols)
            if short:
                data.samples_unusable = short
                data.problems.append(
                    f"{short}: the per-sample scores of this log are not used for paired tests or intervals; "
                    "its header metrics are used"
                )
        if data.samples_unusable:  # header metrics only: see inspect_log.check_sample_keys
            cols = {k: [] for k in cols}
        else:
            scores, mismatches = reconcile(scores, cols)
            data.problems.extend(mismatches)
        return {
            "ok": True,
            "log": info,
            "scores": scores,
            "partial_scores": _partial_scores(cols) if info["status"] != "success" else [],
            "samples": _block(cols),
            "n_rows": len(cols["score"]),
            "notes": data.notes,
            "problems": data.problems,
            "samples_unusable": data.samples_unusable,
        }
    except inspect_log.LogReadError as e:
        return {"ok": False, "error": str(e)}
    except Exception as e:  # never let one odd file stop the others
        return {"ok": False, "error": f"unexpected {type(e).__name__}: {e}"[:500]}


def _block(cols: dict[str, list[Any]]) -> pa.Table | pd.DataFrame:
    """Per-sample columns of one log as an Arrow table, built in the worker: converting
    ~10^5 Python values to columns is the costliest step of the main process otherwise, and
    Arrow tables pickle as buffers. Columns Arrow cannot type (metadata mixing numbers and
    text) make it a pandas frame instead (object columns)."""
    try:
        return pa.table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pd.DataFrame(cols)


def _read_all(paths: list[str], workers: int | None, cache: Cache | None = None,
              executor: ExecutorSpec = LOCAL, progress: Progress = silent) -> list[dict[str, Any]]:
    """Every log's read result, in order; unchanged logs come from ``cache``."""
    total = len(paths)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        progress("evaluation logs", done, total)

    if not total:
        progress("evaluation logs", 0, 0)
    if cache is None:
        return _read_uncached(paths, workers, executor, tick)
    results: list[dict[str, Any] | None] = []
    todo: list[int] = []
    for i, p in enumerate(paths):
        found, value, _ = cache.get("eval", Path(p))
        results.append(value if found else None)
        if not found:
            todo.append(i)
        else:
            tick()
    for i, res in zip(todo, _read_uncached([paths[i] for i in todo], workers, executor, tick), strict=True):
        results[i] = res
        if res["ok"]:  # an unreadable log is read (and warned about) again next time
            cache.put("eval", Path(paths[i]), res)
    return results  # type: ignore[return-value]


def _read_uncached(paths: list[str], workers: int | None, executor: ExecutorSpec = LOCAL,
                   tick: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    if not paths:
        return []
    if executor.distributed and len(paths) > 1:  # asked for: every log is a task on the cluster
        return map_ordered(executor, _read_one, paths, len(paths), on_result=tick)
    n = DEFAULT_WORKERS if workers is None else workers
    n = max(1, min(n, os.cpu_count() or 1, len(paths)))
    if n == 1 or len(paths) < POOL_MIN_LOGS:
        out = []
        for p in paths:
            out.append(_read_one(p))
            if tick is not None:
                tick()
        return out
    chunk = max(1, len(paths) // (n * 4))
    return map_ordered(executor, _read_one, paths, n, chunksize=chunk, on_result=tick)


# --- mapping --------------------------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _finetuned(meta: dict[str, Any]) -> bool | None:
    for key in ("is_finetuned", "finetuned"):
        v = meta.get(key)
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
    return None


def task_name(raw: str, task_args: dict[str, Any], meta: dict[str, Any]) -> str:
    """The base task name.

    Strips a namespace (``file.py@task`` → ``task``; ``pkg/task`` → ``task`` as inspect-ai's
    ``evals_df`` does), then a ``_<vis_label>`` suffix when ``task_args.vis_label`` or
    ``eval.metadata.vis_label`` names it (``capitalization_rank4`` → ``capitalization``):
    the label identifies the run, not the task, so tasks of different runs stay comparable.

    >>> task_name("tasks.py@capitalization_rank4", {"vis_label": "rank4"}, {})
    'capitalization'
    """
    name = raw.rsplit("@", 1)[-1]
    name = name.split("/", 1)[-1]
    for label in (task_args.get("vis_label"), meta.get("vis_label")):
        if isinstance(label, str) and label and name.endswith(f"_{label}") and len(name) > len(label) + 1:
            return name[: -(len(label) + 1)]
    return name


def epoch_of(
    path: Path, run_dir: Path | None, meta: dict[str, Any], model_args: dict[str, Any], model: str | None
) -> tuple[int | None, str | None]:
    """Checkpoint epoch (0-based) of a log and the rule that decided it.

    Rules, first match wins: ``eval.metadata.epoch`` (``metadata``); a cell directory
    ``<task>_epoch<N>`` between the run directory and the file (``cell_dir``);
    ``model_args.model_path`` ending in ``epoch_N`` (``model_path``); a model name ending in
    ``_epoch_N`` such as ``hf/<run>_epoch_0`` (``model_name``); ``epoch<N>``/``epoch_N`` in the
    file name (``file_name``). A base/control model (``is_finetuned``/``finetuned`` false)
    has no epoch: ``(None, None)``, as when no rule matches.
    """
    if _finetuned(meta) is False:
        return None, None
    e = _as_int(meta.get("epoch"))
    if e is not None and e >= 0:
        return e, "metadata"
    parents = [path.parent, *list(path.parent.parents)[:2]][::-1]  # without a run dir: the 3 nearest
    if run_dir is not None:
        try:
            rel = path.parent.relative_to(run_dir)
            parents = [run_dir / Path(*rel.parts[: i + 1]) for i in range(len(rel.parts))]
        except ValueError:
            pass
    for d in reversed(parents):
        m = _CELL_DIR.match(d.name)
        if m:
            return int(m["epoch"]), "cell_dir"
    mp = model_args.get("model_path")
    if isinstance(mp, str):
        m = _EPOCH_PATH.search(mp)
        if m:
            return int(m["epoch"]), "model_path"
    if isinstance(model, str):
        m = _MODEL_NAME.search(model)
        if m:
            return int(m["epoch"]), "model_name"
    m = _FILE_NAME.search(path.stem)
    if m:
        return int(m["epoch"]), "file_name"
    return None, None


# --- tables ---------------------------------------------------------------------------------


def _created(value: Any) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return pd.NaT
    if ts is pd.NaT:
        return ts
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _partial_scores(samples: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Scores of a log without results (error/cancelled/started): the mean per scorer.

    Sample-epochs are averaged per sample first (inspect-ai's default ``mean`` reducer),
    then over samples; ``stderr`` is the standard error of that mean (ddof=1).
    """
    if not samples["score"]:
        return []
    df = pd.DataFrame({k: samples[k] for k in ("sample_id", "scorer", "score")})
    per_sample = df.groupby(["scorer", "sample_id"], sort=False)["score"].mean().dropna()
    out = []
    for scorer, s in per_sample.groupby(level=0, sort=False):
        n = len(s)
        se = float(s.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        out.append({"scorer": scorer, "metric": "mean", "value": float(s.mean()), "stderr": se, "n": n})
    return out


def _key(rec: dict[str, Any]) -> tuple[str, str, float]:
    e = rec["epoch"]
    return (rec["run"], rec["task"], -1.0 if e is None else float(e))


_OLDEST = pd.Timestamp("1970-01-01", tz="UTC")


def _recency(rec: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """Sort key for "newest": ``eval.created`` (second resolution), then ``stats.completed_at``,
    then the log path, so that ties are broken the same way on every run."""
    created = rec["created"] if not pd.isna(rec["created"]) else _OLDEST
    done = _created(rec["_completed_at"])
    return created, (done if not pd.isna(done) else _OLDEST), rec["log"]


def _choose(logs: list[dict[str, Any]], diag: Diagnostics) -> None:
    """Mark ``used``/``note`` per log: newest success per key, else newest scored partial."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for rec in logs:
        if rec.get("_read"):
            groups.setdefault(_key(rec), []).append(rec)
    for group in groups.values():
        newest_first = sorted(group, key=_recency, reverse=True)
        success = [r for r in newest_first if r["status"] == "success"]
        partial = [r for r in newest_first if r["status"] != "success" and (r["scored_samples"] > 0 or r["_header_scores"])]
        chosen = success[0] if success else (partial[0] if partial else None)
        for r in newest_first:
            if r is chosen:
                r["used"] = True
                if r["status"] != "success" and r["scored_samples"] == 0:
                    n = _fmt(r["completed_samples"])
                    r["note"] = (f"status {r['status']}: partial results from the header's metrics "
                                 f"(n = {n} of {_fmt(r['total_samples'])}); no stored samples")
                    diag.warn(
                        r["_path"],
                        f"evaluation log has status '{r['status']}' and stores no samples; used the metrics its "
                        f"header states (partial results, n = {n} of {_fmt(r['total_samples'])} samples); "
                        "no paired tests for it",
                        stage=STAGE,
                    )
                elif r["status"] != "success":
                    r["note"] = (
                        f"status {r['status']}: partial results, {r['scored_samples']} of "
                        f"{_fmt(r['total_samples'])} samples scored"
                    )
                    diag.warn(
                        r["_path"],
                        f"evaluation log has status '{r['status']}'; used its {r['scored_samples']} scored "
                        f"samples of {_fmt(r['total_samples'])} (partial results)",
                        stage=STAGE,
                    )
                continue
            r["used"] = False
            if chosen is None:
                r["note"] = f"status {r['status']}: no scored samples"
                diag.warn(r["_path"], f"evaluation log has status '{r['status']}' and no scored samples; not used",
                          stage=STAGE)  # fmt: skip
                r["_named"] = True
            else:
                r["note"] = f"duplicate of {chosen['log']} (newer or successful); not used"
                diag.warn(
                    r["_path"],
                    f"{r['run']} × {r['task']} × epoch {_fmt(r['epoch'])} was evaluated more than once; "
                    f"used {chosen['log']} ({chosen['status']}, created {chosen['created']}), set this one aside",
                    severity="info",
                    stage=STAGE,
                )


def _name_unscored(logs: list[dict[str, Any]], diag: Diagnostics) -> None:
    """Every log is accounted for (issue 11): a used log that contributes no score at all
    (no scorer ran, or scoring was skipped) and a successful log without stored samples are
    named, with their status, so "0 warnings" never hides a log."""
    for rec in logs:
        if not rec.get("_read") or rec.get("_named"):
            continue
        header, rows = rec["_header_scores"], rec["_sample_rows"]
        if not header and not rows:
            rec["note"] = rec["note"] or f"status {rec['status']}: no scores"
            diag.warn(
                rec["_path"],
                f"evaluation log has no scores (no scorer ran, or scoring was skipped; status '{rec['status']}'): "
                "nothing from it is in the results",
                stage=STAGE,
            )
        elif rec.get("used") and rec["status"] == "success" and header and not rows and not rec["scored_samples"]:
            rec["note"] = rec["note"] or "no stored samples: header metrics only"
            diag.warn(
                rec["_path"],
                f"evaluation log has status 'success' but stores no samples (written with log_samples off?): its "
                f"header metrics are used (n = {_fmt(rec['completed_samples'])}); no per-sample data, so no paired "
                "tests for it",
                stage=STAGE,
            )


def _fmt(v: Any) -> str:
    return "?" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def collect_evals(
    root: Path, files: Sequence[EvalFile], diag: Diagnostics, *, workers: int | None = None,
    cache: Cache | None = None, executor: ExecutorSpec = LOCAL, progress: Progress = silent,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read every log and build ``(eval_logs, eval_scores, eval_samples)``.

    Args:
        root: the experiment directory (paths in the tables are relative to it).
        files: the logs with the run each belongs to.
        diag: collects a warning per unreadable log, partial log and duplicate.
        workers: processes for reading (default 2; 1 = in this process). A pool is used only
            from :data:`POOL_MIN_LOGS` logs on.
        cache: where unchanged logs' read results are kept (:mod:`analyze_experiment.ingest.cache`);
            None reads every log.
        executor: local processes (default) or a Dask cluster (every log one task).

    Returns:
        The three tables with the columns of ``tables.EVAL_LOGS``, ``tables.EVAL_SCORES`` and
        ``tables.EVAL_SAMPLES``. ``eval_scores``/``eval_samples`` hold only used logs;
        ``eval_logs`` lists every log with ``used``/``note``.
    """
    root = Path(root)
    files = list(files)
    reads = _read_all([str(f.path) for f in files], workers, cache, executor, progress)
    logs: list[dict[str, Any]] = []
    payload: dict[int, dict[str, Any]] = {}
    for f, res in zip(files, reads, strict=True):
        rec = _log_record(f, res, diag)
        if rec["_read"]:
            payload[id(rec)] = res
        logs.append(rec)
    _choose(logs, diag)
    score_rows, sample_blocks = _used_rows(logs, payload)
    _name_unscored(logs, diag)
    for rec in logs:
        for key in ("_read", "_path", "_completed_at", "_header_scores", "_sample_rows", "_named"):
            rec.pop(key, None)

    eval_logs = tables.frame(tables.EVAL_LOGS, logs)
    eval_scores = tables.frame(tables.EVAL_SCORES, score_rows)
    eval_samples = _ordered(tables.EVAL_SAMPLES, sample_blocks)
    tables.typed(eval_samples)  # (eval_logs and eval_scores: typed by tables.frame)
    eval_samples = tables.compact(eval_samples)
    diag.act(
        "read evaluation logs",
        f"{len(files)} logs, {int(eval_logs['used'].sum())} used",
        result=f"{len(eval_scores)} score rows, {len(eval_samples)} sample rows",
    )
    return eval_logs, eval_scores, eval_samples


def _log_record(f: EvalFile, res: dict[str, Any], diag: Diagnostics) -> dict[str, Any]:
    """One row of ``eval_logs`` for a log as read (its notes and problems warned about); the
    ``_``-keys are working values for choosing between logs, dropped before the table."""
    rel = diag.rel(f.path) or str(f.path)
    if not res["ok"]:
        diag.warn(f.path, f"evaluation log not read: {res['error']}; skipped", severity="error", stage=STAGE)
        return {"log": rel, "run": f.run, "used": False, "note": f"unreadable: {res['error']}", "_read": False}
    info = res["log"]
    for note in res["notes"]:
        diag.warn(f.path, note, severity="info", stage=STAGE)
    for problem in res["problems"]:
        diag.warn(f.path, problem, stage=STAGE)
    epoch, source = epoch_of(Path(f.path), f.run_dir, info["eval_metadata"], info["model_args"], info["model"])
    return {
        "log": rel,
        "run": f.run,
        "task": task_name(info["task_raw"], info["task_args"], info["eval_metadata"]),
        "epoch": epoch,
        "epoch_source": source,
        "model": info["model"],
        "status": info["status"],
        "created": _created(info["created"]),
        **{k: info[k] for k in ("total_samples", "completed_samples", "errored_samples", "input_tokens",
                                "output_tokens", "total_tokens", "duration_s", "eval_epochs")},
        "used": False,
        "note": None,
        "scored_samples": info["scored_samples"],
        "finetuned": _finetuned(info["eval_metadata"]),
        "task_raw": info["task_raw"],
        "model_args": _jsonish(info["model_args"]),
        "task_args": _jsonish(info["task_args"]),
        "metadata": _jsonish(info["eval_metadata"]),
        "format": info["format"],
        "source": info["source"],
        "error_message": info["error_message"],
        "_read": True,
        "_header_scores": bool(res["scores"]),
        "_sample_rows": res["n_rows"],
        "_completed_at": info["completed_at"],
        "_path": f.path,
    }  # fmt: skip


def _used_rows(logs: list[dict[str, Any]], payload: dict[int, dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], list[pa.Table | pd.DataFrame]]:
    """Score rows and per-sample blocks of the logs in use; a partial log gives the scores of
    its stored samples (inspect's own metrics when it stored none)."""
    score_rows: list[dict[str, Any]] = []
    sample_blocks: list[pa.Table | pd.DataFrame] = []
    for rec in logs:
        if not rec.get("used"):
            continue
        res = payload[id(rec)]
        ident = {"run": rec["run"], "task": rec["task"], "epoch": rec["epoch"], "log": rec["log"]}
        partial = rec["status"] != "success"
        scores = res["partial_scores"] if partial else res["scores"]
        if partial and not scores:  # cancelled/errored, no stored samples: inspect's own metrics
            scores = res["scores"]
        score_rows.extend({**ident, **s, "status": rec["status"], "partial": partial} for s in scores)
        if res["n_rows"]:
            sample_blocks.append(_with_ident(res["samples"], ident, res["n_rows"]))
    return score_rows, sample_blocks


_IDENT_TYPES = {"run": pa.string(), "task": pa.string(), "epoch": pa.float64(), "log": pa.string()}


def _with_ident(block: pa.Table | pd.DataFrame, ident: dict[str, Any], n: int) -> pa.Table | pd.DataFrame:
    if isinstance(block, pd.DataFrame):
        return block.assign(**{k: [v] * n for k, v in ident.items()})
    for k, v in ident.items():  # one scalar repeated: a list of n Python objects cost ~5 ms a log
        block = block.append_column(k, pa.repeat(pa.scalar(v, _IDENT_TYPES[k]), n))
    return block


def _ordered(columns: list[str], blocks: list[pa.Table | pd.DataFrame]) -> pd.DataFrame:
    """:func:`tables.frame` for per-log column blocks: joined, spec columns first, extras after.

    Arrow blocks are concatenated by Arrow (missing columns filled with nulls) and converted
    once; when a column's type differs between logs, or a block is already pandas, pandas
    concatenates them (mixed types become object columns).
    """
    if not blocks:
        return tables.frame(columns)
    df: pd.DataFrame | None = None
    if all(isinstance(b, pa.Table) for b in blocks):
        try:
            df = pa.concat_tables(blocks, promote_options="default").to_pandas()
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            df = None
    if df is None:
        frames = [b.to_pandas() if isinstance(b, pa.Table) else b for b in blocks]
        df = pd.concat(frames, ignore_index=True)
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(dtype="object")
    return df[columns + [c for c in df.columns if c not in columns]]


def _jsonish(value: Any) -> str | None:
    if not value:
        return None
    return inspect_log.raw_str(value)
