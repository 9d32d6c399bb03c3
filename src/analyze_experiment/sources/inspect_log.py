"""Fast reader of one inspect-ai evaluation log (``.eval`` zip or legacy ``.json``).

inspect-ai's own readers validate every sample with pydantic; reading ``header.json`` +
``summaries.json`` straight from the zip with orjson gives the same numbers 20-100x
faster (issue 4). The reader therefore:

1. opens the zip's central directory with :mod:`zipfile` but decompresses members itself
   (Stored, Deflate, and zstd = method 93 through :mod:`zstandard`, which Python 3.11's
   ``zipfile`` cannot), checking each member's declared and actual size against
   :data:`MAX_MEMBER_BYTES` *before* trusting it (zip bombs) and its CRC-32;
2. reads ``header.json`` + ``summaries.json``; falls back to ``samples/*.json`` when the
   summaries are absent, and to ``_journal/start.json`` + ``_journal/summaries/*.json`` for a
   log still being written (status ``started``);
3. hands legacy ``.json`` logs, and zips whose layout it does not recognise (an unknown
   compression method, no header and no journal), to ``inspect_ai.log.read_eval_log``.

Corrupt input raises :class:`LogReadError` with a reason a user can act on; the caller turns
it into a warning. Nothing here prints or touches pandas, so it runs cheaply in worker
processes.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import zstandard

HEADER_JSON = "header.json"
SUMMARIES_JSON = "summaries.json"
SAMPLES_DIR = "samples/"
JOURNAL_START = "_journal/start.json"
JOURNAL_SUMMARIES = "_journal/summaries/"

MAX_MEMBER_BYTES = 1 << 30
"""Largest decompressed zip member we accept (1 GiB). A 2,000-sample ``summaries.json`` is
~2 MB and a full sample rarely exceeds a few MB; anything declaring or inflating to more is
treated as a zip bomb and the whole log is refused."""

MAX_JSON_LOG_BYTES = 2 << 30
"""Largest legacy ``.json`` log handed to inspect-ai (2 GiB): it is parsed fully in memory."""

ZIP_STORED, ZIP_DEFLATED, ZIP_ZSTANDARD = 0, 8, 93
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20


class LogReadError(Exception):
    """A log that cannot be read; the message says why (shown to the user as is)."""


class _NeedsInspect(Exception):
    """The fast path does not know this layout: let inspect-ai read the file."""


@dataclass
class LogData:
    """What one log holds, as plain JSON-shaped dicts (cheap to pickle between processes).

    ``header`` has inspect-ai's header keys (``eval``, ``status``, ``stats``, ``results``,
    ``error``); ``samples`` are sample summaries (``id``, ``epoch``, ``target``, ``metadata``,
    ``scores``, ``error``, ``model_usage``); ``source`` names where the samples came from:
    ``summaries`` | ``samples`` | ``journal`` | ``inspect``.
    """

    path: str
    format: str  # "eval" | "json"
    header: dict[str, Any]
    samples: list[dict[str, Any]]
    source: str
    notes: list[str] = field(default_factory=list)
    """Informational remarks (shown as ``info`` in Data Quality)."""
    problems: list[str] = field(default_factory=list)
    """Faults that change what the log can be used for (shown as warnings; ``--strict`` sees them)."""
    samples_unusable: str | None = None
    """Why the per-sample scores must not be used (duplicate or colliding ids), or None. The
    header's metrics stay usable; paired tests cannot rest on samples that collapse."""


# --- JSON -------------------------------------------------------------------------------


