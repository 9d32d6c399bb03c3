"""Evaluation-log faults (issues 11 and 12): every log is accounted for, and no fault becomes
a wrong number without a word.

Every log here was written by inspect-ai (``tests/fixtures/evals/make_logs.py --faults``):
run with ``mockllm/model``, or rewritten through inspect-ai's own ``write_eval_log``. The
experiments are built in the test (one folder per run, no design document) and analysed by
the real CLI.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log
from statsmodels.stats.proportion import proportion_confint

from analyze_experiment import load
from analyze_experiment.sources import inspect_log
from cli_helpers import cli

FAULTS = Path(__file__).parent / "fixtures" / "evals" / "faults"


def experiment(root: Path, runs: dict[str, str]) -> Path:
    """``root/<run>/eval/logs/<fixture>`` for each run → fixture name."""
    for run, fixture in runs.items():
        dst = root / run / "eval" / "logs" / fixture
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FAULTS / fixture, dst)
    return root


def warnings_for(summary: dict, fixture: str) -> list[dict]:
    return [w for w in summary["warnings"] if (w["file"] or "").endswith(fixture)]


def header(fixture: str):
    return read_eval_log(str(FAULTS / fixture), header_only=True)


# --- duplicate and colliding sample ids --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("fixture", "stored"), [("dup_ids.eval", 1), ("collide_ids.eval", 11)])
def test_ids_that_collapse_keep_only_the_header_metrics(tmp_path, fixture, stored):
    """inspect-ai keeps one record per str(id): 12 samples all with id 1 (or ids 1 and "1")
    are written as 1 (or 11). Paired tests on them would rest on 1 sample while the table
    says 12: the per-sample data is set aside, the header's metrics stay, the log is named."""
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": fixture, "rank16_lr1e-5": "base12.eval"})
    code, _, err = cli(root, "--out", tmp_path / "out", "--format", "html")
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    (w,) = [w for w in warnings_for(summary, fixture) if "fewer distinct samples" in w["message"]]
    assert w["severity"] == "warning" and f"cip: {stored} of 12" in w["message"]
    assert fixture in err  # named on the terminal too

    exp = load(root)
    assert "rank8_lr1e-5" not in set(exp.eval_samples["run"])  # no per-sample rows
    acc = exp.eval_scores[(exp.eval_scores["run"] == "rank8_lr1e-5") & (exp.eval_scores["metric"] == "accuracy")]
    expected = header(fixture).results.scores[0].metrics["accuracy"].value
    assert acc[acc["scorer"] == "cip"]["value"].item() == pytest.approx(expected)  # 17/24 = 0.708
    assert acc[acc["scorer"] == "cip"]["n"].item() == 12
    comps = pd.read_csv(tmp_path / "out" / "tables" / "comparisons.csv")
    assert "rank8_lr1e-5" not in set(comps["a"]) | set(comps["b"])  # never paired on collapsed samples
    iv = pd.read_csv(tmp_path / "out" / "tables" / "intervals.csv")
    row = iv[(iv["run"] == "rank8_lr1e-5") & (iv["scorer"] == "cip")].iloc[0]
    assert row["method"] == "from_log" and row["n"] == 12
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_confint(17 / 24 * 12, 12, method="wilson"))


def _base12() -> inspect_log.LogData:
    return inspect_log._read_any(FAULTS / "base12.eval", inspect_log.MAX_MEMBER_BYTES)


def test_duplicate_scored_records_in_the_file_make_samples_unusable():
    """A summaries.json that holds one id several times with scores (the reader, not
    inspect-ai, sees the duplicates): named, and the per-sample data is not used."""
    data = _base12()
    first = data.samples[0]
    data.samples = [first] + [{**s, "id": first["id"]} for s in data.samples[1:]]  # every record id 1
    inspect_log.check_sample_keys(data)
    assert data.samples_unusable and "appear more than once with scores" in data.samples_unusable
    assert len(data.samples) == 1
    assert any("not used for paired tests" in p for p in data.problems)


