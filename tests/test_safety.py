"""Never lose a result, never touch an input: read-only experiments, kills at random
points, sweeps still being written, and output folders that are not ours."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyze_experiment.cli import analyze
from analyze_experiment.output import TMP_PREFIX

N = 40
FT = "Llama-3.2-1B-Instruct_rank4_lr1e-5"


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cli(args):
    return CliRunner().invoke(analyze, [str(a) for a in args], catch_exceptions=False)


def _complete(out: Path) -> bool:
    """A report folder as a reader must always find it: every part present and parseable."""
    summary = json.loads((out / "summary.json").read_text())
    return (
        len(summary["runs"]) == 5
        and (out / "report.md").read_text().rstrip().endswith("the tidy tables; summary.json the "
                                                              "machine-readable summary; in Python, "
                                                              "analyze_experiment.load(path).")
        and (out / "tables" / "runs.csv").is_file()
    )


def test_read_only_experiment_is_left_exactly_as_it_was(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    before = _hash_tree(root)
    modes = {}
    for p in [root, *root.rglob("*")]:
        modes[p] = stat.S_IMODE(p.stat().st_mode)
        p.chmod(modes[p] & ~0o222)
    try:
        out = tmp_path / "report"
        result = _cli([root, "--out", out, "--quiet", "--format", "html"])  # html: no PNGs to draw
        assert result.exit_code == 0, result.output
        assert _hash_tree(root) == before  # nothing changed, nothing added
        assert (out / "analyze-experiment.log").is_file()
        summary = json.loads((out / "summary.json").read_text())
        assert any("read-only" in w["message"] for w in summary["warnings"])
    finally:
        for p, m in modes.items():
            p.chmod(m)


def test_output_folder_that_is_not_ours_is_refused(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    for out in (precious, root, root.parent, root / FT / "report"):
        result = _cli([root, "--out", out, "--quiet"])
        assert result.exit_code == 2, (out, result.output)
    assert (precious / "thesis.tex").read_text() == "do not delete"
    assert not (root / FT / "report").exists()


def _staging(root: Path, pid: int) -> list[Path]:
    """The folder a run with process id ``pid`` writes its new report into (output.atomic_dir)."""
    return list(root.glob(f"{TMP_PREFIX}analysis-{pid}-*"))


def _signal_while_writing(proc: subprocess.Popen, root: Path, files: int, sig: int) -> None:
    """Send ``sig`` once the run's staging folder holds ``files`` files (0: as soon as it exists),
    i.e. while the new report is being written; nothing if the run ends first."""
    while proc.poll() is None:
        staging = _staging(root, proc.pid)
        if staging and sum(p.is_file() for p in staging[0].rglob("*")) >= files:
            proc.send_signal(sig)
            return
        time.sleep(0.01)


@pytest.mark.slow
def test_killed_at_any_point_the_previous_report_stays_complete(analysed, tmp_path):
    root = tmp_path / "mid2026-experiment"  # an experiment with its report, as the CLI left it
    shutil.copytree(analysed("mid2026", N).root, root, symlinks=True)
    out = root / "analysis"
    assert _complete(out)
    previous = _hash_tree(out)
    n_files = sum(not rel.startswith(".cache/") for rel in previous)  # the cache moves in last

    # Each signal lands while the new report is written (before, nothing is at stake): as the
    # staging folder appears, half-way through its files, and with nearly all of them in it.
    # --no-cache: every run rebuilds the report (an unchanged report is otherwise kept as it is,
    # and nothing would be written while the signal arrives)
    cmd = [sys.executable, "-m", "analyze_experiment", str(root), "--quiet", "--no-cache"]
    interrupted = 0
    for share, sig in ((0.0, signal.SIGKILL), (0.5, signal.SIGKILL), (0.9, signal.SIGINT)):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _signal_while_writing(proc, root, int(share * n_files), sig)
            interrupted += proc.wait(timeout=300) != 0
        finally:
            proc.kill()
        # the folder is the previous complete report or a new complete one, never a mix
        assert _complete(out)
        now = _hash_tree(out)
        if now != previous:
            previous = now
    assert interrupted, "every signal arrived after its run had finished: nothing was interrupted"
    # a later run cleans up what killed runs left behind (in-process: the process is no longer the point)
    assert _cli([root, "--quiet"]).exit_code == 0
    assert _complete(out)
    assert not [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]


def _truncate_training(root: Path) -> Path:
    """Make one run look mid-epoch: its SLURM file cut before the end markers, just written."""
    slurm = root / FT / "artifacts" / "slurm-1.out"
    text = slurm.read_bytes()
    cut = text.index(b"Starting checkpoint save")
    slurm.write_bytes(text[:cut])
    disk = next((root / FT / "artifacts").glob("log_*.txt"))
    lines = disk.read_bytes().splitlines(keepends=True)
    disk.write_bytes(b"".join(lines[:5]))
    return slurm


def test_run_still_training_is_running_with_its_partial_curve(example_copy):
    root = example_copy("mid2026", N)
    _truncate_training(root)
    result = _cli([root, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    run = next(r for r in json.loads(result.stdout)["runs"] if r["name"] == FT)
    assert run["training"]["status"] == "running"
    assert 0 < run["training"]["steps"] < 16
    md = (root / "analysis" / "report.md").read_text()
    assert "running" in md


def test_files_growing_while_the_tool_reads_them(example_copy, example):
    """A training log appended to and an eval log appearing (journal first) during the run."""
    root = example_copy("mid2026", N)
    slurm = _truncate_training(root)
    frame = "\r1|{step}|Loss: 4.{step:04d}:  50%|#####     | 4/8 [00:02<00:02,  1.50it/s]"
    stop = threading.Event()
    src_log = Path(__file__).parent / "fixtures" / "evals" / "logs" / "started.eval"
    cell = root / FT / "eval" / "capitalization_epoch1" / "logs"

    def writer():
        i = 0
        while not stop.is_set():
            with slurm.open("a") as fh:  # redraws of steps 5-7: the first epoch is still going
                fh.write(frame.format(step=5 + i % 3))
            i += 1
            if i == 40:
                shutil.copy(src_log, cell / "in-progress.eval")
            time.sleep(0.005)

    t = threading.Thread(target=writer)
    t.start()
    try:
        done = subprocess.run(
            # --format html: no PNG figures to draw (only the summary is checked)
            [sys.executable, "-m", "analyze_experiment", str(root), "--json", "--quiet", "--format", "html"],
            capture_output=True, text=True, timeout=600,
        )
    finally:
        stop.set()
        t.join()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    run = next(r for r in json.loads(done.stdout)["runs"] if r["name"] == FT)
    assert run["training"]["status"] == "running"
    assert run["training"]["steps"] >= 4


def test_interrupt_during_write_removes_its_temporary_folder(analysed, tmp_path, monkeypatch):
    """An exception while writing (here: a bug simulated in the markdown renderer) leaves
    the previous report and no temporary folder."""
    previous = analysed("mid2026", N)  # an experiment with its report, as the CLI left it
    root = tmp_path / "mid2026-experiment"
    shutil.copytree(previous.root, root, symlinks=True)
    before = _hash_tree(root / "analysis")

    import analyze_experiment.report.markdown as md

    def boom(doc):
        raise KeyboardInterrupt

    monkeypatch.setattr(md, "render_markdown", boom)
    # --no-cache: an unchanged experiment would otherwise keep its report without rendering
    result = CliRunner().invoke(analyze, [str(root), "--quiet", "--format", "md", "--no-cache"])
    assert result.exit_code != 0 and "Aborted!" in result.output  # click's word for the interrupt
    assert _hash_tree(root / "analysis") == before
    assert not [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert os.listdir(root / "analysis")
