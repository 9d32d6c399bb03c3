"""Atomic replacement of the output folder (output.py)."""

from __future__ import annotations

import os

import pytest

from analyze_experiment.output import OLD_PREFIX, TMP_PREFIX, atomic_dir, clean_stale


def _tree(path):
    return {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def test_new_folder_appears_complete(tmp_path):
    target = tmp_path / "analysis"
    with atomic_dir(target) as tmp:
        (tmp / "report.md").write_text("new")
        assert not target.exists()  # nothing visible while it is being written
    assert _tree(target) == {"report.md": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["analysis"]


def test_replaces_previous_report_in_one_step(tmp_path):
    target = tmp_path / "analysis"
    target.mkdir()
    (target / "report.md").write_text("old")
    (target / "stale.csv").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "report.md").write_text("new")
        assert _tree(target) == {"report.md": "old", "stale.csv": "x"}
    assert _tree(target) == {"report.md": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis"]


def test_failure_leaves_previous_report_intact(tmp_path):
    target = tmp_path / "analysis"
    target.mkdir()
    (target / "report.md").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "report.md").write_text("half")
        raise RuntimeError("killed")
    assert _tree(target) == {"report.md": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis"]


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path):
    # pid 999999999 cannot exist: a folder left by a run that was killed
    dead = tmp_path / f"{TMP_PREFIX}analysis-999999999-abcd1234"
    dead.mkdir()
    (dead / "report.md").write_text("half")
    old = tmp_path / f"{OLD_PREFIX}analysis-999999999-abcd1234"
    old.mkdir()
    alive = tmp_path / f"{TMP_PREFIX}analysis-{os.getppid()}-abcd1234"
    alive.mkdir()
    removed = clean_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead.name, old.name])
    assert alive.exists()


def test_refuses_to_replace_a_file(tmp_path):
    target = tmp_path / "analysis"
    target.write_text("a user's file")
    with pytest.raises(FileExistsError), atomic_dir(target):
        pass
    assert target.read_text() == "a user's file"
