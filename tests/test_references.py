"""Reference numbers (``--reference``, the design's ``references:``): parsing, each test against
scipy/statsmodels, Holm within the reference family, and the CLI's table, sentence and figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as sps
from statsmodels.stats import proportion as smp
from statsmodels.stats.multitest import multipletests

from analyze_experiment.cli import analyze
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.references import (
    ReferenceError_,
    design_references,
    parse_reference,
    reference_table,
)

KEY = ("qa", "match", "accuracy")


def _family(scores: dict[str, list[float]], binary: bool = True, direction: str = "higher") -> Family:
    fam = Family(*KEY, binary=binary, direction=direction)
    for run, xs in scores.items():
        fam.scores[(run, None)] = pd.Series(xs, index=[f"s{i}" for i in range(len(xs))], dtype=float)
    return fam


def test_parse_reference_syntax_and_errors():
    r = parse_reference("Llama-3.2-1B paper=0.71")
    assert (r.name, r.value, r.n, r.task, r.metric) == ("Llama-3.2-1B paper", 0.71, None, None, None)
    r = parse_reference("board=0.8,n=500,ci=0.76:0.83,task=qa,metric=accuracy,source=HF")
    assert (r.n, r.ci_low, r.ci_high, r.task, r.metric, r.source) == (500, 0.76, 0.83, "qa", "accuracy", "HF")
    for bad, why in [("paper", "no '='"), ("paper=high", "not a number"), ("paper=0.7,n=2.5", "whole number"),
                     ("paper=0.7,ci=0.8:0.9", "outside its interval"), ("paper=0.7,colour=red", "unknown field"),
                     ("=0.7", "needs a name"), ("paper=nan", "finite")]:
        with pytest.raises(ReferenceError_, match=why):
            parse_reference(bad)


def test_design_references_keep_good_entries_and_name_bad_ones():
    refs, problems = design_references([
        {"name": "paper", "value": 0.71, "task": "qa", "n": 200, "source": "Smith 2025"},
        {"name": "board", "value": "0.8", "ci": [0.7, 0.9]},
        {"name": "typo", "valu": 0.5},
        "not a mapping",
    ])
    assert [r.name for r in refs] == ["paper", "board"]
    assert refs[1].value == 0.8 and (refs[1].ci_low, refs[1].ci_high) == (0.7, 0.9)
    assert problems[0].startswith("references[2]") and "valu" in problems[0]
    assert problems[1] == "references[3] is not a mapping; ignored"
    assert design_references({"a": 1}) == ([], ["references is not a list; ignored"])


def test_each_test_equals_scipy_and_statsmodels_and_holm_is_within_the_family():
    rng = np.random.default_rng(3)
    a = (rng.random(120) < 0.8).astype(float)
    b = (rng.random(120) < 0.6).astype(float)
    fam = _family({"a": list(a), "b": list(b)})
    fixed, n_known, ci_known = (parse_reference(t) for t in
                                ("fixed=0.7", "withn=0.7,n=300", "withci=0.7,ci=0.64:0.76"))
    df, unmatched = reference_table([fam], [fixed, n_known, ci_known], {KEY}, confidence=0.95)
    assert not unmatched and len(df) == 6
    assert set(df["family"]) == {"reference: qa/match/accuracy"}

    row = df[(df["reference"] == "fixed") & (df["run"] == "a")].iloc[0]
    exact = sps.binomtest(int(a.sum()), len(a), p=0.7)
    ci = exact.proportion_ci(confidence_level=0.95, method="wilson")
    assert row["test"] == "binomial_exact"
    assert row["p_value"] == pytest.approx(exact.pvalue, rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low - 0.7, ci.high - 0.7))
    assert row["diff"] == pytest.approx(a.mean() - 0.7)

    row = df[(df["reference"] == "withn") & (df["run"] == "b")].iloc[0]
    res = smp.test_proportions_2indep(int(b.sum()), 120, 210, 300, method="agresti-caffo", compare="diff")
    lo, hi = smp.confint_proportions_2indep(int(b.sum()), 120, 210, 300, method="newcomb", compare="diff")
    assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))

    row = df[(df["reference"] == "withci") & (df["run"] == "a")].iloc[0]
    z = sps.norm.ppf(0.975)
    s = math.hypot(a.std(ddof=1) / math.sqrt(120), (0.76 - 0.64) / (2 * z))
    assert row["test"] == "z_two_estimates"
    assert row["p_value"] == pytest.approx(2 * sps.norm.sf(abs((a.mean() - 0.7) / s)), rel=1e-12)
    assert row["ci_high"] - row["ci_low"] == pytest.approx(2 * z * s)

    expected = multipletests(df["p_value"].to_numpy(), method="holm")[1]
    assert df["p_adjusted"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert df["significant"].tolist() == list(expected < 0.05)


def test_continuous_scores_use_the_one_sample_t_test_and_direction_decides_better():
    x = [3.1, 2.4, 5.0, 4.2, 3.3, 2.9, 3.8, 4.4]
    fam = _family({"r": x}, binary=False, direction="lower")
    fam.metric = "accuracy"  # keep KEY; the direction is what matters here
    df, _ = reference_table([fam], [parse_reference("old model=4.5")], {KEY})
    row = df.iloc[0]
    t = sps.ttest_1samp(x, 4.5)
    assert row["test"] == "one_sample_t"
    assert row["statistic"] == pytest.approx(t.statistic) and row["p_value"] == pytest.approx(t.pvalue)
    ci = t.confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low - 4.5, ci.high - 4.5))
    assert row["better"]  # below 4.5 on a lower-is-better metric


def test_a_reference_for_another_task_or_metric_matches_nothing():
    fam = _family({"a": [1, 0, 1, 1]})
    df, unmatched = reference_table([fam], [parse_reference("p=0.5,task=other"), parse_reference("q=0.5,metric=f1")],
                                    {KEY})
    assert df.empty and [r.name for r in unmatched] == ["p", "q"]
    df, unmatched = reference_table([fam], [parse_reference("p=0.5,metric=accuracy")], set())  # metric named: used
    assert len(df) == 1 and not unmatched


@pytest.fixture
def example_root(example_copy):
    return example_copy("mid2026", 40)


def test_cli_reference_reaches_table_sentence_summary_and_figures(example_root):
    r = CliRunner().invoke(analyze, [str(example_root), "--quiet", "--no-cache", "--svg", "--reference",
                                     "Llama paper=0.71,source=Smith et al. 2025", "--reference", "board=0.95,n=400"])
    assert r.exit_code == 0, r.output
    out = example_root / "analysis"
    summary = json.loads((out / "summary.json").read_text())
    refs = pd.DataFrame(summary["references"])
    best = summary["best"]
    assert set(refs["reference"]) == {"Llama paper", "board"}
    same_epoch = refs["epoch"].fillna(-1) == (best["epoch"] if best["epoch"] is not None else -1)
    lead = refs[(refs["reference"] == "Llama paper") & (refs["run"] == best["run"]) & same_epoch]
    assert len(lead) == 1
    lead = lead.iloc[0]
    assert lead["value"] == pytest.approx(best["value"])
    report = (out / "report.md").read_text()
    verdict = "significantly above" if lead["significant"] and lead["diff"] > 0 else (
        "significantly below" if lead["significant"] else "not significantly different from")
    sentence = [ln for ln in report.splitlines() if "the reference Llama paper" in ln]
    assert len(sentence) == 1 and verdict in sentence[0] and "Smith et al. 2025" in sentence[0]
    assert best["run"] in sentence[0]
    claims = [c for c in summary["claims"] if c["family"].startswith("reference:")]
    assert len(claims) == 2 and all(c["correction"] == "holm" for c in claims)
    fams = {f["family"]: f for f in summary["families"]}
    fam = fams[lead["family"]]
    assert fam["size"] == len(refs) and fam["alpha"] == pytest.approx(0.05)
    assert "Runs against reference numbers" in report
    assert (out / "tables" / "references.csv").exists()
    slug = next(p.stem for p in (out / "plots").glob("final_*match*.svg"))  # the primary target
    for name in (slug, slug.replace("final_", "effects_")):
        assert 'id="reference' in (out / "plots" / f"{name}.svg").read_text(), name


def test_design_references_and_bad_ones_are_named(example_root):
    design = example_root / "experiment_summary.yaml"
    design.write_text(design.read_text() + "\nreferences:\n  - {name: paper, value: 0.5, task: capitalization}\n"
                      "  - {name: broken, value: high}\n  - {name: elsewhere, value: 0.5, task: nosuchtask}\n")
    # --format html: no PNG figures to draw (only summary.json is checked)
    r = CliRunner().invoke(analyze, [str(example_root), "--quiet", "--no-cache", "--format", "html"])
    assert r.exit_code == 0, r.output
    summary = json.loads((example_root / "analysis" / "summary.json").read_text())
    assert {x["reference"] for x in summary["references"]} == {"paper"}
    msgs = [(w["file"] or "", w["message"]) for w in summary["warnings"]]
    assert any(f.endswith("experiment_summary.yaml") and "references[1]" in m and "high" in m for f, m in msgs)
    assert any("'elsewhere'" in m and "matches no evaluated task" in m for _, m in msgs)


def test_cli_bad_reference_is_a_usage_error(example_root):
    r = CliRunner().invoke(analyze, [str(example_root), "--quiet", "--reference", "paper"])
    assert r.exit_code == 2 and "--reference" in r.output and "NAME=VALUE" in r.output


def test_interactive_figures_draw_the_reference(example):
    from analyze_experiment import analyze, load
    from analyze_experiment.experiment import Options
    from plotly_views import validated_figures

    exp = load(example("mid2026", 40))
    a = analyze(exp, Options(references=[parse_reference("paper=0.71")]))
    figs = validated_figures(exp, a)
    primary = {(r.task, r.scorer) for r in a.references.itertuples()}
    assert primary == {("capitalization", "match")}  # the task's primary metric only
    drawn = set()
    for key in [k for k in figs if k.startswith(("final_", "effects_"))]:
        shapes = figs[key].layout.shapes
        if any(sh.line.dash == "dash" and 0.71 in (sh.x0, sh.y0) for sh in shapes):
            assert any("paper (0.71)" in (ann.text or "") for ann in figs[key].layout.annotations), key
            drawn.add(key)
    assert drawn and all("_match" in k for k in drawn), drawn
    assert {k.split("_", 1)[0] for k in drawn} == {"final", "effects"}
