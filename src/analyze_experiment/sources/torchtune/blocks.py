"""One scanned block folded into a :class:`SlurmOutput`: rank-0 frames, undecoded frames,
restarts of the step counter, epoch timing, and the text segments handed to the line parser."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analyze_experiment.sources.torchtune.limits import _PAD, MAX_SEGMENT
from analyze_experiment.sources.torchtune.lines import _LineParser, _note_epoch_frames
from analyze_experiment.sources.torchtune.merge import _dedupe_last
from analyze_experiment.sources.torchtune.patterns import _ANSI_RE, _NOISE_BAR_RE
from analyze_experiment.sources.torchtune.records import SlurmOutput
from analyze_experiment.sources.torchtune.scanner import _Block, _scan_block
from analyze_experiment.sources.torchtune.words import _MASK5, _u64_view


def _process_block(
    out: SlurmOutput,
    parser: _LineParser,
    data: bytearray,
    size: int,
    offset: int,
    last_epoch: int | None,
    curve: _Curve,
    scratch: tuple[np.ndarray, np.ndarray],
) -> int | None:
    """Scan ``data[:size]`` (pad + block + pad); ``offset`` is the file offset of the block.

    Returns the 1-based epoch of the block's last frame (``last_epoch`` when it has none)."""
    ranks: list[np.ndarray] = []

    def other_ranks(starts: np.ndarray) -> np.ndarray | None:
        """Per segment: True for ranks other than 0 (None: no rank prefix here); stale redraws
        are collapsed within a rank only, so rank 0's frame is never folded into another's."""
        if parser.other_rank_line or _has_rank_prefix(data, size, starts):
            ranks.append(_other_rank_segments(data, size, starts, parser))
            return ranks[0]
        return None

    blk = _scan_block(data, size, scratch, other_ranks)
    other = ranks[0] if ranks else None
    if other is not None:
        n_frames = len(blk.pos)
        blk = _rank0_frames(blk, other)
        out.other_rank_frames += n_frames - len(blk.pos)
    out.bar_frames += blk.frames
    if len(blk.undecoded) or len(blk.cut) or out.pending_cut is not None:
        _note_undecoded(out, data, blk, offset)
    # lines over the cap inside one read chunk (longer ones are cut while reading)
    out.long_lines += int(np.count_nonzero(blk.seg_ends - blk.seg_starts > MAX_SEGMENT))
    if len(blk.step):
        _keep_steps(blk, curve)
    _note_epoch_timing(out, data, blk)
    if len(blk.step):
        _note_restarts(out, parser, blk, offset)
    _feed_text(parser, data, size, offset, blk, other, last_epoch)
    if len(blk.pos):
        parser.frame_before = offset + int(blk.pos[-1]) - _PAD
    if len(blk.epoch):
        return int(blk.epoch[-1])
    return last_epoch


@dataclass
class _Curve:
    """The rank-0 curve read so far, as pieces (one per block, each without stale redraws)."""

    steps: list[np.ndarray] = field(default_factory=list)
    epochs: list[np.ndarray] = field(default_factory=list)
    losses: list[np.ndarray] = field(default_factory=list)
    ordered: bool = True
    """Every step since the last compaction is larger than the one before it: nothing to dedupe."""


def _keep_steps(blk: _Block, curve: _Curve) -> None:
    """Append the block's curve to the pieces so far, keeping only the last frame of each run of
    equal steps (stale redraws); memory stays bounded."""
    steps, epochs, losses = curve.steps, curve.epochs, curve.losses
    keep = np.ones(len(blk.step), bool)
    keep[:-1] = blk.step[1:] != blk.step[:-1]
    if steps and len(steps[-1]) and steps[-1][-1] == blk.step[0]:  # a step redrawn across blocks
        steps[-1], epochs[-1], losses[-1] = steps[-1][:-1], epochs[-1][:-1], losses[-1][:-1]
    piece = blk.step[keep]
    if curve.ordered:  # one pass over the block's steps saves concatenating the whole curve again
        curve.ordered = (not steps or (len(steps[-1]) > 0 and piece[0] > steps[-1][-1])) and bool(
            np.all(piece[1:] > piece[:-1]))
    steps.append(piece)
    epochs.append(blk.epoch[keep])
    losses.append(blk.loss[keep])
    # bounded memory with linear work: dedupe once the pieces since the last time at least
    # match the deduped prefix (re-concatenating the prefix every 64 blocks was quadratic);
    # a curve whose steps only ever grew holds one frame per step already: nothing to dedupe
    if not curve.ordered and len(steps) > 64 and sum(len(x) for x in steps[1:]) >= len(steps[0]):
        s, e, lo = _dedupe_last(np.concatenate(steps), np.concatenate(epochs), np.concatenate(losses))
        steps[:], epochs[:], losses[:] = [s], [e], [lo]
        curve.ordered = True


def _note_epoch_timing(out: SlurmOutput, data: bytearray, blk: _Block) -> None:
    """Epoch totals and elapsed times: frames that reach 100 %, and the last frame of the block."""
    starts, ends = blk.seg_starts, blk.seg_ends
    for k in blk.full_segs.tolist():
        s, e = int(starts[k]), int(ends[k])
        _note_epoch_frames(out, data[s:e].decode("utf-8", "replace"), last=False)
    if len(blk.pos):
        k = int(np.searchsorted(starts, blk.pos[-1], "right")) - 1
        s, e = int(starts[k]), int(ends[k])
        _note_epoch_frames(out, data[s:e].decode("utf-8", "replace"), last=True)


def _feed_text(parser: _LineParser, data: bytearray, size: int, offset: int, blk: _Block,
               other: np.ndarray | None, last_epoch: int | None) -> None:
    """The block's text segments to the line parser, in file order, each told the epoch of the
    last frame before it (``other``: segments of ranks other than 0)."""
    if not blk.text_segments:
        return
    frame_before = parser.frame_before
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


def _other_rank_segments(data: bytearray, size: int, starts: np.ndarray, parser: _LineParser) -> np.ndarray:
    """For each segment of the block: True when its line carries a rank prefix other than 0.

    torchrun (``--tee``) prefixes each *line* with ``[rankN]:``; the ``\\r``-joined frames after
    the first one on that line belong to the same rank, so a segment that neither starts a
    line nor carries a prefix inherits the flag of the segment before it (across blocks too).
    """
    a = np.frombuffer(data, np.uint8, count=size)
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
