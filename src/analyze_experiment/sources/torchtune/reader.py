"""Reading one SLURM/stdout capture: in this process or as parallel byte ranges, then split
into attempts (a requeued job appends its new attempt to the same file)."""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import BinaryIO

from analyze_experiment.executor import LOCAL, map_ordered
from analyze_experiment.sources.torchtune.limits import CHUNK_SIZE, MAX_SEGMENT
from analyze_experiment.sources.torchtune.merge import _merge
from analyze_experiment.sources.torchtune.records import SlurmOutput
from analyze_experiment.sources.torchtune.stream import _Range, _read_stream


def _idle_cpus(cpus: int) -> int:
    """CPUs not busy with other jobs (1-minute load average, less this process); at least 1.

    On a busy machine extra reader processes only compete with the other jobs (measured:
    more CPU time and no shorter wall time), so the file is then read in this process.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cpus
    return max(1, round(cpus - max(load - 1.0, 0.0)))


PARALLEL_MIN_BYTES = 128 << 20
"""Files at least this large are read by several processes, one byte range each."""


def read_slurm_output(path: Path, *, chunk_size: int = CHUNK_SIZE, workers: int | None = None) -> SlurmOutput:
    """Read one SLURM/stdout capture. Never raises for bad content; OSError propagates.

    A file of PARALLEL_MIN_BYTES or more is split at line breaks into ``workers`` ranges
    (default: the idle CPUs this process may use, at most 4; 1 inside a worker process) read
    in parallel and merged in file order; if worker processes cannot be started the file is
    read in this process. Results are the same for any number of workers.
    """
    path = Path(path)
    size = path.stat().st_size
    if workers is None:
        # inside a worker process (the caller already parallelises over runs): stay in-process
        in_worker = multiprocessing.parent_process() is not None
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = 1 if in_worker else min(4, cpus, _idle_cpus(cpus))
    opener = functools.partial(open, path, "rb")
    if workers > 1 and size >= PARALLEL_MIN_BYTES:
        bounds = _split_points(path, size, workers)
        if len(bounds) > 2:
            try:
                return _split_attempts(_read_parallel(path, bounds, chunk_size), opener, chunk_size)
            except (OSError, RuntimeError, AssertionError, BrokenProcessPool):
                pass  # e.g. no process can be started here: read it in this process
    out = SlurmOutput(path=path)
    with opener() as fh:
        _read_stream(fh, out, chunk_size)
    return _split_attempts(out, opener, chunk_size)





def _split_points(path: Path, size: int, parts: int) -> list[int]:
    """Range boundaries just after a line break (``\\n`` preferred) near each 1/parts of the file."""
    bounds = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            pos = size * k // parts
            if pos <= bounds[-1]:
                continue
            fh.seek(pos)
            window = fh.read(MAX_SEGMENT)
            cut = window.find(b"\n")
            if cut < 0:
                cut = window.find(b"\r")
            if cut >= 0:
                bounds.append(pos + cut + 1)
    bounds.append(size)
    return sorted(set(bounds))


def _read_range(path: Path, start: int, end: int, chunk_size: int) -> SlurmOutput:
    out = SlurmOutput(path=path)
    with open(path, "rb") as fh:
        _read_stream(_Range(fh, start, end), out, chunk_size)  # type: ignore[arg-type]
    out.events = [(o + start, e) for o, e in out.events]
    if out.final_checkpoint_offset is not None:
        out.final_checkpoint_offset += start
    out.attempt_starts = [o + start for o in out.attempt_starts]
    out.restarts = [(a + start, b + start) for a, b in out.restarts]
    out.byte_range = (start, end)
    return out


def _read_parallel(path: Path, bounds: list[int], chunk_size: int) -> SlurmOutput:
    """The byte ranges between ``bounds`` read by one worker process each, merged in file order."""
    ranges = list(itertools.pairwise(bounds))
    parts = map_ordered(LOCAL, functools.partial(_read_bounds, path, chunk_size), ranges, len(ranges))
    return _merge(path, parts)


def _read_bounds(path: Path, chunk_size: int, bounds: tuple[int, int]) -> SlurmOutput:
    return _read_range(path, bounds[0], bounds[1], chunk_size)


def read_slurm_bytes(data: bytes, path: str | Path = "<bytes>", *, chunk_size: int = CHUNK_SIZE) -> SlurmOutput:
    """Same as :func:`read_slurm_output` over bytes in memory (tests, fuzzing)."""
    import io

    out = SlurmOutput(path=Path(path))
    _read_stream(io.BytesIO(data), out, chunk_size)
    return _split_attempts(out, lambda: io.BytesIO(data), chunk_size)


def attempt_bounds(out: SlurmOutput) -> list[int]:
    """Offsets where attempts after the first begin (empty for a file of one attempt).

    A banner after output starts an attempt at the banner; a step counter that goes
    backwards with no banner since the frame before it starts one at its own line.
    """
    bounds = set(out.attempt_starts)
    for before, line in out.restarts:
        if not any(before < b <= line for b in out.attempt_starts):
            bounds.add(line)
    return sorted(b for b in bounds if 0 < b < out.n_bytes)


def _split_attempts(out: SlurmOutput, opener: Callable[[], BinaryIO], chunk_size: int) -> SlurmOutput:
    """``out`` itself, or — for a file holding several attempts — its last attempt, with the
    earlier ones in ``earlier_attempts``. Each attempt is read again on its own byte range, so
    nothing (steps, epochs, end messages, the final checkpoint) is spliced across attempts."""
    bounds = attempt_bounds(out)
    if not bounds:
        return out
    edges = [0, *bounds, out.n_bytes]
    parts: list[SlurmOutput] = []
    for start, end in itertools.pairwise(edges):
        part = SlurmOutput(path=out.path)
        with opener() as fh:
            _read_stream(_Range(fh, start, end), part, chunk_size)  # type: ignore[arg-type]
        part.events = [(o + start, e) for o, e in part.events]
        if part.final_checkpoint_offset is not None:
            part.final_checkpoint_offset += start
        part.byte_range = (start, end)
        parts.append(part)
    last = parts[-1]
    last.earlier_attempts = parts[:-1]
    # what the whole file could not give is said once, on the attempt the run is judged by
    last.long_lines = out.long_lines
    last.undecoded_frames, last.first_undecoded = out.undecoded_frames, out.first_undecoded
    last.unparsed_frames, last.first_unparsed = out.unparsed_frames, out.first_unparsed
    last.other_rank_frames = out.other_rank_frames
    return last
