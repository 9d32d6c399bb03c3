"""Warnings about inputs and the record of what the tool did.

Every stage that reads a file gets a :class:`Diagnostics` and reports into it instead of
raising or printing: a bad file must never stop the analysis of the others (the library
never prints; the CLI decides what to show). The same records feed the report's Data
Quality section, ``summary.json["warnings"]`` and ``analyze-experiment.log``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

Severity = Literal["info", "warning", "error"]
"""``info``: noted (e.g. a duplicate eval log set aside); ``warning``: something was
skipped or guessed; ``error``: a file could not be read at all."""


@dataclass(frozen=True)
class Warning_:
    """One problem with one input, phrased so a user can act on it.

    ``message`` says what was wrong *and* what was done ("skipped", "used the first
    1,204 steps").
    """

    file: str | None
    message: str
    severity: Severity = "warning"
    stage: str = ""


@dataclass(frozen=True)
class Action:
    """One step of the run log (``analyze-experiment.log``)."""

    time: _dt.datetime
    action: str
    description: str
    details: tuple[str, ...] = ()
    result: str | None = None


@dataclass
class Diagnostics:
    """Collects warnings and actions; paths are stored relative to ``root`` when possible."""

    root: Path | None = None
    warnings: list[Warning_] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def rel(self, path: str | Path | None) -> str | None:
        """Path relative to the experiment root (outputs never leak absolute paths)."""
        if path is None:
            return None
        p = Path(path)
        if self.root is not None:
            # the path as given first: a warning about a symlink names the link, not its target
            try:
                return p.relative_to(self.root).as_posix()
            except ValueError:
                pass
            try:
                return p.resolve().relative_to(self.root.resolve()).as_posix()
            except (ValueError, OSError):
                pass
        return p.as_posix()

    def warn(
        self,
        file: str | Path | None,
        message: str,
        *,
        severity: Severity = "warning",
        stage: str = "",
    ) -> None:
        """Record a problem with ``file`` (absolute or relative path, or None)."""
        self.warnings.append(Warning_(self.rel(file), message, severity, stage))

    def act(
        self,
        action: str,
        description: str,
        *,
        details: list[str] | tuple[str, ...] = (),
        result: str | None = None,
    ) -> None:
        """Record one step for ``analyze-experiment.log``."""
        self.actions.append(
            Action(_dt.datetime.now().replace(microsecond=0), action, description, tuple(details), result)
        )

    def extend(self, other: Diagnostics) -> None:
        """Merge another collector (e.g. from a worker process)."""
        for w in other.warnings:
            self.warnings.append(w)
        self.actions.extend(other.actions)

    def frame(self) -> pd.DataFrame:
        """The ``warnings`` tidy table."""
        return pd.DataFrame(
            [(w.file, w.severity, w.stage, w.message) for w in self.warnings],
            columns=["file", "severity", "stage", "message"],
        )
