"""Metric direction, primary metrics, continuous scorers and parse failures, end to end.

The sweep (tests/fixtures/evals/scorer_sweep/continuous, made by make_continuous.py with
inspect-ai and mockllm) is scored by our own scorers that follow the upstream regression
convention: value = |prediction − target|, "I" for an answer without a number, metadata
prediction/target_value/error, header mae/rmse/r_squared/parse_rate and no accuracy. Its runs:
an untrained base (MAE 12), the best (MAE 4) and a run with 16 of 60 unparsable answers whose
parsed MAE is 5 but whose raw mean (failures counted as 0) is 3.67, the lowest.

Truth from outside the package: inspect-ai's own log reader, numpy, statsmodels' exact
McNemar, scikit-learn's Brier score, jsonschema.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import value_to_float
from sklearn.metrics import brier_score_loss
from statsmodels.stats.contingency_tables import mcnemar

from analyze_experiment import load
from analyze_experiment.cli import analyze
from analyze_experiment.conclude import analyze as run_stats
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Options
from analyze_experiment.ingest.design_markdown import parse_markdown_design
from analyze_experiment.metrics import resolve_direction

SWEEP = Path(__file__).parent / "fixtures" / "evals" / "scorer_sweep"
CONT = SWEEP / "continuous"
SCHEMA = Path(__file__).parents[1] / "src" / "analyze_experiment" / "schema" / "summary.schema.json"
BASE, GOOD, FLAKY = "Llama-3.2-1B_base", "rank4_lr1e-4", "rank16_lr1e-4"
TO_FLOAT = value_to_float()

DESIGN = """\
experiment:
  name: "age_regression"
  question: "Which fine-tune predicts age best?"
variables:
  lora_rank: [4, 16]
runs:
  - name: "rank4_lr1e-4"
    type: "fine-tuned"
    parameters: {lora_rank: 4}
  - name: "rank16_lr1e-4"
    type: "fine-tuned"
    parameters: {lora_rank: 16}
  - name: "Llama-3.2-1B_base"
    type: "control"
    parameters: {}
evaluation:
  scorers: [continuous_scorer, verbosity]
  tasks: [acs_age]