def test_ids_one_and_text_one_collide_and_are_named():
    data = _base12()
    ids = [s["id"] for s in data.samples]
    one = ids.index(1)
    other = next(i for i, s in enumerate(data.samples) if isinstance(s["id"], str))
    data.samples[other] = {**data.samples[other], "id": "1"}
    inspect_log.check_sample_keys(data)
    assert "collide once read as text" in data.samples_unusable
    assert "'1' and 1" in data.samples_unusable
    assert one >= 0


def test_superseded_attempts_without_scores_are_a_note_not_a_fault():
    """inspect-ai's own rule: a requeued sample's re-run is recorded after its superseded
    attempt (without scores); the later record wins and nothing is set aside."""
    data = _base12()
    attempt = {**data.samples[3], "scores": None, "error": "worker lost"}
    data.samples = [attempt, *data.samples]
    inspect_log.check_sample_keys(data)
    assert data.samples_unusable is None and not data.problems
    assert len(data.samples) == 12
    assert any("superseded" in n for n in data.notes)


# --- extra epochs --------------------------------------------------------------------------


def test_records_beyond_the_configured_epochs_are_named_and_not_used(tmp_path):
    """The config says 1 epoch; 12 epoch-2 records (all wrong) would pull the per-sample
    accuracy from 0.708 to 0.354."""
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "extra_epoch.eval"})
    exp = load(root)
    msgs = [w.message for w in exp.diagnostics.warnings if (w.file or "").endswith("extra_epoch.eval")]
    assert any("12 sample record(s) of epoch 2" in m and "configuration says 1 epoch" in m for m in msgs)
    cip = exp.eval_samples[exp.eval_samples["scorer"] == "cip"]
    assert set(cip["sample_epoch"]) == {1} and len(cip) == 12
    assert cip["score"].mean() == pytest.approx(17 / 24)
    assert not any("header says" in m for m in msgs)  # the header agrees with what is used


# --- non-finite and odd values ---------------------------------------------------------------


@pytest.mark.slow
def test_non_finite_scores_are_rejected_and_never_reach_any_output(tmp_path):
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "non_finite.eval", "rank16_lr1e-5": "base12.eval"})
    out = tmp_path / "out"
    code, stdout, _ = cli(root, "--out", out, "--format", "md")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    msgs = [w["message"] for w in warnings_for(summary, "non_finite.eval")]
    assert any(m.startswith("3 sample score(s) are not finite numbers") and "'1e999'" in m for m in msgs)
    assert any("header metric(s) that are not finite (closeness/mean = inf)" in m for m in msgs)
    for p in [*out.glob("tables/*.csv"), *out.glob("data/*.parquet")]:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        num = df.select_dtypes("number")
        assert not num.isin([math.inf, -math.inf]).any().any(), p.name  # value_raw keeps the text "inf"

    def refuse(token: str) -> float:
        raise AssertionError(f"summary.json holds {token}")

    json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert not re.search(r"\| -?inf\b", (out / "report.md").read_text())
    exp = load(root)
    close = exp.eval_samples[(exp.eval_samples["run"] == "rank8_lr1e-5") & (exp.eval_samples["scorer"] == "closeness")]
    assert close["score"].notna().sum() == 9
    assert "inf" not in stdout.split("warnings")[0]


def test_values_that_are_no_score_are_counted_per_log(tmp_path):
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "odd_values.eval"})
    exp = load(root)
    msgs = [w for w in exp.diagnostics.warnings if (w.file or "").endswith("odd_values.eval")]
    (odd,) = [w for w in msgs if "not score values" in w.message]
    assert odd.severity == "warning"
    assert odd.message.startswith("4 sample score(s) are not score values")
    for kind in ("null ×1", "list ×1", "'maybe' ×1", "'perhaps' ×1"):
        assert kind in odd.message
    # C/I/P stay mapped, without a warning: the other 9 cip scores are there
    cip = exp.eval_samples[exp.eval_samples["scorer"] == "cip"]
    assert cip["score"].notna().sum() == 9 and set(cip["value_raw"].dropna()) >= {"C", "P"}


