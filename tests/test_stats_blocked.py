"""The findings for a sweep without seed replicates, checked against direct computations:
no configuration effect tested on items (the seed count that would answer it, from
statsmodels), the blocked ANOVA function (statsmodels on the same per-sample frame), the
order of Key Findings, the epoch verdict at the right unit, and the numbers' units."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.power import TTestIndPower, TTestPower

from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Options
from analyze_experiment.formatting import fmt_ci, fmt_hours, gpu_unit
from analyze_experiment.stats.effects import blocked_anova
from stats_synth import demo_like, grid, make_experiment

FAST = Options(n_permutations=2000, n_bootstrap=200)


@pytest.fixture(scope="module")
def demo():
    exp = demo_like()
    return exp, analyze(exp, FAST)


def _key(a):
    return [f for f in a.findings if f.section == "key_findings"]


def test_without_seed_replicates_no_configuration_effect_is_tested(demo):
    """One run per cell: the items replicate checkpoints, not configurations — no ANOVA, and
    the report says the effect is confounded with training noise and how many seeds would do."""
    _exp, a = demo
    assert a.anova.empty and "each configuration was trained once" in a.anova_note
    fs = {f.data["variable"]: f for f in a.findings if f.rule == "effect_confounded"}
    assert set(fs) == {"lora_rank", "learning_rate"}
    f = fs["lora_rank"]
    assert f.claim is None and "confounded with training noise" in f.text
    ef = a.effects[a.effects["variable"] == "lora_rank"].set_index("level")["mean"]
    diff = ef.max() - ef.min()
    sd = float(a.intervals["stderr"].median())
    n = TTestIndPower().solve_power(effect_size=diff / sd, alpha=0.05, power=0.8)
    assert f.data["seeds_needed"] == max(2, math.ceil(n / 2))
    assert f"at least {int(f.data['seeds_needed'])} seeds per configuration" in f.text
    assert {c.rule for c in a.claims if c.claim.kind == "effect"} == {"epoch_effect"}  # epoch: across runs


def test_blocked_anova_on_an_unordered_frame_equals_direct_ols():
    rng = np.random.default_rng(7)
    rows = [{"sample_id": f"q{i}", "v0": a, "v1": b, "y": rng.normal(i / 40 + (a == "x") * 0.3, 1)}
            for a in "xyz" for b in "pq" for i in rng.permutation(40)]
    d = pd.DataFrame(rows).sample(frac=1, random_state=1)
    got = blocked_anova(d, 2)
    ref = anova_lm(smf.ols("y ~ C(v0) * C(v1) + C(sample_id)", data=d).fit(), typ=2)
    for term in ref.index:
        assert got.loc[term, "sum_sq"] == pytest.approx(ref.loc[term, "sum_sq"], abs=1e-9)
        assert got.loc[term, "df"] == ref.loc[term, "df"]
        if term != "Residual":
            assert got.loc[term, "PR(>F)"] == pytest.approx(ref.loc[term, "PR(>F)"], abs=1e-12)


def test_with_seed_replicates_the_run_level_anova_is_kept():
    accs, params = grid([8, 16], [1e-5, 1e-4], lambda r, lr: 0.6 + 0.1 * (lr > 5e-5), seeds=3)
    exp = make_experiment(accs, params=params, n=60, seed=3)
    a = analyze(exp, Options(n_permutations=500, n_bootstrap=100))
    iv = a.intervals.merge(exp.runs, on="run")
    ref = anova_lm(smf.ols("value ~ C(lora_rank) * C(learning_rate)", data=iv).fit(), typ=2)
    got = a.anova.set_index("term")
    assert set(a.anova["unit"]) == {"runs"} and got.loc["Residual", "df"] == ref.loc["Residual", "df"] == 8
    assert got.loc["learning_rate", "F"] == pytest.approx(ref.loc["C(learning_rate)", "F"], abs=1e-9)
    text = " ".join(f.text for f in a.findings if f.rule.startswith("anova"))
    assert "F-tests across 12 runs, the seed replicates as the unit" in text and "evaluation samples" not in text


def test_key_findings_lead_with_the_best_vs_baseline_then_effects_then_ties(demo):
    _, a = demo
    rules = [f.rule for f in _key(a)]
    assert rules[:5] == ["vs_baseline", "effect_confounded", "effect_confounded", "not_distinguishable",
                         "epoch_effect"]
    base = _key(a)[0]
    b = a.best[0]
    c = a.comparisons
    row = c[(c["a"] == b.run) & (c["epoch_a"] == b.epoch) & (c["b"] == "base")].iloc[0]
    assert base.data["run"] == b.run and base.data["diff"] == pytest.approx(row["diff"])
    assert base.text.startswith(f"On qa, the best candidate, {b.run} (epoch 1) ({b.value * 100:.1f}%)")
    assert f"+{row['diff'] * 100:.1f} pp (unadjusted 95% CI" in base.text
    assert base.claim.kind == "difference" and base.claim.significant
    assert base.claim.family == "checkpoints: qa/match/accuracy" and base.claim.p_adjusted == row["p_adjusted"]
    # one grouped sentence for the ties, not one per pair
    assert [f.rule for f in a.findings].count("not_distinguishable") == 1


def test_epoch_effect_is_tested_across_runs_not_from_one_run(demo):
    exp, a = demo
    (f,) = [f for f in a.findings if f.rule == "epoch_effect"]
    s = exp.eval_samples[exp.eval_samples["run"].str.startswith("rank")]
    per_run = s.pivot_table(index="run", columns="epoch", values="score", aggfunc="mean")
    gains = (per_run[1] - per_run[0]).to_numpy()
    ref = stats.ttest_1samp(gains, 0.0)
    ci = ref.confidence_interval()
    assert f.data["gain"] == pytest.approx(gains.mean(), abs=1e-12) and f.data["unit"] == "runs"
    assert f.data["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert "across 4 runs, epoch 1" in f.text
    assert f"mean per-run gain {gains.mean() * 100:+.1f} pp (unadjusted 95% CI {ci.low * 100:.1f} to " in f.text
    assert f.claim.kind == "effect" and f.claim.family == "effects: qa/match/accuracy"
    fam = a.families.set_index("family")
    assert fam.loc["effects: qa/match/accuracy", "size"] == 1
    # Holm within a family of one, times the two difference families of the report
    assert f.claim.p_adjusted == pytest.approx(min(1, 2 * ref.pvalue))


def test_epoch_step_of_a_single_run_is_that_runs_checkpoint_contrast():
    exp = make_experiment({"a": 0.6}, epochs={"a": [0, 1]}, n=300, seed=4)
    a = analyze(exp, FAST)
    (f,) = [f for f in a.findings if f.rule == "epoch_effect"]
    assert f.data["unit"] == "checkpoints" and "one run, so this says nothing about other runs" in f.text
    pair = a.pair_tests.iloc[0]
    assert f.claim.family == "checkpoints: qa/match/accuracy" and f.claim.p_value == pytest.approx(pair["p_value"])


def test_power_statement_gives_the_holm_level_too(demo):
    _, a = demo
    (f,) = [f for f in a.findings if f.rule == "power"]
    p = a.power[0]
    m = int(a.comparisons["family_size"].max())
    assert m == 9 * 8 // 2 and f.data["family_size"] == m and f.data["n_families"] == 2
    d = TTestPower().solve_power(nobs=p["n"], alpha=p["alpha"] / (m * 2), power=0.8)
    assert f.data["mdd_corrected"] == pytest.approx(d * p["sd_diff"], rel=1e-6)
    assert f"{f.data['mdd_corrected'] * 100:.1f} pp (Bonferroni level α/(36 × 2 families))" in f.text


@pytest.mark.parametrize(("hours", "text"), [
    (0.000417, "1.5 GPU-seconds"), (0.0025, "9 GPU-seconds"), (0.05, "3 GPU-minutes"),
    (2.0, "2 GPU-hours"), (1234.4, "1,234 GPU-hours"), (0.0, "0 GPU-seconds"), (math.nan, "—"),
])
def test_gpu_time_unit_by_magnitude(hours, text):
    assert fmt_hours(hours) == text


def test_one_unit_for_values_that_belong_together():
    unit = gpu_unit([0.0005, 2.0])
    assert unit[0] == "GPU-hours" and fmt_hours(0.0005, unit) == "0.0005 GPU-hours"


def test_unadjusted_ci_says_so():
    assert fmt_ci("accuracy", -0.065, 0.055, 0.95, True, unadjusted=True) == "unadjusted 95% CI -6.5 to 5.5 pp"
    assert fmt_ci("accuracy", 0.8, 0.9, 0.95) == "95% CI 80.0 to 90.0%"


def test_no_anova_for_a_grid_trained_once():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6)
    exp = make_experiment(accs, params=params, n=50, seed=1)
    s = exp.eval_samples.copy()
    first = s[s["run"] == "rank8_lr0.0001"].set_index("sample_id")["score"]
    s["score"] = s["sample_id"].map(first)  # both cells score every sample alike
    exp.eval_samples = s
    a = analyze(exp, Options(n_permutations=200))
    assert a.anova.empty and "trained once" in a.anova_note


def test_marginal_effects_of_an_unbalanced_sweep_are_descriptive_only():
    accs, params = grid([8, 16], [1e-5, 1e-4], lambda r, lr: 0.6)
    del accs["rank16_lr1e-05"], params["rank16_lr1e-05"]
    exp = make_experiment(accs, params=params, n=80, seed=2)
    a = analyze(exp, Options(n_permutations=200))
    fs = [f for f in a.findings if f.rule == "marginal_effect"]
    assert a.anova.empty and {f.data["variable"] for f in fs} == {"lora_rank", "learning_rate"}
    for f in fs:
        assert "descriptive means" in f.text and "overlap" not in f.text


def test_blocked_anova_on_0_1_scores_holds_its_level_under_no_effect():
    """0/1 scores in a linear model: on null 2 × 2 grids with shared sample difficulty the
    share of p < 0.05 stays near 5% (300 sweeps: binomial 95% range about 2.7–8%)."""
    rng = np.random.default_rng(11)
    n, hits = 100, 0
    for _ in range(300):
        logit = rng.normal(0.3, 1.2, n)
        p = 1 / (1 + np.exp(-logit))
        rows = [pd.DataFrame({"sample_id": np.arange(n).astype(str), "v0": a, "v1": b,
                              "y": (rng.random(n) < p).astype(float)}) for a in "xy" for b in "pq"]
        t = blocked_anova(pd.concat(rows, ignore_index=True), 2)
        hits += int(t.loc["C(v0)", "PR(>F)"] < 0.05)
    assert 0.02 <= hits / 300 <= 0.085
