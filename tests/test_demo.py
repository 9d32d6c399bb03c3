"""The bundled example experiment: files where each layout puts them, logs inspect-ai reads
back with the planted run/epoch information, and the planted truth in the per-sample scores.

These tests use only inspect-ai, yaml and markdown-it as oracles, never the package's own
loader (the example exists to test that loader).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from inspect_ai.log import EvalLog, read_eval_log
from markdown_it import MarkdownIt
from scipy import stats

from analyze_experiment import demo
from analyze_experiment.demo.plan import MODEL, RUNS, TASK, DemoRun, planted_accuracy
from analyze_experiment.demo.training import GPU_METRICS_HEADER, read_capture

FT_RUNS = [r for r in RUNS if not r.is_control]
CONTROL = next(r for r in RUNS if r.is_control)
BY_NAME = {r.name: r for r in RUNS}


# The demo as shipped (200 samples, seed 0) and two smaller examples. The two share their
# words (same samples and seed), so inspect-ai's template evaluation runs once for both.
SPECS = {"mid2026": (200, 0), "early2026": (40, 1), "oct2025": (40, 1)}


class _Lazy(dict):
    """Builds (or reads) a layout on first use: an xdist worker pays only for what it tests."""

    def __init__(self, make):
        super().__init__()
        self._make = make

    def __missing__(self, layout):
        self[layout] = value = self._make(layout)
        return value


@pytest.fixture(scope="module")
def built(example) -> dict[str, tuple[Path, int]]:
    """Examples built once per test session (conftest's ``example``), only read here."""

    def make(layout: str) -> tuple[Path, int]:
        n, seed = SPECS[layout]
        return example(layout, n, seed), n

    return _Lazy(make)


@pytest.fixture(scope="module")
def logs(built: dict[str, tuple[Path, int]]) -> dict[str, dict[Path, EvalLog]]:
    def read(layout: str) -> dict[Path, EvalLog]:
        root, _ = built[layout]
        return {p: read_eval_log(str(p)) for p in sorted(root.rglob("*.eval"))}

    return _Lazy(read)


def _epoch_of(layout: str, path: Path, log: EvalLog) -> int | None:
    """The epoch as the layout plants it (metadata in 2026, model_path in Oct 2025)."""
    if layout == "oct2025":
        m = re.search(r"/epoch_(\d+)$", log.eval.model_args["model_path"])
        return int(m[1]) if m else None
    return (log.eval.metadata or {}).get("epoch")


def _run_of(root: Path, path: Path) -> DemoRun:
    return BY_NAME[path.relative_to(root).parts[0]]


def _match(log: EvalLog) -> np.ndarray:
    return np.array([s.scores["match"].value == "C" for s in log.samples or []])


# ---------------------------------------------------------------- layouts on disk


def test_mid2026_puts_every_file_where_the_layout_says(built):
    root, _ = built["mid2026"]
    assert (root / "experiment_summary.yaml").is_file()
    assert not (root / "experiment_summary.md").exists()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(r.name for r in RUNS)
    for run in FT_RUNS:
        art = root / run.name / "artifacts"
        slurm = art / f"slurm-{run.job_id}.out"
        named = re.search(rb"Writing logs to (\S+)", slurm.read_bytes())[1].decode()
        assert sorted(p.name for p in art.iterdir()) == sorted(
            ["gpu_metrics.csv", slurm.name, named.rsplit("/", 1)[-1]]
        )
        cells = sorted(p.name for p in (root / run.name / "eval").iterdir())
        assert cells == ["capitalization_epoch0", "capitalization_epoch1"]
        for cell in cells:
            assert len(list((root / run.name / "eval" / cell / "logs").glob("*.eval"))) == 1
    base = root / CONTROL.name
    assert sorted(p.name for p in base.iterdir()) == ["eval"]
    assert [p.name for p in (base / "eval").iterdir()] == ["capitalization"]
    assert len(list((base / "eval" / "capitalization" / "logs").glob("*.eval"))) == 1


def test_early2026_has_run_level_slurm_files_flat_eval_logs_and_skill_logs(built):
    root, _ = built["early2026"]
    assert (root / "experiment_summary.yaml").is_file()
    skill = sorted((root / "logs").iterdir())
    assert [p.name for p in skill] == ["design-experiment.log", "scaffold-experiment.log"]
    for p in skill:
        first = p.read_text().splitlines()[0]
        assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] [A-Z_]+: .+", first)
    for run in RUNS:
        files = sorted(p.name for p in (root / run.name).iterdir() if p.is_file())
        assert files == ([] if run.is_control else [f"slurm-{run.job_id}.out"])
        assert not (root / run.name / "artifacts").exists()
        n_logs = len(list((root / run.name / "eval" / "logs").glob("*.eval")))
        assert n_logs == len(run.epochs)


