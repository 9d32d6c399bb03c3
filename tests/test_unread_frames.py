"""Progress frames are never lost without a word (issues 12 and 16).

* Epoch numbers of 6 or more digits were dropped by the fast scanner (epoch 99,999 parsed,
  100,000 did not); they are read now, up to 9 digits, and anything longer is named.
* A frame with a ``|Loss: `` description the scanner cannot decode is counted and named.
* A bar in a format this version does not know (a newer torchtune) is named with its first
  line; the run then shows no steps, and the user knows why.

Inputs are the real captures of ``tests/fixtures/torchtune`` with their descriptions
rewritten; the end-to-end test runs the real CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.cli import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import find_training_files, read_training
from analyze_experiment.sources import torchtune as tt

FIX = Path(__file__).parent / "fixtures" / "torchtune"
COMPLETED = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
TIMEOUT = (FIX / "local_v0.6.1_lora_cpu_slurm_timeout.out").read_bytes()
DESC = re.compile(rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):")


def _bar_curve(text: bytes) -> dict[int, float]:
    return {int(s): float(v) for _, s, v in DESC.findall(text)}


def _with_epoch_offset(data: bytes, offset: int) -> bytes:
    return DESC.sub(lambda m: b"%d|%s|Loss: %s:" % (int(m.group(1)) + offset, m.group(2), m.group(3)), data)


def _read_run(tmp_path: Path, data: bytes, disk: bytes | None = None):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "slurm-5.out").write_bytes(data)
    if disk is not None:
        (run / "log_1795713941.txt").write_bytes(disk)
    diag = Diagnostics(root=tmp_path)
    return read_training("run", find_training_files(run), diag, now=4e9), diag


# --- epochs of many digits -----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [99_998, 99_999, 999_999, 123_456_700, 999_999_970])
@pytest.mark.parametrize("chunk", [4096, tt.CHUNK_SIZE])
def test_long_epoch_numbers_are_read(offset, chunk):
    for capture in (COMPLETED, TIMEOUT):
        data = _with_epoch_offset(capture, offset)
        out = tt.read_slurm_bytes(data, chunk_size=chunk)
        plain = tt.read_slurm_bytes(capture, chunk_size=chunk)
        assert out.bar_step.tolist() == plain.bar_step.tolist()
        assert out.bar_loss.tolist() == plain.bar_loss.tolist()
        assert out.bar_epoch.tolist() == (plain.bar_epoch + offset).tolist()
        assert sorted(out.epochs) == [e + offset for e in sorted(plain.epochs)]
        assert out.undecoded_frames == 0


def test_epoch_crossing_100000_keeps_every_step():
    """Issue 16's file: an epoch counter passing 99,999 -> 100,000 (four steps per epoch)."""
    frames = []
    for i in range(4000):
        epoch, step = 99_500 + i // 4, i + 1
        frames.append(f"{epoch}|{step}|Loss: {1 + (i % 7) / 8}:  25%|██▌       | {i % 4 + 1}/4 [00:01<00:03,  1.00it/s]")
    data = ("\r".join(frames) + "\n").encode()
    for chunk in (1 << 12, 1 << 16, tt.CHUNK_SIZE):
        out = tt.read_slurm_bytes(data, chunk_size=chunk)
        assert out.bar_step.tolist() == list(range(1, 4001))
        assert int(out.bar_epoch[-1]) == 99_500 + 3999 // 4 == 100_499
        assert out.undecoded_frames == 0


@settings(max_examples=80, deadline=None)
@given(epoch=st.integers(1, 10**12), step=st.integers(1, 10**12))
def test_every_frame_is_read_or_named(epoch, step):
    frame = f"{epoch}|{step}|Loss: 4.921807289123535:  12%|█▎        | 1/8 [00:00<00:06,  1.03it/s]"
    out = tt.read_slurm_bytes(f"{frame}\r{frame}\n".encode())
    readable = epoch < 10**9 and step < 10**9
    assert (out.bar_step.tolist(), out.bar_epoch.tolist()) == (([step], [epoch]) if readable else ([], []))
    assert out.undecoded_frames == (0 if readable else 1)
    assert out.first_undecoded == (None if readable else frame)