@pytest.mark.parametrize(("value", "problem"), [
    ("C", None), ("I", None), ("P", None), ("N", None), (True, None), (0.5, None), ("0.25", None), ("yes", None),
    (float("inf"), "non_finite"), (float("-inf"), "non_finite"), (float("nan"), "non_finite"),
    ("1e999", "non_finite"), ("-1e999", "non_finite"), ("Infinity", "non_finite"), ("NaN", "non_finite"),
    (None, "unknown"), ([1], "unknown"), ({"a": 1}, "unknown"), ("maybe", "unknown"), ("", "unknown"),
])  # fmt: skip
def test_value_problem_classifies_every_kind(value, problem):
    assert inspect_log.value_problem(value) == problem
    f = inspect_log.value_to_float(value)
    assert math.isfinite(f) == (problem is None)


# --- the header contradicting the samples ---------------------------------------------------------


def test_header_contradicting_its_samples_is_named_and_the_samples_decide(tmp_path):
    """All samples "I" while the header says 0.70: the report used to show 0.70 in the table
    while the paired test called the run worse. Now one value is used everywhere (the
    samples'), and the warning says so."""
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "contradiction.eval", "rank16_lr1e-5": "contra_src.eval"})
    out = tmp_path / "out"
    code, _, _ = cli(root, "--out", out, "--format", "html")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    (w,) = [w for w in warnings_for(summary, "contradiction.eval") if "header says" in w["message"]]
    assert "cip accuracy = 0.7 but its 20 per-sample scores give 0" in w["message"]
    assert "the report uses the per-sample value 0" in w["message"]
    run = next(r for r in summary["runs"] if r["name"] == "rank8_lr1e-5")
    (ev,) = [e for e in run["evals"] if e["scorer"] == "cip"]
    assert ev["metrics"]["accuracy"]["value"] == 0.0  # not the header's 0.7
    iv = pd.read_csv(out / "tables" / "intervals.csv")
    row = iv[(iv["run"] == "rank8_lr1e-5") & (iv["scorer"] == "cip")].iloc[0]
    assert row["value"] == 0.0 and row["ci_high"] < 0.2
    best = next(b for b in summary["best_by_task"] if b["scorer"] == "cip")
    assert best["run"] == "rank16_lr1e-5" and best["value"] == pytest.approx(0.7)
    scores = pd.read_csv(out / "tables" / "eval_scores.csv")
    bad = scores[(scores["run"] == "rank8_lr1e-5") & (scores["metric"] == "accuracy")].iloc[0]
    assert bad["value"] == 0.0 and bad["header_value"] == pytest.approx(0.7)


# --- logs without samples, without scores, cancelled with header metrics -----------------------------


def test_success_without_stored_samples_is_a_warning_strict_sees(tmp_path):
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "no_samples.eval", "rank16_lr1e-5": "base12.eval"})
    code, _, err = cli(root, "--out", tmp_path / "out", "--format", "html", "--strict")
    assert code == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    (w,) = warnings_for(summary, "no_samples.eval")
    assert w["severity"] == "warning"
    assert "status 'success' but stores no samples" in w["message"] and "n = 12" in w["message"]
    assert "no_samples.eval" in err
    iv = pd.read_csv(tmp_path / "out" / "tables" / "intervals.csv")
    row = iv[iv["run"] == "rank8_lr1e-5"].iloc[0]
    assert row["value"] == pytest.approx(10 / 12) and row["n"] == 12
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_confint(10, 12, method="wilson"))


def test_log_without_scores_is_named_with_its_status(tmp_path):
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "no_scorer.eval", "rank16_lr1e-5": "base12.eval"})
    code, _, _ = cli(root, "--out", tmp_path / "out", "--format", "html")
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    (w,) = warnings_for(summary, "no_scorer.eval")
    assert w["message"].startswith("evaluation log has no scores (no scorer ran, or scoring was skipped; "
                                    "status 'success')")


def test_only_log_without_scores_is_not_reported_as_no_logs(tmp_path):
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "no_scorer.eval"})
    code, _, err = cli(root, "--out", tmp_path / "out")
    assert code == 1
    assert "1 warnings" in err and "0 warnings" not in err
    assert "no_scorer.eval: evaluation log has no scores" in err


