"""Finding runs and their files in the three real layouts (built in tmp_path)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, RunSpec
from analyze_experiment.ingest.design import read_design
from analyze_experiment.ingest.discover import Discovery, discover

FIXTURES = Path(__file__).parent / "fixtures" / "design"
GRID_RUNS = ["rank4_lr1e-5", "rank4_lr1e-4", "rank16_lr1e-5", "rank16_lr1e-4", "Llama-3.2-1B-Instruct_base"]
"""The design's runs in design order (the 2 × 2 grid and its base-model control), every layout."""

INSPECT_JSON = json.dumps({"version": 2, "status": "success", "eval": {"task": "capitalization"}})


def _touch(root: Path, *paths: str, text: str = "") -> None:
    for p in paths:
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")


def _run(root: Path, design_fixture: str | None = None, **kw: int) -> tuple[Discovery, Diagnostics]:
    diag = Diagnostics(root=root)
    design, _ = read_design(root, diag) if design_fixture is None else (Design(name="x"), False)
    diag = Diagnostics(root=root)  # only discovery's own records
    return discover(root, design, diag, **kw), diag


def _rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _summary(root: Path, found: Discovery) -> dict[str, tuple[str | None, list[str], list[str]]]:
    return {
        name: (
            loc.run_dir.relative_to(root).as_posix() if loc.run_dir else None,
            _rel(root, loc.training_dirs),
            _rel(root, loc.eval_files),
        )
        for name, loc in found.runs.items()
    }


# --- Oct 2025 --------------------------------------------------------------------------------


@pytest.fixture
def oct2025(tmp_path: Path) -> Path:
    """``experiment_summary.md``; <run>/slurm-*.out; <run>/eval/logs/*.eval (+ eval/slurm-*.out)."""
    root = tmp_path / "cap_8L_lora_lr_sweep_2025-11-05"
    root.mkdir()
    shutil.copy(FIXTURES / "filled_b75db17.md", root / "experiment_summary.md")
    for run, job in (("rank4_lr1e-5", 101), ("rank4_lr1e-4", 102), ("rank16_lr1e-5", 103)):
        _touch(
            root,
            f"{run}/slurm-{job}.out",
            f"{run}/finetune.yaml",
            f"{run}/eval/slurm-{job + 100}.out",
            f"{run}/eval/logs/2025-11-05T14-00-00+00-00_capitalization_{job}a.eval",
            f"{run}/eval/logs/2025-11-05T14-05-00+00-00_capitalization_{job}b.eval",
        )
    # rank16_lr1e-4 failed before training: scaffold only, no output
    _touch(root, "rank16_lr1e-4/finetune.yaml", "rank16_lr1e-4/finetune.slurm")
    # the base control: eval only
    _touch(root, "Llama-3.2-1B-Instruct_base/eval/logs/2025-11-05T15-00-00+00-00_capitalization_c.eval")
    # a run that is not in the design
    _touch(root, "rank8_lr1e-5/slurm-99.out")
    # weights next to a run: never listed as eval logs
    _touch(root, "rank4_lr1e-5/epoch_0/adapter_model.safetensors", "rank4_lr1e-5/eval/logs/model.bin")
    # our previous report and unrelated folders
    _touch(root, "analysis/summary.json", "analysis/report.md", "analysis/x/eval/logs/a.eval")
    _touch(root, "notes/todo.txt", ".ipynb_checkpoints/x/eval/logs/y.eval")
    return root


def test_oct2025(oct2025: Path) -> None:
    found, diag = _run(oct2025)
    root = oct2025
    assert found.layout == "oct2025"
    assert list(found.runs) == [*GRID_RUNS, "rank8_lr1e-5"]
    summary = _summary(root, found)
    assert summary["rank4_lr1e-5"] == (
        "rank4_lr1e-5",
        [],
        [
            "rank4_lr1e-5/eval/logs/2025-11-05T14-00-00+00-00_capitalization_101a.eval",
            "rank4_lr1e-5/eval/logs/2025-11-05T14-05-00+00-00_capitalization_101b.eval",
        ],
    )
    assert summary["rank16_lr1e-4"] == ("rank16_lr1e-4", [], [])
    assert summary["Llama-3.2-1B-Instruct_base"] == (
        "Llama-3.2-1B-Instruct_base",
        [],
        ["Llama-3.2-1B-Instruct_base/eval/logs/2025-11-05T15-00-00+00-00_capitalization_c.eval"],
    )
    assert summary["rank8_lr1e-5"] == ("rank8_lr1e-5", [], [])
    assert found.in_design_only == []
    assert found.on_disk_only == ["rank8_lr1e-5"]
    assert diag.warnings == []
    details = "\n".join(diag.actions[-1].details)
    assert "ignored folders: .ipynb_checkpoints, analysis" in details
    assert "folders without run output: notes" in details


