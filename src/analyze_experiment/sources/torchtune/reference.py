"""A plain reader of the same bytes as the fast scanner: short, slow and obviously right.

The tool never calls it. The property tests generate progress-bar and log text, read it with
both, and require the same result for every step: the scanner's numpy word tricks must give
what these few regular expressions and Python's ``float`` give. The rules are the format's
(``docs/training.md``):

* a bar frame is found by its ``|Loss: `` tag; its description is ``{epoch}|{step}|Loss: {loss}``
  and its loss ends at the first ``:`` on the same line, at most 25 bytes on;
* a frame is read when epoch and step have 1 to 9 digits and the loss is a Python float;
* the last frame read for a step gives that step's epoch and loss;
* every other tagged frame is unreadable and counted, except one whose loss is cut (no ``:``
  on its line) with no frame after it in the file: the job may still be writing it;
* a ``Step N | key:value key:value `` line gives step N those values (floats, else text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TAG_RE = re.compile(rb"\|Loss: ")
DESCRIPTION_RE = re.compile(rb"(?<![0-9])([0-9]*)\|([0-9]*)\Z")
"""The ``{epoch}|{step}`` just before a tag (digit runs taken whole)."""
LOSS_RE = re.compile(rb"([^:\r\n]{0,25}):")
STEP_LINE_RE = re.compile(rb"Step ([0-9]+) \| ([^\r\n]*)")
LINE_RE = re.compile(rb"[^\r\n]*")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MAX_DIGITS = 9


@dataclass
class Reference:
    """What the reference read: the bar's steps, the ``Step N |`` lines, the unreadable frames."""

    bar: dict[int, tuple[int, float]] = field(default_factory=dict)
    """step → (epoch, loss) of the last frame read for it."""
    stdout_steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    undecoded: int = 0
    first_undecoded: str | None = None
    pending_cut: str | None = None
    """The line of a last frame whose loss is cut (not counted as unreadable)."""


def read_reference(data: bytes) -> Reference:
    """Read ``data`` (a whole SLURM/stdout capture of one attempt, rank 0 only) by the rules above."""
    ref = Reference()
    tags = [m.start() for m in TAG_RE.finditer(data)]
    for i, tag in enumerate(tags):
        frame = _frame(data, tag)
        if isinstance(frame, tuple):
            step, epoch, loss = frame
            ref.bar[step] = (epoch, loss)
            continue
        line = _line_of(data, tag)
        if frame == "cut" and i == len(tags) - 1:
            ref.pending_cut = line
            continue
        ref.undecoded += 1
        if ref.first_undecoded is None:
            ref.first_undecoded = line
    for m in STEP_LINE_RE.finditer(data):
        values = {}
        for token in m.group(2).split():
            key, colon, value = token.partition(b":")
            if colon and key and value:
                values[key.decode()] = _value(value)
        if values:
            ref.stdout_steps.setdefault(int(m.group(1)), {}).update(values)
    ref.bar = dict(sorted(ref.bar.items()))
    return ref


def _frame(data: bytes, tag: int) -> tuple[int, int, float] | str:
    """(step, epoch, loss) of the frame whose tag is at ``tag``; else ``"cut"`` or ``"unreadable"``."""
    desc = DESCRIPTION_RE.search(data, 0, tag)
    shape = desc is not None and desc.group(1) != b"" and desc.group(2) != b""
    loss = LOSS_RE.match(data, tag + len(b"|Loss: "))
    if loss is None:
        return "cut" if shape else "unreadable"
    if desc is None or not shape or max(len(desc.group(1)), len(desc.group(2))) > MAX_DIGITS:
        return "unreadable"
    try:
        value = float(loss.group(1))
    except ValueError:
        return "unreadable"
    return int(desc.group(2)), int(desc.group(1)), value


def _line_of(data: bytes, pos: int) -> str:
    """The line (between ``\\r``/``\\n``) holding ``pos``, as the reader names it."""
    start = max(data.rfind(b"\n", 0, pos), data.rfind(b"\r", 0, pos)) + 1
    end = LINE_RE.match(data, start).end()  # type: ignore[union-attr]
    return ANSI_RE.sub("", data[start:end].decode("utf-8", "replace")).strip()[:200]


def _value(raw: bytes) -> float | str:
    text = raw.decode("utf-8", "replace")
    try:
        return float(text)
    except ValueError:
        return text
