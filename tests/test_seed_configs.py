"""Seed replicates pooled into configurations, and the design's own facts (issue 11 items 2–4,
issue 10 item 7), through the real CLI on sweeps made of real captured torchtune output and
real inspect-ai logs (tests/sweep_builder.py).

The sweep: LoRA rank {8, 32} × seed {1, 2, 3} plus a base model. Planted ``match``
accuracies: rank 8 → 55.0 / 60.0 / 57.5 %, rank 32 → 62.5 / 60.0 / 75.0 % (seed 3 is the
luckiest single run), base 20 %. Every training log says ``Setting manual seed to local
seed 1234`` (as the captured runs do) unless a test edits it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import analyze_experiment
from analyze_experiment import load
from analyze_experiment.cli import analyze as cli_main
from analyze_experiment.conclude import analyze
from analyze_experiment.report.plots import _select as sel
from sweep_builder import CAPTURES, Run, build, training_output

ACC = {(8, 1): 0.55, (8, 2): 0.60, (8, 3): 0.575, (32, 1): 0.625, (32, 2): 0.60, (32, 3): 0.75}
SEED_RUNS = [f"r{r}_seed{s}" for r, s in ACC]

SCHEMA = json.loads((Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json").read_text())


def _runs(config_seed: bool = False) -> list[Run]:
    runs = [Run(f"r{r}_seed{s}", a, params={"lora_rank": r, "seed": s},
                config={"lora_rank": r, **({"seed": s} if config_seed else {})},
                capture=CAPTURES[0] if r == 8 else CAPTURES[1]) for (r, s), a in ACC.items()]
    return [*runs, Run("base", 0.2, capture=None, epochs=(None,))]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rank-seed") / "sweep"
    return build(root, _runs(), variables={"lora_rank": [8, 32], "seed": [1, 2, 3]})


@pytest.fixture
def copy(sweep: Path, tmp_path: Path):
    def make() -> Path:
        dest = tmp_path / "sweep"
        shutil.copytree(sweep, dest)
        return dest
    return make


@pytest.fixture(scope="module")
def reported(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """The unchanged sweep's report and terminal summary, made once for the tests that only read
    them: (experiment root, summary.json, stdout)."""
    root = tmp_path_factory.mktemp("rank-seed-reported") / "sweep"
    shutil.copytree(sweep, root)
    res = CliRunner().invoke(cli_main, [str(root), "--format", "md"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    return root, summary, res.stdout


def _cli(root: Path, *args: str, markdown: bool = True) -> dict:
    """summary.json of a run writing report.md (``markdown=False``: report.html, which draws no PNG
    figures, for a test that reads only the summary)."""
    res = CliRunner().invoke(cli_main, [str(root), "--format", "md" if markdown else "html", "--quiet", *args],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    return summary


def _findings(summary_root: Path) -> str:
    return (summary_root / "analysis" / "report.md").read_text()


def _section(md: str, title: str) -> str:
    m = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    assert m, title
    return m.group(1)


def _retrain(root: Path, run: Run) -> None:
    """Replace a run's training output (the sweep's evaluation logs stay)."""
    out, disk = training_output(run)
    art = root / run.name / "artifacts"
    for f in art.iterdir():
        f.unlink()
    (art / "slurm-900.out").write_bytes(out)
    name = re.search(rb"Writing logs to \S*/(log_\d+\.txt)", out)
    (art / name[1].decode()).write_bytes(disk)


# --- item 2: configurations, not seeds ---------------------------------------------------------


def test_rank_seed_sweep_best_and_production_are_configurations(reported):
    root, _, _ = reported
    md = _findings(root)
    best = _section(md, "Key Findings")
    rec = _section(md, "Recommendations")
    nxt = _section(md, "Next Steps")
    # best: the configuration with its mean and SD across seeds, never the luckiest seed as a choice
    assert "the best configuration is lora_rank=32 (3 seeds: mean 65.8%, SD 8.0 pp)" in best
    assert "r32_seed3 (75.0%), is one seed of lora_rank=32 — one seed's draw, not a choice by itself" in best
    assert "not distinguishable from lora_rank=8 (3 seeds: mean 57.5%, SD 2.5 pp)" in best
    # production names the configuration and no seed replicate
    prod = [line for line in rec.splitlines() if "Production config" in line]
    assert prod and all("lora_rank=32 (3 seeds: mean 65.8%, SD 8.0 pp" in p for p in prod)
    assert not any(r in rec for r in SEED_RUNS)
    # "run more seeds" names configurations: never a seed replicate, never the base model
    more = [line for line in nxt.splitlines() if "seeds of" in line]
    assert more and all("lora_rank=32 and lora_rank=8" in m for m in more)
    assert not any(r in nxt for r in [*SEED_RUNS, "base"])


def test_terminal_names_the_best_configuration(reported):
    _, _, out = reported
    assert "best configuration on capitalization/match: lora_rank=32 — accuracy mean 0.658" in out
    assert "over 3 seeds — no clear winner" in out
    assert not [line for line in out.splitlines() if "best" in line and "r32_seed3" in line]


def test_rank_seed_sweep_seed_is_never_a_plot_axis(sweep):
    exp = load(sweep)
    a = analyze(exp)
    assert "seed" not in set(a.effects["variable"])
    iv = a.intervals[a.intervals["scorer"] == "match"]
    hm = sel.pool_seeds(exp, sel.with_params(exp, iv[iv["run"] != "base"]), a.confidence)
    # one cell per configuration: the mean of its seeds, with the interval across seeds
    assert "seed" not in hm.columns
    cells = dict(zip(hm["lora_rank"], hm["value"], strict=True))
    assert cells == pytest.approx({8: 0.575, 32: 0.6583333}, abs=1e-6)
    assert set(hm["n_seeds"]) == {3}
    assert sel.heatmap_axes(exp, hm) is None  # one swept variable left: no heatmap, never seed × rank


# --- item 3: the design's own facts ------------------------------------------------------------


def test_all_runs_seed_1234_qualifies_the_seed_finding_and_leads_data_quality(reported):
    root, summary, _ = reported
    md = _findings(root)
    key = _section(md, "Key Findings")
    assert "seed-to-seed variation is up to" not in key
    assert "seed variation cannot be measured: all runs used seed 1234" in key
    # every seed-level sentence carries the caveat
    for line in [*_section(md, "Recommendations").splitlines(), *_section(md, "Next Steps").splitlines()]:
        if "seeds" in line and line.startswith("- "):
            assert "all runs used seed 1234" in line, line
    dq = _section(md, "Data Quality").strip()
    first = dq.split("\n- ", 1)[1].splitlines()[0]
    assert first.startswith("Every seed replicate trained with seed 1234")
    assert "although the design says seeds 1, 2, 3" in first
    bc = {b["scorer"]: b for b in summary["best_configurations"]}
    assert bc["match"]["config"] == "lora_rank=32" and bc["match"]["n_seeds"] == 3
    assert bc["match"]["mean"] == pytest.approx(0.6583333, abs=1e-6)
    assert bc["match"]["runs"] == ["r32_seed1", "r32_seed2", "r32_seed3"]
    assert bc["match"]["tied_with"] == ["lora_rank=8"] and bc["match"]["clear_winner"] is False
    facts = {f["kind"]: f for f in summary["design_facts"]}
    assert sorted(facts["same_seed"]["runs"]) == sorted(SEED_RUNS)


def test_distinct_seeds_measure_seed_variation(copy):
    root = copy()
    for r in _runs(config_seed=True):
        if r.capture is not None:
            _retrain(root, r)
    summary = _cli(root)
    key = _section(_findings(root), "Key Findings")
    assert "seed-to-seed variation is up to SD 8.0 pp" in key
    assert "cannot be measured" not in key
    assert "same_seed" not in {f["kind"] for f in summary.get("design_facts", [])}
    assert not [w for w in summary["warnings"] if "the design says seed" in w["message"]]


def test_parameters_from_run_names_say_so_and_yield_to_the_config(copy, tmp_path):
    src = copy()
    root = tmp_path / "no-design"
    root.mkdir()
    for r in SEED_RUNS:  # rank8_seed1_wd0.1 …: every parameter readable from the name
        wd = "_wd0.1" if r.startswith("r8_") else "_wd0.01"
        shutil.copytree(src / r, root / (r.replace("r8_", "rank8_").replace("r32_", "rank32_") + wd))
    shutil.copytree(src / "base", root / "base")
    summary = _cli(root)
    messages = [w["message"] for w in summary["warnings"]]
    assert not any("the design says" in m for m in messages)
    seed_warn = [m for m in messages if "rank32_seed3_wd0.01" in m and "seed" in m]
    assert any("seed=3 is from the run name, but the training config has seed=1234; the training config's value "
               "is used" in m for m in seed_warn)
    runs = {r["name"]: r for r in summary["runs"]}
    assert runs["rank32_seed3_wd0.01"]["params"]["lora_rank"] == 32
    dq = _section(_findings(root), "Data Quality")
    # lora_rank is confirmed by the training config; weight_decay is known from the names only
    assert "weight_decay of rank32_seed1_wd0.01" in dq and "is from the run name (no design document" in dq
    assert "lora_rank of" not in dq
    # the config's seed won, so these runs are repeats of one seed per configuration
    assert "Every seed replicate trained with seed 1234" in dq
    assert "although the run names say seeds 1, 2, 3" in dq


# --- issue 10 item 7: numbers written as strings -------------------------------------------------


@pytest.mark.parametrize(("config_lr", "warned"), [("1e-5", False), ("1.0e-05", False), ("2e-5", True)])
def test_learning_rate_written_as_text_compares_as_a_number(copy, config_lr, warned):
    root = copy()
    design = (root / "experiment_summary.yaml").read_text()
    design = re.sub(r"(      seed: \d+)", r"\1\n      lr: 1e-5", design)  # YAML 1.1: the string "1e-5"
    (root / "experiment_summary.yaml").write_text(design)
    for r in _runs():
        if r.capture is not None:
            r.config["lr"] = config_lr
            _retrain(root, r)
    summary = _cli(root, markdown=warned)  # only the warned case reads report.md
    lr_warnings = [w for w in summary["warnings"] if "learning_rate" in w["message"]]
    if warned:
        assert len(lr_warnings) == len(SEED_RUNS)
        assert "the design says learning_rate=1e-05 but the training config has optimizer.lr='2e-5'" in \
            lr_warnings[0]["message"]
        md = _findings(root)
        dq = _section(md, "Data Quality")
        assert "The training config contradicts the design's learning_rate for 6 runs" in dq
        # the findings that name a run say what it really trained with
        key = [line for line in _section(md, "Key Findings").splitlines() if "r32_seed3" in line
               and line.startswith("- ")]  # sentences (the other-scorers table names the run too)
        assert key and all("r32_seed3 trained with learning_rate 2e-05, not the design's 1e-05" in k for k in key)
    else:
        assert lr_warnings == []


def test_seed_level_best_follows_the_metric_direction():
    import pandas as pd

    from analyze_experiment.stats.seeds import seed_tables

    runs = {"a1": ("lora_rank=8", 4.0), "a2": ("lora_rank=8", 4.2), "a3": ("lora_rank=8", 4.1),
            "b1": ("lora_rank=32", 6.0), "b2": ("lora_rank=32", 6.3), "b3": ("lora_rank=32", 6.1)}
    values = pd.DataFrame([{"task": "t", "scorer": "continuous", "metric": "mae", "run": r, "epoch": 0.0,
                            "value": v, "direction": "lower"} for r, (_, v) in runs.items()])
    configs = pd.Series({r: c for r, (c, _) in runs.items()})
    _, comp = seed_tables(values, configs, n_boot=50)
    assert list(comp["a"]) == ["lora_rank=8"] and list(comp["b"]) == ["lora_rank=32"]
    assert comp["diff"].iloc[0] == pytest.approx(4.1 - 6.1333333, abs=1e-6)
