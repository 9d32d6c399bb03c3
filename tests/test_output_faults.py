"""The output folder and the command line under faults (issues 11 and 12): a user's files in
``analysis/`` survive, a read-only experiment and a full disk end with one clear line and the
previous report intact, names with line breaks or bidi controls are shown escaped, and
``--baseline`` must name a run.

Experiments are built in the test from inspect-ai logs (``tests/fixtures/evals``) and run
through the real CLI.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment.cli import export
from analyze_experiment.output import MANIFEST_NAME, TMP_PREFIX, find_user_files, is_tool_name
from cli_helpers import invoke as cli

FAULTS = Path(__file__).parent / "fixtures" / "evals" / "faults"
RUNS = {"rank8_lr1e-5": "base12.eval", "rank16_lr1e-5": "contra_src.eval"}


def experiment(root: Path, runs: dict[str, str] = RUNS) -> Path:
    for run, fixture in runs.items():
        dst = root / run / "eval" / "logs" / fixture
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FAULTS / fixture, dst)
    return root


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- a user's files inside analysis/ ----------------------------------------------------------


@pytest.mark.slow
def test_files_the_user_put_in_the_report_folder_are_carried_over(tmp_path):
    root = experiment(tmp_path / "exp")
    out = root / "analysis"
    assert cli(root, "--format", "md").exit_code == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert "report.md" in manifest and "summary.json" in manifest and "tables/runs.csv" in manifest
    (out / "notes.md").write_text("my conclusions")
    (out / "plots" / "hand_made.png").write_bytes(b"\x89PNG my plot")
    (out / "mine").mkdir()
    (out / "mine" / "draft.tex").write_text("\\section{x}")

    res = cli(root, "--format", "md")
    assert res.exit_code == 0
    assert (out / "notes.md").read_text() == "my conclusions"
    assert (out / "plots" / "hand_made.png").read_bytes() == b"\x89PNG my plot"
    assert (out / "mine" / "draft.tex").read_text() == "\\section{x}"
    summary = json.loads((out / "summary.json").read_text())
    carried = {w["file"] for w in summary["warnings"] if "carried over" in w["message"]}
    assert carried == {"analysis/notes.md", "analysis/plots/hand_made.png", "analysis/mine/draft.tex"}
    manifest = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert "notes.md" not in manifest and "plots/hand_made.png" not in manifest
    # and again: still the user's, still there
    assert cli(root, "--format", "md").exit_code == 0
    assert (out / "notes.md").read_text() == "my conclusions"
    assert not [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]


@pytest.mark.slow
def test_an_edited_report_is_kept_beside_the_new_one(tmp_path):
    root = experiment(tmp_path / "exp")
    out = root / "analysis"
    assert cli(root, "--format", "md").exit_code == 0
    (out / "report.md").write_text("my edited report")
    res = cli(root, "--format", "md", "--strict")
    assert res.exit_code == 3  # an edited file is a warning, not silence
    kept = list(out.glob("report.edited-*.md"))
    assert len(kept) == 1 and kept[0].read_text() == "my edited report"
    assert (out / "report.md").read_text().startswith("# Experiment report")
    assert "report.md was edited since analyze-experiment wrote it" in res.stderr


def test_folder_without_manifest_counts_only_the_tools_names_as_its_own(tmp_path):
    prev = tmp_path / "analysis"
    (prev / "tables").mkdir(parents=True)
    for rel in ("report.md", "summary.json", "tables/runs.csv", ".analyze-experiment-output", "notes.txt"):
        (prev / rel).write_text("x")
    (prev / "tables" / "mine.xlsx").write_text("x")
    plan = find_user_files(prev)
    assert sorted(plan.foreign) == ["notes.txt", "tables/mine.xlsx"]
    assert is_tool_name("plots/loss.png") and not is_tool_name("plots/sub/loss.png") and not is_tool_name("x.md")


# --- read-only experiment, full disk ----------------------------------------------------------------


@pytest.mark.slow
def test_read_only_experiment_without_out_is_a_one_line_usage_error(tmp_path):
    root = experiment(tmp_path / "exp")
    before = tree(root)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}
    for p, m in modes.items():
        p.chmod(m & ~0o222)
    try:
        res = cli(root)
        assert res.exit_code == 2
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, res.stderr
        assert "read-only" in lines[0] and "--out DIR" in lines[0]
        assert tree(root) == before and not (root / "analysis").exists()
        assert cli(root, "--out", tmp_path / "elsewhere", "-q").exit_code == 0  # the suggestion works
    finally:
        for p, m in modes.items():
            p.chmod(m)


@pytest.mark.slow
@pytest.mark.parametrize(("where", "code"), [("parquet", errno.ENOSPC), ("markdown", errno.EDQUOT),
                                           ("plot", errno.ENOSPC)])
def test_disk_full_while_writing_keeps_the_previous_report(tmp_path, monkeypatch, where, code):
    """The OSError a full disk raises, injected at the real write calls."""
    root = experiment(tmp_path / "exp")
    out = root / "analysis"
    assert cli(root).exit_code == 0
    before = tree(out)

    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if where == "parquet":
        monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    elif where == "markdown":
        import analyze_experiment.write as api

        real = api.write_text

        def write_text(path, text):
            if path.name == "report.md":
                full()
            real(path, text)

        monkeypatch.setattr(api, "write_text", write_text)
    else:
        import matplotlib.figure

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    res = cli(root, "--no-cache")  # a rebuild, not the "nothing changed" shortcut
    assert res.exit_code == 4
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and os.strerror(code) in lines[0] and "previous report" in lines[0], res.stderr
    assert tree(out) == before
    assert not [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]


@pytest.mark.slow
def test_disk_full_on_a_real_small_filesystem(tmp_path):
    """The real ENOSPC path when a loop device can be mounted (root, Linux); else skipped."""
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mkfs.ext2"):
        pytest.skip("needs root and mkfs.ext2 to mount a small loop file system")
    img, mnt = tmp_path / "small.img", tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["dd", "if=/dev/zero", f"of={img}", "bs=1024", "count=600"], check=True, capture_output=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(img)], check=True, capture_output=True)
    if subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a loop device here")
    try:
        root = experiment(tmp_path / "exp")
        (mnt / "filler").write_bytes(b"\0" * 300_000)
        res = cli(root, "--out", mnt / "analysis")
        assert res.exit_code == 4, res.output
        assert "No space left on device" in res.stderr
        assert [p.name for p in mnt.iterdir() if p.name != "lost+found"] == ["filler"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# --- --baseline -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_unknown_baseline_is_a_usage_error_listing_the_runs(tmp_path):
    root = experiment(tmp_path / "exp")
    res = cli(root, "--baseline", "nosuchrun", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert "no run named 'nosuchrun'" in res.stderr
    assert "rank8_lr1e-5" in res.stderr and "rank16_lr1e-5" in res.stderr
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(export, [str(root), "--format", "csv", "--baseline", "nosuchrun"])
    assert res.exit_code == 2 and "no run named 'nosuchrun'" in res.stderr
    ok = cli(root, "--baseline", "rank8_lr1e-5", "--out", tmp_path / "out", "-q")
    assert ok.exit_code == 0
    comps = pd.read_csv(tmp_path / "out" / "tables" / "comparisons.csv")
    assert ((comps["a"] == "rank8_lr1e-5") | (comps["b"] == "rank8_lr1e-5")).all() and len(comps) == 1


# --- names that display as something else -----------------------------------------------------------


def test_newline_and_bidi_in_a_run_name_are_escaped_everywhere(tmp_path):
    evil = "rank8\u202eevil\nrow|x"
    root = experiment(tmp_path / "exp", {evil: "base12.eval", "rank16_lr1e-5": "contra_src.eval"})
    out = tmp_path / "out"
    res = cli(root, "--out", out)
    assert res.exit_code == 0
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (md, html, res.stdout, res.stderr):
        assert "\u202e" not in text and "evil\nrow" not in text
    assert "rank8\\\\u202eevil\\\\nrow\\|x" in md  # markdown source: shown as typed escapes
    assert "rank8\\u202eevil\\nrow|x" in html
    rows = [ln for ln in md.splitlines() if ln.startswith("|") and "evil" in ln]
    assert rows
    for block in re.findall(r"(?:^\|.*\n)+", md, flags=re.M):  # every table keeps its shape
        widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in block.rstrip("\n").split("\n")}
        assert len(widths) == 1, block


def test_a_folder_that_is_not_a_report_is_refused_naming_its_files(tmp_path):
    root = experiment(tmp_path / "exp")
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    res = cli(root, "--out", precious)
    assert res.exit_code == 2 and "thesis.tex" in res.stderr and "nothing was changed" in res.stderr
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]
