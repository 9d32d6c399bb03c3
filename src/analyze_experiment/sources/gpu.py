"""GPU sampling (``nvidia-smi --query-gpu=… --format=csv``) and SLURM ``seff`` output.

``gpu_metrics.csv`` is whatever ``nvidia-smi --format=csv`` wrote during the job: a header
naming the queried fields with their units (``utilization.gpu [%]``, ``memory.used [MiB]``),
then one row per GPU per sample; values carry units (``87 %``, ``40536 MiB``) unless
``nounits`` was given, and ``[N/A]`` / ``[Not Supported]`` where the device cannot say
(MIG slices report no utilisation). Columns are found by field name, so any order and any
subset work; a header repeated by appended runs is skipped.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MAX_ROWS = 5_000_000
"""Rows read from one CSV at most (a day of 1 s samples on 8 GPUs is 0.7 M)."""

_FIELDS = {
    "timestamp": "time",
    "index": "gpu",
    "utilization.gpu": "utilization_pct",
    "memory.used": "memory_used_mib",
    "memory.total": "memory_total_mib",
    "power.draw": "power_w",
    "name": "name",
    "uuid": "uuid",
}
_NUM_RE = re.compile(r"[-+]?\d+(?:\.\d+)?")
_CELL_RE = re.compile(r"(?P<num>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z%/]*)")
"""A whole cell: a number and its unit. Anything else (``1e999``, ``8\\x007``) is no value:
reading the first digits of garbage would be a wrong number."""
_GARBLED = ("\ufffd", "\x00")
"""Marks of bytes that were not UTF-8 text (decoded as U+FFFD) and of NUL bytes."""
_UNIT_TO_MIB = {"MiB": 1.0, "GiB": 1024.0, "KiB": 1 / 1024, "MB": 1e6 / 2**20, "GB": 1e9 / 2**20}


@dataclass
class GpuSamples:
    """Rows of one ``gpu_metrics.csv`` (``gpu`` table columns, without ``run``)."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    na_values: int = 0


def _number(text: str, column: str) -> float | None:
    text = text.strip()
    if not text or text.startswith("["):  # [N/A], [Not Supported], [Unknown Error]
        return None
    m = _CELL_RE.fullmatch(text)
    if not m:
        return None
    value = float(m.group("num"))
    if column.startswith("memory"):
        value *= _UNIT_TO_MIB.get(m.group("unit"), 1.0)
    return value


def _header_key(cell: str) -> str | None:
    name = cell.strip().split(" [", 1)[0].strip().lower()
    return _FIELDS.get(name)


def read_gpu_metrics(path: Path) -> GpuSamples:
    """Read an nvidia-smi CSV; rows that cannot be read are counted in ``problems``."""
    out = GpuSamples(Path(path))
    with open(path, "rb") as fh:
        reader = csv.reader(io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline=""))
        try:
            _read_rows(reader, out)
        except csv.Error as exc:
            out.problems.append(f"unreadable after {len(out.rows)} rows ({exc}): kept the rows before")
    return out


def _read_rows(reader: Any, out: GpuSamples) -> None:
    """Rows of an nvidia-smi CSV into ``out`` (header lines may repeat)."""
    columns: list[str | None] | None = None
    bad = garbled = 0
    for i, row in enumerate(reader):
        if i > MAX_ROWS:
            out.problems.append(f"more than {MAX_ROWS:,} rows: read the first {MAX_ROWS:,}")
            break
        if not row or not any(c.strip() for c in row):
            continue
        keys = [_header_key(c) for c in row]
        if sum(k is not None for k in keys) >= 2 and not any(_NUM_RE.fullmatch(c.strip()) for c in row):
            columns = keys
            continue
        if columns is None:
            out.problems.append("no nvidia-smi header line (format=csv,noheader?): file skipped")
            return
        if len(row) != len(columns):
            bad += 1
            continue
        if any(g in c for c in row for g in _GARBLED):
            garbled += 1
            continue
        out.rows.append(_record(columns, row, out))
    if columns is None and not out.problems:
        out.problems.append("no nvidia-smi header line and no samples (empty file): file skipped")
    elif columns is not None and not out.rows and not bad and not garbled:
        out.problems.append("a header line but no samples: no GPU values from this file")
    if bad:
        out.problems.append(f"{bad} row(s) with a wrong number of fields skipped")
    if garbled:
        out.problems.append(f"{garbled} row(s) with NUL bytes or bytes that are not UTF-8 text skipped")


