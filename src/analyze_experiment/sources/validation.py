"""Validation loss printed into a SLURM output file (``Validation loss: 1.2345``).

A recipe that validates during training (the workflow's ``lora_finetune_single_device_val``
with ``run_val_every_n_steps``, torchtune ``main``'s recipes) logs the mean validation loss
through the recipe logger, i.e. on stderr, so in ``slurm-*.out`` the line lands between
progress-bar frames, usually glued to the end of an unterminated frame::

    \\r1|4|Loss: 5.2819…:  50%|█████     | 4/8 [00:01<00:01,  3.77it/s]Validation loss: 5.1536\\n

The line itself carries no step. It is written right after the optimizer step it belongs to
(after the bar's description was set to that step), so its step is the global step of the
**last bar description before it** — a fact of the capture in
``tests/fixtures/torchtune/local_v0.6.1_lora_cpu_slurm_val.out``, where every line's step
equals the step of the DiskLogger ``Step N | val_loss:…`` line of the same validation. The
printed value is rounded to 4 decimals; the DiskLogger value (a ``val_loss`` column of
``train_steps``) is exact and should win where both exist.

The file is streamed in chunks and searched with byte-level finds, so a multi-gigabyte file of
bar frames costs one pass and constant memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

CHUNK_SIZE = 4 << 20
"""Bytes read per chunk."""
MAX_CARRY = 1 << 16
"""Longest unterminated tail kept between chunks (a longer line keeps only its end)."""

VALIDATION_COLUMNS = ["run", "epoch", "step", "val_loss", "source"]
"""Columns of :func:`validation_frame` (``epoch`` 0-based, ``step`` the global step)."""

_NUM = rb"nan|NaN|-?inf|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
VALIDATION_RE = re.compile(rb"Validation loss: (?P<loss>" + _NUM + rb")")
"""The recipe logger's line (anywhere in a segment: it is glued to bar frames)."""
_DESC_MARK = b"|Loss: "
_DESC_RE = re.compile(rb"(?P<epoch>\d{1,6})\|(?P<step>\d{1,12})$")
"""The ``{epoch}|{global_step}`` in front of a bar description's ``|Loss: ``."""
_SEPARATORS = (b"\n", b"\r")


@dataclass(frozen=True)
class ValidationLine:
    """One ``Validation loss:`` line and the training position it follows."""

    step: int | None
    """Global optimizer step of the last bar description before the line (None: no bar yet)."""
    epoch: int | None
    """0-based epoch of that description (the bar shows it 1-based)."""
    loss: float
    """The printed value (4 decimals in the recipes that write it; ``nan``/``inf`` kept)."""
    offset: int
    """Byte offset of the line's ``Validation`` in the file."""


def _last_description(buf: bytes, end: int) -> tuple[int, int] | None:
    """(epoch, step) of the last bar description that starts before ``end`` in ``buf``."""
    pos = buf.rfind(_DESC_MARK, 0, end)
    while pos >= 0:
        m = _DESC_RE.search(buf, max(0, pos - 20), pos)
        if m:
            return int(m["epoch"]), int(m["step"])
        pos = buf.rfind(_DESC_MARK, 0, pos)
    return None


def _scan(fh: BinaryIO, chunk_size: int) -> list[ValidationLine]:
    lines: list[ValidationLine] = []
    state: tuple[int, int] | None = None  # last (epoch, step) seen so far
    carry = b""
    base = 0  # file offset of carry[0]
    while True:
        data = fh.read(chunk_size)
        buf = carry + data
        if data:
            cut = max(buf.rfind(s) for s in _SEPARATORS) + 1
            if cut == 0:  # no separator yet: wait for more, but bound the tail
                if len(buf) > MAX_CARRY:
                    base += len(buf) - MAX_CARRY
                    buf = buf[-MAX_CARRY:]
                carry = buf
                continue
        else:
            cut = len(buf)
        done = buf[:cut]
        for m in VALIDATION_RE.finditer(done):
            desc = _last_description(done, m.start())
            if desc is not None:
                state = desc
            lines.append(ValidationLine(
                step=None if state is None else state[1],
                epoch=None if state is None else state[0] - 1,
                loss=float(m["loss"]),
                offset=base + m.start(),
            ))
        desc = _last_description(done, len(done))
        if desc is not None:
            state = desc
        carry = buf[cut:]
        base += cut
        if not data:
            return lines


def read_validation(path: Path, *, chunk_size: int = CHUNK_SIZE) -> list[ValidationLine]:
    """Every ``Validation loss:`` line of a SLURM/stdout capture, in file order.

    Args:
        path: the ``slurm-<job>.out`` (or any captured stdout/stderr) file.
        chunk_size: bytes per read (results do not depend on it).

    Returns:
        One :class:`ValidationLine` per printed line (an empty list when the run did not
        validate).

    Raises:
        OSError: the file cannot be read (the caller turns it into a warning naming the file).

    >>> import io
    >>> raw = b"\\r1|4|Loss: 5.28:  50%|#| 4/8 [00:01<00:01, 3.77it/s]Validation loss: 5.1536\\n"
    >>> _scan(io.BytesIO(raw), 16)
    [ValidationLine(step=4, epoch=0, loss=5.1536, offset=52)]
    """
    with open(path, "rb") as fh:
        return _scan(fh, chunk_size)


def validation_frame(run: str, lines: list[ValidationLine]) -> pd.DataFrame:
    """One row per global step with a validation (``run, epoch, step, val_loss, source``).

    A step printed twice (a requeued job that repeats steps appends to the same file) keeps
    its last value, as the bar's frames do; lines before any bar frame (no step) are left out,
    because a curve needs the step.
    """
    last: dict[int, ValidationLine] = {}
    for ln in lines:
        if ln.step is not None:
            last[ln.step] = ln
    rows = [{"run": run, "epoch": ln.epoch, "step": s, "val_loss": ln.loss, "source": "slurm"}
            for s, ln in sorted(last.items())]
    return pd.DataFrame(rows, columns=VALIDATION_COLUMNS)
