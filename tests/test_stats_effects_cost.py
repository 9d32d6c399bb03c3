"""Main effects, ANOVA (vs a direct statsmodels fit), diminishing returns, cost and Pareto."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from analyze_experiment import tables
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Options
from analyze_experiment.stats.cost import candidate_cost, pareto_front
from analyze_experiment.stats.effects import anova, grid_status
from stats_synth import grid, make_experiment


def _values(cells, reps=1, seed=0):
    rng = np.random.default_rng(seed)
    rows, runs = [], []
    for (rank, lr), mu in cells.items():
        for s in range(reps):
            run = f"r{rank}_lr{lr}_s{s}"
            rows.append({"task": "t", "scorer": "m", "metric": "accuracy", "run": run, "epoch": 0.0,
                         "value": mu + rng.normal(0, 0.01), "n": 100, "ci_low": 0.0, "ci_high": 1.0})
            runs.append({"run": run, "lora_rank": rank, "learning_rate": lr})
    return pd.DataFrame(rows), pd.DataFrame(runs)


def test_anova_with_replicates_matches_direct_fit_and_effect_sizes():
    cells = {(8, 1e-5): 0.6, (8, 1e-4): 0.65, (16, 1e-5): 0.7, (16, 1e-4): 0.72, (32, 1e-5): 0.7, (32, 1e-4): 0.74}
    values, runs = _values(cells, reps=3)
    out, note = anova(values, runs, ["lora_rank", "learning_rate"])
    assert note is None
    df = values.merge(runs, on="run")
    ref = anova_lm(smf.ols("value ~ C(lora_rank) * C(learning_rate)", data=df).fit(), typ=2)
    got = out.set_index("term")
    for term, name in [("C(lora_rank)", "lora_rank"), ("C(learning_rate)", "learning_rate"),
                       ("C(lora_rank):C(learning_rate)", "lora_rank × learning_rate")]:
        assert got.loc[name, "F"] == pytest.approx(ref.loc[term, "F"], abs=1e-9)
        assert got.loc[name, "p_value"] == pytest.approx(ref.loc[term, "PR(>F)"], abs=1e-9)
        ss, ss_res = ref.loc[term, "sum_sq"], ref.loc["Residual", "sum_sq"]
        ms_res = ss_res / ref.loc["Residual", "df"]
        assert got.loc[name, "partial_eta_sq"] == pytest.approx(ss / (ss + ss_res), abs=1e-9)
        omega = (ss - ref.loc[term, "df"] * ms_res) / (ref["sum_sq"].sum() + ms_res)
        assert got.loc[name, "omega_sq"] == pytest.approx(omega, abs=1e-9)
    assert got.loc["lora_rank", "p_value"] < 0.001


def test_unbalanced_sweep_says_so_and_runs_no_anova():
    cells = {(8, 1e-5): 0.6, (8, 1e-4): 0.65, (16, 1e-5): 0.7}
    values, runs = _values(cells)
    out, note = anova(values, runs, ["lora_rank", "learning_rate"])
    assert out.empty
    assert "unbalanced sweep: 1 of 4 cells" in note and "marginal effects" in note
    assert grid_status(runs, ["lora_rank", "learning_rate"])[0] is False


def test_single_variable_without_replicates_has_no_residual():
    values, runs = _values({(8, 1): 0.6, (16, 1): 0.7})
    out, note = anova(values, runs[["run", "lora_rank"]], ["lora_rank"])
    assert out.empty and "trained once" in note


def test_main_effects_and_diminishing_returns_on_a_planted_plateau():
    accs, params = grid([8, 16, 32], [1e-4], lambda r, lr: 0.55 if r == 8 else 0.8)
    exp = make_experiment(accs, params=params, n=400, seed=2, shared_difficulty=1.0)
    a = analyze(exp, Options(n_permutations=2000))
    eff = a.effects[a.effects["variable"] == "lora_rank"].set_index("level")
    iv = a.intervals.set_index("run")
    assert eff.loc[8, "mean"] == pytest.approx(iv.loc["rank8_lr0.0001", "value"])
    assert eff.loc[8, "ci_low"] == pytest.approx(iv.loc["rank8_lr0.0001", "ci_low"])
    d = a.diminishing[a.diminishing["variable"] == "lora_rank"].reset_index()
    assert list(zip(d["from_level"], d["to_level"], strict=True)) == [(8, 16), (16, 32)]
    assert d.loc[0, "significant"] and not d.loc[1, "significant"]
    s8 = exp.eval_samples[exp.eval_samples["run"] == "rank8_lr0.0001"]["score"].to_numpy()
    s16 = exp.eval_samples[exp.eval_samples["run"] == "rank16_lr0.0001"]["score"].to_numpy()
    assert d.loc[0, "gain"] == pytest.approx(s16.mean() - s8.mean())
    rule = [f for f in a.findings if f.rule == "diminishing_returns"]
    assert len(rule) == 1 and "beyond 16" in rule[0].text and rule[0].data["plateau_from"] == 16


def test_steps_between_single_runs_take_their_pairs_test_among_unmatched_runs():
    """Runs are matched on the other parameter: a rank grid at lr 1e-4 plus rank 8 at lr 3e-4
    gives three rank steps at lr 1e-4 and one lr step at rank 8, each between two single runs;
    each reads the verdict of its pair in the all-pairs checkpoint family (same p, same family)."""
    accs, params = grid([8, 16, 32, 64], [1e-4], lambda r, lr: 0.5 + 0.1 * (r > 8))
    extra, extra_params = grid([8], [3e-4], lambda r, lr: 0.8)
    exp = make_experiment({**accs, **extra}, params={**params, **extra_params}, n=300, seed=5)
    a = analyze(exp, Options(n_permutations=500, n_bootstrap=100))
    d = a.diminishing
    steps = [(v, f, t, x, y) for v, f, t, x, y in zip(d["variable"], d["from_level"], d["to_level"], d["b"], d["a"],
                                                      strict=True)]
    assert steps == [("learning_rate", 0.0001, 0.0003, "rank8_lr0.0001", "rank8_lr0.0003"),
                     ("lora_rank", 8, 16, "rank8_lr0.0001", "rank16_lr0.0001"),
                     ("lora_rank", 16, 32, "rank16_lr0.0001", "rank32_lr0.0001"),
                     ("lora_rank", 32, 64, "rank32_lr0.0001", "rank64_lr0.0001")]
    assert (d["unit"] == "checkpoints").all() and (d["n_runs"] == 2).all()
    pt = a.pair_tests
    assert len(pt) == 5 * 4 // 2 and set(pt["family"]) == {"checkpoints: qa/match/accuracy"}
    for _, r in d.iterrows():
        hit = pt[((pt["a"] == r["a"]) & (pt["b"] == r["b"])) | ((pt["a"] == r["b"]) & (pt["b"] == r["a"]))]
        assert len(hit) == 1
        assert r["p_value"] == hit["p_value"].iloc[0] and r["p_adjusted"] == hit["p_adjusted"].iloc[0]
        assert r["family"] == "checkpoints: qa/match/accuracy"
        assert bool(r["significant"]) == bool(hit["significant"].iloc[0])
    sig = dict(zip(d["variable"] + d["from_level"].astype(str), d["significant"].astype(bool), strict=True))
    assert sig == {"lora_rank8.0": True, "lora_rank16.0": False, "lora_rank32.0": False, "learning_rate0.0001": True}


def test_candidate_cost_pro_rates_epochs_and_controls_cost_nothing():
    run = pd.Series({"type": "fine-tuned", "gpu_hours": 3.0, "epochs_done": 3})
    assert candidate_cost(run, 0.0) == pytest.approx(1.0)
    assert candidate_cost(run, 2.0) == pytest.approx(3.0)
    assert candidate_cost(pd.Series({"type": "control"}), None) == 0.0
    assert math.isnan(candidate_cost(pd.Series({"type": "fine-tuned", "gpu_hours": None}), 0.0))


def test_pareto_front():
    v = pd.Series([0.5, 0.7, 0.65, 0.7, 0.8])
    c = pd.Series([0.0, 2.0, 3.0, 1.5, math.nan])
    assert pareto_front(v, c).tolist() == [True, False, False, True, False]


def test_pareto_table_in_dollars():
    exp = make_experiment({"a": 0.6, "b": 0.8}, gpu_hours={"a": 1.0, "b": 4.0}, n=50)
    a = analyze(exp, Options(gpu_hour_cost=2.5, n_permutations=500))
    p = a.pareto.set_index("run")
    assert p.loc["b", "cost_usd"] == pytest.approx(10.0)
    assert set(p.columns) >= set(tables.frame(["pareto"]).columns)


def test_no_anova_without_replicates_the_cells_are_single_runs():
    """Cell means of single runs carry training noise in every cell: no F-test claims an effect."""
    cells = {(8, 1e-5): 0.6, (8, 1e-4): 0.65, (16, 1e-5): 0.7, (16, 1e-4): 0.71, (32, 1e-5): 0.69, (32, 1e-4): 0.75}
    values, runs = _values(cells)
    out, note = anova(values, runs, ["lora_rank", "learning_rate"])
    assert out.empty and "each configuration was trained once" in note


def test_one_two_level_variable_with_seeds_is_left_to_the_welch_test():
    values, runs = _values({(8, 1): 0.6, (16, 1): 0.7}, reps=3)
    out, note = anova(values, runs[["run", "lora_rank"]], ["lora_rank"])
    assert out.empty and note is None


def test_mixed_epoch_grid_is_analysed_at_one_epoch():
    values, runs = _values({(8, 1e-5): 0.6, (8, 1e-4): 0.65, (16, 1e-5): 0.7, (16, 1e-4): 0.72}, reps=2)
    late = values[values["run"].str.startswith("r8")].assign(epoch=1.0, value=0.9)
    values = pd.concat([values[~values["run"].str.startswith("r8")], late, values[values["run"].str.startswith("r8")]])
    out, _note = anova(values, runs, ["lora_rank", "learning_rate"])
    df = values[values["epoch"] == 0.0].merge(runs, on="run")  # epoch 0 is the one every run shares
    ref = anova_lm(smf.ols("value ~ C(lora_rank) * C(learning_rate)", data=df).fit(), typ=2)
    assert out.set_index("term").loc["lora_rank", "F"] == pytest.approx(ref.loc["C(lora_rank)", "F"], abs=1e-9)
    # rank-8 runs only at epoch 1, rank-16 runs only at epoch 0: rank would be epoch
    r8 = values["run"].str.startswith("r8")
    only = values[(r8 & (values["epoch"] == 1.0)) | (~r8 & (values["epoch"] == 0.0))]
    out2, note2 = anova(only, runs, ["lora_rank", "learning_rate"])
    assert "lora_rank" not in set(out2.get("term", [])) and "evaluated at different epochs" in note2
    assert "leave out r16_lr0.0001_s0, r16_lr0.0001_s1, r16_lr1e-05_s0, r16_lr1e-05_s1" in note2


def test_main_effect_interval_across_seeds():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6 if r == 8 else 0.7, seeds=3)
    exp = make_experiment(accs, params=params, n=100, seed=8)
    a = analyze(exp, Options(n_permutations=500, n_bootstrap=100))
    vals = a.intervals.set_index("run")["value"][[f"rank8_lr0.0001_seed{s}" for s in range(3)]].to_numpy()
    lo, hi = stats.t.interval(0.95, 2, loc=vals.mean(), scale=stats.sem(vals))
    row = a.effects[(a.effects["variable"] == "lora_rank") & (a.effects["level"] == 8)].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    assert row["n_runs"] == 3
