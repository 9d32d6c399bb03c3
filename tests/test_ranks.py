"""Lines prefixed by a rank (``[rank0]:Saving final epoch checkpoint.``, as torchrun ``--tee``
prints them) are read; the curve, config and checkpoints come from rank 0 (issue 12).

The inputs are the real captures in ``tests/fixtures/torchtune`` with torchrun's prefix
added to every line, and two real captures interleaved line by line as two ranks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import find_training_files, read_training
from analyze_experiment.sources import torchtune as tt

FIX = Path(__file__).parent / "fixtures" / "torchtune"
COMPLETED = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
OTHER = (FIX / "local_v0.5.0_lora_cpu.out").read_bytes()  # another real run: other losses
FAILURE = (FIX / "local_v0.6.1_full_distributed_cpu_torchrun_failure.out").read_bytes()


def _prefixed(data: bytes, rank: int, space: bool = False) -> list[bytes]:
    """Every ``\\n`` line of ``data`` with torchrun's prefix (``\\r`` frames stay on their line)."""
    tag = f"[rank{rank}]:{' ' if space else ''}".encode()
    lines = data.split(b"\n")
    return [tag + line + b"\n" for line in lines[:-1]] + ([tag + lines[-1]] if lines[-1] else [])


def _bar_curve(text: bytes) -> dict[int, float]:
    return {int(s): float(v) for _, s, v in re.findall(rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):", text)}


def _curve(out: tt.SlurmOutput) -> dict[int, float]:
    return dict(zip(out.bar_step.tolist(), out.bar_loss.tolist(), strict=True))


PLAIN = tt.read_slurm_bytes(COMPLETED)


@pytest.mark.parametrize("space", [False, True])
@pytest.mark.parametrize("chunk", [4096, tt.CHUNK_SIZE])
def test_rank0_prefix_reads_as_the_plain_capture(space, chunk):
    out = tt.read_slurm_bytes(b"".join(_prefixed(COMPLETED, 0, space)), chunk_size=chunk)
    assert _curve(out) == _curve(PLAIN) == _bar_curve(COMPLETED)
    assert out.final_checkpoint == "Saving final epoch checkpoint."
    assert out.config == PLAIN.config and out.config["optimizer"]["lr"] == 0.003
    assert out.recipe == PLAIN.recipe
    assert [(c.kind, c.epoch) for c in out.checkpoints] == [(c.kind, c.epoch) for c in PLAIN.checkpoints]
    assert {e: (i.total, i.complete) for e, i in out.epochs.items()} == {1: (8, True), 2: (8, True)}
    assert out.disk_log_names == PLAIN.disk_log_names
    assert out.ranks == {0}


def _interleave(a: list[bytes], b: list[bytes], pattern: list[bool]) -> bytes:
    out, i, j = [], 0, 0
    for take_a in pattern:
        if take_a and i < len(a):
            out.append(a[i])
            i += 1
        elif j < len(b):
            out.append(b[j])
            j += 1
    return b"".join(out + a[i:] + b[j:])


@pytest.mark.parametrize("chunk", [512, 4096, tt.CHUNK_SIZE])
def test_two_ranks_interleaved_give_rank0s_curve(chunk):
    a, b = _prefixed(COMPLETED, 0), _prefixed(OTHER, 1)
    data = _interleave(a, b, [True, False] * max(len(a), len(b)))
    out = tt.read_slurm_bytes(data, chunk_size=chunk)
    assert _curve(out) == _bar_curve(COMPLETED)
    assert _curve(out) != _bar_curve(OTHER)  # the two runs really differ
    assert out.ranks == {0, 1}
    assert out.final_checkpoint == "Saving final epoch checkpoint."
    assert out.config["optimizer"]["lr"] == 0.003
    assert out.earlier_attempts == []


@settings(max_examples=40, deadline=None)
@given(pattern=st.lists(st.booleans(), min_size=1, max_size=400), chunk=st.sampled_from([256, 1024, 8192]))
def test_any_interleaving_of_ranks_gives_rank0s_curve(pattern, chunk):
    data = _interleave(_prefixed(COMPLETED, 0), _prefixed(OTHER, 1), pattern)
    out = tt.read_slurm_bytes(data, chunk_size=chunk)
    assert _curve(out) == _bar_curve(COMPLETED)
    assert out.final_checkpoint == "Saving final epoch checkpoint."


def test_a_failure_on_another_rank_is_still_evidence():
    tb = FAILURE[FAILURE.index(b"[rank0]: Traceback") :].replace(b"[rank0]:", b"[rank1]:")
    out = tt.read_slurm_bytes(b"".join(_prefixed(OTHER, 0)) + tb)
    kinds = {e.kind for _, e in out.events}
    assert {"traceback", "exception"} <= kinds
    assert any("Logging memory stats is not supported on CPU devices" in e.line for _, e in out.events)


def test_run_with_rank_prefixes_is_completed_with_two_gpus(tmp_path):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    a, b = _prefixed(COMPLETED, 0), _prefixed(OTHER, 1)
    (run / "slurm-9.out").write_bytes(_interleave(a, b, [True, False] * len(a)))
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=4e9)
    s = res.summary
    assert (s.status, s.status_evidence) == ("completed", "Saving final epoch checkpoint.")
    assert (s.steps, s.final_loss) == (16, _bar_curve(COMPLETED)[16])
    assert (s.n_gpus, s.n_gpus_source) == (2, "rank prefixes")
    assert {r["step"]: r["loss"] for r in res.steps} == _bar_curve(COMPLETED)


def test_a_file_with_only_another_ranks_frames_says_so(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "slurm-9.out").write_bytes(b"".join(_prefixed(OTHER, 1)))
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=4e9)
    assert res.steps == []
    n = tt.read_slurm_bytes(b"".join(_prefixed(OTHER, 1))).other_rank_frames
    assert n >= 16
    assert [(w.file, w.message) for w in diag.warnings if "rank" in w.message] == [
        ("run/slurm-9.out", f"{n:,} progress-bar frame(s) of rank(s) 1 were left out: the curve comes from rank 0, "
                            "which this file does not show")
    ]


@pytest.mark.parametrize("chunk", [512, tt.CHUNK_SIZE])
@pytest.mark.parametrize("first_step", [1, 100_001])
def test_same_step_on_two_ranks_is_not_a_stale_redraw(chunk, first_step):
    """Two ranks print the same epoch and step side by side (frames at segment starts, short and
    long descriptions): a rank-0 frame is never folded into the other rank's as its redraw."""
    tail = ":  50%|#####     | 4/8 [00:01<00:01,  1.00it/s]"
    lines = []
    for i in range(40):
        step = first_step + i
        for rank, loss in ((0, 2.5 + i / 64), (1, 9.5 + i / 64)):
            lines.append(f"[rank{rank}]:  0%|          | 0/8 [00:00<?, ?it/s]\r1|{step}|Loss: {loss}{tail}\n")
    out = tt.read_slurm_bytes("".join(lines).encode(), chunk_size=chunk)
    assert _curve(out) == {first_step + i: 2.5 + i / 64 for i in range(40)}
    assert out.ranks == {0, 1}
