"""``load``: design/disk mismatches, the config cross-check, and the joined runs table."""

from __future__ import annotations

import shutil

import pytest

import analyze_experiment as ae
from analyze_experiment.ingest.load import NotADirectory

N = 40
RUN = "Llama-3.2-1B-Instruct_rank16_lr1e-4"


def test_missing_and_undeclared_runs_are_reported(example_copy):
    root = example_copy("mid2026", N)
    shutil.rmtree(root / RUN)
    shutil.copytree(root / "Llama-3.2-1B-Instruct_rank4_lr1e-4", root / "Llama-3.2-1B-Instruct_rank8_lr1e-4")
    exp = ae.load(root)
    runs = exp.runs.set_index("run")
    assert not runs.loc[RUN, "on_disk"]
    assert runs.loc[RUN, "in_design"]
    assert runs.loc[RUN, "status"] == "missing"
    extra = "Llama-3.2-1B-Instruct_rank8_lr1e-4"
    assert runs.loc[extra, "on_disk"] and not runs.loc[extra, "in_design"]
    # a value guessed from the name never overrides the one the training config recorded (issue 11)
    assert runs.loc[extra, "lora_rank"] == 4
    assert runs.loc[extra, "learning_rate"] == pytest.approx(1e-4)  # from the name, the config agrees
    messages = [w.message for w in exp.diagnostics.warnings]
    assert any(f"run '{extra}': lora_rank=8 is from the run name, but the training config has model.lora_rank=4; "
               "the training config's value is used" in m for m in messages)
    assert exp.param_sources[extra]["lora_rank"] == "training config"
    assert any(RUN in m and "in the design but has no directory" in m for m in messages)
    assert any(extra in m and "not in the design" in m for m in messages)


def test_training_config_that_contradicts_the_design_is_a_warning(example_copy):
    root = example_copy("mid2026", N)
    slurm = root / RUN / "artifacts" / "slurm-4.out"
    text = slurm.read_text()
    assert "  lora_rank: 16\n" in text
    slurm.write_text(text.replace("  lora_rank: 16\n", "  lora_rank: 32\n", 1))
    exp = ae.load(root)
    hits = [w for w in exp.diagnostics.warnings if "lora_rank" in w.message and w.stage == "training"]
    assert len(hits) == 1
    assert hits[0].file == f"{RUN}/artifacts/slurm-4.out"
    assert "design says lora_rank=16" in hits[0].message and "model.lora_rank=32" in hits[0].message
    # the design's value is kept
    assert exp.runs.set_index("run").loc[RUN, "lora_rank"] == 16


def test_tables_join_training_and_evaluation(example):
    exp = ae.load(example("mid2026", N))
    assert exp.layout == "mid2026" and exp.has_design_doc
    assert exp.param_names == ["lora_rank", "learning_rate"]
    assert exp.run_params[RUN] == {"lora_rank": 16, "learning_rate": 1e-4}
    steps = exp.train_steps[exp.train_steps["run"] == RUN]
    assert steps["step"].tolist() == list(range(1, 17))
    assert sorted(steps["epoch"].unique().tolist()) == [0, 1]
    scores = exp.eval_scores[(exp.eval_scores["run"] == RUN) & (exp.eval_scores["metric"] == "accuracy")]
    assert sorted(scores["epoch"].unique().tolist()) == [0, 1]
    assert len(exp.eval_samples[(exp.eval_samples["run"] == RUN) & (exp.eval_samples["scorer"] == "match")]) == 2 * N
    actions = [a.action for a in exp.diagnostics.actions]
    assert actions[:2] == ["START", "READ_DESIGN"]
    assert actions.index("DISCOVER") < actions.index("training.read") < actions.index("READ_EVALS")


def test_not_a_directory(tmp_path):
    with pytest.raises(NotADirectory):
        ae.load(tmp_path / "nope")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectory):
        ae.load(f)
