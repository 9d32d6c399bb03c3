"""The Retrospective: cost, what the sweep settled, and the next design, from registered facts.

On the bundled example (4 fine-tuned runs, one per configuration, plus a control) the numbers
must match summary.json, each choice of the next design must rest on a finding of the report,
and the skeleton must read back through our own design reader without a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment.analysis import Analysis
from analyze_experiment.cli import analyze
from analyze_experiment.report.doc import Code, KeyValues, ReportDoc, Section
from analyze_experiment.report.markdown import render_markdown
from analyze_experiment.report.retrospective import cost_facts


@pytest.fixture(scope="module")
def reported(example, tmp_path_factory):
    root = tmp_path_factory.mktemp("retro") / "exp"
    import shutil

    shutil.copytree(example("mid2026", 40), root, symlinks=True)
    r = CliRunner().invoke(analyze, [str(root), "--quiet", "--no-cache", "--gpu-hour-cost", "2.5"])
    assert r.exit_code == 0, r.output
    out = root / "analysis"
    return out, json.loads((out / "summary.json").read_text())


def test_cost_matches_the_runs_and_the_price(reported):
    _, summary = reported
    retro = summary["retrospective"]
    hours = sum(r["training"]["gpu_hours"] for r in summary["runs"] if r["training"] and r["training"]["gpu_hours"])
    total = next(s for s in retro["sentences"] if s["rule"] == "cost_total")
    assert "4 runs" in total["text"]
    assert f"${hours * 2.5:.3g}" in total["text"] or f"{hours * 2.5:.4f}" in total["text"].replace("$", "")
    failed = next(s for s in retro["sentences"] if s["rule"] == "cost_failed")
    assert failed["text"].startswith("None of the ") and failed["text"].endswith("went to failed runs (0 runs failed).")


def test_each_choice_rests_on_a_finding_of_the_report(reported):
    out, summary = reported
    report = (out / "report.md").read_text()
    retro = summary["retrospective"]
    by_rule: dict[str, list[dict]] = {}
    for s in retro["sentences"]:
        by_rule.setdefault(s["rule"], []).append(s)
    # one run per configuration: every variable's effect is untested, and the report says so
    for v in ("lora_rank", "learning_rate"):
        verdict = next(s for s in by_rule["variable_verdict"] if s["text"].startswith(v + " "))
        assert verdict["basis"] == ["effect_confounded"]
        assert f"whether {v} matters is not tested" in report
    design = summary["retrospective"]["next_design"]
    names = {"learning_rate": "lr"}
    for s in by_rule.get("next_fixed", []):  # a fixed variable is a control at the production pick's level
        v = s["text"].split()[1]
        assert s["basis"] == ["effect_confounded"]
        assert names.get(v, v) in design["controls"] and names.get(v, v) not in design["variables"]
    for s in by_rule.get("next_between", []) + by_rule.get("next_extend", []):
        v = s["text"].split()[1]
        assert s["basis"] in (["untested_level"], ["edge_of_grid"])
        phrase = "Try " + v if s["basis"] == ["untested_level"] else "the edge of the tested range"
        assert phrase in report
        level = float(s["text"].split(" = " if " = " in s["text"] else " to ")[1].split(":")[0])
        assert level in [float(x) for x in design["variables"][names.get(v, v)]]
    assert by_rule.get("next_between") or by_rule.get("next_extend") or by_rule.get("next_fixed")
    seeds = by_rule["next_seeds"][0]
    assert seeds["text"].startswith("Train 3 seeds per configuration")
    assert design["variables"]["seed"] == [1, 2, 3]


def test_next_design_rules_on_known_findings():
    """Fixed findings in, the exact next design out: edge extended geometrically, an untested
    gap too small to test fixed at the production pick's level, seeds from the power need."""
    from analyze_experiment.analysis import Best, Finding
    from analyze_experiment.experiment import Design, RunSpec
    from analyze_experiment.report.retrospective import next_design

    a = Analysis()
    a.best = [Best("qa", "match", "accuracy", "r16_lr4", 1.0, 0.9, 0.85, 0.95, False, "")]
    fam = "checkpoints: qa/match/accuracy"
    a.families = pd.DataFrame([{"family": fam, "kind": "checkpoints", "task": "qa", "scorer": "match",
                                "metric": "accuracy", "size": 6, "alpha": 0.05, "correction": "holm",
                                "confirmatory": True, "unit": ""}])
    a.findings = [
        Finding("key_findings", "x", "effect_confounded", {"task": "qa", "variable": "learning_rate", "diff": 0.2,
                                                            "seeds_needed": 4.0}),
        Finding("key_findings", "x", "effect_confounded", {"task": "qa", "variable": "lora_rank", "diff": 0.003,
                                                            "seeds_needed": 1048.0}),
        Finding("next_steps", "x", "edge_of_grid", {"task": "qa", "variable": "learning_rate", "edge": 1e-4}),
        Finding("recommendations", "x", "production_config", {"task": "qa", "run": "r8_lr4"}),
        Finding("next_steps", "x", "larger_eval_set", {"task": "qa", "n_needed": 812.0}),
    ]
    runs = pd.DataFrame({"run": ["r8_lr4", "r16_lr4", "r8_lr5", "r16_lr5"], "type": ["fine-tuned"] * 4,
                         "model": ["M"] * 4, "lora_rank": [8, 16, 8, 16], "learning_rate": [1e-4, 1e-4, 1e-5, 1e-5]})
    d = Design(name="s", variables={"lora_rank": [8, 16], "learning_rate": [1e-5, 1e-4]}, tasks=["qa"],
               scorers=["match"], runs=[RunSpec("M_base", type="control", model="M")])
    doc, why = next_design(a, runs, d, ["lora_rank", "learning_rate"], None)
    assert doc["variables"] == {"lr": [1e-05, 0.0001, 0.001], "seed": [1, 2, 3, 4]}
    assert doc["controls"] == {"lora_rank": 8}
    assert len([r for r in doc["runs"] if r["type"] == "fine-tuned"]) == 12
    assert doc["runs"][-1] == {"name": "M_base", "type": "control", "model": "M", "parameters": {}}
    assert doc["evaluation"]["min_samples_per_task"] == 812
    rules = [f.rule for f in why]
    assert rules == ["next_fixed", "next_extend", "next_keep", "next_seeds", "next_eval_set"]
    assert why[0].text.startswith("Fix lora_rank at 8 (the production pick's level)")


