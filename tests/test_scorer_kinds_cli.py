"""Risk scorers, two-class scorers and subgroups through the real command line.

The sweeps are real inspect-ai logs (tests/fixtures/evals/scorer_sweep, made with mockllm by
make_risk_binary.py). Truth comes from outside the package: inspect-ai's own log reader for
the per-sample values, scikit-learn for AUC, Brier and confusion matrices, numpy for the
binned calibration errors, scipy for the heterogeneity ANOVA and statsmodels for Holm. The
DeLong p-values are checked against stats/delong.py on the same samples (that module is
checked against the published example and the O(m·n) definition in test_risk_scorers.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import value_to_float
from scipy import stats
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

import analyze_experiment
from analyze_experiment.cli import analyze
from analyze_experiment.stats.delong import paired_test

SWEEP = Path(__file__).parent / "fixtures" / "evals" / "scorer_sweep"
SCHEMA = json.loads((Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json").read_text())
BASE, GOOD, SHARP = "Llama-3.2-1B_base", "rank4_lr1e-4", "rank16_lr1e-4"
RUNS = (BASE, GOOD, SHARP)
TO_FLOAT = value_to_float()


def _report(tmp_path: Path, kind: str) -> tuple[Path, Path, dict]:
    src = tmp_path / kind
    shutil.copytree(SWEEP / kind, src)
    out = tmp_path / f"{kind}_report"
    result = CliRunner().invoke(analyze, [str(src), "--out", str(out), "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, SCHEMA)
    return src, out, summary


def _log(root: Path, run: str):
    return read_eval_log(str(next((root / run).glob("eval/logs/*.eval"))))


def _binned(p: np.ndarray, y: np.ndarray) -> float:
    """10 equal-width bins (lo, hi], 0 in the first: weighted |mean p − mean y|."""
    total = 0.0
    for b in range(10):
        m = ((p > b / 10) & (p <= (b + 1) / 10)) | ((b == 0) & (p == 0))
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return total


def _risk_truth(root: Path) -> dict[str, dict[str, tuple[float, int]]]:
    """run -> sample id -> (risk, outcome) for the outputs the scorer could read."""
    out = {}
    for run in RUNS:
        rows = {}
        for s in _log(root, run).samples:
            meta = s.scores["stated_risk"].metadata
            if meta["risk_score"] is not None:
                rows[str(s.id)] = (float(meta["risk_score"]), int(meta["target"] == list(meta["option_probs"])[-1]))
        out[run] = rows
    return out


@pytest.fixture(scope="module")
def risk_report(tmp_path_factory):
    return _report(tmp_path_factory.mktemp("risk"), "risk")


@pytest.fixture(scope="module")
def binary_report(tmp_path_factory):
    return _report(tmp_path_factory.mktemp("binary"), "binary")


def test_risk_values_in_summary_and_report_equal_sklearn(risk_report):
    src, out, summary = risk_report
    truth = _risk_truth(src)
    cands = {c["run"]: c for c in summary["risk"]["candidates"]}
    md = (out / "report.md").read_text()
    for run in RUNS:
        p = np.array([v[0] for v in truth[run].values()])
        y = np.array([v[1] for v in truth[run].values()])
        c = cands[run]
        assert c["auc"] == pytest.approx(roc_auc_score(y, p))
        assert c["brier"] == pytest.approx(brier_score_loss(y, p))
        assert c["risk_calibration_error"] == pytest.approx(_binned(p, y))
        right = ((p >= 0.5).astype(int) == y).astype(float)
        assert c["ece"] == pytest.approx(_binned(np.maximum(p, 1 - p), right))
        tn, fp, fn, tp = confusion_matrix(y, (p >= 0.5).astype(int), labels=[0, 1]).ravel()
        assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (tp, fp, tn, fn)
        assert c["n_unparsed"] == 80 - len(p)
        # the report's risk table shows the same numbers
        row = next(line for line in md.splitlines() if line.startswith(f"| acs_income | stated_risk | {run} "))
        row = row.replace("\\[", "[")
        assert f"{roc_auc_score(y, p):.3f} [" in row and f"{brier_score_loss(y, p):.3f} [" in row
        assert f"| {_binned(np.maximum(p, 1 - p), right):.3f} |" in row
    assert cands[BASE]["n_unparsed"] == 8
    # calibrated beats overconfident on Brier at the same ranking (same AUC)
    assert min(cands, key=lambda r: cands[r]["brier"]) == GOOD
    assert cands[GOOD]["auc"] == pytest.approx(cands[SHARP]["auc"])


def test_delong_tests_holm_and_the_plan(risk_report):
    src, _, summary = risk_report
    truth = _risk_truth(src)
    tests = summary["risk"]["auc_tests"]
    assert len(tests) == 3
    for t in tests:
        common = sorted(set(truth[t["a"]]) & set(truth[t["b"]]))
        y = np.array([truth[t["a"]][i][1] for i in common])
        ref = paired_test(y, np.array([truth[t["a"]][i][0] for i in common]),
                          np.array([truth[t["b"]][i][0] for i in common]))
        assert t["p_value"] == pytest.approx(ref.p_value) and t["diff"] == pytest.approx(ref.diff)
        assert t["n_paired"] == len(common)
    holm = multipletests([t["p_value"] for t in tests], method="holm")[1]
    assert [t["p_holm"] for t in tests] == pytest.approx(list(holm))
    fam = next(f for f in summary["families"] if f["kind"] == "discrimination")
    assert fam["family"] == "discrimination: acs_income/stated_risk/auc" and fam["size"] == 3
    n_fam = sum(1 for f in summary["families"]
                if f["kind"] in ("checkpoints", "configurations", "effects", "outliers", "discrimination",
                                 "heterogeneity") and f["confirmatory"])
    assert fam["alpha"] == pytest.approx(0.05 / n_fam)
    for t, h in zip(tests, holm, strict=True):
        assert t["p_adjusted"] == pytest.approx(min(1.0, h * n_fam))
        assert t["family"] == fam["family"]
    # both trained runs rank the samples better than the base model; the two trained runs rank alike
    sig = {frozenset((t["a"], t["b"])) for t in tests if t["significant"]}
    assert sig == {frozenset((GOOD, BASE)), frozenset((SHARP, BASE))}
    claims = [c for c in summary["claims"] if c["family"] == fam["family"]]
    assert {c["rule"] for c in claims} == {"auc_difference", "auc_not_distinguishable"}
    assert all(c["test"] == "delong" for c in claims)
    asserted = [c for c in claims if c["significant"]]
    assert len(asserted) == 2 and all(BASE in c["text"] and "AUC" in c["text"] for c in asserted)


def test_risk_figures_tables_and_notes(risk_report):
    _, out, _ = risk_report
    for name in ("roc_acs_income_stated_risk", "reliability_acs_income_stated_risk"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 5000
    html = (out / "report.html").read_text()
    for table in ("risk", "auc_tests"):
        assert f'id="table-{table}"' in html
    assert "Risk Scorers" in html and "DeLong" in html and "0.817 [0.725, 0.910]" in html
    assert 'id="fig-roc_acs_income_stated_risk-chart"' in html  # the interactive version
    md = (out / "report.md").read_text()
    assert "plots/roc_acs_income_stated_risk.png" in md
    dq = md.split("## Data Quality", 1)[1]
    assert f"{BASE} on acs_income: 8 of 80 outputs (10%) could not be read as a probability" in dq
    for name in ("risk", "auc_tests", "risk_curves"):
        assert (out / "tables" / f"{name}.csv").exists()


def _binary_truth(root: Path) -> dict[str, list[tuple[str, int, str | None, float, str]]]:
    """run -> [(sample id, outcome, predicted label or None for other, score, region)]."""
    out = {}
    for run in RUNS:
        rows = []
        for s in _log(root, run).samples:
            sc = s.scores["match"]
            ans = str(sc.answer).strip()
            rows.append((str(s.id), int(s.target == "1"), ans if ans in ("0", "1") else None, TO_FLOAT(sc.value),
                         s.metadata["region"]))
        out[run] = rows
    return out


def test_classification_equals_sklearn(binary_report):
    src, out, summary = binary_report
    truth = _binary_truth(src)
    rows = {r["run"]: r for r in summary["classification"]}
    for run in RUNS:
        answered = [(y, int(p)) for _, y, p, _, _ in truth[run] if p is not None]
        tn, fp, fn, tp = confusion_matrix([a for a, _ in answered], [b for _, b in answered], labels=[0, 1]).ravel()
        r = rows[run]
        assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (tp, fp, tn, fn)
        assert r["other"] == sum(p is None for _, _, p, _, _ in truth[run])
        assert r["positive_label"] == "1" and r["prevalence"] == pytest.approx(0.3)
        if r["other"] == 0:
            y = [y for _, y, _, _, _ in truth[run]]
            pred = [int(p) for _, _, p, _, _ in truth[run]]
            assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
            if tp + fp:
                assert r["f1"] == pytest.approx(f1_score(y, pred))
    assert rows[BASE]["other"] == 10
    # the constant "0" run: accuracy is the share of negatives, balanced accuracy 0.5
    assert rows[SHARP]["accuracy"] == pytest.approx(0.7) and rows[SHARP]["balanced_accuracy"] == pytest.approx(0.5)
    md = (out / "report.md").read_text()
    dq = md.split("## Data Quality", 1)[1]
    assert "The eval set of acs_employment is imbalanced: 30% of its 90 samples are '1'" in dq
    assert f"{SHARP} never predicts '1'" in dq
    assert f"{BASE} on acs_employment: 10 of 90 answers (11%) are neither '0' nor '1'" in dq
    assert 'id="table-classification"' in (out / "report.html").read_text()


def test_subgroup_heterogeneity_equals_scipy(binary_report):
    src, out, summary = binary_report
    truth = _binary_truth(src)
    levels = summary["subgroups"]["levels"]
    for run in RUNS:
        for region in ("north", "south", "east"):
            x = [s for _, _, _, s, g in truth[run] if g == region]
            row = next(r for r in levels if r["run"] == run and r["level"] == region and r["source"] == "samples")
            assert row["key"] == "region" and row["value"] == pytest.approx(np.mean(x)) and row["n"] == len(x)
            # inspect's grouped(accuracy(), "region") header value sits beside it
            header = _log(src, run).results.scores[0].metrics[region].value
            assert row["header_value"] == pytest.approx(header)
    tests = summary["subgroups"]["tests"]
    # the best (GOOD) against the baseline (the base model), across the three regions
    assert len(tests) == 1
    t = tests[0]
    assert (t["a"], t["b"], t["key"]) == (GOOD, BASE, "region")
    good = {i: s for i, _, _, s, _ in truth[GOOD]}
    groups: dict[str, list[float]] = {}
    for i, _, _, s, g in truth[BASE]:
        groups.setdefault(g, []).append(good[i] - s)
    f, p = stats.f_oneway(*[groups[k] for k in sorted(groups)])
    assert t["statistic"] == pytest.approx(f) and t["p_value"] == pytest.approx(p)
    assert t["p_holm"] == pytest.approx(multipletests([p], method="holm")[1][0])
    n_fam = sum(1 for x in summary["families"] if x["kind"] in ("checkpoints", "heterogeneity") and x["confirmatory"])
    assert t["p_adjusted"] == pytest.approx(min(1.0, p * n_fam))
    # the gain is +0 pp in east and large elsewhere: significant, and said so with its family
    assert t["significant"] is True and t["gain_low_level"] == "east"
    claim = next(c for c in summary["claims"] if c["rule"] == "gain_heterogeneous")
    assert claim["family"] == "heterogeneity: acs_employment/match/accuracy" and claim["significant"]
    assert "east" in claim["text"] and claim["test"] == "anova_interaction"
    html = (out / "report.html").read_text()
    assert 'id="table-subgroups"' in html and 'id="table-subgroup_tests"' in html
    # the report's subgroup table: one row per candidate, a Wilson interval per level
    row = next(line for line in (out / "report.md").read_text().splitlines()
               if line.startswith(f"| acs_employment | match  | accuracy | region   | {GOOD}")).replace("\\", "")
    lo, hi = proportion_confint(27, 30, method="wilson")
    assert f"0.900 [{lo:.3f}, {hi:.3f}] (n 30)" in row
    assert (out / "tables" / "subgroups.csv").exists()


def test_grouped_header_values_stand_in_for_a_log_without_samples(tmp_path):
    """A log whose samples are gone (rewritten by inspect-ai without them) still shows inspect's
    grouped per-region values in the subgroup table, without an interval and without a test."""
    from inspect_ai.log import write_eval_log

    src = tmp_path / "binary"
    shutil.copytree(SWEEP / "binary", src)
    path = next((src / BASE).glob("eval/logs/*.eval"))
    log = read_eval_log(str(path))
    header = {k: m.value for k, m in log.results.scores[0].metrics.items()}
    log.samples = None
    write_eval_log(log, str(path))
    out = tmp_path / "report"
    result = CliRunner().invoke(analyze, [str(src), "--out", str(out), "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, SCHEMA)
    rows = [r for r in summary["subgroups"]["levels"] if r["run"] == BASE]
    assert {r["level"]: r["value"] for r in rows} == pytest.approx({k: header[k] for k in ("north", "south", "east")})
    assert {r["source"] for r in rows} == {"log header"} and all(r["ci_low"] is None for r in rows)
    assert {r["key"] for r in rows} == {"region"}  # the header's groups are the samples' region levels
    # the base model has no per-sample scores: the gain is measured against the other run
    tests = summary["subgroups"]["tests"]
    assert [(t["a"], t["b"]) for t in tests] == [(GOOD, SHARP)]
    assert BASE not in {r["run"] for r in summary["classification"]}
