"""Planned vs found, duplicate logs and identical loss curves (issue 11 item 4), through the real
CLI on a sweep of real captured torchtune output and real inspect-ai logs (tests/sweep_builder.py).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

import analyze_experiment
from analyze_experiment.cli import analyze as cli_main
from analyze_experiment.demo.plan import make_words
from sweep_builder import CAPTURES, Run, build, design_yaml, training_output, write_eval

RUNS = [
    Run("r8_lr1e-4", 0.55, params={"lora_rank": 8}, config={"lora_rank": 8}, capture=CAPTURES[0]),
    Run("r16_lr1e-4", 0.60, params={"lora_rank": 16}, config={"lora_rank": 16}, capture=CAPTURES[1]),
    Run("r32_lr1e-4", 0.65, params={"lora_rank": 32}, config={"lora_rank": 32}, capture=CAPTURES[2]),
    Run("base", 0.2, capture=None, epochs=(None,)),
]
VARIABLES = {"lora_rank": [8, 16, 32]}

SCHEMA = json.loads((Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json").read_text())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("planned") / "sweep", RUNS, variables=VARIABLES)


@pytest.fixture
def root(sweep: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "sweep"
    shutil.copytree(sweep, dest)
    return dest


def _cli(root: Path) -> tuple[dict, str]:
    res = CliRunner().invoke(cli_main, [str(root), "--format", "md", "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    return summary, (root / "analysis" / "report.md").read_text()


def _data_quality(md: str) -> str:
    return md.split("## Data Quality", 1)[1]


def test_clean_sweep_has_no_design_facts(root):
    summary, md = _cli(root)
    assert "planned_vs_found" not in summary and "design_facts" not in summary
    assert "What the design, the training output and the logs say" not in _data_quality(md)
    assert not [w for w in summary["warnings"] if w["severity"] != "info"]


def test_planned_but_missing_and_unplanned_evaluations_are_listed(root):
    # the matrix plans epochs 0 and 1 of r8 and nothing of r32; r16 was also evaluated at epoch 1
    matrix = [("r8_lr1e-4", [0, 1]), ("r16_lr1e-4", [0]), ("base", None)]
    (root / "experiment_summary.yaml").write_text(design_yaml(RUNS, VARIABLES, matrix=matrix))
    words = tuple(make_words(40, 0))
    write_eval(root, RUNS[1], 1, words, np.arange(40) < 26, np.random.default_rng(5))
    summary, md = _cli(root)
    pvf = {(r["run"], r["epoch"], r["status"]) for r in summary["planned_vs_found"]}
    assert pvf == {("r8_lr1e-4", 1, "missing"), ("r16_lr1e-4", 1, "unplanned"), ("r32_lr1e-4", 0, "unplanned")}
    assert all(r["task"] == "capitalization" for r in summary["planned_vs_found"])
    unplanned = [r for r in summary["planned_vs_found"] if r["status"] == "unplanned"]
    assert all(r["log"].startswith(f"{r['run']}/eval/capitalization_epoch{r['epoch']}/logs/") for r in unplanned)
    dq = _data_quality(md)
    assert ("1 evaluation planned by the design's evaluation matrix was not found: r8_lr1e-4 × capitalization × "
            "epoch 1") in dq
    assert "2 evaluations found that the design's evaluation matrix does not plan: r16_lr1e-4 × capitalization × " \
        "epoch 1, r32_lr1e-4 × capitalization × epoch 0" in dq
    assert "Evaluation matrix: planned vs found" in dq
    kinds = [f["kind"] for f in summary["design_facts"]]
    assert kinds == ["planned_missing", "unplanned"]


def test_same_log_in_two_places_is_named(root):
    src = next((root / "r16_lr1e-4" / "eval" / "capitalization_epoch0" / "logs").glob("*.eval"))
    dest = root / "r16_lr1e-4" / "eval" / "capitalization_epoch1" / "logs"
    dest.mkdir(parents=True)
    shutil.copy2(src, dest / src.name)
    summary, md = _cli(root)
    dup = [w for w in summary["warnings"] if "identical bytes" in w["message"]]
    assert len(dup) == 1
    a, b = (p.relative_to(root).as_posix() for p in (src, dest / src.name))
    assert f"is in 2 places: {a}, {b}" in dup[0]["message"] or f"is in 2 places: {b}, {a}" in dup[0]["message"]
    assert [f["kind"] for f in summary["design_facts"]] == ["duplicate_log"]
    assert "The same evaluation log (identical bytes) is in 2 places" in _data_quality(md)


def test_identical_loss_curves_with_different_parameters_are_flagged(root):
    # r32's training output replaced by r8's capture, its banner saying rank 32: a copied log
    copied = Run("r32_lr1e-4", None, config={"lora_rank": 32}, capture=CAPTURES[0])
    out, disk = training_output(copied)
    art = root / "r32_lr1e-4" / "artifacts"
    for f in art.iterdir():
        f.unlink()
    (art / "slurm-900.out").write_bytes(out)
    (art / re.search(rb"Writing logs to \S*/(log_\d+\.txt)", out)[1].decode()).write_bytes(disk)
    summary, md = _cli(root)
    facts = [f for f in summary["design_facts"] if f["kind"] == "identical_curves"]
    assert len(facts) == 1 and facts[0]["runs"] == ["r32_lr1e-4", "r8_lr1e-4"]
    msg = facts[0]["message"]
    assert "have identical training loss curves (16 steps" in msg
    assert "lora_rank: r32_lr1e-4 32, r8_lr1e-4 8" in msg and "likely a copied log or a mislabelled run" in msg
    assert msg in _data_quality(md)
    # the findings that name either run carry the caveat
    touched = [line for line in md.splitlines() if line.startswith("- ") and "r8_lr1e-4" in line
               and "## Data Quality" not in line]
    findings = md.split("## Key Findings", 1)[1].split("## Data Quality", 1)[0]
    assert "identical loss curves despite different lora_rank" in findings
    assert touched
