"""``analyze-experiment compare EXP A B``: the numbers are the report's, the flips are recounted."""

from __future__ import annotations

from click.testing import CliRunner

from analyze_experiment import analyze, load
from analyze_experiment.cli import compare_cmd
from analyze_experiment.compare import compare, parse_side

A = "Llama-3.2-1B-Instruct_rank4_lr1e-4"
B = "Llama-3.2-1B-Instruct_rank4_lr1e-5"


def test_metrics_are_the_reports_tests_and_flips_are_recounted(example):
    exp = load(example("mid2026", 40))
    a = analyze(exp)
    c = compare(exp, a, parse_side(f"{A}@1", exp), parse_side(f"{B}@0", exp))
    assert c.params["parameter"].tolist() == ["learning_rate"]
    row = c.metrics[c.metrics["scorer"] == "match"].iloc[0]
    iv = a.intervals[(a.intervals["scorer"] == "match")]
    va = iv[(iv["run"] == A) & (iv["epoch"] == 1)]["value"].iloc[0]
    vb = iv[(iv["run"] == B) & (iv["epoch"] == 0)]["value"].iloc[0]
    assert (row["A"], row["B"], row["A − B"]) == (f"{va:.3f}", f"{vb:.3f}", f"{va - vb:+.3f}")
    pt = a.pair_tests[(a.pair_tests["scorer"] == "match")]
    hit = pt[((pt["a"] == A) & (pt["epoch_a"] == 1) & (pt["b"] == B) & (pt["epoch_b"] == 0))
             | ((pt["a"] == B) & (pt["epoch_a"] == 0) & (pt["b"] == A) & (pt["epoch_b"] == 1))].iloc[0]
    assert row["test"] == hit["test"] and row["significant"] == ("yes" if hit["significant"] else "no")
    s = exp.eval_samples[exp.eval_samples["scorer"] == "match"]
    sa = s[(s["run"] == A) & (s["epoch"] == 1)].set_index("sample_id")["score"]
    sb = s[(s["run"] == B) & (s["epoch"] == 0)].set_index("sample_id")["score"]
    n = int((sa - sb.reindex(sa.index)).abs().gt(0).sum())
    assert c.n_flips[("capitalization", "match")] == n > 0
    flips = c.flips[("capitalization", "match")]
    assert flips["input"].str.startswith("Capitalize the given word:").all()
    first = flips.iloc[0]
    assert first["A score"] == "1.000" and first["B score"] == "0.000"  # A better first


def test_cli_markdown_html_and_usage_errors(example, tmp_path):
    root = example("mid2026", 40)
    r = CliRunner().invoke(compare_cmd, [str(root), A, B])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"# {A} vs {B}")
    for head in ("## Parameters that differ", "## Training", "## Metrics", "## Samples that flipped: capitalization"):
        assert head in r.stdout
    assert "secondary metric" in r.stdout  # includes is described, not tested
    html = tmp_path / "c.html"
    r = CliRunner().invoke(compare_cmd, [str(root), A, B, "--html", str(html)])
    assert r.exit_code == 0 and html.read_text().count("<table") >= 3
    r = CliRunner().invoke(compare_cmd, [str(root), A, "nosuch"])
    assert r.exit_code == 2 and "'nosuch' is not a run" in r.output and A in r.output
    r = CliRunner().invoke(compare_cmd, [str(root), A, f"{B}@x"])
    assert r.exit_code == 2 and "whole number" in r.output
    r = CliRunner().invoke(compare_cmd, [str(root), A, A])
    assert r.exit_code == 2 and "same run" in r.output