def test_oct2025_has_a_markdown_design_with_the_three_tables(built):
    root, _ = built["oct2025"]
    assert not (root / "experiment_summary.yaml").exists()
    tokens = MarkdownIt("commonmark").enable("table").parse((root / "experiment_summary.md").read_text())
    tables: list[list[list[str]]] = []
    for prev, t in itertools.pairwise(tokens):
        if t.type == "table_open":
            tables.append([])
        elif t.type == "tr_open":
            tables[-1].append([])
        elif t.type == "inline" and prev.type in ("th_open", "td_open"):
            tables[-1][-1].append(t.content)
    by_header = {tuple(tab[0]): tab[1:] for tab in tables}
    assert by_header[("Factor", "Levels")] == [["LoRA Rank", "4, 16"], ["Learning Rate", "1e-5, 1e-4"]]
    runs = by_header[("Run Name", "Model", "LoRA Rank", "Learning Rate", "Type", "Est. Time")]
    assert [row[0] for row in runs] == [r.name for r in RUNS]
    assert runs[-1] == [CONTROL.name, MODEL, "-", "-", "Control", "N/A"]
    assert runs[0][2:5] == ["4", "1e-5", "Fine-tuned"]
    matrix = by_header[("Run Name", TASK, "Notes")]
    assert matrix[0][1] == "✓ epoch 0,1" and matrix[-1][1] == "✓"
    for run in RUNS:
        assert (root / run.name / f"slurm-{run.job_id}.out").is_file() != run.is_control
        assert len(list((root / run.name / "eval" / "logs").glob("*.eval"))) == len(run.epochs)


@pytest.mark.parametrize("layout", ["mid2026", "early2026"])
def test_yaml_design_lists_the_runs_on_disk_with_their_parameters(built, layout):
    root, n = built[layout]
    doc = yaml.safe_load((root / "experiment_summary.yaml").read_text())
    assert doc["variables"] == {"lora_rank": [4, 16], "lr": ["1e-5", "1e-4"]}  # YAML 1.1: strings
    assert doc["tools"] == {"preparation": "torchtune", "evaluation": "inspect-ai"}
    assert doc["data"]["training"]["splits"]["test"] == n
    assert [r["name"] for r in doc["runs"]] == [r.name for r in RUNS]
    for spec, run in zip(doc["runs"], RUNS, strict=True):
        if run.is_control:
            assert spec["type"] == "control" and spec["parameters"] == {}
        else:
            assert spec["type"] == "fine-tuned"
            assert spec["parameters"] == {"lora_rank": run.lora_rank, "lr": run.lr_text}
    matrix = {m["run"]: m for m in doc["evaluation"]["matrix"]}
    assert matrix[CONTROL.name]["epochs"] is None
    assert all(matrix[r.name]["epochs"] == [0, 1] for r in FT_RUNS)
    assert {m["vis_label"] for m in matrix.values()} == {r.vis_label for r in RUNS}
    assert [s["name"] for s in doc["evaluation"]["scorers"]] == ["match", "includes"]


# ---------------------------------------------------------------- training output