def test_designed_run_without_directory(oct2025: Path) -> None:
    shutil.rmtree(oct2025 / "rank4_lr1e-4")
    (oct2025 / "rank4_lr1e-04").mkdir()
    _touch(oct2025, "rank4_lr1e-04/slurm-5.out")
    found, diag = _run(oct2025)
    assert found.in_design_only == ["rank4_lr1e-4"]
    assert found.runs["rank4_lr1e-4"].run_dir is None
    assert found.on_disk_only == ["rank4_lr1e-04", "rank8_lr1e-5"]
    assert [(w.file, w.severity) for w in diag.warnings] == [("experiment_summary.md", "info")]
    assert "'rank4_lr1e-04' on disk has a similar name" in diag.warnings[0].message


# --- early 2026 ------------------------------------------------------------------------------


@pytest.fixture
def early2026(tmp_path: Path) -> Path:
    """``experiment_summary.yaml`` + ``logs/``; training in ck-out-<run>; <run>/eval/logs."""
    root = tmp_path / "early"
    root.mkdir()
    shutil.copy(FIXTURES / "same_sweep.yaml", root / "experiment_summary.yaml")
    _touch(root, "logs/design-experiment.log", "logs/scaffold-experiment.log")
    for run in ("rank4_lr1e-5", "rank4_lr1e-4", "rank16_lr1e-5"):
        _touch(
            root,
            f"{run}/finetune.yaml",
            f"{run}/eval/logs/2026-01-10T10-00-00+00-00_capitalization_{run}.eval",
            f"ck-out-{run}/slurm-2001.out",
            f"ck-out-{run}/epoch_0/adapter_model.safetensors",
            f"ck-out-{run}/logs/log_1736500000.txt",
        )
    # inspect JSON logs next to .eval files; inspect's own listing and an unrelated JSON are not logs
    _touch(root, "rank4_lr1e-5/eval/logs/2026-01-10T11-00-00+00-00_capitalization_x.json", text=INSPECT_JSON)
    _touch(root, "rank4_lr1e-5/eval/logs/logs.json", text="{}")
    _touch(root, "rank4_lr1e-5/eval/logs/scores_export.json", text='{"rows": [1, 2]}')
    _touch(root, "rank4_lr1e-5/eval/config.json", text=INSPECT_JSON)  # not in a logs/ folder
    # rank16_lr1e-4 only ever wrote its checkpoint dir, kept in an outputs folder
    _touch(root, "outputs/ck-out-rank16_lr1e-4/slurm-2004.out")
    _touch(root, "Llama-3.2-1B-Instruct_base/eval/logs/2026-01-10T12-00-00+00-00_capitalization_base.eval")
    return root


def test_early2026(early2026: Path) -> None:
    found, diag = _run(early2026)
    root = early2026
    assert found.layout == "early2026"
    assert list(found.runs) == GRID_RUNS
    summary = _summary(root, found)
    assert summary["rank4_lr1e-5"] == (
        "rank4_lr1e-5",
        ["ck-out-rank4_lr1e-5"],
        [
            "rank4_lr1e-5/eval/logs/2026-01-10T10-00-00+00-00_capitalization_rank4_lr1e-5.eval",
            "rank4_lr1e-5/eval/logs/2026-01-10T11-00-00+00-00_capitalization_x.json",
        ],
    )
    assert summary["rank16_lr1e-4"] == (None, ["outputs/ck-out-rank16_lr1e-4"], [])
    assert summary["Llama-3.2-1B-Instruct_base"][1] == []
    assert (found.in_design_only, found.on_disk_only) == ([], [])
    assert [(w.file, w.severity) for w in diag.warnings] == [
        ("rank4_lr1e-5/eval/logs/scores_export.json", "info")
    ]


