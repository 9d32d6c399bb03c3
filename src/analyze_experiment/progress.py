"""Progress reports from the library to whoever shows them (the CLI's progress bar).

The library never prints; a long read or render instead calls ``progress(stage, done, total)``
after each unit of work (a file read, a figure drawn). ``stage`` is a short phrase ("training
logs", "evaluation logs", "figures"); ``done`` counts up to ``total``, and a stage reports
``done == total`` exactly once when it ends, also when it had nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:
    """The default: nobody is watching."""
