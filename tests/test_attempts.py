"""Training attempts (issue 12): Slurm ``--requeue`` appends the requeued job's output to the
same file; a resubmitted job writes a second ``slurm-*.out``; each process start writes a new
DiskLogger file. The last attempt decides the status and supplies the curve; steps are never
combined across attempts.

Every file here is built from the real captures in ``tests/fixtures/torchtune`` (a real
``scancel``/time-limit run, then a real completed run), concatenated as Slurm does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment.cli import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import find_training_files, read_training
from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources.torchtune import reader as tt_reader

FIX = Path(__file__).parent / "fixtures" / "torchtune"
LATER = 4_000_000_000.0
SCANCEL = (FIX / "local_v0.6.1_lora_cpu_slurm_scancel.out").read_bytes()
TIMEOUT = (FIX / "local_v0.6.1_lora_cpu_slurm_timeout.out").read_bytes()
COMPLETED = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
COMPLETED_DISK = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt").read_bytes()
TIMEOUT_DISK = (FIX / "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt").read_bytes()


def _disk_curve(text: bytes) -> dict[int, float]:
    """Step -> loss of a DiskLogger file, read with a plain regex (independent of the reader)."""
    return {int(s): float(v) for s, v in re.findall(rb"Step (\d+) \| loss:(\S+)", text)}


def _bar_curve(text: bytes) -> dict[int, float]:
    """Step -> loss of the last progress frame per step, read with a plain regex."""
    return {int(s): float(v) for _, s, v in re.findall(rb"(\d+)\|(\d+)\|Loss: ([0-9.]+):", text)}


COMPLETED_CURVE = _disk_curve(COMPLETED_DISK)


def _run(tmp_path: Path, files: dict[str, bytes]):
    run = tmp_path / "run"
    for name, data in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=LATER)
    return res, diag


def _curve(res) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in res.steps}


# --- the reader --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [4096, 65536, tt.CHUNK_SIZE])
@pytest.mark.parametrize(("first", "ended", "steps"), [(SCANCEL, "cancelled", 67), (TIMEOUT, "timeout", 171)])
def test_requeued_file_is_split_into_attempts(first, ended, steps, chunk):
    out = tt.read_slurm_bytes(first + COMPLETED, chunk_size=chunk)
    # the last attempt alone: its 16 steps, its end marker, no cancel message
    assert out.byte_range == (len(first) + len(b"host: vm  job: 1\n"), len(first) + len(COMPLETED))
    assert dict(zip(out.bar_step.tolist(), out.bar_loss.tolist(), strict=True)) == _bar_curve(COMPLETED)
    assert out.final_checkpoint == "Saving final epoch checkpoint."
    assert out.events == []
    assert out.config["epochs"] == 2
    # the first attempt on its own, as if it were the whole file
    (early,) = out.earlier_attempts
    assert early.bar_step.tolist() == list(range(1, steps + 1))
    assert [e.kind for _, e in early.events] == [ended]
    assert early.final_checkpoint is None
    assert early.config["epochs"] == tt.read_slurm_bytes(first).config["epochs"]


def test_one_attempt_files_are_not_split():
    for path in sorted(FIX.glob("*.out")):
        out = tt.read_slurm_output(path)
        assert out.earlier_attempts == [] and out.byte_range is None, path.name


def test_ranks_printing_the_banner_twice_are_one_attempt():
    out = tt.read_slurm_output(FIX / "local_v0.6.1_full_distributed_cpu_torchrun_failure.out")
    assert out.recipe == "FullFinetuneRecipeDistributed"
    assert out.attempt_starts == [] and out.earlier_attempts == []


def test_step_counter_going_backwards_without_a_banner_starts_an_attempt():
    frames = COMPLETED[COMPLETED.index(b"Writing logs to") :]  # the completed run's output, no banner
    out = tt.read_slurm_bytes(SCANCEL + frames, chunk_size=8192)
    assert out.bar_step.tolist() == list(range(1, 17))
    assert dict(zip(out.bar_step.tolist(), out.bar_loss.tolist(), strict=True)) == _bar_curve(COMPLETED)
    assert out.byte_range is not None and out.byte_range[0] > len(SCANCEL)
    assert out.earlier_attempts[0].bar_step.tolist() == list(range(1, 68))


def test_parallel_byte_ranges_find_the_same_attempts(tmp_path, monkeypatch):
    path = tmp_path / "slurm-7.out"
    path.write_bytes(TIMEOUT + COMPLETED)
    one = tt.read_slurm_output(path, workers=1)
    monkeypatch.setattr(tt_reader, "PARALLEL_MIN_BYTES", 1)
    many = tt.read_slurm_output(path, workers=3)
    assert many.byte_range == one.byte_range
    assert many.bar_step.tolist() == one.bar_step.tolist() == list(range(1, 17))
    assert [e.byte_range for e in many.earlier_attempts] == [e.byte_range for e in one.earlier_attempts]


def test_disklogger_counter_going_backwards_keeps_the_last_attempt(tmp_path):
    path = tmp_path / "log_1795713941.txt"
    path.write_bytes(TIMEOUT_DISK + COMPLETED_DISK)
    log = tt.read_disk_log(path)
    assert {s: v["loss"] for s, v in log.steps.items()} == COMPLETED_CURVE
    assert [max(a) for a in log.earlier_attempts] == [max(_disk_curve(TIMEOUT_DISK))]


# --- a run ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "ended"), [(SCANCEL, "cancelled"), (TIMEOUT, "timeout")])
def test_requeued_run_that_completed_is_completed(tmp_path, first, ended):
    res, diag = _run(tmp_path, {"slurm-3.out": first + COMPLETED, "logs/log_1795713941.txt": COMPLETED_DISK})
    s = res.summary
    assert (s.status, s.status_evidence, s.attempts) == ("completed", "Saving final epoch checkpoint.", 2)
    assert (s.steps, s.planned_steps, s.final_loss) == (16, 16, COMPLETED_CURVE[16])
    assert _curve(res) == COMPLETED_CURVE
    assert [r["source"] for r in res.steps] == ["disklogger"] * 16
    assert [e["epoch"] for e in res.epochs] == [0, 1]
    (note,) = [w for w in diag.warnings if "attempts" in w.message]
    assert (note.file, note.severity) == ("run/slurm-3.out", "info")
    last = max(_bar_curve(first))
    assert f"run/slurm-3.out bytes 0-{len(first) + 17:,}: {ended} (" in note.message
    assert note.message.startswith("run run: 2 training attempts (requeued or resubmitted); the last attempt "
                                   "decides the status (completed)")
    assert note.message.endswith(f", last step {last}")


def test_completed_then_cancelled_attempt_is_cancelled(tmp_path):
    res, _ = _run(tmp_path, {"slurm-3.out": COMPLETED + SCANCEL})
    assert (res.summary.status, res.summary.attempts, res.summary.steps) == ("cancelled", 2, 67)
    assert _curve(res) == _bar_curve(SCANCEL)


def test_two_job_files_are_two_attempts_never_spliced(tmp_path):
    res, diag = _run(tmp_path, {"slurm-100.out": SCANCEL, "slurm-101.out": COMPLETED,
                                "logs/log_1795713941.txt": COMPLETED_DISK})
    s = res.summary
    assert (s.status, s.attempts, s.steps, s.training_log) == ("completed", 2, 16, "run/slurm-101.out")
    assert _curve(res) == COMPLETED_CURVE  # not steps 17-67 of the cancelled job after the 16 of this one
    note = next(w for w in diag.warnings if "attempts" in w.message)
    assert "run/slurm-100.out: cancelled (slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT" in note.message


def test_newer_disklogger_file_beside_an_older_one(tmp_path):
    res, diag = _run(tmp_path, {"log_1795713000.txt": TIMEOUT_DISK, "log_1795713941.txt": COMPLETED_DISK})
    assert _curve(res) == COMPLETED_CURVE
    assert res.summary.attempts == 2
    note = next(w for w in diag.warnings if "attempts" in w.message)
    assert f"run/log_1795713000.txt: superseded by a newer DiskLogger file, last step {max(_disk_curve(TIMEOUT_DISK))}" \
        in note.message


def test_disklogger_of_an_earlier_attempt_is_not_used_for_the_last(tmp_path):
    # the completed attempt names log_1795713941.txt, which is missing: the timeout's log must not fill in
    res, diag = _run(tmp_path, {"slurm-3.out": TIMEOUT + COMPLETED, "logs/log_1795713000.txt": TIMEOUT_DISK})
    assert _curve(res) == _bar_curve(COMPLETED)
    assert {r["source"] for r in res.steps} == {"bar"}
    assert res.summary.status == "completed"
    assert any("the metric log log_1795713941.txt named in `Writing logs to` was not found" in w.message
               for w in diag.warnings)


# --- end to end ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_requeued_run_is_completed_with_its_last_attempt(example_copy):
    root = example_copy("mid2026", 40)
    run = "Llama-3.2-1B-Instruct_rank4_lr1e-5"
    slurm = root / run / "artifacts" / "slurm-1.out"
    own = slurm.read_bytes()
    disk = next((root / run / "artifacts").glob("log_*.txt"))
    expected = _disk_curve(disk.read_bytes())
    slurm.write_bytes(SCANCEL + own)
    result = CliRunner().invoke(analyze, [str(root), "--json", "--quiet", "--format", "html"], catch_exceptions=False)
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    training = next(r for r in summary["runs"] if r["name"] == run)["training"]
    last = max(expected)
    assert (training["status"], training["steps"], training["final_loss"]) == ("completed", last, expected[last])
    runs = pd.read_parquet(root / "analysis" / "data" / "runs.parquet").set_index("run")
    assert runs.loc[run, "attempts"] == 2
    assert set(runs.drop(index=run)["attempts"].dropna()) <= {1}
    steps = pd.read_parquet(root / "analysis" / "data" / "train_steps.parquet")
    mine = steps[steps["run"] == run]
    assert dict(zip(mine["step"], mine["loss"], strict=True)) == expected
    assert any(w["message"].startswith(f"run {run}: 2 training attempts") for w in summary["warnings"])
