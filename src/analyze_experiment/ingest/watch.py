"""``--watch``: re-analyse a sweep in progress whenever its files change.

Polling (no extra dependency, works on network file systems where inotify does not): a
snapshot of (size, mtime) of every input file, taken every ``interval`` seconds; when it
changed and then stayed the same for ``debounce`` seconds, the analysis runs again. Our
own outputs and weight files are left out of the snapshot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

WEIGHT_SUFFIXES = (".pt", ".bin", ".safetensors", ".pth", ".ckpt", ".gguf")
MAX_FILES = 200_000

Snapshot = dict[str, tuple[int, int]]


def snapshot(root: Path, exclude: tuple[Path, ...] = ()) -> Snapshot:
    """Size and mtime of every input file below ``root`` (outputs, hidden and weight files skipped)."""
    excluded = {os.path.realpath(p) for p in exclude}
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [
            d for d in dirnames
            if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) not in excluded
        ]
        for name in filenames:
            if name.startswith(".") or name.endswith(WEIGHT_SUFFIXES) or name == "analyze-experiment.log":
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            out[path] = (st.st_size, st.st_mtime_ns)
            if len(out) >= MAX_FILES:
                return out
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
