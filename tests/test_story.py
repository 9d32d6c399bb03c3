"""The report's story: the bottom line first, the design's hypotheses answered, one story per question.

Verdicts are checked against the registered tests they must come from (the seed-level ANOVA of
the plan's effects family), on sweeps whose truth is planted: rank 32 better, rank 8 better, no
difference. The end-to-end test runs the real command line on the bundled example.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

import analyze_experiment
from analyze_experiment.conclude import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Hypothesis, Options
from analyze_experiment.ingest.design_hypotheses import design_hypotheses, from_text
from analyze_experiment.ingest.design_yaml import parse_yaml_design
from analyze_experiment.report.markdown import APPENDIX_NOTE, github_slug
from stats_synth import demo_like, grid, make_experiment

FAST = Options(n_permutations=500, n_bootstrap=100)
SCHEMA = json.loads((Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json").read_text())


def RANK32_BETTER(rank: int, lr: float) -> float:
    return 0.6 if rank == 8 else 0.75


def RANK8_BETTER(rank: int, lr: float) -> float:
    return 0.75 if rank == 8 else 0.6


def NO_DIFFERENCE(rank: int, lr: float) -> float:
    return 0.7


def _hypothesis(truth, expect: str = "32 > 8", margin: float | None = None):
    """A rank {8, 32} × lr {1e-5, 1e-4} sweep with 3 seeds per configuration and one expectation."""
    accs, params = grid([8, 32], [1e-5, 1e-4], truth, seeds=3)
    exp = make_experiment(accs, params=params, n=100, seed=4)
    exp.design.hypotheses = [Hypothesis("lora_rank", expect, margin=margin)]
    a = analyze(exp, FAST)
    found = [f for f in a.findings if f.rule == "hypothesis_verdict"]
    assert len(found) == 1
    return a, found[0]


@pytest.mark.parametrize(("truth", "verdict"), [(RANK32_BETTER, "supported"), (RANK8_BETTER, "contradicted"),
                                                (NO_DIFFERENCE, "inconclusive")])
def test_hypothesis_verdict_comes_from_the_registered_anova_test(truth, verdict):
    a, f = _hypothesis(truth, margin=0.03)
    assert f.data["verdict"] == verdict
    assert f"on qa: {verdict} — " in f.text and "lora_rank 32 better than 8 by ≥ 3.0 pp" in f.text
    row = a.anova[a.anova["term"] == "lora_rank"].iloc[0]
    assert f.claim is not None and f.claim.family == "effects: qa/match/accuracy" == row["family"]
    assert f.claim.p_adjusted == pytest.approx(row["p_adjusted"]) and f.claim.test == "anova_f"
    assert f.claim.significant == bool(row["significant"]) == (verdict != "inconclusive")
    means = a.effects[a.effects["variable"] == "lora_rank"].set_index("level")["mean"]
    assert f.data["gap"] == pytest.approx(means[32] - means[8])
    assert (f.data["gap"] > 0.03) == (verdict == "supported") or verdict == "inconclusive"
    # the bottom line repeats the verdict, backed by the same test
    (line,) = [g for g in a.findings if g.rule == "bottom_hypotheses"]
    assert f"lora_rank 32 better than 8 by ≥ 3.0 pp — {verdict}" in line.text and line.claim == f.claim


def test_a_gap_below_the_stated_margin_is_not_support_and_no_effect_is_contradicted_by_an_effect():
    _, f = _hypothesis(RANK32_BETTER, margin=0.5)
    assert f.claim.significant and f.data["verdict"] == "inconclusive"
    assert "below the stated margin" in f.data["why"]
    _, f = _hypothesis(RANK32_BETTER, expect="no effect")
    assert f.data["verdict"] == "contradicted"
    _, f = _hypothesis(RANK32_BETTER, expect="32 <= 8")  # "32 is no better than 8"
    assert f.data["verdict"] == "contradicted"
    _, f = _hypothesis(RANK8_BETTER, expect="32 <= 8")
    assert f.data["verdict"] == "supported"


def test_without_seeds_nothing_tests_a_variable_so_every_verdict_is_inconclusive():
    exp = demo_like()
    exp.design.hypothesis = "lr 1e-4 beats 1e-5 clearly; LoRA rank 16 is no better than rank 4."
    a = analyze(exp, FAST)
    found = {f.data["variable"]: f for f in a.findings if f.rule == "hypothesis_verdict"}
    assert set(found) == {"learning_rate", "lora_rank"}
    for f in found.values():
        assert f.data["verdict"] == "inconclusive" and f.claim is None and not f.data["tested"]
        assert f.data["why"].startswith("not tested: each configuration was trained once")
    lr = found["learning_rate"].data
    means = a.effects[a.effects["variable"] == "learning_rate"].set_index("level")["mean"]
    assert lr["gap"] == pytest.approx(means[1e-4] - means[1e-5]) and lr["gap"] > 0.15  # planted +25 pp, untested


def test_free_text_is_matched_to_variable_names_and_says_when_unsure():
    levels = {"lora_rank": [4, 16], "learning_rate": [1e-5, 1e-4]}
    got = from_text("lr 1e-4 beats 1e-5 clearly; LoRA rank 16 is no better than rank 4.", "hypothesis", levels)
    assert [(h.variable, h.expect, h.unsure) for h in got] == [("learning_rate", "1e-4 > 1e-5", None),
                                                               ("lora_rank", "16 <= 4", None)]
    (h,) = from_text("A LoRA rank of 16 helps.", "hypothesis", levels)
    assert h.expect == "matters" and "no comparison word" in h.unsure
    (h,) = from_text("rank 16 beats the default", "hypothesis", levels)
    assert h.expect == "matters" and "two levels of lora_rank" in h.unsure
    q = from_text("Does the learning rate or the LoRA rank matter more?", "question", levels)
    assert {h.variable for h in q} == {"learning_rate", "lora_rank"} and all("several variables" in h.unsure for h in q)
    assert from_text("Bigger models are better.", "hypothesis", levels) == []
    (m,) = from_text("rank 16 beats rank 4 by at least 3 points", "hypothesis", levels)
    assert m.expect == "16 > 4" and m.margin == pytest.approx(0.03)


def test_the_yaml_hypotheses_list_is_exact_and_bad_entries_are_named(tmp_path):
    text = """
