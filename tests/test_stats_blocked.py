"""The findings for a sweep without seed replicates, checked against direct computations:
the blocked ANOVA (statsmodels on the same per-sample frame), the order of Key Findings,
the epoch verdict from the paired test, and the numbers' units."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.power import TTestPower

from analyze_experiment.model import Options
from analyze_experiment.stats import analyze
from analyze_experiment.stats._format import fmt_ci, fmt_hours, gpu_unit
from analyze_experiment.stats.effects import blocked_anova
from stats_synth import demo_like, grid, make_experiment

FAST = Options(n_permutations=2000, n_bootstrap=200)


@pytest.fixture(scope="module")
def demo():
    exp = demo_like()
    return exp, analyze(exp, FAST)


def _key(a):
    return [f for f in a.findings if f.section == "key_findings"]


def test_blocked_anova_equals_a_direct_ols_with_the_sample_as_block(demo):
    exp, a = demo
    s = exp.eval_samples
    s = s[(s["epoch"] == 1) & s["run"].str.startswith("rank")].merge(exp.runs, on="run")
    df = pd.DataFrame({"score": s["score"].astype(float), "lora_rank": s["lora_rank"].astype(str),
                       "learning_rate": s["learning_rate"].astype(str), "sample_id": s["sample_id"]})
    ref = anova_lm(smf.ols("score ~ C(lora_rank) * C(learning_rate) + C(sample_id)", data=df).fit(), typ=2)
    got = a.anova.set_index("term")
    ss_res, df_res = ref.loc["Residual", "sum_sq"], ref.loc["Residual", "df"]
    ms_res, n_obs = ss_res / df_res, len(df)
    assert got.loc["Residual", "df"] == df_res == 3 * 199
    assert got.loc["sample (block)", "sum_sq"] == pytest.approx(ref.loc["C(sample_id)", "sum_sq"], abs=1e-9)
    for term, name in [("C(lora_rank)", "lora_rank"), ("C(learning_rate)", "learning_rate"),
                       ("C(lora_rank):C(learning_rate)", "lora_rank × learning_rate")]:
        ss, dfe = ref.loc[term, "sum_sq"], ref.loc[term, "df"]
        assert got.loc[name, "sum_sq"] == pytest.approx(ss, abs=1e-9)
        assert got.loc[name, "F"] == pytest.approx(ref.loc[term, "F"], abs=1e-9)
        assert got.loc[name, "p_value"] == pytest.approx(ref.loc[term, "PR(>F)"], abs=1e-12)
        assert got.loc[name, "partial_eta_sq"] == pytest.approx(ss / (ss + ss_res), abs=1e-12)
        assert got.loc[name, "partial_omega_sq"] == pytest.approx(
            (ss - dfe * ms_res) / (ss + (n_obs - dfe) * ms_res), abs=1e-12)
        assert got.loc[name, "omega_sq"] == pytest.approx((ss - dfe * ms_res) / (ref["sum_sq"].sum() + ms_res),
                                                          abs=1e-12)
    assert set(a.anova["unit"]) == {"samples"} and set(a.anova["n_units"]) == {200}
    # the planted truth: learning rate matters decisively, rank does not
    assert got.loc["learning_rate", "p_value"] < 1e-9 and got.loc["lora_rank", "p_value"] > 0.05


def test_cell_means_alone_would_have_one_residual_df(demo):
    """Why blocking: the additive ANOVA on the 4 final cell means has 1 residual df."""
    exp, a = demo
    iv = a.intervals[a.intervals["epoch"] == 1].merge(exp.runs, on="run")
    ref = anova_lm(smf.ols("value ~ C(lora_rank) + C(learning_rate)", data=iv).fit(), typ=2)
    assert ref.loc["Residual", "df"] == 1
    assert a.anova.set_index("term").loc["learning_rate", "p_value"] < ref.loc["C(learning_rate)", "PR(>F)"]


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
    assert rules[:5] == ["vs_baseline", "anova_effect", "anova_no_effect", "not_distinguishable", "epoch_effect"]
    base = _key(a)[0]
    b = a.best[0]
    c = a.comparisons
    row = c[(c["a"] == b.run) & (c["epoch_a"] == b.epoch) & (c["b"] == "base")].iloc[0]
    assert base.data["run"] == b.run and base.data["diff"] == pytest.approx(row["diff"])
    assert base.text.startswith(f"On qa, the best candidate, {b.run} (epoch 1) ({b.value * 100:.1f}%)")
    assert f"+{row['diff'] * 100:.1f} pp (unadjusted 95% CI" in base.text
    eff = _key(a)[1]
    assert eff.data["terms"] == ["learning_rate"]
    ef = a.effects[a.effects["variable"] == "learning_rate"].set_index("level")["mean"]
    assert f"learning_rate matters (0.0001 vs 1e-05: {(ef[1e-4] - ef[1e-5]) * 100:+.1f} pp, " in eff.text
    assert "across the 200 evaluation samples" in eff.text and "training-seed variation is not captured" in eff.text
    null = _key(a)[2]
    assert null.data["terms"] == ["lora_rank", "lora_rank × learning_rate"]
    assert "not evidence of no effect" in null.text
    # one grouped sentence for the ties, not one per pair
    assert [f.rule for f in a.findings].count("not_distinguishable") == 1
    # no next step asks for a rank between 4 and 16 when rank has no detectable effect
    assert not [f for f in a.findings if f.rule == "untested_level" and f.data["variable"] == "lora_rank"]


def test_epoch_verdict_comes_from_the_paired_test_not_from_overlapping_intervals(demo):
    exp, a = demo
    ef = a.effects[a.effects["variable"] == "epoch"].set_index("level")
    assert ef.loc[0, "ci_high"] > ef.loc[1, "ci_low"]  # the marginal intervals overlap …
    (f,) = [f for f in a.findings if f.rule == "epoch_effect"]
    s = exp.eval_samples[exp.eval_samples["run"].str.startswith("rank")]
    wide = s.pivot_table(index="sample_id", columns="epoch", values="score", aggfunc="mean")
    d = (wide[1] - wide[0]).to_numpy()
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert f.data["gains"][0] == pytest.approx(d.mean(), abs=1e-12)
    assert f"+{d.mean() * 100:.1f} pp (95% CI {lo * 100:.1f} to {hi * 100:.1f} pp" in f.text
    assert stats.ttest_rel(wide[1], wide[0]).pvalue < 0.01 and f.data["p_value"][0] < 0.01  # … the paired test is not
    assert "epoch 1 scores significantly higher than epoch 0" in f.text
    assert not any("overlap" in x.text for x in a.findings)


def test_power_statement_gives_the_holm_level_too(demo):
    _, a = demo
    (f,) = [f for f in a.findings if f.rule == "power"]
    p = a.power[0]
    m = int(a.comparisons["family_size"].max())
    assert m == 9 * 8 // 2 and f.data["family_size"] == m
    d = TTestPower().solve_power(nobs=p["n"], alpha=p["alpha"] / m, power=0.8)
    assert f.data["mdd_corrected"] == pytest.approx(d * p["sd_diff"], rel=1e-6)
    assert f"{f.data['mdd_corrected'] * 100:.1f} pp (Bonferroni level α/36)" in f.text


@pytest.mark.parametrize(("hours", "text"), [
    (0.000417, "1.5 GPU-seconds"), (0.0025, "9 GPU-seconds"), (0.05, "3 GPU-minutes"),
    (2.0, "2 GPU-hours"), (1234.4, "1,234 GPU-hours"), (0.0, "0 GPU-seconds"), (math.nan, "n/a GPU-hours"),
])
def test_gpu_time_unit_by_magnitude(hours, text):
    assert fmt_hours(hours) == text


def test_one_unit_for_values_that_belong_together():
    unit = gpu_unit([0.0005, 2.0])
    assert unit[0] == "GPU-hours" and fmt_hours(0.0005, unit) == "0.0005 GPU-hours"


def test_unadjusted_ci_says_so():
    assert fmt_ci("accuracy", -0.065, 0.055, 0.95, True, unadjusted=True) == "unadjusted 95% CI -6.5 to 5.5 pp"
    assert fmt_ci("accuracy", 0.8, 0.9, 0.95) == "95% CI 80.0 to 90.0%"


def test_no_blocked_anova_when_no_sample_varies_within_itself():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6)
    exp = make_experiment(accs, params=params, n=50, seed=1)
    s = exp.eval_samples.copy()
    first = s[s["run"] == "rank8_lr0.0001"].set_index("sample_id")["score"]
    s["score"] = s["sample_id"].map(first)  # both cells score every sample alike
    exp.eval_samples = s
    a = analyze(exp, Options(n_permutations=200))
    assert a.anova.empty and "no variation within samples" in a.anova_note


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
