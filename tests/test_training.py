"""Run-level training results: file discovery, status with evidence, derived values, convergence."""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import pytest

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import (
    RUNNING_WINDOW_S,
    TrainingFiles,
    convergence_verdict,
    find_training_files,
    read_training,
)
from training_runs import two_gpu_torchrun_run

FIX = Path(__file__).parent / "fixtures" / "torchtune"
LATER = 4_000_000_000.0  # a "now" long after every fixture was written


def run_sample(tmp_path: Path, out: str, disk: str | None = None, *, now: float = LATER, disk_name: str | None = None):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    shutil.copy(FIX / out, run / "slurm-101.out")
    if disk:
        logs = run / "logs"
        logs.mkdir(exist_ok=True)
        shutil.copy(FIX / disk, logs / (disk_name or "log_1795713941.txt"))
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=now)
    return res, diag


def test_completed_with_disklogger(tmp_path: Path) -> None:
    res, diag = run_sample(tmp_path, "local_v0.6.1_lora_cpu_slurm_completed.out",
                           "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt")
    s = res.summary
    assert (s.status, s.status_evidence, s.status_file) == (
        "completed", "Saving final epoch checkpoint.", "run/slurm-101.out")
    assert (s.final_loss, s.min_loss, s.steps, s.planned_steps) == (4.952439785003662, 4.84102725982666, 16, 16)
    assert (s.epochs_done, s.planned_epochs, s.train_time_s, s.train_time_source) == (2, 2, 4.0, "bar")
    tps = [107.27200317382812, 102.04449462890625, 226.23602294921875, 104.86432647705078, 265.6728210449219,
           357.5345764160156, 1554.7984619140625, 3245.2626953125, 1025.595947265625, 1053.8653564453125,
           1094.371826171875, 2578.07177734375, 853.6539916992188, 787.2706298828125, 3971.714599609375,
           3511.65771484375]
    assert s.tokens_per_second_per_gpu == pytest.approx(sum(tps[1:]) / 15, rel=1e-12)  # step 1 is warm-up
    assert (s.n_gpus, s.n_gpus_source, s.gpu_hours) == (1, "assumed", 4.0 / 3600)
    assert s.convergence == "too short to tell"
    assert s.training_log == "run/slurm-101.out"
    assert len(res.steps) == 16
    assert res.steps[0] == {"run": "run", "epoch": 0, "step": 1, "loss": 4.921807289123535, "lr": 0.0015,
                            "tokens_per_second_per_gpu": 107.27200317382812, "source": "disklogger"}
    assert [r["epoch"] for r in res.steps] == [0] * 8 + [1] * 8
    assert res.epochs == [
        {"run": "run", "epoch": 0, "steps_in_epoch": 8, "last_step": 8, "elapsed_s": 4.0, "complete": True,
         "checkpoint_saved": True, "checkpoint_s": 0.02},
        {"run": "run", "epoch": 1, "steps_in_epoch": 8, "last_step": 16, "elapsed_s": 0.0, "complete": True,
         "checkpoint_saved": True, "checkpoint_s": 0.01},
    ]
    assert res.config["optimizer"]["lr"] == 0.003
    assert not [w for w in diag.warnings if w.severity != "info"]