"""


def _cli(root: Path, out: Path, *extra: str, markdown: bool = True) -> tuple[dict, str | None]:
    """(summary.json, report.md); ``markdown=False`` writes report.html instead, which draws no PNG
    figures (its charts are interactive), for the runs whose summary is all that is checked."""
    result = CliRunner().invoke(analyze, [str(root), "--out", str(out), "--format", "md" if markdown else "html",
                                          "--json", "--quiet", "--no-cache", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    return summary, (out / "report.md").read_text(encoding="utf-8") if markdown else None


def _copy(tmp: Path, design: str | None = None) -> Path:
    root = tmp / "continuous"
    shutil.copytree(CONT, root)
    if design is not None:
        (root / "experiment_summary.yaml").write_text(design, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("cont")
    return _cli(_copy(tmp), tmp / "out")


def _logs() -> dict[str, list]:
    """Per run, the continuous scorer's per-sample scores read with inspect-ai's reader."""
    out = {}
    for path in sorted(CONT.glob("*/eval/logs/acs_age.eval")):
        log = read_eval_log(str(path))
        out[path.parts[-4]] = [(str(s.id), s.scores["continuous_scorer"]) for s in log.samples]
    return out


def _best(summary: dict, scorer: str, metric: str) -> dict:
    return next(b for b in summary["best_by_task"] if b["scorer"] == scorer and b["metric"] == metric)


def test_lowest_mae_is_best_and_the_report_says_lower_is_better(default_run: tuple[dict, str]) -> None:
    summary, report = default_run
    logs = _logs()
    raw = {run: np.mean([TO_FLOAT(sc.value) for _, sc in rows]) for run, rows in logs.items()}
    # the trap: counting unparsable answers as zero error would make the flaky run the best
    assert min(raw, key=raw.get) == FLAKY
    best = summary["best"]
    assert (best["scorer"], best["metric"], best["run"], best["direction"]) == ("continuous_scorer", "mae", GOOD, "lower")
    assert best["value"] == pytest.approx(4.0)
    assert best["clear_winner"] is True
    assert "has the lowest mae (lower is better)" in report
    assert "mae (lower is better) [95% CI]" in report.replace("\\[", "[").replace("\\]", "]")
    # the untrained base is worse than the baseline-free best, and the report says which way
    assert "significantly below (better than) the baseline" in report
    assert not any(b["run"] == FLAKY and b["metric"] == "mae" for b in summary["best_by_task"])


def test_parse_failures_are_named_and_not_rewarded(default_run: tuple[dict, str]) -> None:
    summary, report = default_run
    warns = [w for w in summary["warnings"] if "parse failures" in w["message"]]
    assert len(warns) == 1
    assert warns[0]["file"] == f"{FLAKY}/eval/logs/acs_age.eval"
    assert "16 of 60" in warns[0]["message"] and FLAKY in warns[0]["message"]
    assert f"{FLAKY} 16 of 60 (26.7%" in report
    row = next(r for r in summary["continuous"] if r["run"] == FLAKY)
    assert (row["n"], row["n_parsed"], row["n_unparsed"]) == (60, 44, 16)
    # Wilson interval of 44/60 at 95%
    z = 1.959963984540054
    p, n = 44 / 60, 60
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (row["parse_ci_low"], row["parse_ci_high"]) == (pytest.approx(centre - half), pytest.approx(centre + half))
    # the MAE of the flaky run covers its 44 parsed answers only
    mae_iv = [c for c in summary["comparisons"] if c["metric"] == "mae" and FLAKY in (c["a"], c["b"])
              and GOOD in (c["a"], c["b"])]
    assert mae_iv and mae_iv[0]["n_paired"] == 44


def test_mae_rmse_r2_equal_numpy(default_run: tuple[dict, str]) -> None:
    summary, _ = default_run
    for run, rows in _logs().items():
        ok = [sc.metadata for _, sc in rows if sc.metadata.get("prediction") is not None]
        err = np.array([m["prediction"] - m["target_value"] for m in ok])
        y = np.array([m["target_value"] for m in ok])
        r = next(c for c in summary["continuous"] if c["run"] == run)
        assert r["mae"] == pytest.approx(np.mean(np.abs(err)))
        assert r["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)))
        assert r["r_squared"] == pytest.approx(1 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2))
        assert r["header_agrees"] is True


def test_paired_tests_use_absolute_error_and_mcnemar_on_parse(default_run: tuple[dict, str]) -> None:
    summary, _ = default_run
    logs = _logs()
    parsed = {run: {sid: sc.metadata.get("prediction") is not None for sid, sc in rows} for run, rows in logs.items()}
    abserr = {run: {sid: abs(sc.metadata["error"]) for sid, sc in rows if sc.metadata.get("error") is not None}
              for run, rows in logs.items()}
    comp = summary["comparisons"]
    c = next(c for c in comp if c["metric"] == "mae" and {c["a"], c["b"]} == {GOOD, BASE})
    assert c["test"] == "paired_permutation" and c["a"] == GOOD
    common = sorted(set(abserr[GOOD]) & set(abserr[BASE]))
    assert c["diff"] == pytest.approx(np.mean([abserr[GOOD][s] - abserr_b for s, abserr_b in
                                               ((s, abserr[BASE][s]) for s in common)]))
    assert c["diff"] < 0  # lower is better: the best's error is smaller
    m = next(c for c in comp if c["metric"] == "parse_rate" and {c["a"], c["b"]} == {BASE, FLAKY})
    ids = sorted(parsed[BASE])
    a_only = sum(parsed[m["a"]][s] and not parsed[m["b"]][s] for s in ids)
    b_only = sum(parsed[m["b"]][s] and not parsed[m["a"]][s] for s in ids)
    both = sum(parsed[m["a"]][s] and parsed[m["b"]][s] for s in ids)
    table = [[both, a_only], [b_only, len(ids) - both - a_only - b_only]]
    assert m["test"] == "mcnemar_exact"
    assert m["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    fams = {f["family"] for f in summary["families"]}
    assert "checkpoints: acs_age/continuous_scorer/parse_rate" in fams


def test_summary_schema_v2_direction_and_primary(default_run: tuple[dict, str]) -> None:
    summary, _ = default_run
    jsonschema.validate(summary, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert summary["schema_version"] == 2
    sc = {s["scorer"]: s for s in summary["scorers"]}
    assert (sc["continuous_scorer"]["primary_metric"], sc["continuous_scorer"]["direction"]) == ("mae", "lower")
    assert sc["continuous_scorer"]["metrics"]["rmse"]["direction"] == "lower"
    assert sc["continuous_scorer"]["metrics"]["r_squared"]["direction"] == "higher"
    assert sc["continuous_scorer"]["metrics"]["parse_rate"] == {
        "direction": "higher", "direction_source": "registry", "primary": False, "compared": True, "note": None}
    words = sc["verbosity"]["metrics"]["words"]
    # an unknown metric of a numeric scorer is described, never ranked, and the note says how to declare it
    assert words["direction"] == "descriptive" and "--metric-direction words=lower" in words["note"]
    assert not any(b["scorer"] == "verbosity" for b in summary["best_by_task"])


def test_direction_from_cli_flips_the_best(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lower, _ = _cli(root, tmp_path / "lo", "--metric-direction", "words=lower", markdown=False)
    higher, _ = _cli(root, tmp_path / "hi", "--metric-direction", "words=higher", markdown=False)
    assert _best(lower, "verbosity", "words")["run"] == GOOD  # one word per answer
    assert _best(higher, "verbosity", "words")["run"] == BASE  # eight words per answer
    src = {s["scorer"]: s for s in lower["scorers"]}["verbosity"]["metrics"]["words"]
    assert (src["direction"], src["direction_source"]) == ("lower", "cli")
    # declaring a registry metric the other way flips its best too
    flipped, report = _cli(root, tmp_path / "mae", "--metric-direction", "mae=higher")
    assert _best(flipped, "continuous_scorer", "mae")["run"] == BASE
    assert "has the highest mae (higher is better)" in report


def test_direction_from_the_design_and_cli_wins(tmp_path: Path) -> None:
    root = _copy(tmp_path, DESIGN + "  metrics:\n    words: lower\n")
    by_design, report = _cli(root, tmp_path / "d")
    b = _best(by_design, "verbosity", "words")
    assert b["run"] == GOOD and b["direction"] == "lower"
    src = {s["scorer"]: s for s in by_design["scorers"]}["verbosity"]["metrics"]["words"]
    assert src["direction_source"] == "design"
    assert "words (lower is better)" in report
    by_cli, _ = _cli(root, tmp_path / "c", "--metric-direction", "words=higher", markdown=False)
    assert _best(by_cli, "verbosity", "words")["run"] == BASE


def test_markdown_design_declares_directions(tmp_path: Path) -> None:
    text = ("# age_regression\n\n## Configuration\n\n- epochs: 1\n- metrics: words=lower, verbosity/mean=higher, "
            "bad=sideways\n")
    diag = Diagnostics(root=tmp_path)
    design = parse_markdown_design(text, file=tmp_path / "experiment_summary.md", fallback_name="x", diag=diag)
    assert design.metrics == {"words": "lower", "verbosity/mean": "higher"}
    assert "epochs" in design.controls and "metrics" not in design.controls
    assert any("bad=sideways" in w.message for w in diag.warnings)


def test_primary_metric_override_and_saturation(tmp_path: Path) -> None:
    summary, report = _cli(_copy(tmp_path), tmp_path / "p", "--primary-metric", "continuous_scorer=parse_rate")
    assert summary["best"]["metric"] == "parse_rate"
    sc = {s["scorer"]: s for s in summary["scorers"]}["continuous_scorer"]
    assert sc["primary_metric"] == "parse_rate" and sc["metrics"]["mae"]["primary"] is False
    # 60 of 60 parsed: at the top of a higher-is-better rate, flagged in the table and the findings
    assert "1.000 [0.940, 1.000] (saturated)" in report.replace("\\[", "[").replace("\\]", "]")
    assert "parse_rate is saturated (higher is better" in report


def test_bad_cli_values_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--metric-direction", "words=sideways"], ["--metric-direction", "words"],
                 ["--primary-metric", "continuous_scorer"]):
        root = _copy(tmp_path / args[1].replace("=", "_"))  # the fixture itself is never written to
        result = CliRunner().invoke(analyze, [str(root), "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, result.output


def test_resolve_direction_precedence() -> None:
    assert resolve_direction("s", "mae", binary=False)[:2] == ("lower", "registry")
    assert resolve_direction("s", "expected_calibration_error", binary=False)[0] == "lower"
    assert resolve_direction("s", "mean_risk_score", binary=False)[0] == "descriptive"
    assert resolve_direction("judge", "mean", binary=True)[:2] == ("higher", "default")
    assert resolve_direction("s", "words", binary=False, design={"words": "lower"}, cli={"words": "higher"})[:2] \
        == ("higher", "cli")
    assert resolve_direction("s", "words", binary=False, design={"s/words": "lower"})[:2] == ("lower", "design")


def test_risk_scorer_brier_family_is_lower_is_better() -> None:
    exp = load(SWEEP / "risk")
    a = run_stats(exp, Options(n_permutations=2000))
    fam = a.intervals[a.intervals["metric"] == "brier_score"].set_index("run")
    for path in sorted((SWEEP / "risk").glob("*/eval/logs/*.eval")):
        log = read_eval_log(str(path))
        meta = [s.scores["stated_risk"].metadata for s in log.samples]
        ok = [m for m in meta if m.get("risk_score") is not None]
        y = [int(m["target"] == list(m["option_probs"])[-1]) for m in ok]
        assert fam.loc[path.parts[-4], "value"] == pytest.approx(brier_score_loss(y, [m["risk_score"] for m in ok]))
    best = next(b for b in a.best if b.metric == "brier_score")
    assert best.run == fam["value"].idxmin() == GOOD
    row = a.metrics[(a.metrics["metric"] == "brier_score")].iloc[0]
    assert (row["direction"], bool(row["primary"])) == ("lower", True)
    comp = a.comparisons[a.comparisons["metric"] == "brier_score"]
    assert set(comp["test"]) == {"paired_permutation"}
    assert "checkpoints: acs_income/stated_risk/brier_score" in set(a.families["family"])


def test_seed_level_best_config_follows_the_direction() -> None:
    import pandas as pd

    from analyze_experiment.stats.seeds import seed_tables

    rng = np.random.default_rng(2)
    rows, cfg = [], {}
    for c, mu in (("A", 4.0), ("B", 6.0)):
        for s in range(3):
            run = f"{c}{s}"
            rows.append({"task": "t", "scorer": "reg", "metric": "mae", "run": run, "epoch": 0.0,
                         "value": mu + rng.normal(0, 0.1), "direction": "lower"})
            cfg[run] = f"cfg={c}"
    _, comp = seed_tables(pd.DataFrame(rows), pd.Series(cfg), n_boot=100)
    assert (comp["a"] == "cfg=A").all() and (comp["diff"] < 0).all()  # the lower MAE is the best config


def test_header_disagreeing_with_samples_is_a_warning_naming_the_log() -> None:
    exp = load(CONT)
    sc = exp.eval_scores
    hit = (sc["run"] == GOOD) & (sc["metric"] == "mae")
    exp.eval_scores.loc[hit, "value"] = 3.0  # as if the header had been computed on other samples
    a = run_stats(exp, Options(n_permutations=500))
    row = a.continuous.set_index("run").loc[GOOD]
    assert row["mae"] == pytest.approx(4.0) and row["header_mae"] == 3.0 and not row["header_agrees"]
    warns = [w for w in exp.diagnostics.warnings if "disagree with the log header" in w.message]
    assert [w.file for w in warns] == [f"{GOOD}/eval/logs/acs_age.eval"]
    assert "mae 4 vs 3" in warns[0].message
    # the ranking uses the samples, not the header
    assert next(b for b in a.best if b.metric == "mae").value == pytest.approx(4.0)


def test_declarations_that_name_nothing_are_warnings() -> None:
    exp = load(CONT)
    exp.design.metrics = {"wrods": "lower"}
    opts = Options(n_permutations=500, metric_directions={"maee": "higher"},
                   primary_metrics={"continous_scorer": "rmse", "continuous_scorer": "nope"})
    a = run_stats(exp, opts)
    msgs = [w.message for w in exp.diagnostics.warnings]
    assert any(m.startswith("--metric-direction: maee names no metric") for m in msgs)
    assert any(m.startswith("the design's evaluation.metrics: wrods names no metric") for m in msgs)
    assert any(m.startswith("--primary-metric continous_scorer=rmse: no scorer") for m in msgs)
    assert any(m.startswith("--primary-metric continuous_scorer=nope") and "mae is used" in m for m in msgs)
    assert next(b for b in a.best if b.scorer == "continuous_scorer" and b.metric == "mae").run == GOOD
