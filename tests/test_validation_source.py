"""``Validation loss:`` lines in SLURM output: real torchtune captures, chunking, composed streams."""

from __future__ import annotations

import doctest
import io
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment import export_wandb
from analyze_experiment.sources import validation
from analyze_experiment.sources.torchtune import read_disk_log
from analyze_experiment.sources.validation import (
    MAX_CARRY,
    VALIDATION_COLUMNS,
    ValidationLine,
    _scan,
    read_validation,
    validation_frame,
)

FIX = Path(__file__).parent / "fixtures" / "torchtune"
CAPTURES = {
    "local_v0.6.1_lora_cpu_slurm_val": [(4, 0, 5.1536), (8, 0, 5.1322), (12, 1, 5.0861), (16, 1, 5.0818)],
    "local_v0.6.1_lora_cpu_slurm_val_overfit": [(4, 0, 4.8938), (8, 0, 4.7005), (12, 1, 4.5746), (16, 1, 4.5735),
                                                (20, 2, 4.8786), (24, 2, 4.7588), (28, 3, 4.738), (32, 3, 4.7973)],
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_capture_lines_and_their_steps(name):
    lines = read_validation(FIX / f"{name}.out")
    assert [(x.step, x.epoch, x.loss) for x in lines] == CAPTURES[name]
    # the step each line follows is the step the metric logger wrote val_loss at, and the printed
    # value is that exact value rounded to 4 decimals
    disk = read_disk_log(FIX / f"{name}.disklogger.txt")
    exact = {s: v["val_loss"] for s, v in disk.steps.items() if "val_loss" in v}
    assert sorted(exact) == [x.step for x in lines]
    assert all(round(exact[x.step], 4) == x.loss for x in lines)
    raw = (FIX / f"{name}.out").read_bytes()
    assert all(raw[x.offset:].startswith(b"Validation loss: ") for x in lines)


@pytest.mark.parametrize("name", sorted(CAPTURES))
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunk_size_does_not_change_the_result(name, chunk):
    path = FIX / f"{name}.out"
    assert read_validation(path, chunk_size=chunk) == read_validation(path)


def test_runs_without_validation_give_nothing():
    for name in ("local_v0.6.1_lora_cpu_slurm_completed.out", "local_v0.6.1_lora_cpu_slurm_timeout.out",
                 "cruijff_slurm_training_output.txt"):
        assert read_validation(FIX / name) == []
    frame = validation_frame("r", [])
    assert list(frame.columns) == VALIDATION_COLUMNS and frame.empty


def test_frame_of_the_overfitting_capture():
    lines = read_validation(FIX / "local_v0.6.1_lora_cpu_slurm_val_overfit.out")
    df = validation_frame("run-a", lines)
    assert df["step"].tolist() == [4, 8, 12, 16, 20, 24, 28, 32]
    assert df["epoch"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert df["val_loss"].idxmin() == 3  # lowest at step 16, then higher: the overfitting curve
    assert set(df["run"]) == {"run-a"} and set(df["source"]) == {"slurm"}


def test_line_before_any_bar_has_no_step_and_repeats_keep_the_last():
    raw = (b"Validation loss: 9.0000\n"
           b"\r1|4|Loss: 2.5:  50%|#| 4/8 [00:01<00:01,  3.77it/s]Validation loss: 2.0000\n"
           b"\r1|4|Loss: 2.5:  50%|#| 4/8 [00:02<00:01,  3.77it/s]Validation loss: nan\n")
    lines = _scan(io.BytesIO(raw), 5)
    assert [(x.step, x.epoch) for x in lines] == [(None, None), (4, 0), (4, 0)]
    assert math.isnan(lines[2].loss)
    df = validation_frame("r", lines)
    assert df["step"].tolist() == [4] and math.isnan(df["val_loss"].iloc[0])


def test_a_huge_unterminated_line_is_bounded():
    raw = b"x" * (3 * MAX_CARRY) + b"\r2|9|Loss: 1.5: 10%|#| 1/8 [00:00<00:01, 3it/s]Validation loss: 1.2500\n"
    assert _scan(io.BytesIO(raw), 4096) == [ValidationLine(step=9, epoch=1, loss=1.25,
                                                           offset=raw.index(b"Validation"))]


def test_unreadable_file_raises_for_the_caller_to_report(tmp_path):
    with pytest.raises(OSError):
        read_validation(tmp_path)


_PREFIX = st.sampled_from([b"", b"INFO:torchtune.utils._logging:", b"[rank0]: ", b"\x1b[A"])
_GLUE = st.sampled_from([b"", b" ", b"\n", b"\x1b[A", b"\x1b[A\n"])


@st.composite
def _stream(draw):
    """A composed SLURM stream: bar frames (possibly stale), validations glued anywhere, noise lines."""
    parts: list[bytes] = []
    expected: list[tuple[int | None, int | None, float]] = []
    step, epoch, last = 0, 1, None
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["frame", "frame", "val", "noise"]))
        if kind == "frame":
            step += draw(st.integers(0, 3))
            epoch += draw(st.sampled_from([0, 0, 0, 1]))
            loss = draw(st.floats(0, 20, allow_nan=False))
            nl = b"\n" if draw(st.booleans()) else b""
            parts.append(nl + b"\r" + f"{epoch}|{step}|Loss: {loss!r}:  50%|#    | 4/8 [00:01<00:01,  3.77it/s]".encode())
            last = (epoch, step)
        elif kind == "val":
            v = round(draw(st.floats(0, 20, allow_nan=False)), 4)
            parts.append(draw(_GLUE) + draw(_PREFIX) + f"Validation loss: {v:.4f}\n".encode())
            expected.append((None if last is None else last[1], None if last is None else last[0] - 1, v))
        else:
            parts.append(b"\nStarting checkpoint save...\nStep 3 | loss:1.0 lr:0.1 \n")
    return b"".join(parts), expected


@settings(max_examples=150, deadline=None)
@given(_stream(), st.integers(1, 300))
def test_composed_streams_parse_back(stream, chunk):
    raw, expected = stream
    got = _scan(io.BytesIO(raw), chunk)
    assert [(x.step, x.epoch, x.loss) for x in got] == expected
    assert all(raw[x.offset:].startswith(b"Validation loss: ") for x in got)


def test_docstring_examples():
    for module in (validation, export_wandb):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__
