"""Robust z outliers among seed replicates and suspicious evals."""

import numpy as np
import pandas as pd
import pytest

from analyze_experiment import tables
from analyze_experiment.stats.outliers import group_outliers, loss_curve_outliers, robust_z, suspicious_evals


def test_robust_z_formula():
    x = np.array([0.70, 0.71, 0.69, 0.72, 0.40])
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    assert robust_z(x) == pytest.approx(0.6745 * (x - med) / mad)
    assert np.isnan(robust_z(np.array([1.0, 1.0, 1.0]))).all()


def _configs(n=5):
    return pd.Series({f"s{i}": "lora_rank=8" for i in range(n)})


def test_metric_and_final_loss_outliers_among_seeds():
    values = pd.DataFrame({"task": "qa", "scorer": "m", "metric": "accuracy", "run": [f"s{i}" for i in range(5)],
                           "epoch": 0.0, "value": [0.70, 0.71, 0.69, 0.72, 0.40]})
    runs = tables.frame(tables.RUNS, [{"run": f"s{i}", "final_loss": v} for i, v in
                                      enumerate([0.50, 0.52, 0.51, 0.49, 0.50])])
    out = group_outliers(values, _configs(), runs)
    assert out["run"].tolist() == ["s4"] and out["kind"].tolist() == ["metric"]
    assert out["robust_z"].iloc[0] == pytest.approx(robust_z(values["value"].to_numpy())[4])
    runs.loc[2, "final_loss"] = 1.9
    out = group_outliers(values, _configs(), runs)
    assert set(zip(out["run"], out["kind"], strict=True)) == {("s4", "metric"), ("s2", "loss")}


def test_loss_curve_outlier_uses_common_steps():
    rows = []
    for i in range(4):
        for step in range(1, 101 if i else 81):  # s0 stopped early: common range is 1..80
            loss = 2.0 / step + (0.8 if i == 3 and step > 30 else 0.01 * i)
            rows.append({"run": f"s{i}", "step": step, "loss": loss})
    out = loss_curve_outliers(tables.frame(tables.TRAIN_STEPS, rows), _configs(4))
    assert out["run"].tolist() == ["s3"] and "steps 41–80" in out["detail"].iloc[0]


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
