"""Streaming reader of torchtune training output: SLURM/stdout captures and DiskLogger files.

A SLURM file of a long run is mostly progress-bar frames (one ``\\r`` frame per redraw, for
days), so the bar is located and decoded with vectorised byte operations on large binary
chunks (numpy over the raw buffer), and only the rare other text — log lines, ``Step N |``
lines, SLURM messages, text glued onto a frame — goes through per-line Python regexes.
Memory is bounded per file: one chunk plus the per-step results (last frame per global
step). A line without line break is kept up to :data:`MAX_SEGMENT` bytes; the rest of it
is skipped with a warning.

Format facts this relies on are in ``docs/training.md`` (from FORMATS.md): the bar
description is ``{epoch}|{global_step}|Loss: {loss}`` with a 1-based epoch; stale frames
repeat the previous description, so the last frame per global step wins; everything may be
glued to an unterminated frame.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import yaml

from analyze_experiment.sources.slurm import Event, classify_line

CHUNK_SIZE = 2 << 20
"""Bytes read per chunk."""
MAX_SEGMENT = 1 << 20
"""Longest line (between ``\\r``/``\\n``) kept; longer lines keep their first MAX_SEGMENT bytes."""
MAX_CONFIG_LINES = 5000
MAX_STEP_LINE = 16384
LINE_HEAD, LINE_TAIL = 65536, 4096
"""Line-level patterns look at the first LINE_HEAD and last LINE_TAIL characters of a longer line."""

_PAD = 48  # separator bytes around each block so fixed windows never leave the buffer
_PADB = b"\n" * _PAD
_STEP_DIGITS = 10
_EPOCH_DIGITS = 10
"""Digit runs of this length or longer are not read as a step or an epoch (the frame is then
counted as undecoded and named): up to 9 digits each (issue 16: epochs of 6 digits were lost)."""
_LOSS_WIDTH = 26

# ---- line patterns (applied to decoded text after the bar frames are removed) ----------
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOGGER_PREFIX_RE = re.compile(r"^(?:\[[^\]\s]{1,40}\]: ?)?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:)?")
_NUM = r"nan|NaN|-?inf|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
BAR_RE = re.compile(
    r"(?P<epoch>\d+)\|(?P<step>\d+)\|Loss: (?P<loss>" + _NUM + r")"
    r"(?::\s*(?P<pct>\d+)%\|[^|\r\n]{0,200}\|\s*(?P<n>\d+)/(?P<total>\d+)"
    r" \[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+),\s*(?P<rate>[\d.?]+)(?P<unit>it/s|s/it)\])?"
)
"""One progress-bar frame with a description (the tail is optional: frames can be cut)."""
_BAR_STRIP_RE = re.compile(
    r"(?:\d+\|\d+(?:\|Loss: [^:\r\n]{0,64})?: *)?\d+%\|[^|\r\n]{0,200}\|\s*\d+/\d+ \[[^\]\r\n]{0,200}\]"
)
STEP_RE = re.compile(r"Step (?P<step>\d+) \| (?P<rest>[^\r\n]*)")
"""A metric-logger line ``Step N | key:value key:value `` (StdoutLogger or DiskLogger)."""
_KV_RE = re.compile(r"([^\s:|]{1,200}):(\S{1,400})(\s|$)")
_BANNER_RE = re.compile(r"Running (?P<recipe>\w+) with resolved config:")
_WRITING_RE = re.compile(r"Writing logs to (?P<path>\S+)")
_SEED_RE = re.compile(r"Setting manual seed to local seed (?P<seed>\d+)")
"""torchtune's ``set_seed``: the seed the process really used (the config's ``seed`` + rank, or a
random one when the config says ``seed: null``)."""
_MEMORY_RE = re.compile(
    r"(?P<device>\b\w{1,16}) peak memory (?P<kind>allocation|alloc|reserved|active): (?P<value>[\d.]+) (?P<unit>GiB|GB)"
)
_CKPT_SIZE_RE = re.compile(
    r"(?P<kind>Model|Adapter|Recipe) checkpoint of size (?P<size>[\d.]+) (?P<unit>GiB|GB) saved to (?P<path>\S+)"
)
_CKPT_DIR_RE = re.compile(r"Model checkpoint saved to (?P<path>\S+)")
_CKPT_TIME_RE = re.compile(
    r"Checkpoint saved in (?P<s>[\d.]+) seconds|Saving (?:asynchronous )?checkpoint took (?P<s2>[\d.]+) secs"
)
_CKPT_START_RE = re.compile(r"Starting checkpoint save|Saving checkpoint\. This may take")
_FINAL_RE = re.compile(r"Saving final epoch checkpoint\.")
_NPROC_RE = re.compile(r"--nproc[_-]per[_-]node[ =](?P<n>\d+)|Using nproc_per_node=(?P<n2>\d+)")
_RANK_RE = re.compile(r"^\[rank(?P<r>\d+)\]:")
_WANDB_SUMMARY_RE = re.compile(r"wandb: Run summary:")
_WANDB_KV_RE = re.compile(r"wandb:\s+(?P<key>\S+)\s+(?P<value>\S+)\s*$")
_EPOCH_IN_PATH_RE = re.compile(r"(?:^|/)(?:epoch|step)_(?P<e>\d+)(?:/|$)|_(?P<e2>\d+)\.(?:pt|bin|safetensors)$")
_TIME_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+)$")
_DESC_FRAME_RE = re.compile(
    r"[^\r\n]{0,300}?\d{1,3}%\|[^|\r\n]{0,200}\|\s*\d+/\d+\s*\[[^\]\r\n]{0,300}\]"
)
"""One tqdm frame with whatever description precedes it and its ``[…]`` postfix."""
_TRAINING_WORDS_RE = re.compile(r"(?i)loss|\bstep|epoch")
_NOISE_BAR_RE = re.compile(r"\s*\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*\]\s*")
_TORCHTUNE_HINTS = ("torchtune", "resolved config", "Loss:", "Step ", "checkpoint", "Writing logs to")

_UNIT_GIB = {"GiB": 1.0, "GB": 1e9 / 2**30}


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


# ---------------------------------------------------------------------------------------
@dataclass
class EpochInfo:
    """What the bar says about one epoch (``epoch`` is the bar's 1-based number)."""

    epoch: int
    total: int | None = None
    elapsed_s: float | None = None
    """Elapsed at the first frame that reached total/total (later redraws include the checkpoint)."""
    complete: bool = False
    last_n: int | None = None
    last_elapsed_s: float | None = None


@dataclass
class Checkpoint:
    """One ``… checkpoint of size X GB|GiB saved to …`` / ``Model checkpoint saved to`` line."""

    kind: str
    path: str
    size_gib: float | None
    epoch: int | None
    """0-based epoch from the path (``epoch_N``, ``*_N.pt``) or the bar, None when unknown."""


@dataclass
class SlurmOutput:
    """Everything read from one SLURM/stdout capture of a torchtune run."""

    path: Path
    n_bytes: int = 0
    bar_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bar_epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """1-based, as printed."""
    bar_loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    bar_frames: int = 0
    """Frames with a description seen (before keeping the last per step)."""
    epochs: dict[int, EpochInfo] = field(default_factory=dict)
    stdout_steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    recipe: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_error: str | None = None
    local_seed: int | None = None
    """The seed rank 0 really used (``Setting manual seed to local seed N``; None when not printed)."""
    memory_init: dict[str, float] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_s: dict[int, float] = field(default_factory=dict)
    """0-based epoch → seconds spent saving its checkpoint."""
    final_checkpoint: str | None = None
    final_checkpoint_offset: int | None = None
    wandb_summary: dict[str, float | str] = field(default_factory=dict)
    disk_log_names: list[str] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)
    """(byte offset, event) in file order."""
    n_gpus: int | None = None
    n_gpus_source: str | None = None
    ranks: set[int] = field(default_factory=set)
    long_lines: int = 0
    last_offset: int = 0
    problems: list[str] = field(default_factory=list)
    attempt_starts: list[int] = field(default_factory=list)
    """File offsets where a new attempt begins: a config banner after training output or an
    end message (Slurm ``--requeue`` appends the new attempt to the same file)."""
    restarts: list[tuple[int, int]] = field(default_factory=list)
    """(offset of the frame or Step line before, offset of the line) where the step counter went
    backwards: a new attempt begins at that line unless a banner already started one."""
    first_step: int | None = None
    last_step: int | None = None
    """First and last bar step in file order (to see a restart across parallel byte ranges)."""
    undecoded_frames: int = 0
    """Frames with a ``|Loss: `` description that could not be decoded (never dropped silently)."""
    first_undecoded: str | None = None
    pending_cut: str | None = None
    """The last frame seen so far was cut inside its loss (counted once anything follows it)."""
    other_rank_frames: int = 0
    """Frames of ranks other than 0 (torchrun ``[rankN]:`` lines), left out of the curve."""
    unparsed_frames: int = 0
    """Progress frames whose description or postfix speaks of loss/step/epoch but is not in a
    format this reader knows (a newer torchtune): counted and named, never dropped silently."""
    first_unparsed: str | None = None
    byte_range: tuple[int, int] | None = None
    """The bytes of the file this attempt covers (None: the whole file)."""
    earlier_attempts: list[SlurmOutput] = field(default_factory=list)
    """Attempts before this one in the same file, oldest first. The fields above them describe
    the *last* attempt only: its status and curve are the run's (issue 12)."""

    @property
    def looks_like_torchtune(self) -> bool:
        """True when anything torchtune-specific was seen."""
        return bool(
            len(self.bar_step) or self.stdout_steps or self.recipe or self.checkpoints or self.disk_log_names
        )