@pytest.mark.parametrize(
    ("out", "disk", "status", "evidence", "steps", "final", "train_time"),
    [
        ("local_v0.3.1_lora_cpu.out", "local_v0.3.1_lora_cpu.disklogger.txt", "completed",
         "Saving final epoch checkpoint.", 16, 4.94819974899292, 3.0),
        ("local_v0.4.0_lora_cpu.out", "local_v0.4.0_lora_cpu.disklogger.txt", "completed",
         "Saving final epoch checkpoint.", 16, 4.948200225830078, 4.0),
        ("local_v0.5.0_lora_cpu.out", "local_v0.5.0_lora_cpu.disklogger.txt", "completed",
         "Saving final epoch checkpoint.", 16, 4.948200225830078, 9.0),
        ("local_v0.6.1_lora_cpu_slurm_nan.out", "local_v0.6.1_lora_cpu_slurm_nan.disklogger.txt", "diverged",
         "loss is not finite (NaN/inf) from step 5 (last step 8)", 8, None, 3.0),
        ("local_v0.6.1_lora_cpu_slurm_scancel.out", None, "cancelled",
         "slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-11-26T17:27:27 ***", 67, 4.099761962890625, 23.0),
        ("local_v0.6.1_lora_cpu_slurm_timeout.out", "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt", "timeout",
         "slurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT 2026-11-26T17:26:55 DUE TO TIME LIMIT ***", 171,
         4.009335517883301, 50.0),
        ("local_v0.6.1_lora_cpu_slurm_timeout_stdoutlogger_buffered.out", None, "timeout",
         "slurmstepd-vm: error: *** JOB 5 ON vm CANCELLED AT 2026-11-26T17:29:55 DUE TO TIME LIMIT ***", 219,
         4.0372467041015625, 53.0),
        ("local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_buffered.out", None, "completed",
         "Saving final epoch checkpoint.", 8, 4.949013710021973, 5.0),
        ("local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_unbuffered.out", None, "completed",
         "Saving final epoch checkpoint.", 8, 4.949013710021973, 5.0),
        ("local_v0.6.1_full_distributed_cpu_torchrun_failure.out", None, "failed",
         "[rank0]: ValueError: Logging memory stats is not supported on CPU devices", None, None, None),
        ("cruijff_slurm_training_output.txt", None, "completed", "all 500 planned steps done (step 500)", 500,
         0.26427456736564636, 228.0),
    ],
)
def test_status_of_every_sample(tmp_path, out, disk, status, evidence, steps, final, train_time) -> None:
    res, _ = run_sample(tmp_path, out, disk)
    s = res.summary
    assert (s.status, s.status_evidence, s.steps, s.final_loss, s.train_time_s) == (
        status, evidence, steps, final, train_time)
    assert s.status_file == "run/slurm-101.out"


def test_timeout_values(tmp_path: Path) -> None:
    res, _ = run_sample(tmp_path, "local_v0.6.1_lora_cpu_slurm_timeout.out",
                        "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt")
    s = res.summary
    assert (s.epochs_done, s.planned_epochs) == (21, 2000)
    assert s.min_loss == 4.009335517883301
    assert res.epochs[-1] == {"run": "run", "epoch": 21, "steps_in_epoch": 8, "last_step": 171, "elapsed_s": 2.0,
                              "complete": False, "checkpoint_saved": False, "checkpoint_s": None}
    assert all(r["source"] == "disklogger" for r in res.steps)


def test_stdout_logger_lags_bar(tmp_path: Path) -> None:
    res, _ = run_sample(tmp_path, "local_v0.6.1_lora_cpu_slurm_timeout_stdoutlogger_buffered.out")
    by_step = {r["step"]: r for r in res.steps}
    assert by_step[216]["source"] == "stdout" and by_step[216]["lr"] == 0.002998675679032315
    assert by_step[219] == {"run": "run", "epoch": 27, "step": 219, "loss": 4.0372467041015625, "source": "bar"}


def test_disklogger_wins_and_disagreement_is_logged(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    shutil.copy(FIX / "local_v0.6.1_lora_cpu_slurm_completed.out", run / "slurm-7.out")
    text = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt").read_text()
    (run / "logs" / "log_1795713941.txt").write_text(text.replace("loss:4.963743686676025", "loss:4.5"))
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=LATER)
    assert res.steps[1]["loss"] == 4.5
    info = [w for w in diag.warnings if "differ" in w.message]
    assert len(info) == 1 and info[0].severity == "info" and "step 2: 4.5 vs bar 4.963743686676025" in info[0].message
    assert any(a.action == "training.loss_disagreement" for a in diag.actions)


def test_missing_and_non_torchtune(tmp_path: Path) -> None:
    diag = Diagnostics(root=tmp_path)
    res = read_training("x", TrainingFiles(), diag, now=LATER)
    assert (res.summary.status, res.summary.status_evidence, res.steps, res.config) == (
        "missing", "no training output found", [], {})
    other = tmp_path / "slurm-1.out"
    other.write_text("Epoch 1/10\nloss: 0.5 - accuracy: 0.8\n")
    res = read_training("x", TrainingFiles(slurm_outputs=[other]), diag, now=LATER)
    assert res.summary.status == "missing"
    assert any(w.file == "slurm-1.out" and "no torchtune output" in w.message for w in diag.warnings)


