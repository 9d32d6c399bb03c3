"""analyze() never crashes on odd tables, and gives the same answer twice (seeded)."""

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyze_experiment import tables
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Design, Experiment, Options

FAST = Options(n_permutations=200, n_bootstrap=100)

score = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(-5, 5), st.just(float("nan")))
row = st.fixed_dictionaries({
    "run": st.sampled_from(["a", "b", "c", "base"]),
    "task": st.sampled_from(["t1", "t2"]),
    "epoch": st.sampled_from([0, 1, None, float("nan"), "2"]),
    "sample_id": st.one_of(st.integers(0, 6), st.sampled_from(["x", "y"])),
    "sample_epoch": st.integers(1, 2),
    "scorer": st.sampled_from(["m", "f1"]),
    "score": score,
    "answer": st.sampled_from(["A", "B", None]),
})
run_row = st.fixed_dictionaries({
    "run": st.sampled_from(["a", "b", "c", "base", "ghost"]),
    "type": st.sampled_from(["fine-tuned", "control", None]),
    "gpu_hours": st.one_of(st.none(), st.floats(0, 10)),
    "lora_rank": st.one_of(st.none(), st.sampled_from([4, 8, 16])),
    "seed": st.one_of(st.none(), st.integers(0, 2)),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, max_size=60), st.lists(run_row, max_size=6), st.sampled_from([None, "topic"]))
def test_analyze_never_raises_on_odd_tables(samples, runs, cluster):
    for i, s in enumerate(samples):
        s["meta.topic"] = ["p", "q", None][i % 3]
    exp = Experiment(root=Path("."), layout="unknown", design=Design(name="x"), has_design_doc=False,
                     runs=tables.frame(tables.RUNS, runs), eval_samples=tables.frame(tables.EVAL_SAMPLES, samples),
                     param_names=["lora_rank", "seed"])
    a = analyze(exp, Options(n_permutations=200, n_bootstrap=100, cluster_by=cluster))
    assert a.findings
    for f in a.findings:
        assert f.text.endswith(".")
    assert not exp.warnings["message"].str.contains("could not be computed|failed").any(), exp.warnings


def test_deterministic_with_seed():
    rng = np.random.default_rng(0)
    samples = [{"run": r, "task": "t", "epoch": 0, "sample_id": str(i), "sample_epoch": 1, "scorer": "m",
                "score": float(rng.normal())} for r in ("a", "b", "c") for i in range(40)]
    exp = Experiment(root=Path("."), layout="unknown", design=Design(name="x"), has_design_doc=False,
                     eval_samples=tables.frame(tables.EVAL_SAMPLES, samples))
    one, two = analyze(exp, FAST), analyze(exp, FAST)
    pd.testing.assert_frame_equal(one.comparisons, two.comparisons)
    assert [f.text for f in one.findings] == [f.text for f in two.findings]