def test_report_section_retrospective_file_and_html(reported):
    out, _ = reported
    md = (out / "report.md").read_text()
    assert md.index("## Retrospective") < md.index("## Data Quality")
    assert md.index("## Next Steps") < md.index("## Retrospective")
    assert "```yaml\n# Next experiment" in md
    retro = (out / "retrospective.md").read_text()
    assert "## Retrospective" in retro and "Train 3 seeds per configuration" in retro
    html = (out / "report.html").read_text()
    assert '<pre class="code"><code># Next experiment' in html
    assert (out / "next_experiment_summary.yaml").exists()


def test_failed_runs_cost_share():
    a = Analysis()
    a.failed_runs = pd.DataFrame({"run": ["r_nan"], "status": ["diverged"], "evidence": ["loss NaN at step 5"]})
    runs = pd.DataFrame({"run": ["r_ok", "r_nan", "base"], "type": ["fine-tuned", "fine-tuned", "control"],
                         "gpu_hours": [3.0, 1.0, None]})
    facts = {f.rule: f for f in cost_facts(a, runs, 2.0)}
    assert facts["cost_total"].data["gpu_hours"] == 4.0 and facts["cost_total"].data["usd"] == 8.0
    assert facts["cost_failed"].data["share"] == pytest.approx(0.25)
    assert "r_nan (" in facts["cost_failed"].text and "diverged" in facts["cost_failed"].text
    assert "25%" in facts["cost_failed"].text


def test_code_block_cannot_be_closed_by_its_text():
    evil = "name: x\n```\n# Injected heading\n```"
    doc = ReportDoc("t", KeyValues([]), [Section("S", [Code(evil, "yaml")])])
    md = render_markdown(doc)
    fence = md[md.index("`"):].split("yaml", 1)[0]
    assert len(fence) == 4  # longer than the text's own run of three
    assert md.count(fence) == 2


def test_yaml_file_is_written_only_with_a_design(tmp_path, example):
    root = tmp_path / "nodesign"
    import shutil

    shutil.copytree(example("mid2026", 40), root, symlinks=True)
    for p in root.glob("experiment_summary.*"):
        p.unlink()
    # --format html: no PNG figures to draw (only summary.json and the YAML file are checked)
    r = CliRunner().invoke(analyze, [str(root), "--quiet", "--no-cache", "--format", "html"])
    assert r.exit_code == 0, r.output
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    planned = [s for s in summary["retrospective"]["sentences"] if s["rule"] == "planned_vs_ran"]
    assert planned[0]["text"] == "No design document listed the planned runs; all 5 runs found were analysed."
    assert Path(root / "analysis" / "next_experiment_summary.yaml").exists() == bool(
        summary["retrospective"]["next_design"])


def test_redundant_runs_cost_from_the_design_facts():
    a = Analysis()
    runs = pd.DataFrame({"run": ["s1", "s2", "s3", "x"], "type": ["fine-tuned"] * 4, "gpu_hours": [1.0, 1.0, 1.0, 1.0]})
    facts = pd.DataFrame([{"kind": "same_seed", "severity": "warning", "runs": ["s1", "s2", "s3"], "param": "seed",
                           "message": "m", "qualifier": "q", "detail": {}}])
    red = [f for f in cost_facts(a, runs, None, facts) if f.rule == "cost_redundant"]
    assert len(red) == 1 and red[0].data["runs"] == ["s2", "s3"] and red[0].data["share"] == pytest.approx(0.5)
    assert "repeated another replicate's seed" in red[0].text