@pytest.mark.parametrize("fixture", ["cancelled_header.eval", "cancelled_header_json.json"])
def test_cancelled_log_with_header_metrics_contributes_them_marked_partial(tmp_path, fixture):
    """The shape of inspect-ai's public tests/analysis/test_logs/*_no-samples.json: status
    cancelled, results with accuracy and stderr, no samples. It was dropped; now its metrics
    are used, marked partial with n, with a Wilson interval inside [0, 1], never a verdict."""
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": fixture, "rank16_lr1e-5": "base12.eval"})
    out = tmp_path / "out"
    code, _, _ = cli(root, "--out", out, "--format", "md")
    assert code == 0
    h = header(fixture)
    assert h.status == "cancelled" and not h.samples
    acc = h.results.scores[0].metrics["accuracy"].value
    summary = json.loads((out / "summary.json").read_text())
    (w,) = warnings_for(summary, fixture)
    assert "status 'cancelled' and stores no samples" in w["message"] and "n = 3 of 3" in w["message"]
    iv = pd.read_csv(out / "tables" / "intervals.csv")
    row = iv[(iv["run"] == "rank8_lr1e-5") & (iv["scorer"] == "cip")].iloc[0]
    assert row["value"] == pytest.approx(acc) and row["n"] == 3 and bool(row["too_small"])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_confint(round(acc * 3), 3, method="wilson"))
    assert 0 <= row["ci_low"] <= row["ci_high"] <= 1
    scores = pd.read_csv(out / "tables" / "eval_scores.csv")
    part = scores[(scores["run"] == "rank8_lr1e-5") & (scores["metric"] == "accuracy")].iloc[0]
    assert bool(part["partial"]) and part["status"] == "cancelled" and part["n"] == 3
    md = (out / "report.md").read_text()
    assert "3 (partial: cancelled; too small for a verdict)" in md


def test_too_few_samples_are_never_a_clear_winner(tmp_path):
    """n = 3 against n = 12: whatever the numbers, no verdict on 3 samples."""
    root = experiment(tmp_path / "exp", {"rank8_lr1e-5": "three.eval", "rank16_lr1e-5": "dup_ids.eval"})
    code, stdout, _ = cli(root, "--out", tmp_path / "out", "--format", "html")
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for b in summary["best_by_task"]:
        assert b["clear_winner"] is False
    iv = pd.read_csv(tmp_path / "out" / "tables" / "intervals.csv")
    assert bool(iv[iv["run"] == "rank8_lr1e-5"]["too_small"].iloc[0]) is True
    assert bool(iv[iv["run"] == "rank16_lr1e-5"]["too_small"].iloc[0]) is False
    assert "clear winner" not in stdout.replace("no clear winner", "")


def test_fewer_than_ten_paired_samples_give_a_p_value_but_no_verdict():
    """8 items, one run right on all, the other wrong on all: the exact McNemar p (0.0078)
    is reported, but 8 samples never make a significant difference or a clear winner."""
    from scipy.stats import binomtest

    from analyze_experiment.stats.candidates import Family
    from analyze_experiment.stats.comparisons import family_comparisons, family_intervals

    ids = [f"s{i}" for i in range(8)]
    fam = Family("t", "cip", "accuracy", True)
    fam.scores[("a", 0.0)] = pd.Series([1.0] * 8, index=ids)
    fam.scores[("b", 0.0)] = pd.Series([0.0] * 8, index=ids)
    iv = family_intervals(fam, 0.95)
    assert iv["too_small"].tolist() == [True, True]
    comp, _eq, best, _power = family_comparisons(fam, iv, [], confidence=0.95, margin=0.01, n_resamples=1000, seed=0)
    (row,) = comp.itertuples()
    assert row.p_value == pytest.approx(binomtest(8, 8, 0.5).pvalue)
    assert row.p_value < 0.05 and not row.significant
    assert best.run == "a" and not best.clear_winner and "too small for a verdict" in best.reason