def loads(data: bytes, what: str) -> Any:
    """Parse JSON with orjson; fall back to :mod:`json` for the bare ``NaN``/``Infinity``
    inspect-ai writes for undefined scores (orjson rejects them)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise LogReadError(f"{what} is not valid JSON ({e})") from None


# --- zip members --------------------------------------------------------------------------


def _read_member(fp: io.BufferedReader, info: _Entry, limit: int) -> bytes:
    """Decompress one member ourselves, with size and CRC checks (see module docstring)."""
    name = info.filename
    if info.file_size > limit:
        raise LogReadError(
            f"member {name} declares {info.file_size:,} bytes, more than the {limit:,}-byte limit "
            "(possible zip bomb); log refused"
        )
    if info.flag_bits & 0x1:
        raise LogReadError(f"member {name} is encrypted")
    fp.seek(info.header_offset)
    head = fp.read(_LOCAL_HEADER.size)
    if len(head) < _LOCAL_HEADER.size or head[:4] != _LOCAL_MAGIC:
        raise LogReadError(f"member {name}: bad local header (truncated or corrupt zip)")
    fields = _LOCAL_HEADER.unpack(head)
    fp.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
    raw = fp.read(info.compress_size)
    if len(raw) < info.compress_size:
        raise LogReadError(f"member {name} is truncated ({len(raw):,} of {info.compress_size:,} bytes)")
    method = info.compress_type
    try:
        if method == ZIP_STORED:
            data = raw
        elif method == ZIP_DEFLATED:
            data = zlib.decompressobj(-15).decompress(raw, limit + 1)
        elif method == ZIP_ZSTANDARD:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
            parts, size = [], 0
            while size <= limit:
                chunk = reader.read(_CHUNK)
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
            data = b"".join(parts)
        else:
            raise _NeedsInspect(f"member {name} uses compression method {method}")
    except (zlib.error, zstandard.ZstdError) as e:
        raise LogReadError(f"member {name} cannot be decompressed ({e})") from None
    if len(data) > limit:
        raise LogReadError(
            f"member {name} inflates past the {limit:,}-byte limit (zip bomb); log refused"
        )
    if len(data) != info.file_size:
        raise LogReadError(f"member {name} has {len(data):,} bytes, the zip declares {info.file_size:,}")
    if zlib.crc32(data) != info.CRC:
        raise LogReadError(f"member {name} fails its CRC check (corrupt zip)")
    return data


def _journal_index(name: str) -> int:
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(stem) if stem.isdigit() else -1


def _dedupe(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Last record wins per (str(id), epoch), as inspect-ai's ``_dedupe_summaries``."""
    by_key: dict[tuple[str, Any], dict[str, Any]] = {}
    for s in summaries:
        by_key[(str(s.get("id")), s.get("epoch"))] = s
    return list(by_key.values())


