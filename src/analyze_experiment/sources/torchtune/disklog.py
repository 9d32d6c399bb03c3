"""DiskLogger files (``log_<ts>.txt`` / ``.jsonl``): one ``Step N | k:v`` line (or JSON object) per
step, read in chunks with one compiled pattern per key layout."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from analyze_experiment.sources.torchtune.limits import MAX_SEGMENT
from analyze_experiment.sources.torchtune.values import parse_step_line


@dataclass
class DiskLog:
    """Records of one DiskLogger file (``log_<ts>.txt`` or ``.jsonl``)."""

    path: Path
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    fmt: str = "disklogger"
    bad_lines: int = 0
    first_bad: str | None = None
    lines: int = 0
    earlier_attempts: list[dict[int, dict[str, Any]]] = field(default_factory=list)
    """Steps of earlier attempts in this file (the step counter went backwards), oldest first;
    ``steps`` holds the last attempt only."""
    _last_fast: int = -1
    _last_slow: int = -1
    _restarted: bool = False


_DISK_CHUNK = 4 << 20


def read_disk_log(path: Path, *, max_line: int = MAX_SEGMENT) -> DiskLog:
    """Read a DiskLogger file in chunks (streamed). Later lines for a step update earlier ones.

    The lines of a chunk that share the key layout of its first ``Step`` line are parsed by
    one compiled pattern over the whole chunk; any other line goes through
    :func:`parse_step_line` (``.jsonl``: one JSON object per line). A line longer than
    ``max_line`` keeps its first ``max_line`` bytes, read as an unterminated line.
    """
    path = Path(path)
    log = DiskLog(path, fmt="jsonl" if path.suffix == ".jsonl" else "disklogger")
    with open(path, "rb") as fh:
        carry = b""
        skipping = False
        while True:
            chunk = fh.read(_DISK_CHUNK)
            eof = not chunk
            if skipping and chunk:
                cut = chunk.find(b"\n")
                if cut < 0:
                    continue
                chunk, skipping = chunk[cut + 1 :], False
            buf = carry + chunk
            if eof:
                blob, carry = buf, b""
            else:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    if len(buf) <= max_line:
                        carry = buf
                        continue
                    blob, carry, skipping = buf[:max_line], b"", True
                else:
                    blob, carry = buf[: cut + 1], buf[cut + 1 :]
            if blob:
                _parse_disk_blob(log, blob, last_terminated=blob.endswith(b"\n"))
            if eof:
                break
    if log._restarted:
        _split_disk_attempts(log, max_line)
    return log


def _split_disk_attempts(log: DiskLog, max_line: int) -> None:
    """Read the file again line by line, in file order, starting a new attempt wherever the
    step counter goes backwards (rare: only when the fast pass saw it go backwards)."""
    attempts: list[dict[int, dict[str, Any]]] = [{}]
    last = -1
    with open(log.path, "rb") as fh:
        for raw in fh:
            line = raw[:max_line].decode("utf-8", "replace").strip("\r\n")
            if not line.strip():
                continue
            parsed = _parse_jsonl(line) if log.fmt == "jsonl" else parse_step_line(line, terminated=raw.endswith(b"\n"))
            if parsed is None:
                continue
            step, values = parsed
            if step < last and attempts[-1]:
                attempts.append({})
            last = step
            attempts[-1].setdefault(step, {}).update(values)
    log.steps = attempts[-1]
    log.earlier_attempts = attempts[:-1]


def _layout(blob: bytes) -> tuple[re.Pattern[bytes], tuple[str, ...]] | None:
    """A pattern for lines with exactly the keys of the first complete ``Step`` line of ``blob``."""
    i = blob.find(b"Step ")
    j = blob.find(b"\n", i)
    if i < 0 or j < 0:
        return None
    parsed = parse_step_line(blob[i:j].decode("utf-8", "replace"))
    if parsed is None:
        return None
    keys = tuple(parsed[1])
    pat = rb"^Step (\d+) \| " + b"".join(re.escape(k.encode()) + rb":(\S+) " for k in keys) + rb"\r?$"
    return re.compile(pat, re.M), keys


def _value(raw: bytes) -> float | str:
    try:
        return float(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _parse_disk_blob(log: DiskLog, blob: bytes, *, last_terminated: bool) -> None:
    log.lines += blob.count(b"\n") + (0 if last_terminated else 1)
    rest = blob
    if log.fmt == "disklogger":
        layout = _layout(blob)
        if layout is not None:
            pattern, keys = layout
            steps = log.steps
            last = log._last_fast
            for m in pattern.findall(blob):
                values = dict(zip(keys, map(_value, m[1:]), strict=True))
                step = int(m[0])
                if step < last:
                    log._restarted = True
                last = step
                have = steps.get(step)
                if have is None:
                    steps[step] = values
                else:
                    have.update(values)
            log._last_fast = last
            rest = pattern.sub(b"", blob)
    pieces = rest.split(b"\n")
    for k, raw in enumerate(pieces):
        line = raw.decode("utf-8", "replace").strip("\r")
        if not line.strip():
            continue
        terminated = last_terminated or k < len(pieces) - 1
        parsed = _parse_jsonl(line) if log.fmt == "jsonl" else parse_step_line(line, terminated=terminated)
        if parsed is None:
            log.bad_lines += 1
            if log.first_bad is None:
                log.first_bad = line[:120]
            continue
        step, values = parsed
        if step < log._last_slow:
            log._restarted = True
        log._last_slow = step
        log.steps.setdefault(step, {}).update(values)


def _parse_jsonl(line: str) -> tuple[int, dict[str, Any]] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # json.dumps writes NaN/Infinity, which orjson rejects
            obj = json.loads(line)
        except ValueError:
            return parse_step_line(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("step"), int):
        return None
    values = {k: v for k, v in obj.items() if k != "step" and isinstance(v, int | float | str)}
    return int(obj["step"]), {k: float(v) if isinstance(v, int) else v for k, v in values.items()}