def _record(columns: list[str | None], row: list[str], out: GpuSamples) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for key, cell in zip(columns, row, strict=True):
        if key is None:
            continue
        if key == "time":
            rec["time"] = pd.to_datetime(cell.strip(), errors="coerce", format="mixed")
        elif key in ("name", "uuid"):
            rec[key] = cell.strip()
        elif key == "gpu":
            v = _number(cell, key)
            rec["gpu"] = int(v) if v is not None else None
        else:
            v = _number(cell, key)
            if v is None:
                out.na_values += 1
            rec[key] = v
    return rec


# ---- seff ------------------------------------------------------------------------------------
_SEFF_RE = {
    "job_id": re.compile(r"^Job ID:\s*(\S+)", re.M),
    "state": re.compile(r"^State:\s*([A-Z_]+)(?: \(exit code (\d+)\))?", re.M),
    "nodes": re.compile(r"^Nodes:\s*(\d+)", re.M),
    "cores": re.compile(r"^Cores per node:\s*(\d+)", re.M),
    "wall": re.compile(r"^Job Wall-clock time:\s*(\S+)", re.M),
    "mem_used": re.compile(r"^Memory Utilized:\s*([\d.]+)\s*([KMGT]?B)", re.M),
    "mem_eff": re.compile(r"^Memory Efficiency:\s*([\d.]+)% of ([\d.]+)\s*([KMGT]?B)", re.M),
}
_BYTES = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_DURATION_RE = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")


def parse_duration(text: str) -> float | None:
    """SLURM ``[D-]HH:MM:SS`` / ``MM:SS`` as seconds.

    >>> parse_duration("1-02:00:00"), parse_duration("00:10:05"), parse_duration("x")
    (93600.0, 605.0, None)
    """
    m = _DURATION_RE.match(text.strip())
    if not m:
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(d * 86400 + h * 3600 + mi * 60 + s)


@dataclass
class Seff:
    """The fields of ``seff <jobid>`` output we use."""

    path: Path
    job_id: str | None = None
    state: str | None = None
    """SLURM's final state: COMPLETED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, FAILED, NODE_FAIL, PREEMPTED."""
    exit_code: int | None = None
    state_line: str | None = None
    nodes: int | None = None
    cores_per_node: int | None = None
    wall_s: float | None = None
    memory_used_gib: float | None = None
    memory_requested_gib: float | None = None


def read_seff(path: Path) -> Seff | None:
    """Parse seff output; None when the file does not look like seff output."""
    raw = Path(path).read_bytes()[:200_000].decode("utf-8", "replace")
    out = Seff(Path(path))
    m = _SEFF_RE["state"].search(raw)
    if not m and not _SEFF_RE["wall"].search(raw):
        return None
    if m:
        out.state = m.group(1)
        out.exit_code = int(m.group(2)) if m.group(2) else None
        out.state_line = m.group(0).strip()
    if m := _SEFF_RE["job_id"].search(raw):
        out.job_id = m.group(1)
    if m := _SEFF_RE["nodes"].search(raw):
        out.nodes = int(m.group(1))
    if m := _SEFF_RE["cores"].search(raw):
        out.cores_per_node = int(m.group(1))
    if m := _SEFF_RE["wall"].search(raw):
        out.wall_s = parse_duration(m.group(1))
    if m := _SEFF_RE["mem_used"].search(raw):
        out.memory_used_gib = float(m.group(1)) * _BYTES[m.group(2)] / 2**30
    if m := _SEFF_RE["mem_eff"].search(raw):
        out.memory_requested_gib = float(m.group(2)) * _BYTES[m.group(3)] / 2**30
    return out
