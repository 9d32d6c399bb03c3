"""Outlier tests among ≥ 5 seed replicates (leave-one-out t, statsmodels as reference) and suspicious evals."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.multitest import multipletests

from analyze_experiment import tables
from analyze_experiment.stats.multiplicity import holm
from analyze_experiment.stats.outliers import (
    group_outliers,
    loo_t,
    loss_curve_outliers,
    robust_z,
    suspicious_evals,
)


def test_robust_z_formula():
    x = np.array([0.70, 0.71, 0.69, 0.72, 0.40])
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    assert robust_z(x) == pytest.approx(0.6745 * (x - med) / mad)
    assert np.isnan(robust_z(np.array([1.0, 1.0, 1.0]))).all()


def _configs(n=5):
    return pd.Series({f"s{i}": "lora_rank=8" for i in range(n)})


def _holm_sig(p):
    return multipletests(p, alpha=0.05, method="holm")[0]


def test_metric_and_final_loss_outliers_among_seeds():
    values = pd.DataFrame({"task": "qa", "scorer": "m", "metric": "accuracy", "run": [f"s{i}" for i in range(5)],
                           "epoch": 0.0, "value": [0.70, 0.71, 0.69, 0.72, 0.40]})
    runs = tables.frame(tables.RUNS, [{"run": f"s{i}", "final_loss": v} for i, v in
                                      enumerate([0.50, 0.52, 0.51, 0.49, 0.50])])
    out = group_outliers(values, _configs(), runs)
    m = out[out["kind"] == "metric"]
    # every seed is a test: the externally studentized residual of a mean model (statsmodels)
    ref = OLS(values["value"].to_numpy(), np.ones((5, 1))).fit().outlier_test(method="holm")
    assert m["statistic"].to_numpy() == pytest.approx(ref[:, 0], abs=1e-9)
    assert m["p_value"].to_numpy() == pytest.approx(ref[:, 1], abs=1e-9)
    assert list(m["run"][_holm_sig(m["p_value"].to_numpy())]) == ["s4"]
    assert m["robust_z"].iloc[4] == pytest.approx(robust_z(values["value"].to_numpy())[4])
    runs.loc[2, "final_loss"] = 1.9
    out = group_outliers(values, _configs(), runs)
    lo = out[out["kind"] == "loss"]
    assert list(lo["run"][_holm_sig(lo["p_value"].to_numpy())]) == ["s2"]


def test_groups_under_five_seeds_are_not_tested():
    """3 seeds: 1.073 vs median 1.074 gave robust z = −11.2; such groups are not tested at all."""
    values = pd.DataFrame({"task": "qa", "scorer": "m", "metric": "mean", "run": ["s0", "s1", "s2"],
                           "epoch": 0.0, "value": [1.073, 1.074, 1.0741]})
    assert group_outliers(values, _configs(3), tables.frame(tables.RUNS, [])).empty


def test_outlier_tests_hold_their_level_on_normal_seeds():
    rng = np.random.default_rng(3)
    reps = 2000
    hits = sum(bool((holm(loo_t(rng.normal(0.7, 0.02, 5))[1]) < 0.05).any()) for _ in range(reps))
    assert hits / reps <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps)


def test_loss_curve_outlier_uses_common_steps():
    rows = []
    for i in range(5):
        for step in range(1, 101 if i else 81):  # s0 stopped early: common range is 1..80
            loss = 2.0 / step + (0.8 if i == 3 and step > 30 else 0.01 * i)
            rows.append({"run": f"s{i}", "step": step, "loss": loss})
    out = loss_curve_outliers(tables.frame(tables.TRAIN_STEPS, rows), _configs(5))
    assert list(out["run"][_holm_sig(out["p_value"].to_numpy())]) == ["s3"]
    assert "steps 41–80" in out["detail"].iloc[0]
    assert loss_curve_outliers(tables.frame(tables.TRAIN_STEPS, [r for r in rows if r["run"] != "s4"]),
                               _configs(4)).empty


def test_suspicious_evals():
    samples = tables.frame(tables.EVAL_SAMPLES, [
        {"run": "a", "task": "qa", "epoch": 0, "sample_id": str(i), "sample_epoch": 1, "scorer": "m",
         "score": 1.0, "answer": "Paris"} for i in range(12)])
    intervals = pd.DataFrame([{"run": "a", "task": "qa", "scorer": "m", "metric": "accuracy", "value": 1.0, "n": 12}])
    logs = tables.frame(tables.EVAL_LOGS, [{"log": "a/x.eval", "run": "a", "task": "qa", "total_samples": 100,
                                            "errored_samples": 9, "used": True},
                                           {"log": "a/y.eval", "run": "a", "task": "qa", "total_samples": 100,
                                            "errored_samples": 2, "used": True}])
    out = suspicious_evals(samples, intervals, logs)
    assert set(out["kind"]) == {"constant_answers", "accuracy_100", "errored_samples"}
    err = out[out["kind"] == "errored_samples"].iloc[0]
    assert err["value"] == pytest.approx(0.09) and "9 of 100 samples errored (9%) in a/x.eval" in err["detail"]
