"""The chunked stream: a file (or a byte range of it) read chunk by chunk into one reused
buffer, each block ending at a line break, so no frame or line is split between blocks."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from analyze_experiment.sources.torchtune.blocks import _Curve, _process_block
from analyze_experiment.sources.torchtune.limits import _PAD, _PADB, MAX_SEGMENT
from analyze_experiment.sources.torchtune.lines import _LineParser
from analyze_experiment.sources.torchtune.merge import _dedupe_last
from analyze_experiment.sources.torchtune.records import SlurmOutput


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



def _read_stream(fh: BinaryIO, out: SlurmOutput, chunk_size: int) -> None:
    """Read ``fh`` chunk by chunk into one reused buffer laid out as [pad | carry + chunk | pad].

    ``carry`` is the unfinished last line of the previous chunk; each block handed on ends at
    a line break, so no frame or line is ever split between two blocks.

    Longer than most functions here on purpose: the carry, the skip state of an over-long line
    and the two bytes before the block are one state, changed together at each step of the loop;
    split across functions they would have to travel as a bundle of in/out arguments.
    """
    parser = _LineParser(out)
    curve = _Curve()
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
            last_epoch = _process_block(out, parser, buf, body_end + _PAD, carry_offset, last_epoch, curve, scratch)
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
    if curve.steps:
        s, e, lo = np.concatenate(curve.steps), np.concatenate(curve.epochs), np.concatenate(curve.losses)
        out.bar_step, out.bar_epoch, out.bar_loss = _dedupe_last(s, e, lo)


def _first_sep(buf: bytearray, start: int, end: int) -> int:
    cands = [i for i in (buf.find(b"\n", start, end), buf.find(b"\r", start, end)) if i >= 0]
    return min(cands) if cands else -1