def test_early2026_without_design_document(early2026: Path) -> None:
    (early2026 / "experiment_summary.yaml").unlink()
    found, diag = _run(early2026)
    assert found.layout == "early2026"  # logs/ + ck-out-* + <run>/eval/logs
    assert list(found.runs) == sorted(
        ["rank4_lr1e-5", "rank4_lr1e-4", "rank16_lr1e-5", "rank16_lr1e-4", "Llama-3.2-1B-Instruct_base"]
    )
    assert (found.in_design_only, found.on_disk_only) == ([], [])
    assert any("the design lists no runs" in d for d in diag.actions[-1].details)


# --- mid 2026 --------------------------------------------------------------------------------


@pytest.fixture
def mid2026(tmp_path: Path) -> Path:
    """Per-cell layout: <run>/artifacts/…; <run>/eval/<task>_epoch<N>/logs; base: <run>/eval/<task>/logs."""
    root = tmp_path / "workflow_test_2026-03-16"
    root.mkdir()
    shutil.copy(FIXTURES / "workflow_test.yaml", root / "experiment_summary.yaml")
    _touch(root, "logs/run-experiment.log")
    for rank in (4, 8):
        run = f"Llama-3.2-1B-Instruct_rank{rank}"
        _touch(
            root,
            f"{run}/setup_finetune.yaml",
            f"{run}/artifacts/slurm-3{rank}.out",
            f"{run}/artifacts/gpu_metrics.csv",
            f"{run}/artifacts/epoch_0/slurm-3{rank}.out",
            f"{run}/artifacts/epoch_0/model-00001-of-00002.safetensors",
            f"{run}/eval/capitalization_epoch0/eval_config.yaml",
            f"{run}/eval/capitalization_epoch0/slurm-4{rank}.out",
            f"{run}/eval/capitalization_epoch0/logs/2026-03-16T12-00-00+00-00_capitalization-rank{rank}_a.eval",
            f"{run}/eval/capitalization_epoch1/logs/2026-03-16T13-00-00+00-00_capitalization-rank{rank}_b.eval",
        )
    _touch(
        root, "Llama-3.2-1B-Instruct_base/eval/capitalization/logs/2026-03-16T12-30-00+00-00_cap_base.eval"
    )
    return root


def test_mid2026(mid2026: Path) -> None:
    found, diag = _run(mid2026)
    root = mid2026
    assert found.layout == "mid2026"
    assert list(found.runs) == [
        "Llama-3.2-1B-Instruct_rank4",
        "Llama-3.2-1B-Instruct_rank8",
        "Llama-3.2-1B-Instruct_base",
    ]
    summary = _summary(root, found)
    assert summary["Llama-3.2-1B-Instruct_rank8"] == (
        "Llama-3.2-1B-Instruct_rank8",
        [],
        [
            "Llama-3.2-1B-Instruct_rank8/eval/capitalization_epoch0/logs/"
            "2026-03-16T12-00-00+00-00_capitalization-rank8_a.eval",
            "Llama-3.2-1B-Instruct_rank8/eval/capitalization_epoch1/logs/"
            "2026-03-16T13-00-00+00-00_capitalization-rank8_b.eval",
        ],
    )
    assert summary["Llama-3.2-1B-Instruct_base"][2] == [
        "Llama-3.2-1B-Instruct_base/eval/capitalization/logs/2026-03-16T12-30-00+00-00_cap_base.eval"
    ]
    assert found.in_design_only == []
    assert found.on_disk_only == ["Llama-3.2-1B-Instruct_base"]  # the fixture design has no control
    assert diag.warnings == []


def test_mid2026_detected_from_cells_alone(tmp_path: Path) -> None:
    _touch(tmp_path, "r1/eval/cap_epoch0/logs/a.eval")
    found, _ = _run(tmp_path)
    assert found.layout == "mid2026"
    assert _summary(tmp_path, found) == {"r1": ("r1", [], ["r1/eval/cap_epoch0/logs/a.eval"])}


def test_unknown_layout_without_design(tmp_path: Path) -> None:
    _touch(
        tmp_path, "rank8/slurm-1.out", "rank8/eval/logs/a.eval", "rank8/eval/logs/b.eval", "misc/readme.txt"
    )
    found, _ = _run(tmp_path)
    assert found.layout == "unknown"
    assert _summary(tmp_path, found) == {
        "rank8": ("rank8", [], ["rank8/eval/logs/a.eval", "rank8/eval/logs/b.eval"])
    }


