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

The modules, in the order the bytes meet them:

* :mod:`.reader` — :func:`read_slurm_output`: one process or parallel byte ranges, then attempts;
* :mod:`.stream` — the chunked stream: blocks that end at a line break, in one reused buffer;
* :mod:`.scanner` — the word-level bar scanner over one block (with :mod:`.words`, the SWAR
  number decoding);
* :mod:`.blocks` — one scanned block folded into the result (ranks, undecoded frames, restarts);
* :mod:`.lines` — the line parser for the text that is not bar frames (:mod:`.patterns`,
  :mod:`.values`);
* :mod:`.merge` — last frame per step, and parallel parts combined;
* :mod:`.disklog` — DiskLogger files;
* :mod:`.reference` — a plain-regex parser of the same text: slow and obviously right, the
  oracle the property tests hold the fast scanner to.
"""

from analyze_experiment.sources.torchtune.disklog import DiskLog, read_disk_log
from analyze_experiment.sources.torchtune.limits import (
    CHUNK_SIZE,
    LINE_HEAD,
    LINE_TAIL,
    MAX_CONFIG_LINES,
    MAX_SEGMENT,
    MAX_STEP_LINE,
)
from analyze_experiment.sources.torchtune.patterns import BAR_RE, STEP_RE
from analyze_experiment.sources.torchtune.reader import (
    PARALLEL_MIN_BYTES,
    attempt_bounds,
    read_slurm_bytes,
    read_slurm_output,
)
from analyze_experiment.sources.torchtune.records import Checkpoint, EpochInfo, SlurmOutput
from analyze_experiment.sources.torchtune.values import parse_elapsed, parse_step_line, parse_value
from analyze_experiment.sources.torchtune.words import parse_decimals

__all__ = [
    "BAR_RE",
    "CHUNK_SIZE",
    "LINE_HEAD",
    "LINE_TAIL",
    "MAX_CONFIG_LINES",
    "MAX_SEGMENT",
    "MAX_STEP_LINE",
    "PARALLEL_MIN_BYTES",
    "STEP_RE",
    "Checkpoint",
    "DiskLog",
    "EpochInfo",
    "SlurmOutput",
    "attempt_bounds",
    "parse_decimals",
    "parse_elapsed",
    "parse_step_line",
    "parse_value",
    "read_disk_log",
    "read_slurm_bytes",
    "read_slurm_output",
]