def _id_text(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_sample_keys(data: LogData) -> None:
    """Duplicate sample records, then the last record per (id, epoch) kept (issue 12).

    inspect-ai keeps the last record per ``(str(id), epoch)``: a requeued sample's re-run is
    recorded after its superseded attempt. That is right when the earlier records carry no
    scores (the superseded attempts; an ``info`` note). Two *scored* records of one key, or
    ids that differ only in type (``1`` and ``"1"``), mean the per-sample data cannot be
    trusted: keeping one would silently shrink the paired n (200 → 1) while the header still
    says 200. Then :attr:`LogData.samples_unusable` is set; the header's metrics stay usable.
    """
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for rec in data.samples:
        groups.setdefault((str(rec.get("id")), rec.get("epoch")), []).append(rec)
    if len(groups) == len(data.samples):
        return
    collide: list[str] = []
    scored_twice: list[str] = []
    superseded = 0
    for (_, epoch), recs in groups.items():
        if len(recs) == 1:
            continue
        raw_ids = {(type(r.get("id")).__name__, _id_text(r.get("id"))) for r in recs}
        if len(raw_ids) > 1:
            collide.append(" and ".join(sorted(t for _, t in raw_ids)) + f" (epoch {epoch})")
        elif sum(1 for r in recs if r.get("scores")) > 1:
            scored_twice.append(f"{_id_text(recs[0].get('id'))} (epoch {epoch}) ×{len(recs)}")
        else:
            superseded += len(recs) - 1
    data.samples = _dedupe(data.samples)
    reasons = []
    if scored_twice:
        reasons.append(
            f"{len(scored_twice)} sample id(s) appear more than once with scores in the same epoch "
            f"(e.g. {', '.join(scored_twice[:3])})"
        )
    if collide:
        reasons.append(
            f"{len(collide)} sample id(s) collide once read as text (e.g. {', '.join(collide[:3])})"
        )
    if reasons:
        data.samples_unusable = "; ".join(reasons)
        data.problems.append(
            f"{data.samples_unusable}: the per-sample scores of this log are not used for paired tests "
            "or intervals (they would collapse to fewer samples than the log holds); its header metrics are used"
        )
    if superseded:
        data.notes.append(
            f"{superseded} superseded sample record(s) without scores (an earlier attempt of a sample that "
            "was run again): the later record is used, as inspect-ai does"
        )


def check_sample_epochs(data: LogData) -> None:
    """Records whose ``epoch`` lies outside ``1..eval.config.epochs`` are dropped and named.

    A log configured for 1 epoch that holds epoch-2 records would otherwise change the
    per-sample means and the paired data silently (issue 12).
    """
    config = data.header.get("eval", {}).get("config")
    planned = config.get("epochs") if isinstance(config, dict) else None
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 1:
        return  # not stated (older logs): nothing to check against
    keep, extra = [], []
    for rec in data.samples:
        e = rec.get("epoch")
        if isinstance(e, int) and not isinstance(e, bool) and not 1 <= e <= planned:
            extra.append(e)
        else:
            keep.append(rec)
    if extra:
        data.samples = keep
        epochs = ", ".join(str(e) for e in sorted(set(extra))[:5])
        data.problems.append(
            f"{len(extra)} sample record(s) of epoch {epochs}, but the log's configuration says "
            f"{planned} epoch(s): those records are not used"
        )


def _summary_list(data: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(s, dict) and "id" in s for s in data):
        raise LogReadError(f"{what} is not a list of sample summaries (wrong shape)")
    return data


def _check_header(header: Any, what: str) -> dict[str, Any]:
    if not isinstance(header, dict) or not isinstance(header.get("eval"), dict):
        raise LogReadError(f"{what} has no 'eval' object (wrong shape)")
    if not isinstance(header["eval"].get("task"), str):
        raise LogReadError(f"{what} has no task name (wrong shape)")
    for key in ("results", "stats"):
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise LogReadError(f"{what}: '{key}' is not an object (wrong shape)")
    for key in ("task_args", "model_args", "metadata", "config", "dataset"):
        value = header["eval"].get(key)
        if value and not isinstance(value, dict):  # read as mappings further on
            raise LogReadError(f"{what}: 'eval.{key}' is not an object (wrong shape)")
    return header


def _sample_as_summary(sample: dict[str, Any]) -> dict[str, Any]:
    """The summary fields of a full ``samples/*.json`` record."""
    keys = ("id", "epoch", "target", "metadata", "scores", "error", "model_usage", "limit")
    return {k: sample.get(k) for k in keys}


class _Entry(NamedTuple):
    """The central-directory fields we use (the names of :class:`zipfile.ZipInfo`)."""

    filename: str
    compress_type: int
    flag_bits: int
    CRC: int
    compress_size: int
    file_size: int
    header_offset: int


_EOCD = struct.Struct("<4s4H2LH")
_CDIR = struct.Struct("<4s6H3L5H2L")
_EOCD_MAGIC, _CDIR_MAGIC = b"PK\x05\x06", b"PK\x01\x02"
_U32, _U16 = 0xFFFFFFFF, 0xFFFF


def _central_directory(fp: io.BufferedReader, size: int) -> tuple[bytes, int] | None:
    """The central directory bytes and entry count, or ``None`` for ZIP64/odd archives."""
    tail_len = min(size, _EOCD.size + _U16)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(_EOCD_MAGIC)
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    _, _, _, _, n, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    if n == _U16 or cd_size == _U32 or cd_offset == _U32 or cd_offset + cd_size > size:
        return None
    fp.seek(cd_offset)
    return fp.read(cd_size), n


def _entry_at(cd: bytes, pos: int) -> tuple[_Entry, int] | None:
    if pos < 0 or pos + _CDIR.size > len(cd):
        return None
    f = _CDIR.unpack_from(cd, pos)
    if f[0] != _CDIR_MAGIC:
        return None
    name_len, extra_len, comment_len = f[10], f[11], f[12]
    crc, csize, usize, offset = f[7], f[8], f[9], f[16]
    if _U32 in (csize, usize, offset):
        return None
    start = pos + _CDIR.size
    name = cd[start : start + name_len].decode("utf-8", "replace")
    return _Entry(name, f[4], f[3], crc, csize, usize, offset), start + name_len + extra_len + comment_len


def _find_entries(cd: bytes, names: tuple[str, ...]) -> dict[str, _Entry] | None:
    """Look up a few members by name without walking thousands of ``samples/*`` entries:
    the last occurrence of the name, checked to be a whole entry's name. ``None`` when any
    is missing or ambiguous (the caller then parses the whole directory)."""
    out = {}
    for name in names:
        raw = name.encode()
        pos = cd.rfind(raw)
        hit = _entry_at(cd, pos - _CDIR.size) if pos >= 0 else None
        if hit is None or hit[0].filename != name:
            return None
        out[name] = hit[0]
    return out


def _entries_fast(cd: bytes, n: int) -> dict[str, _Entry] | None:
    """Parse the whole central directory (zipfile builds a ZipInfo per member, ~10x slower)."""
    out: dict[str, _Entry] = {}
    pos = 0
    for _ in range(n):
        hit = _entry_at(cd, pos)
        if hit is None:
            return None
        entry, pos = hit
        out[entry.filename] = entry  # a re-written member appears twice: the last one wins
    return out


def _entries(path: Path, fp: io.BufferedReader, wanted: tuple[str, ...] = ()) -> dict[str, _Entry]:
    """Members by name: only ``wanted`` when all are found directly, else every member."""
    found = _central_directory(fp, path.stat().st_size)
    if found is not None:
        cd, n = found
        if wanted:
            few = _find_entries(cd, wanted)
            if few is not None:
                return few
        every = _entries_fast(cd, n)
        if every is not None:
            return every
    try:
        with zipfile.ZipFile(path) as zf:
            return {
                i.filename: _Entry(i.filename, i.compress_type, i.flag_bits, i.CRC, i.compress_size,
                                   i.file_size, i.header_offset)
                for i in zf.infolist()
            }  # fmt: skip
    except zipfile.BadZipFile as e:
        raise LogReadError(f"not a readable zip ({e}; truncated or not an .eval file)") from None


def _read_zip(path: Path, limit: int) -> LogData:
    with open(path, "rb") as fp:
        infos = _entries(path, fp, (HEADER_JSON, SUMMARIES_JSON))

        def member(name: str) -> Any:
            return loads(_read_member(fp, infos[name], limit), f"{name}")

        def from_samples() -> list[dict[str, Any]]:
            names = [n for n in infos if n.startswith(SAMPLES_DIR) and n.endswith(".json")]
            return [_sample_as_summary(_check_sample(member(n), n)) for n in names]

        notes: list[str] = []
        if HEADER_JSON in infos:
            header = _check_header(member(HEADER_JSON), HEADER_JSON)
            if SUMMARIES_JSON in infos:
                return LogData(
                    str(path), "eval", header, _summary_list(member(SUMMARIES_JSON), SUMMARIES_JSON), "summaries",
                )
            samples = from_samples()
            if samples:
                notes.append("no summaries.json: per-sample scores read from samples/*.json")
            return LogData(str(path), "eval", header, samples, "samples", notes)
        if JOURNAL_START in infos:
            start = member(JOURNAL_START)
            header = _check_header(start, JOURNAL_START)
            header = {"eval": header["eval"], "plan": header.get("plan"), "status": "started",
                      "results": None, "stats": None, "error": None}  # fmt: skip
            journal = sorted(
                (n for n in infos if n.startswith(JOURNAL_SUMMARIES) and n.endswith(".json")),
                key=_journal_index,
            )
            samples: list[dict[str, Any]] = []
            for n in journal:
                samples.extend(_summary_list(member(n), n))
            source = "journal"
            if not journal:
                samples, source = from_samples(), "samples"
            return LogData(str(path), "eval", header, samples, source, notes)
        raise _NeedsInspect("zip has neither header.json nor _journal/start.json")


def _check_sample(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "id" not in data:
        raise LogReadError(f"{what} is not a sample record (wrong shape)")
    return data


# --- inspect-ai fallback ----------------------------------------------------------------


def _read_with_inspect(path: Path, fmt: str, note: str | None) -> LogData:
    """Legacy ``.json`` logs and unfamiliar zips, through inspect-ai's own reader."""
    from inspect_ai.log import read_eval_log  # heavy import: only when needed

    try:
        log = read_eval_log(str(path))
    except Exception as e:  # inspect-ai raises many types for bad input
        raise LogReadError(f"inspect-ai cannot read it either ({type(e).__name__}: {e})"[:500]) from None
    header = {
        "eval": log.eval.model_dump(mode="python", exclude_none=False),
        "status": log.status,
        "stats": log.stats.model_dump(mode="python") if log.stats else None,
        "results": log.results.model_dump(mode="python") if log.results else None,
        "error": log.error.model_dump(mode="python") if log.error else None,
    }
    header["eval"]["created"] = log.eval.created if isinstance(log.eval.created, str) else str(log.eval.created)
    samples = []
    for s in log.samples or []:
        samples.append(
            {
                "id": s.id,
                "epoch": s.epoch,
                "target": s.target,
                "metadata": s.metadata,
                "scores": {k: v.model_dump(mode="python") for k, v in (s.scores or {}).items()},
                "error": s.error.message if s.error else None,
                "model_usage": {k: v.model_dump(mode="python") for k, v in (s.model_usage or {}).items()},
            }
        )
    notes = [note] if note else []
    return LogData(str(path), fmt, header, samples, "inspect", notes)


def read_log(path: str | Path, *, limit: int = MAX_MEMBER_BYTES) -> LogData:
    """Read one ``.eval``/``.json`` log.

    Args:
        path: the log file.
        limit: largest decompressed member accepted (bytes); see :data:`MAX_MEMBER_BYTES`.

    Returns:
        The header and the sample summaries as plain dicts.

    Raises:
        LogReadError: the file is empty, not a zip/JSON log, truncated, corrupt, a zip bomb
            or of the wrong shape.
    """
    data = _read_any(Path(path), limit)
    check_sample_keys(data)
    check_sample_epochs(data)
    return data


def _read_any(path: Path, limit: int) -> LogData:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            first = f.read(256)
    except OSError as e:
        raise LogReadError(f"cannot open ({e.strerror})") from None
    if size == 0:
        raise LogReadError("empty file")
    if first.startswith(b"PK"):
        try:
            return _read_zip(path, limit)
        except _NeedsInspect as e:
            return _read_with_inspect(path, "eval", f"read with inspect-ai: {e}")
    if path.suffix == ".eval":
        raise LogReadError("not a zip file (an .eval log is a zip archive)")
    if first.lstrip()[:1] != b"{":
        raise LogReadError("neither a zip nor a JSON object")
    if size > MAX_JSON_LOG_BYTES:
        raise LogReadError(f"{size:,} bytes, more than the {MAX_JSON_LOG_BYTES:,}-byte limit for .json logs")
    return _read_with_inspect(path, "json", None)


# --- values -------------------------------------------------------------------------------

_NUMERIC = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def value_to_float(value: Any) -> float:
    """inspect-ai's default ``value_to_float``: C=1, P=0.5, I=N=0, bools and numbers cast,
    "yes"/"true"=1, "no"/"false"=0, numeric strings parsed.

    Where inspect-ai would log a warning and return 0 (lists, dicts, other strings, None) we
    return NaN: an unknown score must not count as a wrong answer. Non-finite numbers
    (``Infinity``, ``NaN``, ``"1e999"``) are NaN too: one infinite score would make a run
    "the highest mean: inf". :func:`value_problem` says which of the two a NaN was.

    >>> [value_to_float(v) for v in ("C", "P", "I", True, 3, "0.25")]
    [1.0, 0.5, 0.0, 1.0, 3.0, 0.25]
    """
    if value == "C":
        return 1.0
    if value == "P":
        return 0.5
    if value in ("I", "N"):
        return 0.0
    if isinstance(value, bool | int | float):
        f = float(value)
        return f if math.isfinite(f) else math.nan
    if isinstance(value, str):
        low = value.lower()
        if low in ("yes", "true"):
            return 1.0
        if low in ("no", "false"):
            return 0.0
        if _NUMERIC.match(value):
            f = float(value)
            return f if math.isfinite(f) else math.nan
    return math.nan


_NON_FINITE_WORDS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"}


def value_problem(value: Any) -> str | None:
    """Why a score value gives no number: ``"non_finite"`` (``Infinity``, ``NaN``, ``"1e999"``),
    ``"unknown"`` (None, a list or dict, a string that is no score) or None (a usable value).

    >>> [value_problem(v) for v in ("C", 0.5, float("inf"), "1e999", None, [1], "maybe")]
    [None, None, 'non_finite', 'non_finite', 'unknown', 'unknown', 'unknown']
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return None if math.isfinite(value) else "non_finite"
    if isinstance(value, str):
        if value in ("C", "P", "I", "N") or value.lower() in ("yes", "true", "no", "false"):
            return None
        if _NUMERIC.match(value):
            return None if math.isfinite(float(value)) else "non_finite"
        return "non_finite" if value.strip().lower() in _NON_FINITE_WORDS else "unknown"
    return "unknown"


def _kind(value: Any) -> str:
    """A short name of an odd value for a warning: ``null``, ``list``, ``'maybe'``."""
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return type(value).__name__
    if isinstance(value, str):
        return repr(short(value, 20))
    return raw_str(value) or type(value).__name__


def raw_str(value: Any) -> str | None:
    """A score value as text: strings as they are, everything else as JSON (``true``, ``0.5``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def short(text: Any, n: int = 200) -> str | None:
    """Text cut to ``n`` characters (an ellipsis marks the cut); lists joined as inspect-ai does."""
    if text is None:
        return None
    if isinstance(text, list):
        text = ",".join(str(e) for e in text)
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


# --- records --------------------------------------------------------------------------------


def _usage_sum(usages: list[dict[str, Any]]) -> dict[str, float]:
    out = {"input_tokens": 0.0, "output_tokens": 0.0, "total_tokens": 0.0}
    for per_model in usages:
        for u in (per_model or {}).values():
            if isinstance(u, dict):
                for k in out:
                    out[k] += float(u.get(k) or 0)
    return out


def _duration(stats: dict[str, Any] | None) -> float:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(stats["started_at"])  # type: ignore[index]
        b = datetime.fromisoformat(stats["completed_at"])  # type: ignore[index]
        return (b - a).total_seconds()
    except (TypeError, KeyError, ValueError):
        return math.nan


def log_record(data: LogData) -> dict[str, Any]:
    """Per-log facts (task, model, status, sample counts, tokens, duration, metadata)."""
    h, ev = data.header, data.header["eval"]
    results = h.get("results") or {}
    config = ev.get("config") or {}
    eval_epochs = config.get("epochs") or 1
    dataset = ev.get("dataset") or {}
    total = results.get("total_samples")
    if total is None and isinstance(dataset.get("samples"), int):
        total = dataset["samples"] * eval_epochs
    errored = sum(1 for s in data.samples if s.get("error"))
    scored = sum(1 for s in data.samples if s.get("scores"))
    completed = results.get("completed_samples")
    if completed is None:
        completed = sum(1 for s in data.samples if not s.get("error"))
    stats = h.get("stats") or None
    usage_src = [stats.get("model_usage") or {}] if stats else [s.get("model_usage") or {} for s in data.samples]
    return {
        "task_raw": ev.get("task"),
        "model": ev.get("model"),
        "model_args": ev.get("model_args") or {},
        "task_args": ev.get("task_args") or {},
        "eval_metadata": ev.get("metadata") or {},
        "created": ev.get("created"),
        "status": h.get("status") or "started",
        "total_samples": total,
        "completed_samples": completed,
        "errored_samples": errored,
        "scored_samples": scored,
        **_usage_sum(usage_src),
        "duration_s": _duration(stats),
        "completed_at": (stats or {}).get("completed_at"),
        "eval_epochs": eval_epochs,
        "format": data.format,
        "source": data.source,
        "error_message": ((h.get("error") or {}).get("message") if isinstance(h.get("error"), dict) else None),
    }


def _scorer_label(score: dict[str, Any], sample_keys: set[str]) -> str:
    """A dict-valued scorer's results are named after the dict key: ``<scorer>/<key>``."""
    name, scorer = score.get("name"), score.get("scorer")
    if name in sample_keys or not scorer or name == scorer:
        return str(name)
    return f"{scorer}/{name}"


def score_records(data: LogData) -> list[dict[str, Any]]:
    """One record per scorer x metric from ``results.scores`` (empty when results are null).

    Metrics belonging to a dict-valued metric are named ``<group>/<key>`` (``ci_wilson/lower``,
    ``grouped/short``, ``grouped/all``). ``stderr`` is its own row and is also copied onto the
    scorer's first plain metric (the estimate it describes, e.g. ``accuracy``). ``n`` is
    ``scored_samples`` (samples after epoch reduction; errored ones excluded).
    """
    results = data.header.get("results") or {}
    scores = results.get("scores") or []
    if not isinstance(scores, list):
        return []
    sample_keys = {k for s in data.samples for k in (s.get("scores") or {})}
    out = []
    non_finite: list[str] = []
    for sc in scores:
        if isinstance(sc, dict):
            label = _scorer_label(sc, sample_keys)
            out.extend(_metric_rows(sc, label, _scored_n(sc, data, results), non_finite))
    if non_finite:
        note = (f"header metric(s) that are not finite ({', '.join(non_finite[:4])}): left empty, never "
                "used as a value")
        if note not in data.problems:
            data.problems.append(note)
    return out


def _scored_n(sc: dict[str, Any], data: LogData, results: dict[str, Any]) -> int | None:
    """The scorer's sample count: ``scored_samples``, else the stored samples it scored, else
    the log's completed samples (older logs, or ``log_samples`` off)."""
    n = sc.get("scored_samples")
    if n is None:
        key = sc.get("name")
        n = len({str(s.get("id")) for s in data.samples if key in (s.get("scores") or {})}) or None
    if n is None and isinstance(results.get("completed_samples"), int):
        n = results["completed_samples"]
    return n


def _metric_rows(sc: dict[str, Any], label: str, n: int | None, non_finite: list[str]) -> list[dict[str, Any]]:
    """The scorer's metrics as rows; a non-finite value is left empty and named in ``non_finite``
    (a NaN stderr of a constant score is expected and not named)."""
    metrics = sc.get("metrics") or {}
    rows = []
    plain: list[bool] = []
    for key, m in metrics.items():
        if not isinstance(m, dict):
            continue
        name = m.get("name") or key
        group = m.get("group")
        value = m.get("value")
        if isinstance(value, float) and not math.isfinite(value) and (math.isinf(value) or name != "stderr"):
            non_finite.append(f"{label}/{f'{group}/{name}' if group else name} = {value}")
            value = None
        rows.append({"scorer": label, "metric": f"{group}/{name}" if group else name,
                     "value": float(value) if isinstance(value, int | float) else math.nan,
                     "stderr": math.nan, "n": n, "reducer": sc.get("reducer")})
        plain.append(not group and name != "stderr")
    err = metrics.get("stderr")
    if isinstance(err, dict) and isinstance(err.get("value"), int | float) and math.isfinite(err["value"]):
        first = next((r for r, p in zip(rows, plain, strict=True) if p), None)
        if first is not None:
            first["stderr"] = float(err["value"])
    return rows


_SCALAR = (str, int, float, bool)


SAMPLE_COLUMNS = ("sample_id", "sample_epoch", "scorer", "score", "value_raw", "answer", "target")


def sample_columns(data: LogData) -> dict[str, list[Any]]:
    """Per-sample scores as columns (one entry per sample x sample-epoch x scorer).

    Columnar so that worker processes hand back a few lists rather than thousands of dicts
    (pickling and DataFrame construction dominate otherwise). One loop on purpose: its body runs
    once per sample x scorer (millions in a large sweep), where a function call per row would
    cost more than the row itself. Dict-valued scores give one
    entry per key (scorer ``<scorer>/<key>``); samples without scores (errored, or not yet
    scored) give none. Sample metadata scalars become ``meta.<key>`` columns and each score's
    own metadata ``score_meta.<key>`` columns (None where a sample lacks the key).

    Long on purpose: this is the innermost loop of evaluation ingest (one pass per score of
    every sample); the appends are inlined and distinct values converted once, because a helper
    call per row costs more than the rest of the loop (docs/performance.md).
    """
    cols: dict[str, list[Any]] = {c: [] for c in SAMPLE_COLUMNS}
    sid, sep, scr, val, raw, ans, tgt = (cols[c] for c in SAMPLE_COLUMNS)
    meta_cols: dict[str, list[Any]] = {}
    seen: dict[tuple[type, Any], tuple[float, str | None, str | None]] = {}
    n = wrong_shape = 0
    odd: dict[str, dict[str, int]] = {"non_finite": {}, "unknown": {}}
    for s in data.samples:
        scores = s.get("scores")
        if not scores or not isinstance(scores, dict):
            wrong_shape += scores is not None and not isinstance(scores, dict)
            continue
        ident, epoch, target = str(s.get("id")), s.get("epoch"), short(s.get("target"))
        meta = s.get("metadata")
        start = n
        for key, sc in scores.items():
            if not isinstance(sc, dict):
                wrong_shape += 1
                continue
            value, answer = sc.get("value"), sc.get("answer")
            if answer.__class__ is not str or len(answer) > 200:
                answer = short(answer)
            items = value.items() if isinstance(value, dict) else ((None, value),)
            smeta = sc.get("metadata")
            row0 = n
            for sub, v in items:
                try:  # score values repeat ("C", "I", 0.5 ...): convert each distinct one once
                    f, r, bad = seen[(v.__class__, v)]
                except KeyError:
                    f, r, bad = seen[(v.__class__, v)] = value_to_float(v), raw_str(v), value_problem(v)
                except TypeError:  # unhashable (a list)
                    f, r, bad = value_to_float(v), raw_str(v), value_problem(v)
                if bad is not None:
                    kinds = odd[bad]
                    kinds[_kind(v)] = kinds.get(_kind(v), 0) + 1
                sid.append(ident)
                sep.append(epoch)
                scr.append(key if sub is None else f"{key}/{sub}")
                val.append(f)
                raw.append(r)
                ans.append(answer)
                tgt.append(target)
                n += 1
            if isinstance(smeta, dict) and n > row0:
                _score_meta(meta_cols, smeta, row0, n)
        if isinstance(meta, dict) and n > start:
            for k, v in meta.items():
                if isinstance(v, _SCALAR):
                    col = meta_cols.setdefault(f"meta.{k}", [])
                    col.extend([None] * (start - len(col)))
                    col.extend([v] * (n - start))
    for col in meta_cols.values():
        col.extend([None] * (n - len(col)))
    cols.update(meta_cols)
    _note_odd_values(data, odd)
    if wrong_shape:  # a sample silently missing from the paired tests would be a wrong n
        note = f"{wrong_shape} sample score(s) that are not objects (wrong shape): left out of the per-sample scores"
        if note not in data.notes:
            data.notes.append(note)
    return cols


def _score_meta(meta_cols: dict[str, list[Any]], smeta: dict[str, Any], start: int, stop: int) -> None:
    """A score's own metadata as ``score_meta.<key>`` columns for rows ``start:stop``.

    Scorers put their per-sample facts there (a continuous scorer's prediction and error, a
    risk scorer's risk score, option probabilities and target), and the metrics of those
    scorers are recomputed from them. Scalars are kept as they are; a dict or list becomes
    compact JSON text (sorted keys would reorder option probabilities, so the order is kept).
    """
    for k, v in smeta.items():
        if v is None:
            continue
        if not isinstance(v, _SCALAR):
            try:
                v = json.dumps(v, separators=(",", ":"), allow_nan=True)
            except (TypeError, ValueError):
                continue
        col = meta_cols.setdefault(f"score_meta.{k}", [])
        col.extend([None] * (start - len(col)))
        col.extend([v] * (stop - start))


def _note_odd_values(data: LogData, odd: dict[str, dict[str, int]]) -> None:
    """One warning per kind of unusable score value, with the count and the values seen."""

    def listing(kinds: dict[str, int]) -> str:
        items = sorted(kinds.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} ×{c}" for k, c in items[:5]) + (", …" if len(items) > 5 else "")

    for kind, what, after in (
        ("non_finite", "are not finite numbers", "rejected, left out of the per-sample scores"),
        ("unknown", "are not score values",
         "left out of the per-sample scores (inspect-ai's own metrics count them as 0)"),
    ):
        if odd[kind]:
            note = f"{sum(odd[kind].values())} sample score(s) {what} ({listing(odd[kind])}): {after}"
            if note not in data.problems:
                data.problems.append(note)


def sample_records(data: LogData) -> list[dict[str, Any]]:
    """:func:`sample_columns` as records (one dict per row; metadata keys a sample lacks are
    left out)."""
    cols = sample_columns(data)
    names = list(cols)
    rows = []
    for values in zip(*(cols[c] for c in names), strict=True):
        rows.append({k: v for k, v in zip(names, values, strict=True) if not (k.startswith(("meta.", "score_meta.")) and v is None)})
    return rows