def test_captures_are_byte_for_byte_except_rank_lr_and_output_paths(built):
    root, _ = built["mid2026"]
    for run in FT_RUNS:
        original, disklogger = read_capture(run.capture)
        slurm = (root / run.name / "artifacts" / f"slurm-{run.job_id}.out").read_bytes()
        old_out = re.search(rb"^output_dir: (\S+)$", original, re.M)[1]
        new_out = re.search(rb"^output_dir: (\S+)$", slurm, re.M)[1]
        assert new_out.endswith(f"/ck-out-{run.name}".encode())
        a, b = original.split(b"\n"), slurm.split(b"\n")
        assert len(a) == len(b)
        changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        assert (b"  lora_rank: 4", f"  lora_rank: {run.lora_rank}".encode()) in changed or run.lora_rank == 4
        lr_text = {1e-5: b"1.0e-05", 1e-4: b"0.0001"}[run.lr]
        assert (b"  lr: 0.003", b"  lr: " + lr_text) in changed
        for x, y in changed:
            if x in (b"  lora_rank: 4", b"  lr: 0.003"):
                continue
            assert x.replace(old_out, new_out) == y  # only the output directory moved
        named = re.search(rb"Writing logs to (\S+)", slurm)[1].decode().rsplit("/", 1)[-1]
        written = (root / run.name / "artifacts" / named).read_bytes()
        # the DiskLogger file differs only in its lr values, scaled from the captured peak 0.003
        assert re.sub(rb"lr:\S+", b"lr:", written) == re.sub(rb"lr:\S+", b"lr:", disklogger)
        lrs = [float(v) for v in re.findall(rb"lr:(\S+)", written)]
        old = [float(v) for v in re.findall(rb"lr:(\S+)", disklogger)]
        assert lrs == pytest.approx([v * run.lr / 0.003 for v in old], rel=1e-11)
        assert max(lrs) == pytest.approx(run.lr, rel=1e-11)


def test_training_values_are_the_captured_ones(built):
    root, _ = built["mid2026"]
    run = BY_NAME[f"{MODEL}_rank4_lr1e-5"]  # torchtune 0.6.1, completed under sbatch
    art = root / run.name / "artifacts"
    slurm = (art / "slurm-1.out").read_text()
    assert "2|16|Loss: 4.952439785003662: 100%" in slurm
    assert "Saving final epoch checkpoint." in slurm
    disk = (art / "log_1795713941.txt").read_text().splitlines()
    assert len(disk) == 16
    assert disk[0] == "Step 1 | loss:4.921807289123535 lr:5e-06 tokens_per_second_per_gpu:107.27200317382812 "
    assert disk[-1].startswith("Step 16 | loss:4.952439785003662 ")


def test_gpu_metrics_csv_is_nvidia_smi_shaped(built):
    root, _ = built["mid2026"]
    for run in FT_RUNS:
        path = root / run.name / "artifacts" / "gpu_metrics.csv"
        assert path.read_text().splitlines()[0] == GPU_METRICS_HEADER
        df = pd.read_csv(path, skipinitialspace=True)
        assert list(df.columns) == [c.strip() for c in GPU_METRICS_HEADER.split(",")]
        ts = pd.to_datetime(df["timestamp"], format="%Y/%m/%d %H:%M:%S.%f", utc=True)
        assert ts.is_monotonic_increasing and len(df) == 24
        started = int(next(art.name for art in path.parent.glob("log_*.txt"))[4:-4])
        assert ts.iloc[0].timestamp() == pytest.approx(started - 4, abs=1)
        util = df["utilization.gpu [%]"].str.removesuffix(" %").astype(int)
        mem = df["memory.used [MiB]"].str.removesuffix(" MiB").astype(int)
        assert util.between(0, 100).all() and util.max() >= 85
        assert (df["memory.total [MiB]"] == "81920 MiB").all() and mem.max() < 81920
        assert df["power.draw [W]"].str.fullmatch(r"\d+\.\d\d W").all()


