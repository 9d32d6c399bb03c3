"""W&B export: offline runs written with the real wandb package, read back with wandb's own reader.

The experiment is the bundled example with one run's training output replaced by the real
torchtune capture that validates during training, so the history carries ``val/loss``.
Every value read back from the ``.wandb`` file is compared with the tidy tables it came from.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from wandb.proto import wandb_internal_pb2 as pb
from wandb.sdk.internal import datastore

from analyze_experiment import analyze, load
from analyze_experiment.experiment import Options
from analyze_experiment.export_wandb import (
    WandbExportError,
    export_wandb,
    history_rows,
    project_name,
    validation_summary,
)
from analyze_experiment.sources.torchtune import read_disk_log

FIX = Path(__file__).parent / "fixtures" / "torchtune"
VAL_RUN = "Llama-3.2-1B-Instruct_rank4_lr1e-4"
VAL_OUT = "local_v0.6.1_lora_cpu_slurm_val.out"
VAL_DISK = "local_v0.6.1_lora_cpu_slurm_val.disklogger.txt"
VAL_DISK_NAME = "log_1796112526.txt"  # the name the capture's `Writing logs to` line gives
CONTROL = "Llama-3.2-1B-Instruct_base"
NAN_RUN = "Llama-3.2-1B-Instruct_rank16_lr1e-5"  # trained as the real capture whose loss turns nan
NAN_OUT, NAN_DISK = "local_v0.6.1_lora_cpu_slurm_nan.out", "local_v0.6.1_lora_cpu_slurm_nan.disklogger.txt"


# --- reading an offline run back with wandb's own reader ------------------------------------


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for k in path[:-1]:
        target = target.setdefault(k, {})
    target[path[-1]] = value


def _path(item: Any) -> list[str]:
    return list(item.nested_key) or [item.key]


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """Records of ``run-<id>.wandb`` as plain data: run fields, config, history by step, summary."""
    (wandb_file,) = run_dir.glob("run-*.wandb")
    ds = datastore.DataStore()
    ds.open_for_scan(str(wandb_file))
    out: dict[str, Any] = {"config": {}, "history": {}, "summary": {}, "run": None, "files": run_dir / "files"}
    while (data := ds.scan_data()) is not None:
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["run"] = rec.run
            for item in rec.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            row = out["history"].setdefault(rec.history.step.num, {})
            for item in rec.history.item:
                _put(row, _path(item), json.loads(item.value_json))
        elif kind == "summary":
            for item in rec.summary.update:
                _put(out["summary"], _path(item), json.loads(item.value_json))
    out["config"].pop("_wandb", None)
    return out


def read_table(run: dict[str, Any], ref: dict[str, Any]) -> pd.DataFrame:
    assert ref["_type"] == "table-file"
    data = json.loads((run["files"] / ref["path"]).read_text())
    return pd.DataFrame(data["data"], columns=data["columns"])


def _by_name(run_dirs: list[Path]) -> dict[str, dict[str, Any]]:
    runs = [read_offline_run(d) for d in run_dirs]
    return {r["run"].display_name: r for r in runs}


# --- fixtures -------------------------------------------------------------------------------


def _swap_training(root: Path, run: str, out: str, disk: str, job: int, disk_name: str) -> None:
    art = root / run / "artifacts"
    for p in [*art.glob("slurm-*.out"), *art.glob("log_*.txt")]:
        p.unlink()
    shutil.copy(FIX / out, art / f"slurm-{job}.out")
    shutil.copy(FIX / disk, art / disk_name)


def _with_validation(src: Path, dest: Path) -> Path:
    """A copy of the example whose VAL_RUN trained with validation and NAN_RUN diverged (real captures)."""
    shutil.copytree(src, dest, symlinks=True)
    _swap_training(dest, VAL_RUN, VAL_OUT, VAL_DISK, 3, VAL_DISK_NAME)
    _swap_training(dest, NAN_RUN, NAN_OUT, NAN_DISK, 4, "log_1795714051.txt")
    return dest


@pytest.fixture(scope="module")
def exported(example, tmp_path_factory):
    root = _with_validation(example("mid2026"), tmp_path_factory.mktemp("wandb") / "exp")
    exp = load(root)
    an = analyze(exp, Options())
    dirs = export_wandb(exp, an, tmp_path_factory.mktemp("wandb-out"), plots=False)
    return exp, an, dirs


# --- tests ----------------------------------------------------------------------------------


def test_one_offline_run_per_run_with_parameters_as_config(exported):
    exp, _an, dirs = exported
    runs = _by_name(dirs)
    assert sorted(runs) == sorted(exp.runs["run"])
    assert all(d.name.startswith("offline-run-") and d.parent.name == "wandb" for d in dirs)
    # W&B's staging copies of the tables stay with the runs, not in the user's home folder
    assert any((dirs[0].parent / ".data" / "artifacts" / "staging").iterdir())
    assert "WANDB_DATA_DIR" not in os.environ and "WANDB_CACHE_DIR" not in os.environ
    for name, r in runs.items():
        assert r["config"] == exp.run_params[name]
        assert r["run"].project == project_name(exp.design.name)
        assert r["run"].run_group == project_name(exp.design.name)
    assert runs[NAN_RUN]["config"] == {"lora_rank": 16, "learning_rate": 1e-05}
    assert list(runs[NAN_RUN]["run"].tags) == ["diverged", "Llama-3.2-1B-Instruct"]
    assert runs[CONTROL]["config"] == {}
    assert runs[CONTROL]["run"].job_type == "control"
    assert runs[VAL_RUN]["run"].job_type == "fine-tuned"
    assert list(runs[VAL_RUN]["run"].tags) == ["completed", "Llama-3.2-1B-Instruct"]  # status, model
    assert list(runs[CONTROL]["run"].tags) == ["Llama-3.2-1B-Instruct"]  # a control has no training status


def test_history_equals_train_steps(exported):
    exp, _an, dirs = exported
    runs = _by_name(dirs)
    checked = 0
    for name, r in runs.items():
        steps = exp.train_steps[exp.train_steps["run"] == name]
        assert sorted(s for s in r["history"] if s > 0) == sorted(steps["step"].astype(int))
        logged = {s for s, row in r["history"].items() if "train/loss" in row}
        assert logged == {int(s) for s, lo in zip(steps["step"], steps["loss"], strict=True) if math.isfinite(lo)}
        for rec in steps.to_dict("records"):
            row = r["history"][int(rec["step"])]
            assert row["_step"] == int(rec["step"])
            if math.isfinite(rec["loss"]):
                assert row["train/loss"] == rec["loss"]  # exact, no rounding
            else:
                assert "train/loss" not in row
            assert row["train/epoch"] == rec["epoch"]
            for col in ("lr", "tokens_per_second_per_gpu"):
                if pd.notna(rec[col]):
                    assert row[f"train/{col}"] == rec[col]
                else:
                    assert f"train/{col}" not in row
            checked += 1
    assert checked == len(exp.train_steps) > 0


def test_validation_loss_at_its_global_step(exported):
    exp, _an, dirs = exported
    r = _by_name(dirs)[VAL_RUN]
    val = {s: row["val/loss"] for s, row in r["history"].items() if "val/loss" in row}
    # the DiskLogger lines of the capture: `Step N | val_loss:… ` after steps 4, 8, 12 and 16
    assert val == {4: 5.153646469116211, 8: 5.132186412811279, 12: 5.086057186126709, 16: 5.081816673278809}
    steps = exp.train_steps[exp.train_steps["run"] == VAL_RUN].set_index("step")
    assert {s: steps.loc[s, "val_loss"] for s in val} == val
    assert r["history"][4]["train/loss"] == 5.281919956207275  # same row as the step's training loss
    assert r["summary"]["val/final_loss"] == 5.081816673278809
    assert r["summary"]["val/best_loss"] == 5.081816673278809
    assert r["summary"]["val/best_step"] == 16
    assert r["summary"]["val/evaluations"] == 4
    others = [row for n, x in _by_name(dirs).items() if n != VAL_RUN for row in x["history"].values()]
    assert not any("val/loss" in row for row in others)


def test_summary_holds_final_evaluation_with_intervals(exported):
    _exp, an, dirs = exported
    runs = _by_name(dirs)
    iv = an.intervals
    for name, r in runs.items():
        mine = iv[iv["run"] == name]
        assert len(mine)
        for (task, scorer, metric), g in mine.groupby(["task", "scorer", "metric"]):
            epochs = pd.to_numeric(g["epoch"], errors="coerce")
            last = g.loc[epochs.idxmax()] if epochs.notna().any() else g.iloc[0]
            key = f"eval/{task}/{scorer}/{metric}"
            s = r["summary"]
            assert s[key] == last["value"]
            assert s[f"{key}_ci_low"] == last["ci_low"] and s[f"{key}_ci_high"] == last["ci_high"]
            assert s[f"{key}_stderr"] == last["stderr"]
            assert s[f"{key}_n"] == last["n"]
            assert s[f"{key}_epoch"] == (None if pd.isna(last["epoch"]) else int(last["epoch"]))
        assert r["summary"]["eval/confidence"] == 0.95
    # fine-tuned runs are summarised at their last checkpoint (epoch 1), even where epoch 0 scored
    # higher (rank16_lr1e-4: 0.855 at epoch 0, 0.850 at epoch 1); the control has no epoch
    s = runs["Llama-3.2-1B-Instruct_rank16_lr1e-4"]["summary"]
    assert (s["eval/capitalization/includes/accuracy"], s["eval/capitalization/includes/accuracy_epoch"]) == (0.85, 1)
    assert {k: v for k, v in runs[VAL_RUN]["summary"].items() if k.startswith("eval/") and k.endswith("_epoch")} == {
        "eval/capitalization/includes/accuracy_epoch": 1, "eval/capitalization/match/accuracy_epoch": 1}
    assert {k: v for k, v in runs[CONTROL]["summary"].items() if k.startswith("eval/") and k.endswith("_epoch")} == {
        "eval/capitalization/includes/accuracy_epoch": None, "eval/capitalization/match/accuracy_epoch": None}


def test_training_summary_from_runs_table(exported):
    exp, _an, dirs = exported
    runs = _by_name(dirs)
    for row in exp.runs.to_dict("records"):
        s = runs[row["run"]]["summary"]
        for col in ("final_loss", "min_loss", "steps", "status", "convergence"):
            if pd.isna(row[col]):
                assert f"training/{col}" not in s
            else:
                assert s[f"training/{col}"] == row[col]
    assert runs[VAL_RUN]["summary"]["training/final_loss"] == 5.051778793334961
    assert runs[VAL_RUN]["summary"]["training/steps"] == 16
    # the diverged run: status says so, no final loss is invented, the nan steps are gaps in the curve
    s = runs[NAN_RUN]["summary"]
    assert s["training/status"] == "diverged" and "training/final_loss" not in s
    hist = runs[NAN_RUN]["history"]
    assert sorted(st for st, row in hist.items() if "train/loss" in row) == [1, 2, 3, 4]
    assert all("train/lr" in hist[st] for st in range(1, 9))  # 8 steps, lr logged at each


def test_tables_hold_every_sample_and_evaluation(exported):
    exp, an, dirs = exported
    runs = _by_name(dirs)
    for name, r in runs.items():
        ref = next(row["eval/samples"] for row in r["history"].values() if "eval/samples" in row)
        got = read_table(r, ref)
        want = exp.eval_samples[exp.eval_samples["run"] == name]
        assert len(got) == len(want) > 0
        key = ["task", "epoch", "sample_id", "sample_epoch", "scorer"]
        got = got.assign(epoch=pd.to_numeric(got["epoch"])).sort_values(key).reset_index(drop=True)
        want = want.assign(epoch=pd.to_numeric(want["epoch"])).sort_values(key).reset_index(drop=True)
        assert got["score"].tolist() == want["score"].tolist()
        assert got["sample_id"].astype(str).tolist() == want["sample_id"].astype(str).tolist()
        assert got["answer"].tolist() == [None if pd.isna(a) else a for a in want["answer"]]
        assert got["meta.word_length"].tolist() == want["meta.word_length"].tolist()
        ev = read_table(r, next(row["eval/evaluations"] for row in r["history"].values()
                                if "eval/evaluations" in row))
        mine = an.intervals[an.intervals["run"] == name]
        assert sorted(ev["value"]) == sorted(mine["value"])
        assert sorted(ev["ci_low"]) == sorted(mine["ci_low"])


def test_history_rows_rules():
    df = pd.DataFrame({
        "run": "a", "epoch": [0, 0, 0, 1], "step": [2, 1, 2, 3],
        "loss": [9.0, 2.0, float("nan"), float("inf")], "lr": [0.1, None, 0.3, 0.4],
        "val_loss": [None, None, 1.25, None], "kd_loss": [None, 0.5, None, None], "source": "disklogger",
    })
    rows = history_rows(df)
    assert [s for s, _ in rows] == [1, 2, 3]  # sorted; the repeated step 2 keeps its last row
    assert rows[0][1] == {"train/epoch": 0.0, "train/loss": 2.0, "train/kd_loss": 0.5}
    # a nan cell may be a value the step never logged: left out, never invented
    assert rows[1][1] == {"train/epoch": 0.0, "train/lr": 0.3, "val/loss": 1.25}
    assert rows[2][1]["train/loss"] == math.inf and "val/loss" not in rows[2][1]
    assert history_rows(df.iloc[0:0]) == []


def test_validation_summary_of_the_overfitting_capture():
    disk = read_disk_log(FIX / "local_v0.6.1_lora_cpu_slurm_val_overfit.disklogger.txt")
    steps = pd.DataFrame([{"step": s, **v} for s, v in disk.steps.items()])
    assert validation_summary(steps) == {
        "val/final_loss": 4.797314643859863, "val/best_loss": 4.573484420776367, "val/best_step": 16,
        "val/evaluations": 8, "val/train_gap": pytest.approx(4.797314643859863 - (3.6135146617889404 + 3.2657408714294434 + 3.4018263816833496 + 3.2751834392547607) / 4),
        "val/overfitting": True}
    assert validation_summary(steps.drop(columns="val_loss")) == {}


def test_missing_wandb_is_a_clear_error(exported, monkeypatch):
    exp, an, _dirs = exported
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(WandbExportError, match=r"pip install 'analyze-experiment\[wandb\]'"):
        export_wandb(exp, an, Path("unused"))


def test_unknown_run_is_a_clear_error(exported, tmp_path):
    exp, an, _dirs = exported
    with pytest.raises(WandbExportError, match=rf"unknown run\(s\) 'nope'; the experiment's runs are: .*{CONTROL}"):
        export_wandb(exp, an, tmp_path, runs=[VAL_RUN, "nope"])
    assert not (tmp_path / "wandb").exists()


_CALLER_SCRIPT = """
import sys
from pathlib import Path
import wandb
from analyze_experiment import analyze, load
from analyze_experiment.export_wandb import export_wandb
from analyze_experiment.experiment import Options

