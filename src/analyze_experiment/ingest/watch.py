"""``--watch``: re-analyse a sweep in progress whenever its files change.

Polling (no extra dependency, works on network file systems where inotify does not): a
snapshot of (size, mtime) of every input file, taken every ``interval`` seconds; when it
changed and then stayed the same for ``debounce`` seconds, the analysis runs again. The files
are those discovery's walker lets through, so our own outputs, caches, hidden folders and
weight files never trigger a run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from analyze_experiment.ingest.discover import Walker

MAX_FILES = 200_000
"""Directory entries looked at per snapshot."""
MAX_DEPTH = 32
"""Folders deeper than this below the experiment are not watched."""

Snapshot = dict[str, tuple[int, int]]


def snapshot(root: Path, exclude: tuple[Path, ...] = ()) -> Snapshot:
    """Size and mtime of every input file below ``root``.

    The files are the ones discovery could read: the same walker and skip rules
    (:class:`~analyze_experiment.ingest.discover.Walker`: hidden folders and files, caches,
    weights, our own reports and log), plus the folders in ``exclude`` (the output folder and
    the cache). What cannot be listed is simply not watched.
    """
    walker = Walker(root, lambda kind, path, detail: None, max_entries=MAX_FILES, exclude=exclude)
    out: Snapshot = {}
    for path in walker.files(root, max_depth=MAX_DEPTH):
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def watch(
    root: Path,
    run: Callable[[], None],
    *,
    exclude: tuple[Path, ...] = (),
    interval: float = 2.0,
    debounce: float = 5.0,
    max_runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call ``run`` now and after every settled change; return how many times it ran.

    ``max_runs`` bounds the loop (tests); otherwise it runs until interrupted.
    """
    runs = 0
    last = snapshot(root, exclude)
    run()
    runs += 1
    changed_at: float | None = None
    while max_runs is None or runs < max_runs:
        sleep(interval)
        now = snapshot(root, exclude)
        if now != last:
            last = now
            changed_at = clock()
            continue
        if changed_at is not None and clock() - changed_at >= debounce:
            changed_at = None
            run()
            runs += 1
    return runs