# ---------------------------------------------------------------- evaluation logs


@pytest.mark.parametrize("layout", ["mid2026", "early2026", "oct2025"])
def test_every_log_reads_back_with_its_run_and_epoch(built, logs, layout):
    root, n = built[layout]
    seen = set()
    for path, log in logs[layout].items():
        run = _run_of(root, path)
        epoch = _epoch_of(layout, path, log)
        seen.add((run.name, epoch))
        ev = log.eval
        assert log.status == "success" and len(log.samples) == n == ev.dataset.samples
        if layout == "oct2025":
            assert ev.model == "hf/local" and ev.task == TASK
            assert not ev.metadata and "vis_label" not in ev.task_args
            if epoch is None:
                assert ev.model_args["model_path"].endswith(f"/pretrained-llms/{MODEL}")
                assert "epoch" not in path.name
            else:
                assert f"/ck-out-{run.name}/epoch_{epoch}" in ev.model_args["model_path"]
                assert f"_{TASK}_epoch{epoch}_" in path.name
        else:
            key = "is_finetuned" if layout == "mid2026" else "finetuned"
            assert ev.metadata == ({key: False} if run.is_control else {"epoch": epoch, key: True})
            assert ev.task_args["vis_label"] == run.vis_label
            assert ev.task == f"{TASK}_{run.vis_label}"
            assert ev.model == (f"hf/{run.name}" if run.is_control else f"hf/{run.name}_epoch_{epoch}")
            if layout == "mid2026":
                cell = TASK if run.is_control else f"{TASK}_epoch{epoch}"
                assert path.parent.parent.name == cell
    assert seen == {(r.name, e) for r in RUNS for e in r.epochs}


@pytest.mark.parametrize("layout", ["mid2026", "early2026", "oct2025"])
def test_planted_accuracies_are_the_per_sample_scores(built, logs, layout):
    root, n = built[layout]
    words = None
    for path, log in logs[layout].items():
        run, epoch = _run_of(root, path), _epoch_of(layout, path, log)
        samples = log.samples
        assert [s.id for s in samples] == list(range(1, n + 1))
        targets = [s.target for s in samples]
        words = words or targets
        assert targets == words  # one dataset, same order, in every log
        for s in samples:
            assert s.metadata == {"word_length": len(s.target)}
            # the scorer agrees with the text the model produced
            assert (s.scores["match"].value == "C") == (s.output.completion == s.target)
            assert (s.scores["includes"].value == "C") == (s.target in s.output.completion)
        m = _match(log)
        assert m.mean() == planted_accuracy(run, epoch, n)
        metrics = {sc.name: sc.metrics for sc in log.results.scores}
        assert metrics["match"]["accuracy"].value == pytest.approx(m.mean(), abs=1e-12)
        assert metrics["match"]["stderr"].value == pytest.approx(stats.sem(m.astype(float)), rel=1e-9)
        assert metrics["includes"]["accuracy"].value >= metrics["match"]["accuracy"].value