def test_bad_files_warn_and_never_raise(tmp_path: Path) -> None:
    paths = []
    for name, data in {"slurm-1.out": b"", "slurm-2.out": bytes(range(256)) * 50,
                       "slurm-3.out": (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()[:2500]}.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    disk = tmp_path / "log_1.txt"
    disk.write_bytes(b"Step 1 | loss:2.5 \n\xff\xfe\x00garbage\nStep 2 | loss:2.25 lr:oops \n")
    diag = Diagnostics(root=tmp_path)
    files = TrainingFiles(slurm_outputs=[*paths, tmp_path / "slurm-404.out"], disk_logs=[disk])
    res = read_training("r", files, diag, now=LATER)
    assert [r["loss"] for r in res.steps] == [2.5, 2.25]
    msgs = {(w.file, w.message.split(":")[0]) for w in diag.warnings}
    assert ("slurm-1.out", "empty training output file") in msgs
    assert any(w.file == "slurm-2.out" and "no torchtune output" in w.message for w in diag.warnings)
    assert any(w.file == "slurm-404.out" and w.severity == "error" for w in diag.warnings)
    assert any(w.file == "log_1.txt" and "1 line(s)" in w.message for w in diag.warnings)
    # the truncated file ends in the config banner: no end marker, old mtime
    assert res.summary.status == "failed"


def test_running_needs_recent_mtime(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    data = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
    cut = data.index(b"2|12|")
    (run / "slurm-9.out").write_bytes(data[:cut])
    mtime = (run / "slurm-9.out").stat().st_mtime
    files = find_training_files(run)
    res = read_training("r", files, Diagnostics(root=tmp_path), now=mtime + 60)
    assert res.summary.status == "running"
    assert res.summary.status_evidence == "no end marker; output written 60 s ago (at step 11)"
    res = read_training("r", files, Diagnostics(root=tmp_path), now=mtime + RUNNING_WINDOW_S + 1)
    assert res.summary.status == "failed"
    assert res.summary.status_evidence.startswith("output ends at step 11 without an end marker")


def test_cuda_oom_and_host_oom(tmp_path: Path) -> None:
    head = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()[:6000].rsplit(b"\r", 1)[0]
    cuda = tmp_path / "slurm-1.out"
    cuda.write_bytes(head + b"\n[rank0]: Traceback (most recent call last):\n"
                     b"[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 424.00 MiB.\n")
    host = tmp_path / "slurm-2.out"
    host.write_bytes(head + b"\nslurmstepd: error: Detected 1 oom_kill event in StepId=11300781.0. Some of the "
                     b"step tasks have been OOM Killed.\nsrun: error: n1: task 0: Out Of Memory\n")
    d = Diagnostics(root=tmp_path)
    s = read_training("a", TrainingFiles(slurm_outputs=[cuda]), d, now=LATER).summary
    assert (s.status, s.status_evidence) == (
        "cuda_oom", "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 424.00 MiB.")
    s = read_training("b", TrainingFiles(slurm_outputs=[host]), d, now=LATER).summary
    assert s.status == "oom" and s.status_evidence.startswith("slurmstepd: error: Detected 1 oom_kill event")
    assert s.status_file == "slurm-2.out"


def test_n_gpus_from_torchrun_and_gpu_csv(tmp_path: Path) -> None:
    run = two_gpu_torchrun_run(tmp_path / "run")
    res = read_training("r", find_training_files(run), Diagnostics(root=tmp_path), now=LATER)
    s = res.summary
    assert (s.n_gpus, s.n_gpus_source) == (2, "rank prefixes")
    assert s.gpu_util_mean_pct == 70.0
    assert s.peak_memory_gib == 2.0
    assert [(g["gpu"], g["utilization_pct"]) for g in res.gpu] == [(0, 80.0), (1, 60.0)]


def test_find_training_files_layouts(tmp_path: Path) -> None:
    run = tmp_path / "rank8_lr1e-5"
    (run / "eval" / "logs").mkdir(parents=True)
    (run / "eval" / "slurm-99.out").write_text("eval job\n")
    (run / "artifacts" / "epoch_0").mkdir(parents=True)
    src = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
    (run / "artifacts" / "slurm-12.out").write_bytes(src)
    (run / "artifacts" / "epoch_0" / "slurm-12.out").write_bytes(src)  # identical copy
    (run / "artifacts" / "gpu_metrics.csv").write_text("index, utilization.gpu [%]\n0, 5 %\n")
    (run / "artifacts" / "epoch_0" / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    (run / "slurm-3.out").write_text("first job\n")
    ck = tmp_path / "ck-out-rank8_lr1e-5"
    (ck / "logs").mkdir(parents=True)
    (ck / "logs" / "log_1795713941.txt").write_text("Step 1 | loss:1.0 \n")
    (ck / "epoch_0").mkdir()
    (ck / "epoch_0" / "model-00001-of-00001.bin").write_bytes(b"\0")
    (ck / "seff_12.txt").write_text("State: COMPLETED (exit code 0)\n")
    many = tmp_path / "many"
    many.mkdir()
    for i in range(300):
        (many / f"f{i}.bin").write_bytes(b"")
    files = find_training_files(run, [ck, many])
    rel = lambda ps: [p.relative_to(tmp_path).as_posix() for p in ps]  # noqa: E731
    assert rel(files.slurm_outputs) == ["rank8_lr1e-5/slurm-3.out", "rank8_lr1e-5/artifacts/slurm-12.out"]
    assert rel(files.disk_logs) == ["ck-out-rank8_lr1e-5/logs/log_1795713941.txt"]
    assert rel(files.gpu_metrics) == ["rank8_lr1e-5/artifacts/gpu_metrics.csv"]
    assert rel(files.seff) == ["ck-out-rank8_lr1e-5/seff_12.txt"]
    assert find_training_files(None) == TrainingFiles()


def test_find_is_bounded(tmp_path: Path, monkeypatch) -> None:
    import analyze_experiment.ingest.training as training

    monkeypatch.setattr(training, "MAX_DIR_ENTRIES", 50)
    for i in range(200):
        (tmp_path / f"x{i:03d}.txt").write_text("")
    os.utime(tmp_path)
    files = training.find_training_files(tmp_path)
    assert files.slurm_outputs == []


@pytest.mark.parametrize(
    ("curve", "verdict"),
    [
        ([1.0] * 10, "too short to tell"),
        ([3.0 * math.exp(-i / 10) + 0.5 for i in range(200)], "converged"),
        ([3.0 - i / 100 for i in range(200)], "still improving"),
        ([1.0 + 0.5 * math.sin(i / 8) for i in range(300)], "oscillating"),
        ([1.0] * 100 + [1.0 + i / 20 for i in range(100)], "diverged"),
        ([1.0] * 50 + [math.nan], "diverged"),
    ],
)
def test_convergence_rule(curve: list[float], verdict: str) -> None:
    assert convergence_verdict(curve) == verdict


def test_empty_disklogger_file_is_named(tmp_path):
    """An empty metrics file must not silently drop a run's lr/tokens/memory (found by fuzzing)."""
    src = Path(__file__).parent / "fixtures" / "torchtune"
    run = tmp_path / "run"
    (run / "artifacts").mkdir(parents=True)
    (run / "artifacts" / "slurm-1.out").write_bytes((src / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes())
    name = re.search(r"Writing logs to \S*/(log_\d+\.txt)", (run / "artifacts" / "slurm-1.out").read_text())[1]
    (run / "artifacts" / name).write_bytes(b"")
    diag = Diagnostics(root=tmp_path)
    res = read_training("run", find_training_files(run), diag, now=0.0)
    assert res.summary.status == "completed"
    assert [w.message for w in diag.warnings if w.file == f"run/artifacts/{name}"] == [
        "DiskLogger file is empty: not used (per-step lr, tokens/s and memory unknown)"
    ]
