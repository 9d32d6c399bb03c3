"""The vectorised bar scanner: one padded block of bytes → bar frames (step, epoch, loss),
the frames it could not decode, and the text segments left for the line parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analyze_experiment.sources.torchtune.limits import _EPOCH_DIGITS, _LOSS_WIDTH, _PAD, _STEP_DIGITS
from analyze_experiment.sources.torchtune.words import (
    _FULL_TAG,
    _LOSS_TAG,
    _LOW,
    _MASK5,
    _MASK7,
    _desc_ints,
    _first_set_byte,
    _lead_value,
    _non_digits,
    _u64_view,
    _windows,
    parse_decimals,
)

_BAR_UP_END = int.from_bytes(b"]\x1b[A", "little")  # a frame that moves the cursor up after it


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
    """Start and end (the first separator after it) of every non-empty segment, from the separator
    mask ``sep`` (``mark`` is scratch).

    Every change between separator and text is one edge; read in order, the edges alternate
    segment start, segment end. One pass and one ``flatnonzero`` give both, where finding
    the starts and then walking back over each separator run (``\\n\\r`` between frames) to its
    end took about 1.4× as long on a block of frames.
    """
    size = len(a)
    if not size:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    np.not_equal(sep[:-1], sep[1:], out=mark[:-1])
    mark[-1] = False
    edges = np.flatnonzero(mark) + 1
    if not sep[0]:  # a block that opens with text (blocks are padded with separators: not here)
        edges = np.concatenate([np.zeros(1, np.intp), edges])
    if not sep[-1]:
        edges = np.concatenate([edges, np.full(1, size, np.intp)])
    pairs = edges.reshape(-1, 2).T
    return pairs[0].copy(), pairs[1].copy()


@dataclass
class _StartFrames:
    """Frames whose segment opens with ``{epoch}|{step}|Loss: `` (≤ 5 and ≤ 7 digits), read from
    one 24-byte window per segment start."""

    seg: np.ndarray
    """Segment of each frame."""
    lpos: np.ndarray
    """Position of each ``L``."""
    desc0: np.ndarray
    desc1: np.ndarray
    """The description's bytes (up to the ``|`` of the tag) as two words, zero past its end."""
    ke: np.ndarray
    ks: np.ndarray
    """Digits of the epoch and of the step, per segment (not per frame: only the kept frames'
    are ever gathered)."""
    epoch_word: np.ndarray
    step_word: np.ndarray
    """The 8 bytes from the first digit of the epoch, and of the step, per segment."""

    def description(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """(step, step digits, epoch, epoch digits, pipe) of frames ``idx``, as ``_desc_ints`` gives them."""
        seg = self.seg[idx]
        ks, ke = self.ks[seg], self.ke[seg]
        return (_lead_value(self.step_word[seg], ks), ks, _lead_value(self.epoch_word[seg], ke), ke,
                np.ones(len(idx), bool))


def _frames_at_starts(a: np.ndarray, starts: np.ndarray) -> _StartFrames:
    """The segments that open with a bar description, and what is needed to collapse and decode them.

    When these frames hold all the ``L`` bytes of a block, the block has no other frame and
    every frame starts its segment cleanly, so the general search (every ``L``, then its
    segment) is not needed. One 24-byte gather per segment holds the whole description
    (≤ 13 bytes) and the tag after it; fields at per-row offsets are shifted out of it.
    """
    w0, w1, w2 = _windows(a, starts, 3).T.copy()
    e = _first_set_byte(_non_digits(w0))  # leading epoch digits (0-8)
    ok = (e >= 1) & (e <= 5)
    sh = (np.minimum(e, 6).astype(np.uint64) + np.uint64(1)) << np.uint64(3)  # bits up to the step
    ok &= ((w0 >> (sh - np.uint64(8))) & np.uint64(0xFF)) == np.uint64(124)  # '|' after the epoch
    step_word = (w0 >> sh) | (w1 << (np.uint64(64) - sh))
    k = _first_set_byte(_non_digits(step_word))  # step digits
    t = e + 1 + k  # offset of the tag's '|'
    ok &= (k >= 1) & (k <= 7)
    low = t < 8
    bits = (t & 7).astype(np.uint64) << np.uint64(3)
    tag = (np.where(low, w0, w1) >> bits) | (np.where(low, w1, w2) << (np.uint64(64) - bits))  # shift ≥ 64 gives 0
    ok &= (tag & np.uint64(_MASK7)) == np.uint64(_LOSS_TAG)
    idx = np.flatnonzero(ok)
    t = t[idx]
    desc0 = w0[idx] & _LOW[np.minimum(t, 8)]
    desc1 = w1[idx] & _LOW[np.clip(t - 8, 0, 8)]
    return _StartFrames(idx, starts[idx] + t + 1, desc0, desc1, e, k, w0, step_word)


def _same_description_runs(desc0: np.ndarray, desc1: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
    """Indices of the frames kept when runs of consecutive frames with the same description
    (stale redraws) keep only their last (``label``: frames of different labels differ)."""
    keep = np.ones(len(desc0), bool)
    if len(desc0) > 1:
        keep[:-1] = (desc0[1:] != desc0[:-1]) | (desc1[1:] != desc1[:-1])
        if label is not None:
            keep[:-1] |= label[1:] != label[:-1]
    return np.flatnonzero(keep)


def _scan_block(data: bytes | bytearray, size: int, scratch: tuple[np.ndarray, np.ndarray],
                groups: Callable[[np.ndarray], np.ndarray | None] | None = None) -> _Block:
    """Find every bar description in ``data`` (padded with separators) and the text segments.

    Frames that open their segment are read from one 24-byte window per segment start; when
    some ``L`` of the block is elsewhere, every ``L`` is a candidate, checked with one 8-byte
    compare. Runs of frames with the same description (stale redraws) are collapsed to their
    last frame before anything is decoded. A segment is the text between two ``\\r``/``\\n``: segments that hold
    only bar frames (optionally behind a ``prefix:``, optionally followed by padding or
    ``ESC[A``) are done; every other non-empty segment is returned for line-level parsing.
    ``groups`` maps the segment starts to a label per segment (the rank's, or None): frames
    of different labels are never collapsed into one.
    """
    a = np.frombuffer(data, np.uint8, count=size)
    u64 = _u64_view(a)
    s1, s2 = scratch[0][:size], scratch[1][:size]
    np.equal(a, 10, out=s1)
    np.equal(a, 13, out=s2)
    np.logical_or(s1, s2, out=s1)
    starts, ends = _segments(a, s1, s2)
    label = groups(starts) if groups is not None else None
    at = _frames_at_starts(a, starts)
    if _only_tags(a, at.lpos, s2):  # every "|Loss: " of the block opens a segment: decoded from the windows
        fidx, frames_all, at_starts = at.seg, at.lpos, True
        kept_idx = _same_description_runs(at.desc0, at.desc1, None if label is None else label[fidx])
        lpos = frames_all[kept_idx]
        dec = _decode(data, a, u64, lpos, at.description(kept_idx))
    else:
        fidx, frames_all, at_starts = _locate_tags(a, u64, starts, s2)
        lpos, kept_idx = _collapse_redraws(a, u64, frames_all, None if label is None else label[fidx])
        dec = _decode(data, a, u64, lpos)
    good = dec.good
    step, epoch, loss, ks, ke = dec.step, dec.epoch, dec.loss, dec.ks, dec.ke
    if not good.all():  # (usually every kept frame decodes: nothing to filter)
        lpos, kept_idx, step, epoch, loss, ks, ke = (x[good] for x in (lpos, kept_idx, step, epoch, loss, ks, ke))
    desc_len = None if at_starts else ks + 1 + ke
    text_segments = _text_segments(a, starts, ends, fidx, len(frames_all), at_starts, lpos, desc_len, kept_idx)
    full_segs = _full_segments(a, u64, starts, s1, s2)
    return _Block(lpos, step, epoch, loss, text_segments, len(frames_all), starts, ends, full_segs, dec.undecoded,
                  dec.cut)


def _only_tags(a: np.ndarray, lpos: np.ndarray, mark: np.ndarray) -> bool:
    """True when the ``L`` bytes at ``lpos`` are all the ``L`` bytes of the block (``mark``: scratch,
    left holding every ``L``). Clearing the known ones and asking ``any`` (which stops at the
    first hit) costs less than counting them."""
    np.equal(a, 76, out=mark)  # 'L'
    mark[lpos] = False
    extra = bool(mark.any())
    mark[lpos] = True
    return not extra


def _locate_tags(a: np.ndarray, u64: np.ndarray, starts: np.ndarray, mark: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Every ``|Loss: `` tag of the block, wherever it is: (segment of each, position of its ``L``,
    False). ``mark`` holds the block's ``L`` bytes (:func:`_only_tags`)."""
    cand = np.flatnonzero(mark)
    cand = cand[(cand > _PAD // 2) & (cand < len(a) - _LOSS_WIDTH - 8)]
    lpos = cand[(u64[cand - 1] & _MASK7) == _LOSS_TAG]
    return np.searchsorted(starts, lpos, "right") - 1, lpos, False


def _collapse_redraws(a: np.ndarray, u64: np.ndarray, lpos: np.ndarray, label: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Stale redraws collapsed: consecutive frames whose 8 bytes before ``|Loss`` are equal (and whose
    ``label`` is) keep only the last. Returns the frames kept and their indices among all frames."""
    if len(lpos) < 2:
        return lpos, np.arange(len(lpos))
    key = u64[lpos - 9]
    same = key[1:] == key[:-1]
    if label is not None:
        same &= label[1:] == label[:-1]
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


def _decode(data: bytes | bytearray, a: np.ndarray, u64: np.ndarray, lpos: np.ndarray,
            description: tuple[np.ndarray, ...] | None = None) -> _Decoded:
    """Decode the description of each frame: word operations, then Python's ``float`` for the rare
    loss the word path cannot read exactly (``description``: step, epoch and their digits when
    already read)."""
    step, ks, epoch, ke, pipe = description if description is not None else _desc_ints(a, u64, lpos - 1)
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
                   at_starts: bool, lpos: np.ndarray, desc_len: np.ndarray | None, kept_idx: np.ndarray
                   ) -> list[tuple[int, int]]:
    """The segments the line parser must read: those without a frame, and those whose frames have
    other text glued before, between or after them (``lpos``/``desc_len``: the frames read; the
    lengths are only needed when some frame does not open its segment)."""
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
        if len(lpos) and desc_len is not None:
            sidx = fidx[kept_idx]
            frame_start = lpos - 1 - desc_len
            clean_start = (frame_start == starts[sidx]) | (a[frame_start - 1] == 58)
            dirty[sidx[~clean_start]] = True
    bar_segs = np.flatnonzero(has_bar)
    if len(bar_segs):  # common endings: "…it/s]" and "…it/s]ESC[A"; the rest checked in full
        w = _u64_view(a)[ends[bar_segs] - 8]  # the 8 bytes that end the segment
        fast = ((w >> np.uint64(56)) == np.uint64(93)) | ((w >> np.uint64(32)) == np.uint64(_BAR_UP_END))
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
