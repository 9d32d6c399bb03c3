"""The vectorised bar scanner: one padded block of bytes → bar frames (step, epoch, loss),
the frames it could not decode, and the text segments left for the line parser."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analyze_experiment.sources.torchtune.limits import _EPOCH_DIGITS, _LOSS_WIDTH, _PAD, _STEP_DIGITS
from analyze_experiment.sources.torchtune.words import (
    _FULL_TAG,
    _LOSS_TAG,
    _MASK5,
    _MASK7,
    _desc_ints,
    _first_set_byte,
    _non_digits,
    _u64_view,
    parse_decimals,
)

_WALK_MAX = 8  # separator runs longer than this are measured one by one


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
        # the 8 bytes hold a whole ``|{step}`` only when the byte before them is not a digit:
        # steps of 8 or more digits that end alike are not the same step
        long = a[lpos - 10] - np.uint8(48) <= 9
        keep = np.ones(len(lpos), bool)
        keep[:-1] = (key[1:] != key[:-1]) | long[1:] | long[:-1]
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