experiment:
  name: s
  hypothesis: "something the list overrides"
  question: "Does the learning rate matter?"
variables:
  lora_rank: [8, 32]
  lr: [1e-5, 1e-4]
hypotheses:
  - {variable: rank, expect: "32 > 8", margin: 0.03}
  - {variable: lora_rank, expect: "64 > 8"}
  - {variable: dropout, expect: matters}
  - "rank matters"
"""
    diag = Diagnostics()
    design = parse_yaml_design(yaml.safe_load(text), file=tmp_path / "experiment_summary.yaml", fallback_name="s",
                               diag=diag)
    assert [(h.variable, h.expect, h.margin, h.source) for h in design.hypotheses] == [
        ("lora_rank", "32 > 8", 0.03, "yaml")]
    problems = [w.message for w in diag.warnings]
    assert len(problems) == 3 and all(w.file.endswith("experiment_summary.yaml") for w in diag.warnings)
    assert any("64 or 8 is not a level of lora_rank" in p for p in problems)
    assert any("lora_dropout is not a variable of the design" in p for p in problems)
    both = design_hypotheses(design)  # the list wins over the text; the question adds learning_rate
    assert [(h.variable, h.source) for h in both] == [("lora_rank", "yaml"), ("learning_rate", "question")]


def test_bottom_line_restates_registered_claims_in_at_most_ten_lines():
    exp = demo_like()
    exp.design.hypothesis = "lr 1e-4 beats 1e-5"
    a = analyze(exp, FAST)
    lines = a.section("bottom_line")
    assert 1 <= len(lines) <= 10
    assert [f.rule for f in lines] == ["bottom_best", "bottom_baseline", "bottom_runner_up", "bottom_hypotheses",
                                       "bottom_next"]
    b = a.best[0]
    assert f"rank4_lr0.0001 (epoch 1), {b.value * 100:.1f}% (95% CI {b.ci_low * 100:.1f} to" in lines[0].text
    c = a.comparisons
    base = c[(c["a"] == b.run) & (c["epoch_a"] == b.epoch) & (c["b"] == "base")].iloc[0]
    assert lines[1].text.startswith("It beats the baseline base: +")
    assert lines[1].claim.p_adjusted == base["p_adjusted"] and lines[1].claim.significant
    vb = c[(c["kind"] == "vs_best") & (c["b"] != "base")]
    closest = vb.loc[vb["diff"].abs().idxmin()]
    assert lines[2].data["runner_up"] == closest["b"] and lines[2].claim.p_adjusted == closest["p_adjusted"]
    assert ("no clear winner" in lines[2].text) == (not closest["significant"]) == (not b.clear_winner)
    for f in lines:  # every piece joins into the text; numbers link to where they are tabled
        assert "".join(t for t, _ in f.data["spans"]) == f.text
    assert lines[0].data["spans"][1][1] == "evaluation" and lines[1].data["spans"][1][1] == "comparisons"


def _slugs(md: str) -> set[str]:
    seen: dict[str, int] = {}
    return {github_slug(m, seen) for m in re.findall(r"(?m)^#{1,6} (.+)$", md)}


def test_the_example_report_tells_its_story_first(analysed):
    done = analysed("mid2026", 40)  # `analyze-experiment ROOT` on the example, made once per session
    assert done.exit_code == 0, done.stderr
    out = done.out
    md = (out / "report.md").read_text()
    heads = re.findall(r"(?m)^## (.+)$", md)
    assert heads[:5] == ["Bottom Line", "Question and Hypothesis", "Key Findings", "Recommendations", "Next Steps"]
    assert heads.index("Overview") > heads.index("Next Steps")
    story = md.split(f"*{APPENDIX_NOTE}*", 1)[0]
    words = len(story.split())
    assert words < 1500, words
    bottom = story.split("## Bottom Line", 1)[1].split("\n## ", 1)[0]
    items = [line for line in bottom.splitlines() if line.startswith("- ")]
    assert 3 <= len(items) <= 10
    links = re.findall(r"\]\(#([^)]+)\)", bottom)
    assert {"evaluation-results", "statistical-summary", "question-and-hypothesis"} <= set(links)
    assert set(links) <= _slugs(md)  # every link lands on a heading
    assert re.search(r"\[\d+\.\d% \(95% CI [\d.]+ to [\d.]+%\)\]\(#evaluation-results\)", items[0])
    # the hypothesis is answered, per variable, with a verdict word
    q = story.split("## Question and Hypothesis", 1)[1].split("\n## ", 1)[0]
    assert "learning_rate 1e-4 better than 1e-5" in q and "lora_rank 16 no better than 4" in q
    assert re.findall(r"on capitalization(?: \(match\))?: (?:supported|contradicted|inconclusive) — ", q)
    # one story, on the primary metric: the secondary scorer appears once, in the compact table
    key = story.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    assert "### Which configuration is best" in key and "### Other scorers" in key
    assert "capitalization (includes)" not in key.split("### Other scorers")[0]
    assert re.search(r"\| includes \(accuracy, higher is better\) .*\| (agrees|disagrees) +\|", key)
    assert "partial η²" not in story and "ω²" not in story
    summary = json.loads((out / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    assert [b["text"] for b in summary["bottom_line"]] == [re.sub(r"\[([^]]*)\]\(#[^)]*\)", r"\1", i[2:])
                                                           .replace("\\_", "_") for i in items]
    assert {h["variable"] for h in summary["hypotheses"]} == {"learning_rate", "lora_rank"}
    claims = {c["text"] for c in summary["claims"]}
    assert all(b["text"] in claims for b in summary["bottom_line"] if b["rule"] in ("bottom_baseline",
                                                                                    "bottom_runner_up"))
    html = (out / "report.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', html))
    hrefs = re.findall(r'<ul class="linked">.*?</ul>', html, re.S)[0]
    targets = re.findall(r'href="#([^"]+)"', hrefs)
    assert "table-evaluation" in targets and set(targets) <= ids
    assert "It beats the baseline" in done.stdout or "is not significantly different from the baseline" in done.stdout
    assert "Expected: learning_rate 1e-4 better than 1e-5" in done.stdout


def test_bottom_line_keeps_every_task_within_ten_lines():
    """Six tasks: each keeps its best line, the first ones their tests too, never more than 10 lines."""
    accs = {"a": 0.6, "b": 0.75, "base": 0.3}
    params = {"a": {"lora_rank": 8}, "b": {"lora_rank": 32}, "base": {}}
    tasks = [f"t{i}" for i in range(6)]
    exps = [make_experiment(accs, params=params, controls=("base",), n=80, seed=i, task=t) for i, t in enumerate(tasks)]
    exp = exps[0]
    exp.eval_samples = pd.concat([e.eval_samples for e in exps], ignore_index=True)
    exp.design.tasks = tasks
    lines = analyze(exp, FAST).section("bottom_line")
    assert len(lines) == 10
    assert [f.data["task"] for f in lines if f.rule == "bottom_best"] == tasks
    assert [f.rule for f in lines[:3]] == ["bottom_best", "bottom_baseline", "bottom_runner_up"]
    assert lines[-1].rule == "bottom_next"
