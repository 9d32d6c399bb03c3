"""Discovery, the training-file search and ``--watch`` skip the same things (one walker, one set of rules).

Each case puts the same thing beside a real run's files three times — at the top of the
experiment, inside the run directory and inside its ``eval/logs`` — each copy holding a file
that would otherwise be read (a SLURM output, an eval log). None of the three readers may see
any of it, while the real files stay found by all three.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design
from analyze_experiment.ingest.discover import discover
from analyze_experiment.ingest.training import find_training_files
from analyze_experiment.ingest.watch import snapshot

# (folder to create, files put in it): every one of these must be invisible to all three readers
SKIPPED = {
    "hidden folder": (".cache", ["slurm-9.out", "x.eval"]),
    "python cache": ("__pycache__", ["slurm-9.out", "x.eval"]),
    "virtualenv": ("venv", ["slurm-9.out", "x.eval"]),
    "git": (".git", ["slurm-9.out", "x.eval"]),
    "wandb": ("wandb", ["slurm-9.out", "x.eval"]),
    "tensorboard": ("tensorboard", ["slurm-9.out", "x.eval"]),
    "our report": ("old_report", ["summary.json", "report.md", "slurm-9.out", "x.eval"]),
    "weights and hidden files": ("", ["model.safetensors", "adapter.bin", "opt.npy", ".slurm-9.out",
                                      ".x.eval", "analyze-experiment.log"]),
}


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("case", list(SKIPPED))
def test_discovery_training_search_and_watch_skip_the_same(tmp_path: Path, case: str) -> None:
    folder, names = SKIPPED[case]
    root = tmp_path / "exp"
    run = root / "rank8"
    real = {run / "slurm-1.out", run / "eval" / "logs" / "a.eval"}
    for p in real:
        _touch(p)
    planted: set[Path] = set()
    for where in (root, run, run / "eval" / "logs"):
        for name in names:
            planted.add(where / folder / name)
            _touch(where / folder / name)

    diag = Diagnostics(root=root)
    found = discover(root, Design(name="x"), diag)
    assert list(found.runs) == ["rank8"], "nothing skipped is taken for a run"
    assert found.runs["rank8"].eval_files == [run / "eval" / "logs" / "a.eval"]

    files = find_training_files(run, experiment=root)
    assert files.slurm_outputs == [run / "slurm-1.out"]
    assert files.problems == []

    watched = {Path(p) for p in snapshot(root)}
    assert watched == real
    assert not watched & planted


def test_watch_leaves_out_the_folders_it_is_told_to(tmp_path: Path) -> None:
    _touch(tmp_path / "run" / "slurm-1.out")
    _touch(tmp_path / "out" / "figures" / "loss.png")
    assert set(snapshot(tmp_path, exclude=(tmp_path / "out",))) == {str(tmp_path / "run" / "slurm-1.out")}
    assert str(tmp_path / "out" / "figures" / "loss.png") in snapshot(tmp_path)


def test_watch_follows_a_symlink_inside_the_experiment_but_not_out_of_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "exp", tmp_path / "elsewhere"
    _touch(root / "shared" / "slurm-1.out")
    _touch(outside / "slurm-2.out")
    (root / "run").mkdir()
    (root / "run" / "slurm-1.out").symlink_to(root / "shared" / "slurm-1.out")
    (root / "run" / "slurm-2.out").symlink_to(outside / "slurm-2.out")
    assert sorted(Path(p).relative_to(root).as_posix() for p in snapshot(root)) == [
        "run/slurm-1.out", "shared/slurm-1.out"]
