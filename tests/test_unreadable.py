"""Unreadable run directories and symlinks inside run directories (issue 12).

An unreadable run directory used to show the run as "missing" training without a word;
symlinks inside run directories were skipped (directories) or followed anywhere (files)
without the warning docs/inputs.md promises. Permissions are real: when the tests run as
root (which reads everything), the CLI runs in a subprocess without the capabilities that
bypass file permissions (``setpriv``), so the kernel refuses the read as it would for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import find_training_files, read_training

FIX = Path(__file__).parent / "fixtures" / "torchtune"
SRC = Path(__file__).resolve().parents[1] / "src"
COMPLETED = FIX / "local_v0.6.1_lora_cpu_slurm_completed.out"
COMPLETED_DISK = FIX / "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt"


def _read(exp: Path, run: str = "run"):
    diag = Diagnostics(root=exp)
    res = read_training(run, find_training_files(exp / run, experiment=exp), diag, now=4e9)
    return res, diag


# --- symlinks inside run directories -------------------------------------------------------------


def test_symlinks_inside_a_run_directory_follow_the_documented_rules(tmp_path):
    exp, outside = tmp_path / "exp", tmp_path / "elsewhere"
    (exp / "run" / "logs").mkdir(parents=True)
    (exp / "shared").mkdir()
    outside.mkdir()
    shutil.copy(COMPLETED, exp / "shared" / "slurm-5.out")
    shutil.copy(COMPLETED_DISK, outside / "log_1795713941.txt")
    (exp / "run" / "slurm-5.out").symlink_to(exp / "shared" / "slurm-5.out")  # inside: followed
    (exp / "run" / "logs" / "log_1795713941.txt").symlink_to(outside / "log_1795713941.txt")  # outside
    (exp / "run" / "slurm-6.out").symlink_to(exp / "run" / "gone.out")  # broken
    (exp / "run" / "again").symlink_to(exp / "run")  # a loop back to the run directory
    res, diag = _read(exp)
    assert (res.summary.status, res.summary.steps, res.summary.training_log) == (
        "completed", 16, "run/slurm-5.out")
    assert {r["source"] for r in res.steps} == {"bar"}  # the DiskLogger file outside was not read
    assert sorted((w.file, w.message) for w in diag.warnings if "symlink" in w.message) == [
        ("run/again", "run run: the symlink leads to a directory already read (loop or alias); not read again"),
        ("run/logs/log_1795713941.txt",
         "run run: the symlink points outside the experiment directory; not followed"),
        ("run/slurm-6.out", "run run: the symlink is broken; not followed"),
    ]


def test_a_symlinked_directory_inside_the_experiment_is_read(tmp_path):
    exp = tmp_path / "exp"
    (exp / "ck" / "logs").mkdir(parents=True)
    (exp / "run").mkdir()
    shutil.copy(COMPLETED, exp / "run" / "slurm-5.out")
    shutil.copy(COMPLETED_DISK, exp / "ck" / "logs" / "log_1795713941.txt")
    (exp / "run" / "artifacts").symlink_to(exp / "ck")
    res, diag = _read(exp)
    assert {r["source"] for r in res.steps} == {"disklogger"}
    assert [w for w in diag.warnings if w.severity != "info"] == []


def test_a_symlink_to_a_file_already_found_is_not_a_second_attempt(tmp_path):
    exp = tmp_path / "exp"
    (exp / "run").mkdir(parents=True)
    shutil.copy(COMPLETED, exp / "run" / "slurm-5.out")
    (exp / "run" / "latest.out").symlink_to(exp / "run" / "slurm-5.out")
    res, _ = _read(exp)
    assert (res.summary.attempts, res.summary.steps) == (1, 16)


# --- permission denied, for real -------------------------------------------------------------------


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root bypasses them otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: permissions cannot be enforced")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def _cli(root: Path, out: Path) -> tuple[int, dict, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [*_unprivileged(), sys.executable, "-m", "analyze_experiment", str(root), "--out", str(out), "--json",
         "--quiet", "--format", "html"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr


@pytest.mark.slow
def test_cli_unreadable_run_directory_artifacts_and_file_are_named(example_copy, tmp_path):
    root = example_copy("mid2026", 40)
    locked = "Llama-3.2-1B-Instruct_rank4_lr1e-5"
    art_locked = "Llama-3.2-1B-Instruct_rank16_lr1e-4"
    file_run = "Llama-3.2-1B-Instruct_rank4_lr1e-4"
    (slurm,) = (root / file_run / "artifacts").glob("slurm-*.out")
    modes = {root / locked: (0o000, 0o755), root / art_locked / "artifacts": (0o000, 0o755), slurm: (0o000, 0o644)}
    try:
        for p, (m, _) in modes.items():
            p.chmod(m)
        code, summary, err = _cli(root, tmp_path / "out")
    finally:
        for p, (_, m) in modes.items():
            p.chmod(m)
    assert code == 0, err
    warned = {(w["file"], w["message"]) for w in summary["warnings"]}
    assert (locked, "the directory could not be listed (Permission denied); skipped") in warned
    assert (locked, f"run {locked}: the directory could not be read (Permission denied); training output in it "
                    "was not looked for") in warned
    assert (f"{art_locked}/artifacts", f"run {art_locked}: the directory could not be read (Permission denied); "
                                       "training output in it was not looked for") in warned
    assert (f"{file_run}/artifacts/{slurm.name}", "could not read training output (Permission denied): skipped") \
        in warned
    runs = {r["name"]: r for r in summary["runs"]}
    assert runs[locked]["training"]["status"] == "missing"
    assert runs[art_locked]["training"]["status"] == "missing"
    # the remaining fine-tuned run is analysed as usual
    assert runs["Llama-3.2-1B-Instruct_rank16_lr1e-5"]["training"]["status"] == "completed"
