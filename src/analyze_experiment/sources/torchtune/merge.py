"""Combining results: the last frame per step, and the parts of one file read in parallel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analyze_experiment.sources.torchtune.records import SlurmOutput


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



def _merge(path: Path, parts: list[SlurmOutput]) -> SlurmOutput:
    """Combine the results of consecutive byte ranges of one file (later ranges win per step)."""
    out = SlurmOutput(path=path)
    _merge_marks(out, parts)
    _merge_curve(out, parts)
    for i, p in enumerate(parts):
        _merge_counts(out, p, more_follows=i < len(parts) - 1)
        _merge_epochs(out, p)
        _merge_text(out, p)
    out.last_offset = out.n_bytes
    return out


def _merge_marks(out: SlurmOutput, parts: list[SlurmOutput]) -> None:
    """Attempt marks, and a step counter that goes backwards across two ranges."""
    prev: SlurmOutput | None = None
    for p in parts:
        out.attempt_starts.extend(p.attempt_starts)
        out.restarts.extend(p.restarts)
        if p.first_step is None:
            continue
        if prev is not None and prev.last_step is not None and p.first_step < prev.last_step:
            start = p.byte_range[0] if p.byte_range else 0
            out.restarts.append((start - 1, start))
        out.first_step = out.first_step if out.first_step is not None else p.first_step
        out.last_step, prev = p.last_step, p


def _merge_curve(out: SlurmOutput, parts: list[SlurmOutput]) -> None:
    """The bar's curve: the last frame per step over all ranges."""
    cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for p in parts:
        if not len(p.bar_step):
            continue
        if cols and cols[-1][0][-1] == p.bar_step[0]:  # a step redrawn across the range boundary
            cols[-1] = (cols[-1][0][:-1], cols[-1][1][:-1], cols[-1][2][:-1])
        cols.append((p.bar_step, p.bar_epoch, p.bar_loss))
    if cols:
        out.bar_step, out.bar_epoch, out.bar_loss = _dedupe_last(*(np.concatenate(c) for c in zip(*cols, strict=True)))


def _merge_counts(out: SlurmOutput, p: SlurmOutput, *, more_follows: bool) -> None:
    """Bytes, frames and what could not be read; a frame left cut at the end of a range that is
    not the file's last counts as undecoded (more of the file follows it)."""
    out.n_bytes += p.n_bytes
    out.bar_frames += p.bar_frames
    out.long_lines += p.long_lines
    cut_inside = p.pending_cut is not None and more_follows
    out.undecoded_frames += p.undecoded_frames + cut_inside
    out.first_undecoded = out.first_undecoded or p.first_undecoded or (p.pending_cut if cut_inside else None)
    out.unparsed_frames += p.unparsed_frames
    out.other_rank_frames += p.other_rank_frames
    out.first_unparsed = out.first_unparsed or p.first_unparsed


def _merge_epochs(out: SlurmOutput, p: SlurmOutput) -> None:
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


def _merge_text(out: SlurmOutput, p: SlurmOutput) -> None:
    """What the line parser read: Step lines, config, checkpoints, events … (first or last wins
    as for one range read in order)."""
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
