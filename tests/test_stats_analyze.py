"""analyze() end to end on synthetic experiments with known truth."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analyze_experiment import tables
from analyze_experiment.analysis import COMPARISONS, INTERVALS
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Design, Experiment, Options
from stats_synth import grid, make_experiment

FAST = Options(n_permutations=1000, n_bootstrap=300)


def test_empty_experiment_gives_empty_analysis_and_says_so():
    exp = Experiment(root=".", layout="unknown", design=Design(name="x"), has_design_doc=False,
                     runs=tables.frame(tables.RUNS, [{"run": "a", "type": "fine-tuned"}]))
    a = analyze(exp)
    assert a.intervals.empty and a.comparisons.empty and a.best == []
    assert list(a.intervals.columns[: len(INTERVALS)]) == INTERVALS
    assert list(a.comparisons.columns[: len(COMPARISONS)]) == COMPARISONS
    assert [f.rule for f in a.findings] == ["bottom_none", "no_evals"]  # the bottom line says it first
    assert "1 runs" in a.findings[1].text and a.findings[0].text == a.findings[1].text


def test_inputs_are_not_mutated():
    exp = make_experiment({"a": 0.6, "b": 0.7, "base": 0.5}, controls=("base",), n=60)
    before = copy.deepcopy((exp.eval_samples, exp.runs))
    analyze(exp, FAST)
    pd.testing.assert_frame_equal(exp.eval_samples, before[0])
    pd.testing.assert_frame_equal(exp.runs, before[1])


def test_intervals_and_comparisons_against_direct_computation():
    exp = make_experiment({"a": 0.6, "b": 0.75, "base": 0.5}, controls=("base",), n=150, seed=3,
                          shared_difficulty=0.8)
    a = analyze(exp, FAST)
    s = exp.eval_samples
    iv = a.intervals.set_index("run")
    k = int(s[s["run"] == "b"]["score"].sum())
    assert iv.loc["b", "value"] == pytest.approx(k / 150)
    assert (iv.loc["b", "ci_low"], iv.loc["b", "ci_high"]) == pytest.approx(
        proportion_confint(k, 150, method="wilson"), abs=1e-12)
    assert iv.loc["base", "method"] == "wilson" and math.isnan(iv.loc["base", "epoch"])
    c = a.comparisons
    assert set(zip(c["a"], c["b"], c["kind"], strict=True)) == {
        ("b", "a", "vs_best"), ("b", "base", "vs_best"), ("a", "base", "vs_baseline")}
    row = c[(c["a"] == "b") & (c["b"] == "a")].iloc[0]
    xa = s[s["run"] == "b"].set_index("sample_id")["score"]
    xb = s[s["run"] == "a"].set_index("sample_id")["score"]
    d = xa - xb
    assert row["diff"] == pytest.approx(d.mean())
    # the interval agrees with exact McNemar: Clopper–Pearson on the discordant split (statsmodels
    # "beta"), scaled by the share of discordant pairs
    b_, c_ = int(((xa == 1) & (xb == 0)).sum()), int(((xa == 0) & (xb == 1)).sum())
    lo, hi = proportion_confint(b_, b_ + c_, alpha=0.05, method="beta")
    share = (b_ + c_) / 150
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((share * (2 * lo - 1), share * (2 * hi - 1)), abs=1e-12)
    assert row["n_a_only"] == b_
    p = c["p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, p[order] * (len(p) - np.arange(len(p)))))
    assert c["p_adjusted"].to_numpy()[order] == pytest.approx(holm)
    assert a.best[0].run == "b"


def test_clear_winner_needs_every_runner_up_significant():
    exp = make_experiment({"a": 0.5, "b": 0.55, "c": 0.9}, n=300, seed=1)
    a = analyze(exp, FAST)
    assert a.best[0].run == "c" and a.best[0].clear_winner
    assert "all 2 runners-up are significantly worse" in a.best[0].reason
    exp2 = make_experiment({"a": 0.7, "b": 0.7, "c": 0.71}, n=100, seed=1)
    b2 = analyze(exp2, FAST).best[0]
    assert not b2.clear_winner and b2.tied_with


def test_sample_epochs_are_reduced_per_sample_first():
    exp = make_experiment({"a": 0.6, "b": 0.7}, n=80, sample_epochs=3, seed=5)
    a = analyze(exp, FAST)
    s = exp.eval_samples
    per_sample = s[s["run"] == "a"].groupby("sample_id")["score"].mean()
    iv = a.intervals.set_index("run").loc["a"]
    assert iv["n"] == 80 and iv["method"] == "t" and iv["metric"] == "accuracy"
    assert iv["stderr"] == pytest.approx(stats.sem(per_sample))
    assert (a.comparisons["test"] == "paired_permutation").all()


def test_cluster_by_uses_clustered_intervals():
    n = 120
    exp = make_experiment({"a": 0.6, "b": 0.7}, n=n, meta={"passage": [f"p{i // 6}" for i in range(n)]})
    a = analyze(exp, Options(cluster_by="passage", n_permutations=1000))
    iv = a.intervals.set_index("run").loc["a"]
    assert iv["method"] == "clustered_t" and iv["n_clusters"] == 20
    assert (a.comparisons["test"] == "cluster_permutation").all()


def test_continuous_scores_use_mean_and_t():
    exp = make_experiment({"a": 0.4, "b": 0.45}, n=50, continuous=True)
    a = analyze(exp, FAST)
    assert set(a.intervals["metric"]) == {"mean"} and set(a.intervals["method"]) == {"t"}
    assert set(a.comparisons["test"]) == {"paired_permutation"}


def test_from_log_candidates_when_no_samples():
    scores = tables.frame(tables.EVAL_SCORES, [
        {"run": "a", "task": "t", "epoch": 0, "scorer": "m", "metric": "accuracy", "value": 0.8, "stderr": 0.02, "n": 400},
        {"run": "b", "task": "t", "epoch": 0, "scorer": "m", "metric": "accuracy", "value": 0.7, "stderr": None, "n": 100},
    ])
    exp = Experiment(root=".", layout="unknown", design=Design(name="x"), has_design_doc=False, eval_scores=scores)
    a = analyze(exp, FAST)
    iv = a.intervals.set_index("run")
    assert set(iv["method"]) == {"from_log"}
    assert (iv.loc["b", "ci_low"], iv.loc["b", "ci_high"]) == pytest.approx(proportion_confint(70, 100, method="wilson"))
    assert a.comparisons.empty
    assert not a.best[0].clear_winner and "no per-sample scores" in a.best[0].reason


def test_multiple_epochs_are_separate_candidates():
    exp = make_experiment({"a": 0.6, "b": 0.7}, n=100, epochs={"a": [0, 1], "b": [0, 1]})
    a = analyze(exp, FAST)
    assert len(a.intervals) == 4
    assert set(a.effects["variable"]) == {"epoch"}
    assert "epoch" in set(a.diminishing["variable"])


def test_seeds_are_the_unit():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6 if r == 8 else 0.7, seeds=5)
    exp = make_experiment(accs, params=params, n=100, seed=4)
    a = analyze(exp, FAST)
    assert set(a.seeds["config"]) == {"lora_rank=8", "lora_rank=16"}
    assert (a.seeds["n_seeds"] == 5).all()
    sc = a.seed_comparisons.iloc[0]
    assert sc["a"].startswith("lora_rank=16") and sc["significant"] and not math.isnan(sc["p_a_gt_b"])
    vals = a.intervals.set_index("run")["value"]
    r16 = vals[[f"rank16_lr0.0001_seed{s}" for s in range(5)]]
    r8 = vals[[f"rank8_lr0.0001_seed{s}" for s in range(5)]]
    assert sc["p_value"] == pytest.approx(stats.ttest_ind(r16, r8, equal_var=False).pvalue)
    assert {f.rule for f in a.findings} >= {"seed_spread", "seed_comparison"}


def test_confidence_option_changes_intervals():
    exp = make_experiment({"a": 0.6, "b": 0.7}, n=100)
    w95 = analyze(exp, FAST).intervals.set_index("run").loc["a"]
    w80 = analyze(exp, Options(confidence=0.8, n_permutations=1000)).intervals.set_index("run").loc["a"]
    assert (w80["ci_high"] - w80["ci_low"]) < (w95["ci_high"] - w95["ci_low"])
    assert (w80["ci_low"], w80["ci_high"]) == pytest.approx(
        proportion_confint(round(w80["value"] * 100), 100, alpha=0.2, method="wilson"))


def test_with_seeds_the_best_run_is_no_clear_winner_unless_its_config_wins_across_seeds():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.7, seeds=3)
    accs["rank8_lr0.0001_seed0"] = 0.95  # one lucky seed of an otherwise equal config
    exp = make_experiment(accs, params=params, n=300, seed=6)
    b = analyze(exp, FAST).best[0]
    assert b.run == "rank8_lr0.0001_seed0"
    assert not b.clear_winner
    assert b.reason.startswith("all 5 runners-up are significantly worse")  # per-sample tests alone
    assert "across seeds, 1 of 1 other configs are not significantly worse than lora_rank=8" in b.reason
    assert "lora_rank=16 (Holm p = " in b.reason
