"""Seeds: Welch vs scipy, P(A>B) vs Mann–Whitney U, replicate detection."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analyze_experiment import tables
from analyze_experiment.stats.seeds import (
    config_labels,
    prob_improvement,
    prob_improvement_ci,
    seed_tables,
    seed_variable,
    welch,
)


def test_welch_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.7, 0.02, 5), rng.normal(0.68, 0.05, 7)
    w = welch(a, b, 0.9)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert w["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert w["t"] == pytest.approx(ref.statistic, abs=1e-12)
    assert w["df"] == pytest.approx(ref.df, abs=1e-9)
    assert (w["ci_low"], w["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_prob_improvement_is_u_over_nm():
    a = np.array([0.71, 0.70, 0.73, 0.69, 0.72, 0.70])
    b = np.array([0.70, 0.68, 0.69, 0.71, 0.67])
    u = stats.mannwhitneyu(a, b).statistic
    assert prob_improvement(a, b) == pytest.approx(u / (len(a) * len(b)), abs=1e-12)
    p, lo, hi = prob_improvement_ci(a, b, n_boot=500, seed=3)
    assert lo <= p <= hi
    assert (p, lo, hi) == prob_improvement_ci(a, b, n_boot=500, seed=3)


def test_seed_variable_and_configs():
    assert seed_variable(["lora_rank", "seed"]) == "seed"
    assert seed_variable(["lora_rank", "random_seed"]) == "random_seed"
    assert seed_variable(["lora_rank", "seeded_lr"]) is None
    runs = tables.frame(tables.RUNS, [
        {"run": "r8_s0", "type": "fine-tuned", "lora_rank": 8, "seed": 0},
        {"run": "r8_s1", "type": "fine-tuned", "lora_rank": 8, "seed": 1},
        {"run": "r16_s0", "type": "fine-tuned", "lora_rank": 16, "seed": 0},
        {"run": "base", "type": "control"},
    ])
    labels = config_labels(runs, ["lora_rank", "seed"])
    assert labels.to_dict() == {"r8_s0": "lora_rank=8", "r8_s1": "lora_rank=8", "r16_s0": "lora_rank=16"}


def test_seed_tables_welch_family_and_prob_with_five_seeds():
    rng = np.random.default_rng(1)
    rows, cfg = [], {}
    for c, mu in (("A", 0.75), ("B", 0.70), ("C", 0.745)):
        for s in range(5):
            run = f"{c}{s}"
            rows.append({"task": "t", "scorer": "m", "metric": "accuracy", "run": run, "epoch": 0.0,
                         "value": mu + rng.normal(0, 0.005)})
            cfg[run] = f"cfg={c}"
    values = pd.DataFrame(rows)
    seeds, comp = seed_tables(values, pd.Series(cfg), n_boot=300)
    assert set(seeds["config"]) == {"cfg=A", "cfg=B", "cfg=C"}
    a = values[values["run"].str.startswith("A")]["value"]
    assert seeds.set_index("config").loc["cfg=A", "sd"] == pytest.approx(np.std(a, ddof=1))
    assert list(comp["b"]) == ["cfg=B", "cfg=C"] and (comp["a"] == "cfg=A").all()
    b = values[values["run"].str.startswith("B")]["value"]
    row = comp.set_index("b").loc["cfg=B"]
    assert row["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert row["significant"] and row["p_a_gt_b"] == 1.0
    holm2 = min(1, 2 * comp["p_value"].min())
    assert comp["p_adjusted"].min() == pytest.approx(holm2)
