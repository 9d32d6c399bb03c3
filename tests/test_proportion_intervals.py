"""An accuracy's interval never leaves [0, 1], and n < 10 decides nothing (issue 11).

The issue's report showed an accuracy of n = 2 with the interval [−2.43, 3.93]: the two
samples were scored C and P (partial credit, 0.5), so the scores were not 0/1 and the t
interval with 1 degree of freedom was used: 0.75 ± 12.7 × 0.25. ``tiny2.eval`` is that log,
written by inspect-ai (``tests/fixtures/evals/health/make_health_logs.py``).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from analyze_experiment.cli import analyze
from analyze_experiment.conclude import analyze as conclude
from analyze_experiment.experiment import Options
from analyze_experiment.stats.intervals import bounded_rows, within_unit
from stats_synth import grid, make_experiment

EV = Path(__file__).parent / "fixtures" / "evals" / "health"


def test_accuracy_of_two_partly_scored_samples_stays_in_unit_interval_and_decides_nothing(tmp_path):
    root = tmp_path / "exp"
    for run, log in {"alpha": "tiny2", "bravo": "acc65"}.items():
        (root / run / "eval" / "logs").mkdir(parents=True)
        shutil.copy(EV / f"{log}.eval", root / run / "eval" / "logs" / f"{log}.eval")
    out = tmp_path / "out"
    res = CliRunner().invoke(analyze, [str(root), "--out", str(out), "--format", "md"])
    assert res.exit_code == 0, res.output
    iv = pd.read_csv(out / "tables" / "intervals.csv").set_index("run")
    tiny = iv.loc["alpha"]
    assert tiny["metric"] == "accuracy" and tiny["n"] == 2 and tiny["value"] == pytest.approx(0.75)
    # the unbounded t interval is the issue's [−2.43, 3.93]; what is reported is its part in [0, 1]
    t = sps.t.ppf(0.975, 1) * sps.sem([1.0, 0.5])
    assert (round(0.75 - t, 2), round(0.75 + t, 2)) == (-2.43, 3.93)
    assert (tiny["ci_low"], tiny["ci_high"]) == (0.0, 1.0) and bool(tiny["too_small"])
    assert not bool(iv.loc["bravo", "too_small"])
    md = (out / "report.md").read_text()
    assert "2 (too small for a verdict)" in md and "-2.43" not in md and "3.93" not in md
    summary = json.loads((out / "summary.json").read_text())
    # every interval anywhere in summary.json stays in [0, 1]
    for run in summary["runs"]:
        for e in run["evals"]:
            for m in e["metrics"].values():
                if m.get("ci_low") is not None:
                    assert 0.0 <= m["ci_low"] <= m["ci_high"] <= 1.0
    # alpha's 75% on 2 samples is higher than bravo's 65% on 40, but decides nothing
    (best,) = summary["best_by_task"]
    assert best["run"] == "alpha" and best["clear_winner"] is False and "too small for a verdict" in best["reason"]


def test_seed_and_effect_intervals_of_an_accuracy_stay_in_unit_interval():
    """Two seeds per configuration at ~97%: a t interval with 1 degree of freedom leaves [0, 1]."""
    accs, params = grid([4, 16], [1e-4], lambda r, lr: 0.97 if r == 16 else 0.9, seeds=2)
    exp = make_experiment(accs, params=params, n=60, seed=11)
    a = conclude(exp, Options(n_permutations=300, n_bootstrap=100))
    assert len(a.seeds) == 2
    raw = []
    for runs in a.seeds["runs"]:
        vals = a.intervals.set_index("run").loc[runs, "value"].to_numpy(float)
        h = sps.t.ppf(0.975, len(vals) - 1) * sps.sem(vals)
        raw.append((vals.mean() - h, vals.mean() + h))
    assert any(lo < 0 or hi > 1 for lo, hi in raw)  # the unbounded intervals do leave [0, 1]
    for (lo, hi), r in zip(raw, a.seeds.itertuples(), strict=True):
        assert (r.ci_low, r.ci_high) == pytest.approx((max(lo, 0.0), min(hi, 1.0)))
    for table in (a.seeds, a.effects, a.intervals):
        ok = table.dropna(subset=["ci_low", "ci_high"])
        assert ((ok["ci_low"] >= 0) & (ok["ci_high"] <= 1)).all()


def test_within_unit_and_bounded_rows_leave_other_metrics_alone():
    assert within_unit(-2.43, 3.93) == (0.0, 1.0)
    assert within_unit(0.2, 0.4) == (0.2, 0.4)
    lo, hi = within_unit(math.nan, 1.2)
    assert math.isnan(lo) and hi == 1.0
    df = pd.DataFrame({"task": ["t", "t"], "scorer": ["s", "r"], "metric": ["accuracy", "mae"],
                       "ci_low": [-0.1, -3.0], "ci_high": [1.2, 5.0]})
    out = bounded_rows(df, {("t", "s", "accuracy")})
    assert out["ci_low"].tolist() == [0.0, -3.0] and out["ci_high"].tolist() == [1.0, 5.0]
    assert np.isclose(df["ci_low"].iloc[0], -0.1)  # the input is not changed


# --- every log is accounted for: scoring skipped, errored with header metrics ------------------


def test_skipped_scoring_is_named_and_errored_header_contributes_partial_metrics(tmp_path):
    """``unscored.eval`` ran with ``score=False`` (a scorer exists, scoring was skipped);
    ``errored_header.eval`` has status error, no samples and the header's accuracy 0.65 on 40."""
    from statsmodels.stats.proportion import proportion_confint

    root = tmp_path / "exp"
    for run, log in {"alpha": "unscored", "bravo": "errored_header", "charlie": "acc55"}.items():
        (root / run / "eval" / "logs").mkdir(parents=True)
        shutil.copy(EV / f"{log}.eval", root / run / "eval" / "logs" / f"{log}.eval")
    out = tmp_path / "out"
    res = CliRunner().invoke(analyze, [str(root), "--out", str(out), "--format", "md", "--strict"])
    assert res.exit_code == 3  # both logs are warnings
    summary = json.loads((out / "summary.json").read_text())
    by_file = {Path(w["file"]).name: w for w in summary["warnings"] if w["file"]}
    assert by_file["unscored.eval"]["message"].startswith(
        "evaluation log has no scores (no scorer ran, or scoring was skipped; status 'success')")
    assert "warning: alpha/eval/logs/unscored.eval: evaluation log has no scores" in res.stderr
    assert "status 'error' and stores no samples" in by_file["errored_header.eval"]["message"]
    assert "n = 40 of 40" in by_file["errored_header.eval"]["message"]
    iv = pd.read_csv(out / "tables" / "intervals.csv").set_index("run")
    assert "alpha" not in iv.index
    row = iv.loc["bravo"]
    assert (row["method"], row["n"], row["value"]) == ("from_log", 40, pytest.approx(0.65))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_confint(26, 40, method="wilson"))
    scores = pd.read_csv(out / "tables" / "eval_scores.csv")
    part = scores[(scores["run"] == "bravo") & (scores["metric"] == "accuracy")].iloc[0]
    assert bool(part["partial"]) and part["status"] == "error" and part["n"] == 40
    assert "40 (partial: error)" in (out / "report.md").read_text()