def test_undecodable_frames_are_named_by_the_run(tmp_path):
    data = _with_epoch_offset(COMPLETED, 9_999_999_999)  # 11-digit epochs: past what is read
    res, diag = _read_run(tmp_path, data)
    assert res.steps == []
    (w,) = [w for w in diag.warnings if "could not be decoded" in w.message]
    n = tt.read_slurm_bytes(data).undecoded_frames
    assert n >= 16
    assert (w.file, w.severity) == ("run/slurm-5.out", "warning")
    assert w.message == (
        f"{n:,} progress-bar frame(s) with a `|Loss: ` description could not be decoded and were left out "
        "(first: '10000000000|1|Loss: 4.921807289123535:  25%|██▌       | 2/8 [00:01<00:06,  1.00s/it]')"
    )


def test_a_frame_cut_at_the_end_of_a_file_being_written_is_not_an_error():
    cut = COMPLETED[: COMPLETED.index(b"2|13|Loss: 4.88") + len(b"2|13|Loss: 4.88")]
    out = tt.read_slurm_bytes(cut)
    assert out.bar_step.tolist() == list(range(1, 13)) and out.undecoded_frames == 0
    # the same cut frame with more output after it is counted
    out = tt.read_slurm_bytes(cut + b"\r" + COMPLETED[COMPLETED.index(b"2|14|Loss") :])
    assert out.bar_step.tolist() == [s for s in range(1, 17) if s != 13]
    assert (out.undecoded_frames, out.first_undecoded) == (1, "2|13|Loss: 4.88")


# --- a bar in a format this version does not know --------------------------------------------------

NEWER = [
    (rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):", rb"Epoch \1 | Step \2 | Loss: \3:",
     "Epoch 1 | Step 1 | Loss: 4.921807289123535:  12%|█▎        | 1/8 [00:00<00:06,  1.03it/s]"),
    (rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):( +\d+%\|[^|]*\|[^\]]*)\]", rb"Epoch \1:\4, loss=\3]",
     "Epoch 1:  12%|█▎        | 1/8 [00:00<00:06,  1.03it/s, loss=4.921807289123535]"),
    (rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):", rb"\1|\2|loss=\3:",
     "1|1|loss=4.921807289123535:  12%|█▎        | 1/8 [00:00<00:06,  1.03it/s]"),
]


@pytest.mark.parametrize(("pattern", "replacement", "first"), NEWER)
def test_newer_bar_format_is_named_with_its_first_line(tmp_path, pattern, replacement, first):
    data = re.sub(pattern, replacement, COMPLETED)
    res, diag = _read_run(tmp_path, data)
    assert res.steps == [] and res.summary.steps is None
    assert res.summary.status == "completed"  # the end marker is still read
    (w,) = [w for w in diag.warnings if "format this version does not read" in w.message]
    n = tt.read_slurm_bytes(data).unparsed_frames
    assert n >= 16
    assert (w.file, w.severity) == ("run/slurm-5.out", "warning")
    assert w.message == (
        f"the progress bar is in a format this version does not read: {n:,} frame(s) mentioning loss/step/epoch "
        f"were not read (first: {first!r}); no training steps were read from this file (per-step values only "
        "from a DiskLogger file, if any)"
    )


def test_other_progress_bars_are_not_counted():
    noise = (b"Loading checkpoint shards: 100%|##########| 2/2 [00:03<00:00,  1.5s/it]\n"
             b"Map: 100%|##########| 8/8 [00:00<00:00, 912.11 examples/s]\n")
    out = tt.read_slurm_bytes(noise + COMPLETED)
    assert out.unparsed_frames == 0 and len(out.bar_step) == 16


@pytest.mark.slow
def test_cli_names_a_bar_it_cannot_read(example_copy):
    root = example_copy("mid2026", 40)
    run = "Llama-3.2-1B-Instruct_rank16_lr1e-4"
    (slurm,) = (root / run / "artifacts").glob("slurm-*.out")
    slurm.write_bytes(re.sub(NEWER[0][0], NEWER[0][1], slurm.read_bytes()))
    for disk in (root / run / "artifacts").glob("log_*.txt"):
        disk.unlink()
    result = CliRunner().invoke(analyze, [str(root), "--json", "--quiet", "--format", "html", "--strict"],
                                catch_exceptions=False)
    assert result.exit_code == 3  # --strict: a warning
    summary = json.loads(result.stdout)
    warned = [w for w in summary["warnings"] if w["file"] == f"{run}/artifacts/{slurm.name}"]
    assert any(w["message"].startswith("the progress bar is in a format this version does not read: ")
               and "(first: 'Epoch 1 | Step 1 | Loss: " in w["message"] for w in warned)
    training = next(r for r in summary["runs"] if r["name"] == run)["training"]
    assert training["steps"] is None
