"""Text-level values: a metric value, tqdm's elapsed time, a ``Step N | k:v`` line."""

from __future__ import annotations

from typing import Any

from analyze_experiment.sources.torchtune.limits import MAX_STEP_LINE
from analyze_experiment.sources.torchtune.patterns import _KV_RE, _TIME_RE, STEP_RE


def parse_elapsed(text: str) -> float | None:
    """tqdm's ``MM:SS`` / ``H:MM:SS`` as seconds.

    >>> parse_elapsed("01:55"), parse_elapsed("1:02:03"), parse_elapsed("?")
    (115.0, 3723.0, None)
    """
    m = _TIME_RE.match(text)
    if not m:
        return None
    return float(int(m.group("h") or 0) * 3600 + int(m.group("m")) * 60 + int(m.group("s")))


def parse_value(text: str) -> float | str:
    """A metric value: Python float repr → float (``nan``/``inf`` kept), anything else as text."""
    try:
        return float(text)
    except ValueError:
        return text


def parse_step_line(line: str, *, terminated: bool = True) -> tuple[int, dict[str, Any]] | None:
    """``Step N | k:v k:v `` → (N, {k: v}).

    A value is trusted only when a space (or, for a ``terminated`` line, the line end)
    follows it, so a line cut at a kill or a buffer boundary never yields a truncated number.

    >>> parse_step_line("Step 3 | loss:4.9 lr:2e-05 tokens_per_second_per_gpu:3497.3 ")
    (3, {'loss': 4.9, 'lr': 2e-05, 'tokens_per_second_per_gpu': 3497.3})
    >>> parse_step_line("Step 3 | loss:4.9 lr:2e-0", terminated=False)
    (3, {'loss': 4.9})
    """
    m = STEP_RE.search(line)
    if not m:
        return None
    rest = m.group("rest")[:MAX_STEP_LINE]
    values: dict[str, Any] = {}
    for km in _KV_RE.finditer(rest):
        if not km.group(3) and not terminated:
            continue
        values[km.group(1)] = parse_value(km.group(2))
    if not values:
        return None
    return int(m.group("step")), values