root, out, user_dir, run = sys.argv[1:]
exp = load(Path(root))
user = wandb.init(project="mine", dir=user_dir, mode="offline",
                  settings=wandb.Settings(silent=True, console="off", disable_git=True))
(d,) = export_wandb(exp, analyze(exp, Options()), Path(out), plots=False, runs=[run])
assert wandb.run is user, "the caller's run is no longer the current run"
user.log({"x": 1.5}, step=3)
user.finish()
print(d)
"""


def test_a_callers_wandb_run_is_left_alone(exported, tmp_path):
    """A script with its own W&B run exports: its run stays current and keeps what it logs after.

    In a separate process, because W&B completes a run's file only when its service stops
    (at exit here; the export then leaves the caller's service running).
    """
    exp, _an, _dirs = exported
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _CALLER_SCRIPT, str(exp.root), str(tmp_path / "out"),
                           str(tmp_path / "user"), CONTROL], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    (user_dir,) = (tmp_path / "user" / "wandb").glob("offline-run-*")
    assert read_offline_run(user_dir)["history"][3]["x"] == 1.5
    assert read_offline_run(Path(proc.stdout.strip()))["run"].display_name == CONTROL


@pytest.mark.slow
def test_cli_export_offline_with_plots(example, tmp_path):
    """The real CLI, with an environment that asks W&B to go online: the export stays offline."""
    root = _with_validation(example("mid2026"), tmp_path / "exp")
    env = {**os.environ, "WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "x" * 40,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    before = load(root).runs["run"].tolist()
    proc = subprocess.run(
        [sys.executable, "-m", "analyze_experiment", "export", str(root), "--format", "wandb", "--project", "my proj",
         "--runs", f"{VAL_RUN},{CONTROL}"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    dirs = [Path(line) for line in proc.stderr.splitlines() if "offline-run-" in line]
    assert len(dirs) == 2 and all(d.parent == root / "wandb" for d in dirs)
    runs = _by_name(dirs)
    assert sorted(runs) == sorted([VAL_RUN, CONTROL])
    assert {r["run"].project for r in runs.values()} == {"my-proj"}
    # the report's figures, drawn from the same analysis, as images
    from analyze_experiment.diagnostics import Diagnostics
    from analyze_experiment.report.plots.static import render_plots

    exp = load(root)
    infos = render_plots(exp, analyze(exp, Options()), tmp_path / "plots", Diagnostics())
    assert infos
    for r in runs.values():
        media = {k: v for row in r["history"].values() for k, v in row.items() if k.startswith("plots/")}
        assert sorted(media) == sorted(f"plots/{i.name}" for i in infos)
        for i in infos:
            ref = media[f"plots/{i.name}"]
            assert ref["_type"] == "image-file"
            png = (r["files"] / ref["path"]).read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert hashlib.sha256(png).hexdigest() == hashlib.sha256(
                (tmp_path / "plots" / f"{i.name}.png").read_bytes()).hexdigest()
    # the W&B folder inside the experiment is not taken for a run on the next load
    assert load(root).runs["run"].tolist() == before
