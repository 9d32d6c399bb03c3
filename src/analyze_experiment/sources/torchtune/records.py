"""What the readers return: one SLURM/stdout capture (:class:`SlurmOutput`), its epochs and
checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analyze_experiment.sources.slurm import Event


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