# --- hostile and odd trees -------------------------------------------------------------------


def test_symlinks_that_leave_or_loop_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    _touch(outside, "run_x/eval/logs/secret.eval")
    root = tmp_path / "exp"
    _touch(root, "rank4/slurm-1.out", "rank4/eval/logs/a.eval")
    os.symlink(outside / "run_x", root / "run_x")
    os.symlink(root / "rank4" / "eval", root / "rank4" / "eval" / "logs" / "loop")
    os.symlink(outside / "run_x/eval/logs/secret.eval", root / "rank4" / "eval" / "logs" / "linked.eval")
    os.symlink(root / "missing", root / "dangling")
    os.symlink(root / "rank4", root / "rank4_alias")
    found, diag = _run(root)
    assert _summary(root, found) == {"rank4": ("rank4", [], ["rank4/eval/logs/a.eval"])}
    assert sorted(w.message for w in diag.warnings) == [
        "'rank4/eval/logs/loop' leads to a directory already read (symlink loop or alias); not read again",
        "'rank4_alias' is a symlink to a directory already read; not read again",
        "the symlink 'dangling' is broken; not followed",
        "the symlink 'rank4/eval/logs/linked.eval' points outside the experiment directory; not followed",
        "the symlink 'run_x' points outside the experiment directory; not followed",
    ]


def test_design_names_cannot_reach_outside(tmp_path: Path) -> None:
    _touch(tmp_path, "secret/eval/logs/s.eval")
    root = tmp_path / "exp"
    _touch(root, "a/slurm-1.out")
    design = Design(name="exp", source="experiment_summary.yaml", runs=[RunSpec("../secret"), RunSpec("a")])
    diag = Diagnostics(root=root)
    found = discover(root, design, diag)
    assert _summary(root, found) == {"../secret": (None, [], []), "a": ("a", [], [])}
    assert found.in_design_only == ["../secret"]


def test_ten_thousand_files_and_the_file_budget(tmp_path: Path) -> None:
    logs = tmp_path / "big" / "eval" / "logs"
    logs.mkdir(parents=True)
    for i in range(10_000):
        (logs / f"{i:05d}.eval").touch()
    ckpt = tmp_path / "big" / "epoch_0"
    ckpt.mkdir()
    for i in range(2_000):  # checkpoint shards: never listed
        (ckpt / f"shard_{i}.pt").touch()
    found, diag = _run(tmp_path)
    assert len(found.runs["big"].eval_files) == 10_000
    assert found.runs["big"].eval_files[0].name == "00000.eval"
    assert diag.warnings == []

    found, diag = _run(tmp_path, max_files=500)
    assert len(found.runs["big"].eval_files) < 500
    assert len(diag.warnings) == 1
    assert diag.warnings[0].message.startswith("stopped looking for files after 500 directory entries")


def test_stray_slurm_files_at_the_root_are_reported(tmp_path: Path) -> None:
    _touch(tmp_path, "slurm-77.out", "r/slurm-1.out")
    found, diag = _run(tmp_path)
    assert list(found.runs) == ["r"]
    assert [(w.file, w.severity) for w in diag.warnings] == [(None, "info")]
    assert "slurm-77.out" in diag.warnings[0].message


def test_previous_report_elsewhere_is_not_a_run(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "report_v1/summary.json",
        "report_v1/report.md",
        "report_v1/eval/logs/x.eval",
        "r/slurm-1.out",
    )
    found, _ = _run(tmp_path)
    assert list(found.runs) == ["r"]


def test_unlistable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "r/slurm-1.out", "r/eval/logs/a.eval", "s/slurm-2.out", "s/eval/logs/b.eval")
    real_scandir = os.scandir
    blocked = tmp_path / "r" / "eval" / "logs"

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found, diag = _run(tmp_path)
    assert found.runs["r"].eval_files == []
    assert _rel(tmp_path, found.runs["s"].eval_files) == ["s/eval/logs/b.eval"]
    assert [(w.file, w.severity, w.message) for w in diag.warnings] == [
        ("r/eval/logs", "error", "the directory could not be listed (Permission denied); skipped")
    ]
