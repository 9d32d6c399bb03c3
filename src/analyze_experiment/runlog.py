"""``analyze-experiment.log``: what was read, decided, skipped and written, step by step.

Format (one block per action, appended per invocation)::

    [2026-11-26 21:50:03] READ_TRAINING: rank4_lr1e-5: status completed
      Details: file: rank4_lr1e-5/artifacts/slurm-101.out
      Result: 16 steps

The log lives in the experiment directory, or in its ``logs/`` folder when that exists
(the workflow keeps its own skill logs there). When the experiment directory is
read-only, the log goes into the output folder instead and the run says so.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from analyze_experiment.diagnostics import Action, Diagnostics

LOG_NAME = "analyze-experiment.log"


def format_actions(actions: list[Action], warnings_header: bool = True, diag: Diagnostics | None = None) -> str:
    """Render actions (and, at the end, the warnings) as log text."""
    lines: list[str] = []
    for a in actions:
        action = re.sub(r"[^A-Za-z0-9]+", "_", a.action).strip("_").upper()  # training.read -> TRAINING_READ
        lines.append(f"[{a.time:%Y-%m-%d %H:%M:%S}] {action}: {a.description}")
        for d in a.details:
            lines.append(f"  Details: {d}")
        if a.result:
            lines.append(f"  Result: {a.result}")
    if diag is not None and diag.warnings and warnings_header:
        stamp = actions[-1].time if actions else None
        head = f"[{stamp:%Y-%m-%d %H:%M:%S}] " if stamp else ""
        lines.append(f"{head}WARNINGS: {len(diag.warnings)} problems with inputs")
        for w in diag.warnings:
            lines.append(f"  Details: [{w.severity}] {w.file or '-'}: {w.message}")
    return "\n".join(lines) + "\n"


def log_path(root: Path) -> Path:
    """Where the log goes for an experiment directory."""
    logs = root / "logs"
    return (logs if logs.is_dir() else root) / LOG_NAME


def writable(directory: Path) -> bool:
    """Whether we may write into ``directory``.

    A folder without any write bit is treated as read-only even for root (who could write
    anyway): a user who made the experiment read-only meant it to stay untouched.
    """
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(directory, os.W_OK)


def append_log(path: Path, diag: Diagnostics) -> str | None:
    """Append this invocation's actions to ``path``; return a problem, or None."""
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(format_actions(diag.actions, diag=diag))
    except OSError as exc:
        return f"could not write {path}: {exc.strerror or exc}"
    return None
