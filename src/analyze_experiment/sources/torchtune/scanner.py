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
    fidx, frames_all, at_starts = _locate_tags(a, u64, starts, s2)
    lpos, kept_idx = _collapse_redraws(a, u64, frames_all)
    dec = _decode(data, a, u64, lpos)
    good = dec.good
    lpos, kept_idx = lpos[good], kept_idx[good]
    text_segments = _text_segments(a, starts, ends, fidx, len(frames_all), at_starts, lpos,
                                   dec.ks[good] + 1 + dec.ke[good], kept_idx)
    full_segs = _full_segments(a, u64, starts, s1, s2)
    return _Block(lpos, dec.step[good], dec.epoch[good], dec.loss[good], text_segments, len(frames_all), starts,
                  ends, full_segs, dec.undecoded, dec.cut)


def _locate_tags(a: np.ndarray, u64: np.ndarray, starts: np.ndarray, mark: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Every ``|Loss: `` tag of the block: (segment of each, position of its ``L``, whether all of
    them open their segment). ``mark`` is scratch (left holding the ``L`` bytes)."""
    n_l = int(np.count_nonzero(np.equal(a, 76, out=mark)))  # 'L'
    fidx, lpos = _frames_at_starts(a, u64, starts)
    if len(lpos) == n_l:  # every "|Loss: " of the block opens a segment
        return fidx, lpos, True
    cand = np.flatnonzero(mark)
    cand = cand[(cand > _PAD // 2) & (cand < len(a) - _LOSS_WIDTH - 8)]
    lpos = cand[(u64[cand - 1] & _MASK7) == _LOSS_TAG]
    return np.searchsorted(starts, lpos, "right") - 1, lpos, False


def _collapse_redraws(a: np.ndarray, u64: np.ndarray, lpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stale redraws collapsed: consecutive frames whose 8 bytes before ``|Loss`` are equal keep
    only the last. Returns the frames kept and their indices among all frames."""
    if len(lpos) < 2:
        return lpos, np.arange(len(lpos))
    key = u64[lpos - 9]
    same = key[1:] == key[:-1]
    # the 8 bytes hold a whole ``|{step}`` unless they are all digits: steps of 8 or more
    # digits that end alike are compared whole (they may differ in a higher digit)
    long = _non_digits(key) == 0
    for i in np.flatnonzero(same & (long[1:] | long[:-1])).tolist():  # rare: compared in full
        same[i] = _description(a, int(lpos[i])) == _description(a, int(lpos[i + 1]))
    keep = np.ones(len(lpos), bool)
    keep[:-1] = ~same
    kept_idx = np.flatnonzero(keep)
    return lpos[kept_idx], kept_idx


def _description(a: np.ndarray, lpos: int) -> bytes:
    """The ``{epoch}|{step}`` before the tag whose ``L`` is at ``lpos`` (digit runs taken whole)."""
    i = lpos - 1  # the '|' of "|Loss"
    for _ in range(2):
        i -= 1
        while i > 0 and 48 <= a[i] <= 57:
            i -= 1
    return a[i + 1 : lpos - 1].tobytes()


@dataclass
class _Decoded:
    """Step, epoch and loss of each frame, and which frames could not be read."""

    good: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    ks: np.ndarray
    """Digits of the step."""
    ke: np.ndarray
    """Digits of the epoch."""
    loss: np.ndarray
    undecoded: np.ndarray
    """Positions of frames that could not be decoded."""
    cut: np.ndarray
    """Positions of frames whose loss has no ``:`` after it on its line."""


def _decode(data: bytes | bytearray, a: np.ndarray, u64: np.ndarray, lpos: np.ndarray) -> _Decoded:
    """Decode the description of each frame: word operations, then Python's ``float`` for the rare
    loss the word path cannot read exactly."""
    step, ks, epoch, ke, pipe = _desc_ints(a, u64, lpos - 1)
    good = (ks > 0) & (ks < _STEP_DIGITS) & pipe & (ke > 0) & (ke < _EPOCH_DIGITS)
    loss, exact, term = parse_decimals(a, lpos + 6, _LOSS_WIDTH)
    good &= term
    for i in np.flatnonzero(good & ~exact).tolist():
        v0 = int(lpos[i]) + 6
        try:
            loss[i] = float(data[v0 : data.find(b":", v0)])
        except ValueError:
            good[i] = False
    # frames found by their "|Loss: " tag that could not be decoded are counted, never lost without
    # a word; a frame whose loss is cut (no ':' after it) is only incomplete, unless more follows
    shape = (ks > 0) & pipe & (ke > 0)
    return _Decoded(good, step, epoch, ks, ke, loss, lpos[~good & (term | ~shape)], lpos[~good & ~term & shape])


def _text_segments(a: np.ndarray, starts: np.ndarray, ends: np.ndarray, fidx: np.ndarray, n_frames: int,
                   at_starts: bool, lpos: np.ndarray, desc_len: np.ndarray, kept_idx: np.ndarray
                   ) -> list[tuple[int, int]]:
    """The segments the line parser must read: those without a frame, and those whose frames have
    other text glued before, between or after them (``lpos``/``desc_len``: the frames read)."""
    nseg = len(ends)
    has_bar = np.zeros(nseg, bool)
    dirty = np.zeros(nseg, bool)
    if n_frames:
        has_bar[fidx] = True
    if n_frames and not at_starts:  # (at segment starts: one clean-started frame per segment)
        if len(fidx) > 1:  # several frames in one segment: the later ones are glued on
            dup = np.zeros(len(fidx), bool)
            dup[1:] = fidx[1:] == fidx[:-1]
            dirty[fidx[dup]] = True
        if len(lpos):
            sidx = fidx[kept_idx]
            frame_start = lpos - 1 - desc_len
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
    return list(zip(starts[need].tolist(), ends[need].tolist(), strict=True))


def _full_segments(a: np.ndarray, u64: np.ndarray, starts: np.ndarray, s1: np.ndarray, s2: np.ndarray
                   ) -> np.ndarray:
    """Segments holding ``100%|`` (epoch ends): a '%' with a '1' three bytes before it, then checked
    (``s1``, ``s2``: scratch)."""
    np.equal(a, 37, out=s1)
    np.equal(a, 49, out=s2)
    np.logical_and(s1[3:], s2[:-3], out=s1[3:])
    s1[:3] = False
    hits = _sparse_flatnonzero(s1) - 3
    hits = hits[hits < len(u64)]
    hits = hits[(u64[hits] & _MASK5) == _FULL_TAG]
    return np.unique(np.searchsorted(starts, hits, "right") - 1)


_SPARSE_HITS = 64


def _sparse_flatnonzero(m: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(m)`` for a mask with few True entries (epoch ends in a block).

    ``argmax`` on a boolean array stops at the first True, so k hits cost k + 1 short scans;
    ``flatnonzero`` counts and then fills over the whole mask, about 10× the time on a 2 MB
    block with a handful of hits. After ``_SPARSE_HITS`` hits the rest goes to ``flatnonzero``,
    so a block full of hits costs no Python loop per hit.
    """
    hits: list[int] = []
    i, n = 0, len(m)
    while i < n and len(hits) < _SPARSE_HITS:
        j = i + int(m[i:].argmax())
        if not m[j]:
            return np.array(hits, dtype=np.intp)
        hits.append(j)
        i = j + 1
    rest = np.flatnonzero(m[i:]) + i if i < n else np.zeros(0, np.intp)
    return np.concatenate([np.array(hits, dtype=np.intp), rest])


_TRAIL_CHARS = np.zeros(256, bool)
for _c in b" \x1b[A\t":
    _TRAIL_CHARS[_c] = True