# ---- vectorised bar scanning -------------------------------------------------------------
_LOSS_TAG = int.from_bytes(b"|Loss: ", "little")  # 7 bytes, compared under a 56-bit mask
_MASK7 = (1 << 56) - 1
_FULL_TAG = int.from_bytes(b"100%|", "little")  # 5 bytes, compared under a 40-bit mask
_MASK5 = np.uint64((1 << 40) - 1)
_POW10_LD = np.array([np.longdouble(10) ** i for i in range(28)], dtype=np.longdouble)
_POW10_I64 = 10 ** np.arange(19, dtype=np.int64)
_NAN_TAGS = {b"nan:": math.nan, b"inf:": math.inf}
_WALK_MAX = 8  # separator runs longer than this are measured one by one


def _u64_view(a: np.ndarray) -> np.ndarray:
    """Every byte offset of ``a`` as an (unaligned) little-endian uint64: 8-byte compares in one gather."""
    return np.ndarray(shape=(len(a) - 7,), dtype="<u8", buffer=a, offset=0, strides=(1,))


def _swar8(w: np.ndarray) -> np.ndarray:
    """Eight digit values, one per byte (first digit in the lowest byte) → the 8-digit number.

    Three multiply-shift-mask rounds over whole uint64 words (pairs, quads, octets) instead
    of one numpy pass per digit.
    """
    w = (w * np.uint64(10) + (w >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    w = (w * np.uint64(100) + (w >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return ((w * np.uint64(10000) + (w >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _trailing_int(a: np.ndarray, end: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Value and length of the run of ASCII digits that ends just before each ``end``."""
    val = np.zeros(len(end), np.int64)
    k = np.zeros(len(end), np.int64)
    run = np.ones(len(end), bool)
    for j in range(1, width + 1):
        d = a[end - j] - np.uint8(48)
        run &= d <= 9
        if not run.any():
            break
        val += np.where(run, d.astype(np.int64) * 10 ** (j - 1), 0)
        k += run
    return val, k


_H = np.uint64(0x8080808080808080)
_ZEROS = np.uint64(0x3030303030303030)  # b"00000000"
_COLONS = np.uint64(0x3A3A3A3A3A3A3A3A)  # b"::::::::"
_TOP = np.array([((1 << 64) - 1) ^ ((1 << (8 * (8 - k))) - 1) for k in range(9)], dtype=np.uint64)
"""_TOP[k]: the k highest bytes of a word (the k bytes nearest its end)."""
_LOW = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
"""_LOW[k]: the k lowest bytes of a word (its first k bytes)."""


def _non_digits(w: np.ndarray) -> np.ndarray:
    """Bit 7 of each byte of ``w`` set where that byte is not an ASCII digit (SWAR, no carries)."""
    hi = w | _H
    digit = (hi - _ZEROS) & ~(hi - _COLONS) & ~w & _H
    return digit ^ _H


def _digits_before_end(w: np.ndarray) -> np.ndarray:
    """Length (0-8) of the run of ASCII digits that ends at the last byte of each word ``w``."""
    nd = _non_digits(w)
    exp = np.frexp(nd.astype(np.float64))[1]  # highest non-digit byte j: exponent 8j + 8
    return np.where(nd == 0, 8, 8 - exp // 8)


def _first_set_byte(w: np.ndarray) -> np.ndarray:
    """Index (0-7) of the lowest byte of ``w`` with bit 7 set; 8 when there is none."""
    low = w & (~w + np.uint64(1))
    return np.bitwise_count(low - np.uint64(1)).astype(np.int64) >> 3


def _run_value(w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Value of the last ``k`` (≤ 8) bytes of each word, all ASCII digits."""
    m = _TOP[k]
    return _swar8((w & m) - (_ZEROS & m))


def _desc_ints(a: np.ndarray, u64: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """Step and epoch of each description ``{epoch}|{step}`` that ends just before ``q`` (a ``|``).

    Same values as ``_trailing_int`` with widths 10 (step) and 10 (epoch): the 8 bytes before
    ``q`` are one word whose digit run is measured and decoded with word operations; the
    rare steps or epochs of 8 or more digits go through ``_trailing_int``. Returns (step, step
    digits, epoch, epoch digits, pipe) where ``pipe`` says a ``|`` precedes the step digits.
    """
    w = u64[q - 8]
    ks = _digits_before_end(w)
    step = _run_value(w, ks)
    pipe = a[q - 1 - ks] == 124
    we = u64[q - ks - 9]  # the 8 bytes ending just before that '|'
    ke = _digits_before_end(we)
    epoch = _run_value(we, ke)
    long = np.flatnonzero(ks == 8)
    if len(long):
        ql = q[long]
        step[long], ks[long] = _trailing_int(a, ql, _STEP_DIGITS)
        pipe[long] = a[ql - ks[long] - 1] == 124
        epoch[long], ke[long] = _trailing_int(a, ql - ks[long] - 1, _EPOCH_DIGITS)
    long_epoch = np.flatnonzero((ke == 8) & (ks < 8))
    if len(long_epoch):
        epoch[long_epoch], ke[long_epoch] = _trailing_int(a, q[long_epoch] - ks[long_epoch] - 1, _EPOCH_DIGITS)
    return step, ks, epoch, ke, pipe


def _parse_decimals_loop(a: np.ndarray, start: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`parse_decimals` one byte column at a time: any plain decimal form."""
    n = len(start)
    M = np.zeros(n, np.int64)
    nd = np.zeros(n, np.int64)
    frac = np.zeros(n, np.int64)
    active = np.ones(n, bool)
    term = np.zeros(n, bool)
    other = np.zeros(n, bool)
    dot = np.zeros(n, bool)
    for j in range(width):
        c = a[start + j]
        colon = c == 58
        term |= active & colon
        active &= ~colon
        if not active.any():
            break
        d = c - np.uint8(48)
        isd = active & (d <= 9)
        M = np.where(isd, M * 10 + d, M)
        nd += isd
        frac += isd & dot
        is_dot = active & (c == 46)
        other |= (active & ~isd & ~is_dot) | (is_dot & dot)
        dot |= is_dot
    ok = term & ~other & (nd > 0) & (nd <= 18)
    return (*_round_exact(M, np.minimum(frac, 27), ok), term)


def _round_exact(mantissa: np.ndarray, frac: np.ndarray | int, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mantissa / 10**frac rounded once to float64; ``ok`` cleared where double rounding is possible."""
    ld = mantissa.astype(np.longdouble) / _POW10_LD[frac]
    d64 = ld.astype(np.float64)
    r = np.abs(ld - d64.astype(np.longdouble))
    return d64, ok & (r < np.spacing(d64).astype(np.longdouble) * np.longdouble(0.4995))


def parse_decimals(a: np.ndarray, start: np.ndarray, width: int = 26) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse the plain decimal (``4.921807289123535``) that starts at each ``start`` and ends at ``:``.

    Exact: the digits form an integer mantissa M (≤ 18 digits) and a power of ten; M/10^k is
    computed in extended precision and rounded once to float64, except where that rounding
    could be a double rounding (extended result on a float64 midpoint). Those rows, and every
    row that is not a plain unsigned decimal (``nan``, ``inf``, ``-1.5``, ``1e-05``, odd text),
    come back with ``exact=False`` for Python's ``float``. Returns (values, exact,
    terminated), ``terminated`` meaning a ``:`` ended the text within ``width`` bytes.

    The usual loss form ``d.`` plus at most 17 decimals is read as three 8-byte words per
    row (a byte matrix for the checks, :func:`_swar8` for the digits); other rows go
    through the column loop. ``a`` must hold ``width`` bytes after every start (≥ 26 read).
    """
    n = len(start)
    if n == 0 or width < 26:
        return _parse_decimals_loop(a, start, width)
    u64 = _u64_view(a)
    v0, v1 = u64[start + 2], u64[start + 10]  # decimals 0-7 and 8-15
    nd0, nd1 = _non_digits(v0), _non_digits(v1)
    g = np.where(nd0 != 0, _first_set_byte(nd0), 8 + _first_set_byte(nd1))  # decimals before a non-digit
    d16 = a[start + 18] - np.uint8(48)  # a 17th decimal
    g += (g == 16) & (d16 <= 9)
    head = u64[start]
    d0 = (head & np.uint64(0xFF)).astype(np.int64) - 48
    dot = (head & np.uint64(0xFF00)) == np.uint64(0x2E00)
    fast = (g <= 17) & (a[start + 2 + g] == 58) & (d0 >= 0) & (d0 <= 9) & dot
    m0, m1 = _LOW[np.minimum(g, 8)], _LOW[np.clip(g - 8, 0, 8)]
    hi, mid = _swar8((v0 & m0) - (_ZEROS & m0)), _swar8((v1 & m1) - (_ZEROS & m1))
    mantissa = d0 * 10**17 + (hi * 100_000_000 + mid) * 10 + np.where(g == 17, d16, 0)
    mantissa[~fast] = 0
    values, exact = _round_exact(mantissa, 17, fast)
    term = fast.copy()
    slow = np.flatnonzero(~fast)
    if len(slow):
        v, ok, t = _parse_decimals_loop(a, start[slow], width)
        values[slow], exact[slow], term[slow] = v, ok, t
    return values, exact, term


@dataclass
class _Block:
    """Result of scanning one block (positions are offsets into the padded block)."""

    pos: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    text_segments: list[tuple[int, int]]
    frames: int
    seg_starts: np.ndarray
    """First byte of every non-empty segment (text between two ``\\r``/``\\n``), in order."""
    seg_ends: np.ndarray
    """The separator that ends each segment."""
    full_segs: np.ndarray
    """Indices of the segments that hold ``100%|``."""
    undecoded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Positions of frames with a ``|Loss: `` tag that could not be decoded."""
    cut: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Positions of frames whose loss has no ``:`` after it (cut while being written)."""


def _segments(a: np.ndarray, sep: np.ndarray, mark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every non-empty segment, from the separator mask ``sep`` (``mark`` is scratch).

    Only the last separator of each run is enumerated (``\\n\\r`` between frames is one run);
    the end of a segment is found by walking back from the next run's last separator.
    """
    size = len(a)
    np.greater(sep[:-1], sep[1:], out=mark[:-1])  # a separator followed by text
    mark[-1] = False
    starts = np.flatnonzero(mark) + 1
    ends = np.empty(len(starts), np.int64)
    if not len(starts):
        return starts, ends
    ends[:-1] = starts[1:] - 1
    ends[-1] = size - 1
    cur = np.flatnonzero(sep[ends - 1])
    for _ in range(_WALK_MAX):
        if not len(cur):
            break
        ends[cur] -= 1
        cur = cur[sep[ends[cur] - 1]]
    for i in cur.tolist():  # long runs of blank lines: the first separator after the start
        s = int(starts[i])
        ends[i] = s + int(np.argmax(sep[s : int(ends[i])]))
    return starts, ends


def _frames_at_starts(a: np.ndarray, u64: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments that open with a description ``{epoch}|{step}|Loss: `` (≤ 5 and ≤ 7 digits).

    Returns their indices and the position of each ``L``. When these are all the ``L`` bytes
    of a block, the block has no other frame and every frame starts its segment cleanly, so
    the general search (every ``L``, then its segment) is not needed.
    """
    w = u64[starts]
    e = _first_set_byte(_non_digits(w))  # leading epoch digits
    pipe = starts + e
    ok = (e >= 1) & (e <= 5) & (((w >> (e.astype(np.uint64) << np.uint64(3))) & np.uint64(0xFF)) == 124)
    k = _first_set_byte(_non_digits(u64[pipe + 1]))  # step digits
    tag = pipe + 1 + k
    ok &= (k >= 1) & (k <= 7) & ((u64[tag] & _MASK7) == _LOSS_TAG)
    idx = np.flatnonzero(ok)
    return idx, tag[idx] + 1


def _scan_block(data: bytes | bytearray, size: int, scratch: tuple[np.ndarray, np.ndarray]) -> _Block:
    """Find every bar description in ``data`` (padded with separators) and the text segments.

    Frames are located with one byte compare plus one 8-byte compare per candidate; runs of
    frames with the same description (stale redraws) are collapsed to their last frame before
    anything is decoded. A segment is the text between two ``\\r``/``\\n``: segments that hold
    only bar frames (optionally behind a ``prefix:``, optionally followed by padding or
    ``ESC[A``) are done; every other non-empty segment is returned for line-level parsing.
    """
    a = np.frombuffer(data, np.uint8, count=size)
    u64 = _u64_view(a)
    s1, s2 = scratch[0][:size], scratch[1][:size]
    np.equal(a, 10, out=s1)
    np.equal(a, 13, out=s2)
    np.logical_or(s1, s2, out=s1)
    starts, ends = _segments(a, s1, s2)
    n_l = int(np.count_nonzero(np.equal(a, 76, out=s2)))  # 'L'
    fidx, lpos = _frames_at_starts(a, u64, starts)
    at_starts = len(lpos) == n_l  # every "|Loss: " of the block opens a segment
    if not at_starts:
        cand = np.flatnonzero(s2)
        cand = cand[(cand > _PAD // 2) & (cand < len(a) - _LOSS_WIDTH - 8)]
        lpos = cand[(u64[cand - 1] & _MASK7) == _LOSS_TAG]
        fidx = np.searchsorted(starts, lpos, "right") - 1
    frames_all = lpos
    kept_idx = None  # index into frames_all of each frame kept
    # collapse stale redraws: consecutive frames whose 8 bytes before "|Loss" are equal
    if len(lpos) > 1:
        key = u64[lpos - 9]
        keep = np.ones(len(lpos), bool)
        keep[:-1] = key[1:] != key[:-1]
        # a frame glued to the next one is kept whole (its segment may hold other text)
        kept_idx = np.flatnonzero(keep)
        lpos = lpos[kept_idx]
    q = lpos - 1
    step, ks, epoch, ke, pipe = _desc_ints(a, u64, q)
    good = (ks > 0) & (ks < _STEP_DIGITS) & pipe & (ke > 0) & (ke < _EPOCH_DIGITS)
    loss, exact, term = parse_decimals(a, lpos + 6, _LOSS_WIDTH)
    good &= term
    slow = np.flatnonzero(good & ~exact)
    for i in slow.tolist():
        v0 = int(lpos[i]) + 6
        text = data[v0 : data.find(b":", v0)]
        try:
            loss[i] = float(text)
        except ValueError:
            good[i] = False
    # frames found by their "|Loss: " tag that could not be decoded are counted, never lost without
    # a word; a frame whose loss is cut (no ':' after it) is only incomplete, unless more follows
    shape = (ks > 0) & pipe & (ke > 0)
    undecoded = np.flatnonzero(~good & (term | ~shape))
    cut = np.flatnonzero(~good & ~term & shape)
    if kept_idx is None:
        kept_idx = np.arange(len(lpos))
    bad_pos = lpos[undecoded]
    cut_pos = lpos[cut]
    lpos, step, epoch, ks, ke, loss = lpos[good], step[good], epoch[good], ks[good], ke[good], loss[good]
    kept_idx = kept_idx[good]

    # segments and which of them need line-level parsing
    nseg = len(ends)
    has_bar = np.zeros(nseg, bool)
    dirty = np.zeros(nseg, bool)
    if len(frames_all):
        has_bar[fidx] = True
    if len(frames_all) and not at_starts:  # (at segment starts: one clean-started frame per segment)
        if len(fidx) > 1:  # several frames in one segment: the later ones are glued on
            dup = np.zeros(len(fidx), bool)
            dup[1:] = fidx[1:] == fidx[:-1]
            dirty[fidx[dup]] = True
        if len(lpos):
            sidx = fidx[kept_idx]
            frame_start = lpos - 1 - ks - 1 - ke
            clean_start = (frame_start == starts[sidx]) | (a[frame_start - 1] == 58)
            dirty[sidx[~clean_start]] = True
    bar_segs = np.flatnonzero(has_bar)
    if len(bar_segs):  # common endings: "…it/s]" and "…it/s]ESC[A"; the rest checked in full
        e = ends[bar_segs]
        fast = (a[e - 1] == 93) | ((a[e - 1] == 65) & (a[e - 2] == 91) & (a[e - 3] == 27) & (a[e - 4] == 93))
        bar_segs = bar_segs[~fast]
    if len(bar_segs):
        e = ends[bar_segs]
        tail = a[e[:, None] - np.arange(1, 17)]
        non_trail = ~_TRAIL_CHARS[tail]
        first = np.argmax(non_trail, axis=1)
        last_char = tail[np.arange(len(e)), first]
        clean_end = non_trail.any(axis=1) & (last_char == 93)  # ']'
        dirty[bar_segs[~clean_end]] = True
    need = np.flatnonzero(~has_bar | dirty)
    text_segments = list(zip(starts[need].tolist(), ends[need].tolist(), strict=True))

    # segments holding "100%|" (epoch ends): a '%' with a '1' three bytes before it, then checked
    np.equal(a, 37, out=s1)
    np.equal(a, 49, out=s2)
    np.logical_and(s1[3:], s2[:-3], out=s1[3:])
    s1[:3] = False
    hits = np.flatnonzero(s1) - 3
    hits = hits[hits < len(u64)]
    hits = hits[(u64[hits] & _MASK5) == _FULL_TAG]
    full_segs = np.unique(np.searchsorted(starts, hits, "right") - 1)
    return _Block(lpos, step, epoch, loss, text_segments, len(frames_all), starts, ends, full_segs, bad_pos, cut_pos)


_TRAIL_CHARS = np.zeros(256, bool)
for _c in b" \x1b[A\t":
    _TRAIL_CHARS[_c] = True


def _float_or_nan(b: bytes) -> float:
    try:
        return float(b)
    except ValueError:
        return math.nan


def _dedupe_last(step: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep the last occurrence of each step (later frames win), sorted by step."""
    if len(step) < 2:
        return (step, *cols)
    run_end = np.ones(len(step), bool)
    run_end[:-1] = step[1:] != step[:-1]
    if not run_end.all():
        step, cols = step[run_end], tuple(c[run_end] for c in cols)
    if bool(np.all(step[1:] > step[:-1])):
        return (step, *cols)
    rev = step[::-1]
    _, idx = np.unique(rev, return_index=True)
    keep = len(step) - 1 - idx
    return (step[keep], *(c[keep] for c in cols))


# ---- line-level parsing --------------------------------------------------------------------
class _LineParser:
    """State machine over the non-bar text of one file (config banner, wandb summary …)."""

    def __init__(self, out: SlurmOutput) -> None:
        self.out = out
        self.in_config = False
        self.config_lines: list[str] = []
        self.config_started = False
        self.in_wandb = False
        self.ckpt_epoch: int | None = None
        self.config_done = False
        self.frame_before: int | None = None
        """File offset of the last bar frame before the segment being fed (None: no frame yet)."""
        self.boundary = 0
        """Offset where the current attempt began."""
        self.output_since = False
        """A Step line or an end message was seen since ``boundary``."""
        self.last_stdout_step: int | None = None
        self.last_stdout_offset = 0
        self.other_rank_line = False
        """The line in progress at the end of the last block carries a rank prefix other than 0."""

    def feed(
        self,
        raw: str,
        offset: int,
        bar_epoch: int | None,
        terminated: bool,
        blank_before: bool,
        other_rank: bool = False,
    ) -> None:
        """One segment of text; ``bar_epoch`` is the 1-based epoch of the last frame before it.

        ``other_rank``: the segment belongs to a line torchrun prefixed with a rank other
        than 0; only failures are read from it (the curve, config and checkpoints are rank 0's).
        """
        text = _ANSI_RE.sub("", raw)
        rm = _RANK_RE.match(text)
        if rm:  # torchrun's `[rankN]:` prefix (evidence lines keep it; the config banner does not)
            self.out.ranks.add(int(rm.group("r")))
            if not text[rm.end() :].strip():  # a blank line of that rank
                if self.in_config and self.config_started and not other_rank:
                    self._finish_config()
                return
        if other_rank:
            ev = classify_line(text)
            if ev is not None:
                self.out.events.append((offset, ev))
                self.output_since = True
            return
        if self.in_config and self._config_line(text[rm.end() :] if rm else text, blank_before):
            return
        if "%|" in text:
            self._unparsed_frames(text)
        if "|" in text and "%|" in text:
            text = _BAR_STRIP_RE.sub("\n", text)
        for piece in text.split("\n"):
            if len(piece) > LINE_HEAD + LINE_TAIL:
                self._line(piece[:LINE_HEAD], offset, bar_epoch, False)
                self._line(piece[-LINE_TAIL:], offset, bar_epoch, terminated)
            elif piece.strip():
                self._line(piece, offset, bar_epoch, terminated)

    def _unparsed_frames(self, text: str) -> None:
        """Count progress frames that speak of loss/step/epoch in a format not read here.

        Frames in the known ``{epoch}|{step}|Loss: {loss}`` format that reach this point (glued
        to other text) are read elsewhere; other bars (``Loading checkpoint shards``, dataset
        ``Map``) say nothing of training and are not counted."""
        for m in _DESC_FRAME_RE.finditer(text):
            frame = m.group(0)
            if _TRAINING_WORDS_RE.search(frame) and not BAR_RE.search(frame):
                self.out.unparsed_frames += 1
                if self.out.first_unparsed is None:
                    self.out.first_unparsed = frame.strip()[:200]

    def _config_line(self, text: str, blank_before: bool) -> bool:
        """Collect YAML lines of the banner; True when ``text`` was consumed."""
        if not self.config_started:
            if not text.strip():
                return True
            self.config_started = True
        elif blank_before or len(self.config_lines) >= MAX_CONFIG_LINES:
            self._finish_config()
            return False
        self.config_lines.append(text.rstrip())
        return True

    def _finish_config(self) -> None:
        self.in_config = False
        if self.config_done:
            self.config_lines = []
            return
        self.config_done = True
        text = "\n".join(self.config_lines)
        self.config_lines = []
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            self.out.config_error = f"the resolved-config banner is not valid YAML ({str(exc).splitlines()[0]})"
            return
        if isinstance(cfg, dict):
            self.out.config = cfg
        else:
            self.out.config_error = "the resolved-config banner is not a YAML mapping"

    def finish(self) -> None:
        if self.in_config:
            self._finish_config()

    def _line(self, line: str, offset: int, bar_epoch: int | None, terminated: bool) -> None:
        out = self.out
        rm = _RANK_RE.match(line)
        if rm:
            out.ranks.add(int(rm.group("r")))
        body = _LOGGER_PREFIX_RE.sub("", line, count=1)
        ev = classify_line(line)
        if ev is not None:
            out.events.append((offset, ev))
            self.output_since = True
            return
        if "Step " in body:
            parsed = parse_step_line(body, terminated=terminated)
            if parsed:
                step, values = parsed
                if self.last_stdout_step is not None and step < self.last_stdout_step:
                    out.restarts.append((self.last_stdout_offset, offset))
                self.last_stdout_step, self.last_stdout_offset = step, offset
                out.stdout_steps.setdefault(step, {}).update(values)
                self.output_since = True
                return
        if self.in_wandb:
            m = _WANDB_KV_RE.match(body)
            if m:
                out.wandb_summary[m.group("key")] = parse_value(m.group("value"))
                return
            self.in_wandb = False
        sm = _SEED_RE.search(body)
        if sm and (rm is None or rm.group("r") == "0"):
            out.local_seed = int(sm.group("seed"))
            return
        m = _BANNER_RE.search(body)
        if m:
            # a banner after training output or an end message starts a new attempt; the
            # banners of several ranks at the start of one job do not
            if self.output_since or (self.frame_before is not None and self.frame_before >= self.boundary):
                out.attempt_starts.append(offset)
                self.boundary, self.output_since = offset, False
                self.last_stdout_step = None
            if out.recipe is None:
                out.recipe = m.group("recipe")
            self.in_config = True
            self.config_started = False
            return
        if _WANDB_SUMMARY_RE.search(body):
            self.in_wandb = True
            return
        m = _WRITING_RE.search(body)
        if m:
            out.disk_log_names.append(m.group("path"))
            return
        m = _MEMORY_RE.search(body)
        if m:
            out.memory_init[{"allocation": "alloc"}.get(m.group("kind"), m.group("kind"))] = float(m.group("value")) * _UNIT_GIB[m.group("unit")]
            return
        m = _CKPT_SIZE_RE.search(body) or _CKPT_DIR_RE.search(body)
        if m:
            path = m.group("path")
            pm = _EPOCH_IN_PATH_RE.search(path.rstrip("/"))
            epoch = None
            if pm and "recipe_state" not in path:
                epoch = int(pm.group("e") or pm.group("e2"))
                if epoch < 0:
                    epoch = None
            if epoch is None and bar_epoch is not None:
                epoch = bar_epoch - 1
            kind = m.groupdict().get("kind") or "Model"
            size = m.groupdict().get("size")
            gib = float(size) * _UNIT_GIB[m.group("unit")] if size else None
            out.checkpoints.append(Checkpoint(kind, path, gib, epoch))
            if kind != "Recipe" and epoch is not None:
                self.ckpt_epoch = epoch
            return
        if _CKPT_START_RE.search(body):
            self.ckpt_epoch = bar_epoch - 1 if bar_epoch is not None else None
            return
        m = _CKPT_TIME_RE.search(body)
        if m:
            seconds = float(m.group("s") or m.group("s2"))
            epoch = self.ckpt_epoch if self.ckpt_epoch is not None else (bar_epoch - 1 if bar_epoch else None)
            if epoch is not None:
                out.checkpoint_s[epoch] = out.checkpoint_s.get(epoch, 0.0) + seconds
            return
        if _FINAL_RE.search(body):
            out.final_checkpoint = body.strip()[:300]
            out.final_checkpoint_offset = offset
            return
        m = _NPROC_RE.search(body)
        if m:
            out.n_gpus = int(m.group("n") or m.group("n2"))
            out.n_gpus_source = "torchrun nproc_per_node"


def _bar_frames_in(text: str) -> Iterator[re.Match[str]]:
    return BAR_RE.finditer(_ANSI_RE.sub("", text))


def _note_epoch_frames(out: SlurmOutput, text: str, *, last: bool) -> None:
    """Record totals/elapsed of the bar frames in ``text`` (the 100 % ones, or the last one)."""
    frames = [m for m in _bar_frames_in(text) if m.group("n")]
    if last:
        frames = frames[-1:]
    for m in frames:
        e = int(m.group("epoch"))
        info = out.epochs.setdefault(e, EpochInfo(e))
        n, total = int(m.group("n")), int(m.group("total"))
        elapsed = parse_elapsed(m.group("elapsed"))
        info.total = total
        if n >= total and not info.complete:
            info.complete = True
            info.elapsed_s = elapsed
        if (last or n >= total) and (info.last_n is None or n >= info.last_n):
            info.last_n = n
            info.last_elapsed_s = elapsed


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


class _Range:
    """A file object limited to bytes [start, end) (readinto only)."""

    def __init__(self, fh: BinaryIO, start: int, end: int) -> None:
        fh.seek(start)
        self.fh, self.left = fh, end - start

    def readinto(self, buf: memoryview) -> int:
        n = min(len(buf), self.left)
        if n <= 0:
            return 0
        got = self.fh.readinto(buf[:n]) or 0
        self.left -= got
        return got


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
    ranges = list(itertools.pairwise(bounds))
    with ProcessPoolExecutor(max_workers=len(ranges)) as pool:
        parts = list(pool.map(_read_range, [path] * len(ranges), *zip(*ranges, strict=True),
                              [chunk_size] * len(ranges)))
    return _merge(path, parts)


def _merge(path: Path, parts: list[SlurmOutput]) -> SlurmOutput:
    """Combine the results of consecutive byte ranges of one file (later ranges win per step)."""
    out = SlurmOutput(path=path)
    cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    prev: SlurmOutput | None = None
    for p in parts:  # attempt marks, and a step counter that goes backwards across two ranges
        out.attempt_starts.extend(p.attempt_starts)
        out.restarts.extend(p.restarts)
        if p.first_step is None:
            continue
        if prev is not None and prev.last_step is not None and p.first_step < prev.last_step:
            start = p.byte_range[0] if p.byte_range else 0
            out.restarts.append((start - 1, start))
        out.first_step = out.first_step if out.first_step is not None else p.first_step
        out.last_step, prev = p.last_step, p
    for p in parts:
        if not len(p.bar_step):
            continue
        if cols and cols[-1][0][-1] == p.bar_step[0]:  # a step redrawn across the range boundary
            cols[-1] = (cols[-1][0][:-1], cols[-1][1][:-1], cols[-1][2][:-1])
        cols.append((p.bar_step, p.bar_epoch, p.bar_loss))
    if cols:
        out.bar_step, out.bar_epoch, out.bar_loss = _dedupe_last(*(np.concatenate(c) for c in zip(*cols, strict=True)))
    for i, p in enumerate(parts):
        out.n_bytes += p.n_bytes
        out.bar_frames += p.bar_frames
        out.long_lines += p.long_lines
        cut_inside = p.pending_cut is not None and i < len(parts) - 1  # more of the file follows it
        out.undecoded_frames += p.undecoded_frames + cut_inside
        out.first_undecoded = out.first_undecoded or p.first_undecoded or (p.pending_cut if cut_inside else None)
        out.unparsed_frames += p.unparsed_frames
        out.other_rank_frames += p.other_rank_frames
        out.first_unparsed = out.first_unparsed or p.first_unparsed
        for e, info in p.epochs.items():
            cur = out.epochs.get(e)
            if cur is None:
                out.epochs[e] = info
                continue
            cur.total = info.total or cur.total
            if info.complete and not cur.complete:
                cur.complete, cur.elapsed_s = True, info.elapsed_s
            if info.last_n is not None and (cur.last_n is None or info.last_n >= cur.last_n):
                cur.last_n, cur.last_elapsed_s = info.last_n, info.last_elapsed_s
        for step, values in p.stdout_steps.items():
            out.stdout_steps.setdefault(step, {}).update(values)
        out.recipe = out.recipe or p.recipe
        if not out.config and p.config:
            out.config = p.config
        out.config_error = out.config_error or p.config_error
        out.memory_init.update(p.memory_init)
        out.checkpoints.extend(p.checkpoints)
        for e, sec in p.checkpoint_s.items():
            out.checkpoint_s[e] = out.checkpoint_s.get(e, 0.0) + sec
        if p.final_checkpoint is not None:
            out.final_checkpoint, out.final_checkpoint_offset = p.final_checkpoint, p.final_checkpoint_offset
        out.wandb_summary.update(p.wandb_summary)
        out.disk_log_names.extend(p.disk_log_names)
        out.events.extend(p.events)
        if out.n_gpus is None and p.n_gpus is not None:
            out.n_gpus, out.n_gpus_source = p.n_gpus, p.n_gpus_source
        out.ranks |= p.ranks
        out.problems.extend(p.problems)
    out.last_offset = out.n_bytes
    return out


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


def _read_stream(fh: BinaryIO, out: SlurmOutput, chunk_size: int) -> None:
    """Read ``fh`` chunk by chunk into one reused buffer laid out as [pad | carry + chunk | pad].

    ``carry`` is the unfinished last line of the previous chunk; each block handed on ends at
    a line break, so no frame or line is ever split between two blocks.
    """
    parser = _LineParser(out)
    steps: list[np.ndarray] = []
    epochs: list[np.ndarray] = []
    losses: list[np.ndarray] = []
    cap = 2 * _PAD + max(MAX_SEGMENT, chunk_size) + chunk_size + 8
    buf = bytearray(cap)
    view = memoryview(buf)
    buf[:_PAD] = _PADB
    scratch = np.empty(cap, bool), np.empty(cap, bool)
    carry_len = 0
    carry_offset = 0  # file offset of the first carried byte
    skipping = False  # inside an over-long line: drop bytes up to the next separator
    prev_tail = b" \n"  # last two bytes before the block: tells whether a blank line precedes it
    last_epoch: int | None = None
    total = 0
    while True:
        start = _PAD + carry_len
        n = fh.readinto(view[start : start + chunk_size]) or 0
        eof = n == 0
        total += n
        end = start + n
        if skipping and n:
            cut = _first_sep(buf, start, end)
            if cut < 0:
                carry_offset += n
                continue
            carry_offset += cut - start
            buf[_PAD : _PAD + end - cut] = buf[cut:end]
            end = _PAD + end - cut
            skipping = False
        if eof:
            body_end = end
        else:
            cut = max(buf.rfind(b"\n", _PAD, end), buf.rfind(b"\r", _PAD, end))
            if cut < 0:
                if end - _PAD <= MAX_SEGMENT:
                    carry_len = end - _PAD
                    continue
                out.long_lines += 1
                body_end = _PAD + MAX_SEGMENT
                skipping = True
            else:
                body_end = cut + 1
        rest = b"" if skipping else bytes(buf[body_end:end])
        if body_end > _PAD:
            buf[_PAD - 2 : _PAD] = prev_tail
            tail = prev_tail + bytes(buf[max(_PAD, body_end - 2) : body_end])
            buf[body_end : body_end + _PAD] = _PADB
            last_epoch = _process_block(out, parser, buf, body_end + _PAD, carry_offset, last_epoch, steps, epochs,
                                        losses, scratch)
            prev_tail = tail[-2:] if tail[-1:] in (b"\n", b"\r") else b" \n"
        if skipping:
            carry_offset += end - _PAD
            carry_len = 0
        else:
            carry_offset += body_end - _PAD
            buf[_PAD : _PAD + len(rest)] = rest
            carry_len = len(rest)
        if eof:
            break
    parser.finish()
    out.n_bytes = total
    out.last_offset = total
    if steps:
        s, e, lo = np.concatenate(steps), np.concatenate(epochs), np.concatenate(losses)
        out.bar_step, out.bar_epoch, out.bar_loss = _dedupe_last(s, e, lo)


def _first_sep(buf: bytearray, start: int, end: int) -> int:
    cands = [i for i in (buf.find(b"\n", start, end), buf.find(b"\r", start, end)) if i >= 0]
    return min(cands) if cands else -1


def _process_block(
    out: SlurmOutput,
    parser: _LineParser,
    data: bytearray,
    size: int,
    offset: int,
    last_epoch: int | None,
    steps: list[np.ndarray],
    epochs: list[np.ndarray],
    losses: list[np.ndarray],
    scratch: tuple[np.ndarray, np.ndarray],
) -> int | None:
    """Scan ``data[:size]`` (pad + block + pad); ``offset`` is the file offset of the block."""
    blk = _scan_block(data, size, scratch)
    other = None
    if parser.other_rank_line or _has_rank_prefix(data, size, blk.seg_starts):
        other = _other_rank_segments(data, size, blk, parser)
        n_frames = len(blk.pos)
        blk = _rank0_frames(blk, other)
        out.other_rank_frames += n_frames - len(blk.pos)
    out.bar_frames += blk.frames
    if len(blk.undecoded) or len(blk.cut) or out.pending_cut is not None:
        _note_undecoded(out, data, blk, offset)
    # lines over the cap inside one read chunk (longer ones are cut while reading)
    out.long_lines += int(np.count_nonzero(blk.seg_ends - blk.seg_starts > MAX_SEGMENT))
    if len(blk.step):
        # keep only the last frame of each run of equal steps (stale redraws), bounded memory
        keep = np.ones(len(blk.step), bool)
        keep[:-1] = blk.step[1:] != blk.step[:-1]
        if steps and len(steps[-1]) and steps[-1][-1] == blk.step[0]:  # a step redrawn across blocks
            steps[-1], epochs[-1], losses[-1] = steps[-1][:-1], epochs[-1][:-1], losses[-1][:-1]
        steps.append(blk.step[keep])
        epochs.append(blk.epoch[keep])
        losses.append(blk.loss[keep])
        # bounded memory with linear work: dedupe once the pieces since the last time at least
        # match the deduped prefix (re-concatenating the prefix every 64 blocks was quadratic)
        if len(steps) > 64 and sum(len(x) for x in steps[1:]) >= len(steps[0]):
            s, e, lo = _dedupe_last(np.concatenate(steps), np.concatenate(epochs), np.concatenate(losses))
            steps[:], epochs[:], losses[:] = [s], [e], [lo]
    # epoch timing: frames that reach 100 %, and the last frame of the block
    starts, ends = blk.seg_starts, blk.seg_ends
    for k in blk.full_segs.tolist():
        s, e = int(starts[k]), int(ends[k])
        _note_epoch_frames(out, data[s:e].decode("utf-8", "replace"), last=False)
    if len(blk.pos):
        k = int(np.searchsorted(starts, blk.pos[-1], "right")) - 1
        s, e = int(starts[k]), int(ends[k])
        _note_epoch_frames(out, data[s:e].decode("utf-8", "replace"), last=True)
    if len(blk.step):
        _note_restarts(out, parser, blk, offset)
    # text segments, in file order, each told the epoch of the last frame before it
    frame_before = parser.frame_before
    if blk.text_segments:
        seg_starts = np.fromiter((s for s, _ in blk.text_segments), np.int64, len(blk.text_segments))
        idx = np.searchsorted(blk.pos, seg_starts) - 1
        for (s, e), k in zip(blk.text_segments, idx.tolist(), strict=True):
            seg = data[s:e]
            if s < _PAD or _is_plain_bar(seg):  # s < _PAD: the previous block's last bytes
                continue
            cur = int(blk.epoch[k]) if k >= 0 else last_epoch
            parser.frame_before = offset + int(blk.pos[k]) - _PAD if k >= 0 else frame_before
            term = data[e : e + 1] == b"\n" and e < size - _PAD
            blank_before = data[s - 2 : s] == b"\n\n" or data[s - 3 : s] == b"\n\r\n"
            rank_other = other is not None and bool(other[int(np.searchsorted(blk.seg_starts, s))])
            parser.feed(seg.decode("utf-8", "replace"), offset + s - _PAD, cur, term, blank_before, rank_other)
    if len(blk.pos):
        parser.frame_before = offset + int(blk.pos[-1]) - _PAD
    if len(blk.epoch):
        return int(blk.epoch[-1])
    return last_epoch


def _other_rank_segments(data: bytearray, size: int, blk: _Block, parser: _LineParser) -> np.ndarray:
    """For each segment of the block: True when its line carries a rank prefix other than 0.

    torchrun (``--tee``) prefixes each *line* with ``[rankN]:``; the ``\\r``-joined frames after
    the first one on that line belong to the same rank, so a segment that neither starts a
    line nor carries a prefix inherits the flag of the segment before it (across blocks too).
    """
    a = np.frombuffer(data, np.uint8, count=size)
    starts = blk.seg_starts
    if not len(starts):
        return np.zeros(0, bool)
    real = starts >= _PAD  # segments before _PAD are the previous block's last bytes
    line_start = (a[starts - 1] == 10) & real
    u64 = _u64_view(a)
    prefixed = ((u64[starts] & _MASK5) == _RANK_TAG) & real
    digit = (a[starts + 5] >= 48) & (a[starts + 5] <= 57)
    rank0 = (a[starts + 5] == 48) & (a[starts + 6] == 93)
    own = prefixed & digit & ~rank0
    idx = np.where(line_start | prefixed, np.arange(len(starts)), -1)
    np.maximum.accumulate(idx, out=idx)
    flags = np.where(idx >= 0, own[np.maximum(idx, 0)], parser.other_rank_line)
    # the line in progress at the end of the block continues in the next one unless it ended
    parser.other_rank_line = bool(flags[-1]) and a[size - _PAD - 1] != 10
    return flags


_RANK_TAG = int.from_bytes(b"[rank", "little")


def _has_rank_prefix(data: bytearray, size: int, starts: np.ndarray) -> bool:
    """True when a segment of the block opens with ``[rank`` (one gather, no scan of the bytes)."""
    if not len(starts):
        return False
    a = np.frombuffer(data, np.uint8, count=size)
    cand = starts[a[starts] == 91]  # '['
    return bool(len(cand)) and bool(np.any((_u64_view(a)[cand] & _MASK5) == _RANK_TAG))


def _rank0_frames(blk: _Block, other: np.ndarray) -> _Block:
    """``blk`` without the frames and 100 % segments of ranks other than 0."""
    if not other.any():
        return blk
    seg = np.searchsorted(blk.seg_starts, blk.pos, "right") - 1
    keep = ~other[np.maximum(seg, 0)]
    full = blk.full_segs[~other[blk.full_segs]] if len(blk.full_segs) else blk.full_segs
    return _Block(blk.pos[keep], blk.step[keep], blk.epoch[keep], blk.loss[keep], blk.text_segments,
                  int(np.count_nonzero(keep)), blk.seg_starts, blk.seg_ends, full)  # other ranks: not ours to name


def _note_undecoded(out: SlurmOutput, data: bytearray, blk: _Block, offset: int) -> None:
    """Count the frames the scanner found but could not decode, keeping the first one's line.

    A frame cut inside its loss is incomplete rather than undecodable when it is the last
    frame of the file (a job still writing); one followed by anything else is counted."""
    pending = out.pending_cut
    if pending is not None and (len(blk.pos) or len(blk.undecoded) or len(blk.cut)):
        out.undecoded_frames += 1
        out.first_undecoded = out.first_undecoded or pending
        out.pending_cut = None
    last = max((int(x[-1]) for x in (blk.pos, blk.undecoded, blk.cut) if len(x)), default=-1)
    cut = blk.cut
    if len(cut) and int(cut[-1]) == last:
        out.pending_cut, cut = _frame_line(data, blk, int(cut[-1])), cut[:-1]
    positions = np.sort(np.concatenate([blk.undecoded, cut]))
    out.undecoded_frames += len(positions)
    if len(positions) and out.first_undecoded is None:
        out.first_undecoded = _frame_line(data, blk, int(positions[0]))


def _frame_line(data: bytearray, blk: _Block, pos: int) -> str:
    k = max(int(np.searchsorted(blk.seg_starts, pos, "right")) - 1, 0)
    text = bytes(data[int(blk.seg_starts[k]) : int(blk.seg_ends[k])]).decode("utf-8", "replace")
    return _ANSI_RE.sub("", text).strip()[:200]


def _note_restarts(out: SlurmOutput, parser: _LineParser, blk: _Block, offset: int) -> None:
    """Record where the bar's step counter goes backwards (file order): a new attempt."""
    step = blk.step
    if out.first_step is None:
        out.first_step = int(step[0])
    back = np.flatnonzero(step[1:] < step[:-1]) + 1
    if out.last_step is not None and step[0] < out.last_step and parser.frame_before is not None:
        out.restarts.append((parser.frame_before, _line_start(blk, 0, offset)))
    for i in back.tolist():
        out.restarts.append((offset + int(blk.pos[i - 1]) - _PAD, _line_start(blk, i, offset)))
    out.last_step = int(step[-1])


def _line_start(blk: _Block, i: int, offset: int) -> int:
    """File offset of the segment that holds frame ``i`` of the block."""
    k = int(np.searchsorted(blk.seg_starts, blk.pos[i], "right")) - 1
    return offset + int(blk.seg_starts[max(k, 0)]) - _PAD


def _is_plain_bar(seg: bytes) -> bool:
    """A frame without description (``  0%|  | 0/8 [00:00<?, ?it/s]``): nothing to read."""
    if len(seg) > 400 or b"%|" not in seg:
        return False
    return _NOISE_BAR_RE.fullmatch(_ANSI_RE.sub("", seg.decode("utf-8", "replace"))) is not None


# ---- DiskLogger files ------------------------------------------------------------------------
@dataclass
class DiskLog:
    """Records of one DiskLogger file (``log_<ts>.txt`` or ``.jsonl``)."""

    path: Path
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    fmt: str = "disklogger"
    bad_lines: int = 0
    first_bad: str | None = None
    lines: int = 0
    earlier_attempts: list[dict[int, dict[str, Any]]] = field(default_factory=list)
    """Steps of earlier attempts in this file (the step counter went backwards), oldest first;
    ``steps`` holds the last attempt only."""
    _last_fast: int = -1
    _last_slow: int = -1
    _restarted: bool = False


_DISK_CHUNK = 4 << 20


def read_disk_log(path: Path, *, max_line: int = MAX_SEGMENT) -> DiskLog:
    """Read a DiskLogger file in chunks (streamed). Later lines for a step update earlier ones.

    The lines of a chunk that share the key layout of its first ``Step`` line are parsed by
    one compiled pattern over the whole chunk; any other line goes through
    :func:`parse_step_line` (``.jsonl``: one JSON object per line). A line longer than
    ``max_line`` keeps its first ``max_line`` bytes, read as an unterminated line.
    """
    path = Path(path)
    log = DiskLog(path, fmt="jsonl" if path.suffix == ".jsonl" else "disklogger")
    with open(path, "rb") as fh:
        carry = b""
        skipping = False
        while True:
            chunk = fh.read(_DISK_CHUNK)
            eof = not chunk
            if skipping and chunk:
                cut = chunk.find(b"\n")
                if cut < 0:
                    continue
                chunk, skipping = chunk[cut + 1 :], False
            buf = carry + chunk
            if eof:
                blob, carry = buf, b""
            else:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    if len(buf) <= max_line:
                        carry = buf
                        continue
                    blob, carry, skipping = buf[:max_line], b"", True
                else:
                    blob, carry = buf[: cut + 1], buf[cut + 1 :]
            if blob:
                _parse_disk_blob(log, blob, last_terminated=blob.endswith(b"\n"))
            if eof:
                break
    if log._restarted:
        _split_disk_attempts(log, max_line)
    return log


def _split_disk_attempts(log: DiskLog, max_line: int) -> None:
    """Read the file again line by line, in file order, starting a new attempt wherever the
    step counter goes backwards (rare: only when the fast pass saw it go backwards)."""
    attempts: list[dict[int, dict[str, Any]]] = [{}]
    last = -1
    with open(log.path, "rb") as fh:
        for raw in fh:
            line = raw[:max_line].decode("utf-8", "replace").strip("\r\n")
            if not line.strip():
                continue
            parsed = _parse_jsonl(line) if log.fmt == "jsonl" else parse_step_line(line, terminated=raw.endswith(b"\n"))
            if parsed is None:
                continue
            step, values = parsed
            if step < last and attempts[-1]:
                attempts.append({})
            last = step
            attempts[-1].setdefault(step, {}).update(values)
    log.steps = attempts[-1]
    log.earlier_attempts = attempts[:-1]


def _layout(blob: bytes) -> tuple[re.Pattern[bytes], tuple[str, ...]] | None:
    """A pattern for lines with exactly the keys of the first complete ``Step`` line of ``blob``."""
    i = blob.find(b"Step ")
    j = blob.find(b"\n", i)
    if i < 0 or j < 0:
        return None
    parsed = parse_step_line(blob[i:j].decode("utf-8", "replace"))
    if parsed is None:
        return None
    keys = tuple(parsed[1])
    pat = rb"^Step (\d+) \| " + b"".join(re.escape(k.encode()) + rb":(\S+) " for k in keys) + rb"\r?$"
    return re.compile(pat, re.M), keys


def _value(raw: bytes) -> float | str:
    try:
        return float(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _parse_disk_blob(log: DiskLog, blob: bytes, *, last_terminated: bool) -> None:
    log.lines += blob.count(b"\n") + (0 if last_terminated else 1)
    rest = blob
    if log.fmt == "disklogger":
        layout = _layout(blob)
        if layout is not None:
            pattern, keys = layout
            steps = log.steps
            last = log._last_fast
            for m in pattern.findall(blob):
                values = dict(zip(keys, map(_value, m[1:]), strict=True))
                step = int(m[0])
                if step < last:
                    log._restarted = True
                last = step
                have = steps.get(step)
                if have is None:
                    steps[step] = values
                else:
                    have.update(values)
            log._last_fast = last
            rest = pattern.sub(b"", blob)
    pieces = rest.split(b"\n")
    for k, raw in enumerate(pieces):
        line = raw.decode("utf-8", "replace").strip("\r")
        if not line.strip():
            continue
        terminated = last_terminated or k < len(pieces) - 1
        parsed = _parse_jsonl(line) if log.fmt == "jsonl" else parse_step_line(line, terminated=terminated)
        if parsed is None:
            log.bad_lines += 1
            if log.first_bad is None:
                log.first_bad = line[:120]
            continue
        step, values = parsed
        if step < log._last_slow:
            log._restarted = True
        log._last_slow = step
        log.steps.setdefault(step, {}).update(values)


def _parse_jsonl(line: str) -> tuple[int, dict[str, Any]] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # json.dumps writes NaN/Infinity, which orjson rejects
            obj = json.loads(line)
        except ValueError:
            return parse_step_line(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("step"), int):
        return None
    values = {k: v for k, v in obj.items() if k != "step" and isinstance(v, int | float | str)}
    return int(obj["step"]), {k: float(v) if isinstance(v, int) else v for k, v in values.items()}