def test_default_demo_truth_as_documented(built, logs):
    """The numbers docs/demo.md states for the shipped demo (200 samples, seed 0)."""
    root, _ = built["mid2026"]
    match, incl = {}, {}
    for path, log in logs["mid2026"].items():
        key = (_run_of(root, path).vis_label, _epoch_of("mid2026", path, log))
        match[key] = _match(log)
        incl[key] = next(sc for sc in log.results.scores if sc.name == "includes").metrics["accuracy"].value
    acc = {k: v.mean() for k, v in match.items()}
    assert acc == {
        ("rank4_lr1e-5", 0): 0.555, ("rank4_lr1e-5", 1): 0.600,
        ("rank4_lr1e-4", 0): 0.810, ("rank4_lr1e-4", 1): 0.850,
        ("rank16_lr1e-5", 0): 0.545, ("rank16_lr1e-5", 1): 0.610,
        ("rank16_lr1e-4", 0): 0.820, ("rank16_lr1e-4", 1): 0.845,
        ("base", None): 0.210,
    }
    assert incl == pytest.approx({
        ("rank4_lr1e-5", 0): 0.585, ("rank4_lr1e-5", 1): 0.635,
        ("rank4_lr1e-4", 0): 0.830, ("rank4_lr1e-4", 1): 0.860,
        ("rank16_lr1e-5", 0): 0.600, ("rank16_lr1e-5", 1): 0.665,
        ("rank16_lr1e-4", 0): 0.855, ("rank16_lr1e-4", 1): 0.850,
        ("base", None): 0.535,
    })

    def discordant(a, b):
        x, y = match[a], match[b]
        return int((x & ~y).sum()), int((~x & y).sum())

    # lr: clear (exact McNemar p < 1e-9); rank: nothing (p > 0.8); epoch: small, mostly not significant
    for rank in (4, 16):
        for e in (0, 1):
            b, c = discordant((f"rank{rank}_lr1e-4", e), (f"rank{rank}_lr1e-5", e))
            assert stats.binomtest(b, b + c).pvalue < 1e-9 and b > 5 * c
    for lr in ("1e-5", "1e-4"):
        for e in (0, 1):
            b, c = discordant((f"rank16_lr{lr}", e), (f"rank4_lr{lr}", e))
            assert min(b, c) >= 15 and stats.binomtest(b, b + c).pvalue > 0.8
    assert discordant(("rank4_lr1e-5", 1), ("rank4_lr1e-5", 0)) == (18, 9)
    assert discordant(("rank16_lr1e-5", 1), ("rank16_lr1e-5", 0)) == (22, 9)
    assert discordant(("rank4_lr1e-4", 1), ("base", None)) == (128, 0)


def test_word_length_is_a_real_cluster_key(logs):
    """Longer words are harder for every run (the planted difficulty grows with length)."""
    for log in logs["mid2026"].values():
        lengths = np.array([s.metadata["word_length"] for s in log.samples])
        m = _match(log)
        assert m[lengths <= 5].mean() > m[lengths >= 8].mean()
        assert set(lengths) == set(range(4, 10))


# ---------------------------------------------------------------- entry points


def test_main_builds_replaces_a_previous_example_and_refuses_anything_else(tmp_path, capsys):
    dest = tmp_path / "demo-experiment"
    assert demo.main([str(dest), "--layout", "oct2025", "--samples", "40", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert str(dest.resolve()) in out and f"analyze-experiment {dest}" in out
    assert demo.is_example(dest) and len(list(dest.rglob("*.eval"))) == 9
    probe = tmp_path / "probe"
    probe.mkdir()
    assert dest.stat().st_mode == probe.stat().st_mode  # usual permissions, not a private temp dir
    probe.rmdir()
    (dest / "analysis").mkdir()  # what a previous analyze-experiment run leaves
    (dest / "analysis" / "my-notes.md").write_text("keep me")
    (dest / "README.txt").write_text("mine")
    assert demo.main([str(dest), "--layout", "early2026", "--samples", "40", "--seed", "1"]) == 0
    # the builder's files are replaced; nothing it did not write is deleted
    assert (dest / "analysis" / "my-notes.md").read_text() == "keep me"
    assert (dest / "README.txt").read_text() == "mine"
    assert not (dest / "experiment_summary.md").exists()
    assert not [d for d in dest.rglob("*") if d.is_dir() and not any(d.iterdir())]  # no stale empty folders
    assert '"layout": "early2026"' in (dest / demo.MARKER).read_text()
    assert (dest / "experiment_summary.yaml").is_file() and not (dest / "experiment_summary.md").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert demo.main([str(foreign)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-experiment", "mine"]  # no leftovers


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"layout": "2024"}, ValueError), ({"n_samples": 5}, ValueError)],
)
def test_build_rejects_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error):
        demo.build_example(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_build_refuses_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(FileExistsError):
        demo.build_example(target)
    assert target.read_text() == "x"
