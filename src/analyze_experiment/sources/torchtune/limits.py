"""Size limits and block padding of the SLURM reader: what is kept of a long line, how far
fixed-width windows may look."""

from __future__ import annotations

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
