"""Every findings rule: fires on data that call for it, and its sentence carries the numbers."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyze_experiment import tables
from analyze_experiment.analysis import COMPARISONS, OUTLIERS, Analysis, Best
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Design, Experiment, Options
from analyze_experiment.report.context import FindingContext
from analyze_experiment.report.findings import build_findings
from stats_synth import grid, make_experiment

FAST = Options(n_permutations=1000, n_bootstrap=300, gpu_hour_cost=2.5)


def _rules(a):
    return {f.rule for f in a.findings}


def _one(a, rule):
    found = [f for f in a.findings if f.rule == rule]
    assert found, f"rule {rule} did not fire: {sorted(_rules(a))}"
    return found


def _pct(x):
    return f"{x * 100:.1f}"


@pytest.fixture(scope="module")
def sweep():
    accs, params = grid([8, 16, 32], [1e-5, 1e-4], lambda r, lr: 0.6 + 0.1 * (r >= 16) + 0.05 * (lr > 5e-5))
    accs["base"] = 0.5
    hours = {k: {"8": 1.0, "16": 2.0, "32": 4.0}[k.split("_")[0][4:]] for k in accs if k != "base"}
    exp = make_experiment(accs, params=params, controls=("base",), shared_difficulty=1.0, gpu_hours=hours)
    return analyze(exp, FAST)


def test_every_sentence_ends_with_a_full_stop_and_carries_a_number(sweep):
    for f in sweep.findings:
        assert f.text.endswith(".")
        assert re.search(r"\d", f.text), f.text


def test_best_rule_numbers(sweep):
    (f,) = _one(sweep, "best_no_clear_winner")
    b = sweep.best[0]
    assert f"{_pct(b.value)}% (95% CI {_pct(b.ci_low)} to {_pct(b.ci_high)}%, n = 200)" in f.text
    assert f"{len(b.tied_with)} of 6 runners-up are not significantly worse" in f.text


def test_vs_baseline_rule(sweep):
    (f,) = _one(sweep, "vs_baseline")
    c = sweep.comparisons
    sig = c[(c["b"] == "base") & c["significant"] & (c["diff"] > 0)]
    assert f.data["n_better"] == len(sig) and f"{len(sig)} of 6 candidates" in f.text
    top = c[c["b"] == "base"].sort_values("diff").iloc[-1]
    assert f"+{_pct(top['diff'])} pp" in f.text


def test_not_distinguishable_rule_groups_the_ties_in_one_sentence(sweep):
    (f,) = _one(sweep, "not_distinguishable")
    c = sweep.comparisons[sweep.comparisons["kind"] == "vs_best"].set_index("b")
    tied = set(c.index[~c["significant"].astype(bool)])
    assert set(f.data["b"]) == tied and len(tied) >= 2
    assert f"{len(tied)} candidates are within the noise of the best" in f.text
    for b in f.data["b"]:
        r = c.loc[b]
        assert f"{b} (epoch 0)" not in f.text  # one epoch per run: no epoch label
        assert f"{b} {-r['diff'] * 100:+.1f} pp (unadjusted 95% CI {-r['ci_high'] * 100:.1f} to " \
               f"{-r['ci_low'] * 100:.1f} pp, Holm p {'= ' + format(r['p_adjusted'], '.2g')}" in f.text
    assert f.text.count("Holm p") == len(tied)


def test_no_configuration_effect_is_claimed_from_single_runs(sweep):
    assert sweep.anova.empty and "anova_effect" not in _rules(sweep)
    fs = {f.data["variable"]: f for f in _one(sweep, "effect_confounded")}
    assert set(fs) == {"lora_rank", "learning_rate"} and all(f.claim is None for f in fs.values())
    eff = sweep.effects[sweep.effects["variable"] == "lora_rank"]
    gap = eff["mean"].max() - eff["mean"].min()
    assert f"{gap * 100:+.1f} pp gap between lora_rank = " in fs["lora_rank"].text


def test_steps_averaged_over_runs_are_descriptive(sweep):
    d = sweep.diminishing[sweep.diminishing["variable"] == "lora_rank"]
    assert len(d) == 2 and set(d["test"]) == {"descriptive"} and d["p_value"].isna().all()
    assert "diminishing_returns" not in _rules(sweep)


def test_summary_rules(sweep):
    (m,) = _one(sweep, "methods")
    assert f"{len(sweep.comparisons)} paired comparisons" in m.text
    (p,) = _one(sweep, "power")
    assert f"{sweep.power[0]['mdd'] * 100:.1f} pp" in p.text and "n = 200" in p.text


def test_production_and_pareto_rules(sweep):
    (f,) = _one(sweep, "production_config")
    assert "Production config" in f.text and "GPU-hours" in f.text and "$" in f.text
    b = sweep.best[0]
    ni = sweep.noninferiority
    shown = set(ni.loc[ni["non_inferior"], "run"]) | {b.run}
    assert f.data["run"] in shown
    cheaper = sweep.pareto[sweep.pareto["run"].isin(shown) & (sweep.pareto["gpu_hours"] < f.data["gpu_hours"])]
    assert cheaper.empty
    (p,) = _one(sweep, "pareto")
    assert set(p.data["runs"]) == set(sweep.pareto[sweep.pareto["pareto"]]["run"])


def test_next_step_rules(sweep):
    levels = {(f.data["variable"], f.data["level"]) for f in _one(sweep, "untested_level")}
    assert ("lora_rank", 24.0) in levels
    (s,) = _one(sweep, "more_seeds")
    assert "at most 1 seed" in s.text
    # the default margin is half the best's CI width: the eval set is as large as that margin asks
    assert "larger_eval_set" not in _rules(sweep)


def test_larger_eval_set_for_a_margin_finer_than_the_eval_resolves():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.7)
    res = analyze(make_experiment(accs, params=params, n=200, seed=1),
                  Options(n_permutations=500, n_bootstrap=100, margin=0.01))
    (e,) = _one(res, "larger_eval_set")
    assert e.data["n_needed"] > 200 and f"{int(e.data['n_needed']):,}" in e.text


def _exp(scores: dict[str, np.ndarray], runs: list[dict] | None = None, **kw) -> Experiment:
    rows = [{"run": r, "task": "qa", "epoch": 0, "sample_id": f"s{i:04d}", "sample_epoch": 1,
             "scorer": "m", "score": float(v), "answer": kw.get("answer", f"x{i}")}
            for r, arr in scores.items() for i, v in enumerate(arr)]
    runs = runs or [{"run": r, "type": "fine-tuned"} for r in scores]
    return Experiment(root=Path("."), layout="unknown", design=Design(name="x"), has_design_doc=True,
                      runs=tables.frame(tables.RUNS, runs), eval_samples=tables.frame(tables.EVAL_SAMPLES, rows),
                      param_names=kw.get("param_names", []))


def test_equivalent_rule_needs_tost():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.2, 400)
    exp = _exp({"a": a, "b": a + rng.normal(0.001, 0.01, 400)})
    res = analyze(exp, FAST)
    (f,) = _one(res, "equivalent")
    eq = res.equivalence.iloc[0]
    assert eq["equivalent"] and f"TOST p {'< 0.001' if eq['p_tost'] < 0.001 else '= ' + format(eq['p_tost'], '.2g')}" in f.text
    assert "within ±0.01" in f.text
    assert "not_distinguishable" not in _rules(res)


def test_clear_winner_and_edge_of_grid_rules():
    rng = np.random.default_rng(1)
    runs = [{"run": f"r{k}", "type": "fine-tuned", "lora_rank": k} for k in (4, 8, 16)]
    exp = _exp({"r4": rng.random(300) < 0.5, "r8": rng.random(300) < 0.55, "r16": rng.random(300) < 0.9},
               runs, param_names=["lora_rank"])
    res = analyze(exp, FAST)
    (f,) = _one(res, "best_clear_winner")
    assert "all 2 runners-up are significantly worse" in f.text
    (e,) = _one(res, "edge_of_grid")
    assert e.data["edge"] == 16 and "test above 16" in e.text
    assert "untested_level" not in _rules(res)


def test_suspicious_and_outlier_rules():
    rng = np.random.default_rng(2)
    exp = _exp({"a": np.ones(50), "b": rng.random(50) < 0.5}, answer="A")
    res = analyze(exp, FAST)
    kinds = {f.data["kind"] for f in _one(res, "suspicious_eval")}
    assert {"accuracy_100", "constant_answers"} <= kinds
    a = Analysis(outliers=pd.DataFrame([{"run": "s3", "task": "qa", "kind": "metric", "detail": "accuracy departs",
                                         "value": 0.31, "robust_z": -6.2}], columns=OUTLIERS))
    fs = build_findings(a, runs=pd.DataFrame(columns=["run"]), variables=[], baselines=[], options=Options())
    (o,) = [f for f in fs if f.rule == "outlier"]
    assert "robust z = -6.2" in o.text and "0.31" in o.text


def test_marginal_effect_and_unbalanced_rules():
    rng = np.random.default_rng(3)
    runs = [{"run": "a", "type": "fine-tuned", "lora_rank": 8, "learning_rate": 1e-5},
            {"run": "b", "type": "fine-tuned", "lora_rank": 16, "learning_rate": 1e-5},
            {"run": "c", "type": "fine-tuned", "lora_rank": 8, "learning_rate": 1e-4}]
    exp = _exp({r["run"]: rng.random(100) < 0.6 for r in runs}, runs, param_names=["lora_rank", "learning_rate"])
    res = analyze(exp, FAST)
    (u,) = _one(res, "unbalanced")
    assert "1 of 4 cells" in u.text
    vars_ = {f.data["variable"] for f in _one(res, "marginal_effect")}
    assert vars_ == {"lora_rank", "learning_rate"}


def test_no_significant_step_rule():
    rng = np.random.default_rng(4)
    runs = [{"run": f"r{k}", "type": "fine-tuned", "lora_rank": k} for k in (8, 16, 32)]
    exp = _exp({r["run"]: rng.random(100) < 0.6 for r in runs}, runs, param_names=["lora_rank"])
    res = analyze(exp, FAST)
    (f,) = _one(res, "no_significant_step")
    assert "→" in f.text and "unadjusted 95% CI" in f.text


def test_two_level_variable_of_single_runs_gets_no_second_step_sentence():
    rng = np.random.default_rng(4)
    runs = [{"run": f"r{k}", "type": "fine-tuned", "lora_rank": k} for k in (8, 16)]
    exp = _exp({"r8": rng.random(100) < 0.6, "r16": rng.random(100) < 0.6}, runs, param_names=["lora_rank"])
    res = analyze(exp, FAST)
    assert "no_significant_step" not in _rules(res) and "anova_no_effect" not in _rules(res)
    (f,) = _one(res, "effect_confounded")
    assert "whether lora_rank matters is not tested" in f.text


def _ni(rows):
    from analyze_experiment.stats.production import NONINFERIORITY
    base = {"task": "qa", "scorer": "m", "metric": "accuracy", "best_run": "big", "margin": 0.02,
            "margin_source": "--margin", "family": "non-inferiority: qa/m/accuracy", "confirmatory": True,
            "n_paired": 500, "sd_diff": 0.2, "n_needed": 620.0}
    return pd.DataFrame([{**base, **r} for r in rows], columns=NONINFERIORITY)


def test_production_config_picks_cheaper_tied_candidate():
    a = Analysis()
    a.best = [Best("qa", "m", "accuracy", "big", 0.0, 0.80, 0.75, 0.85, False, "r", ["small"])]
    a.comparisons = tables.frame(COMPARISONS, [{"task": "qa", "scorer": "m", "metric": "accuracy", "a": "big", "epoch_a": 0.0,
                                   "b": "small", "epoch_b": 0.0, "kind": "vs_best", "diff": 0.01,
                                   "p_adjusted": 0.6, "significant": False, "n_paired": 500}])
    a.pareto = pd.DataFrame([
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "big", "epoch": 0.0, "value": 0.80,
         "gpu_hours": 8.0, "cost_usd": 20.0, "pareto": True},
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "small", "epoch": 0.0, "value": 0.79,
         "gpu_hours": 2.0, "cost_usd": 5.0, "pareto": True}])
    a.noninferiority = _ni([{"run": "small", "epoch": 0.0, "best_epoch": 0.0, "diff": -0.01, "lower": -0.015,
                             "p_value": 0.001, "p_adjusted": 0.001, "non_inferior": True}])
    fs = build_findings(a, runs=pd.DataFrame(columns=["run"]), variables=[], baselines=[], options=Options())
    (p,) = [f for f in fs if f.rule == "production_config"]
    assert p.data["run"] == "small"
    assert "79.0%, 2 GPU-hours, $5.00" in p.text and "shown to be at most 2.0 pp (--margin) worse" in p.text
    assert "80.0%, 8 GPU-hours): one-sided 95% lower bound -1.5 pp, non-inferiority Holm p = 0.001" in p.text
    assert p.claim.kind == "non_inferiority" and p.claim.significant and p.claim.p_adjusted == 0.001


def test_production_config_says_cannot_tell_instead_of_absence_of_evidence():
    a = Analysis()
    a.best = [Best("qa", "m", "accuracy", "big", 0.0, 0.80, 0.75, 0.85, False, "r", ["small"])]
    a.comparisons = tables.frame(COMPARISONS, [{"task": "qa", "scorer": "m", "metric": "accuracy", "a": "big",
                                                "epoch_a": 0.0, "b": "small", "epoch_b": 0.0, "kind": "vs_best",
                                                "diff": 0.03, "p_adjusted": 0.6, "significant": False,
                                                "n_paired": 500}])
    a.pareto = pd.DataFrame([
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "big", "epoch": 0.0, "value": 0.80,
         "gpu_hours": 8.0, "cost_usd": 20.0, "pareto": True},
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "small", "epoch": 0.0, "value": 0.77,
         "gpu_hours": 2.0, "cost_usd": 5.0, "pareto": True}])
    a.noninferiority = _ni([{"run": "small", "epoch": 0.0, "best_epoch": 0.0, "diff": -0.03, "lower": -0.06,
                             "p_value": 0.7, "p_adjusted": 0.7, "non_inferior": False}])
    fs = build_findings(a, runs=pd.DataFrame(columns=["run"]), variables=[], baselines=[], options=Options())
    (p,) = [f for f in fs if f.rule == "production_config"]
    assert p.data["run"] == "big" and "not significantly worse" not in p.text
    (c,) = [f for f in fs if f.rule == "cannot_tell"]
    assert "cannot tell whether the cheaper small" in c.text and "about 620 paired samples" in c.text


def test_production_config_never_picks_a_failed_run():
    a = Analysis()
    a.best = [Best("qa", "m", "accuracy", "big", 0.0, 0.80, 0.75, 0.85, False, "r", ["small"])]
    a.pareto = pd.DataFrame([
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "big", "epoch": 0.0, "value": 0.80,
         "gpu_hours": 8.0, "cost_usd": 20.0, "pareto": True},
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "small", "epoch": 0.0, "value": 0.79,
         "gpu_hours": 2.0, "cost_usd": 5.0, "pareto": True}])
    a.noninferiority = _ni([{"run": "small", "epoch": 0.0, "best_epoch": 0.0, "diff": -0.01, "lower": -0.015,
                             "p_value": 0.001, "p_adjusted": 0.001, "non_inferior": True}])
    a.failed_runs = pd.DataFrame([{"run": "small", "status": "diverged"}])
    fs = build_findings(a, runs=pd.DataFrame(columns=["run"]), variables=[], baselines=[], options=Options())
    (p,) = [f for f in fs if f.rule == "production_config"]
    assert p.data["run"] == "big"


def test_production_config_writes_short_gpu_times_in_one_readable_unit():
    a = Analysis()
    a.best = [Best("qa", "m", "accuracy", "big", 1.0, 0.86, 0.80, 0.90, False, "r", ["small"])]
    a.comparisons = tables.frame(COMPARISONS, [
        {"task": "qa", "scorer": "m", "metric": "accuracy", "a": "big", "epoch_a": 1.0, "b": "small",
         "epoch_b": 1.0, "kind": "vs_best", "diff": 0.03, "p_adjusted": 0.9, "significant": True, "n_paired": 200},
        {"task": "qa", "scorer": "m", "metric": "accuracy", "a": "big", "epoch_a": 1.0, "b": "small",
         "epoch_b": 0.0, "kind": "vs_best", "diff": 0.005, "p_adjusted": 1.0, "significant": False, "n_paired": 200}])
    a.pareto = pd.DataFrame([
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "big", "epoch": 1.0, "value": 0.86,
         "gpu_hours": 0.0025, "cost_usd": np.nan, "pareto": True},
        {"task": "qa", "scorer": "m", "metric": "accuracy", "run": "small", "epoch": 0.0, "value": 0.855,
         "gpu_hours": 1.5 / 3600, "cost_usd": np.nan, "pareto": True}])
    a.noninferiority = _ni([{"run": "small", "epoch": 1.0, "best_epoch": 1.0, "diff": -0.03, "lower": -0.05,
                             "p_value": 0.9, "p_adjusted": 0.9, "non_inferior": False},
                            {"run": "small", "epoch": 0.0, "best_epoch": 1.0, "diff": -0.005, "lower": -0.01,
                             "p_value": 0.01, "p_adjusted": 0.02, "non_inferior": True}])
    fs = build_findings(a, runs=pd.DataFrame(columns=["run"]), variables=[], baselines=[], options=Options())
    (p,) = [f for f in fs if f.rule == "production_config"]
    # the epoch-0 row (shown non-inferior) is the one picked, not the first row of the run
    assert "85.5%, 1.5 GPU-seconds" in p.text and "86.0%, 9 GPU-seconds): one-sided 95% lower bound -1.0 pp" in p.text
    (f,) = [f for f in fs if f.rule == "pareto"]
    assert "at 1.5 GPU-seconds" in f.text and "at 9 GPU-seconds" in f.text and "GPU-hours" not in f.text



def test_seed_rules_numbers():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6 if r == 8 else 0.7, seeds=5)
    res = analyze(make_experiment(accs, params=params, n=100, seed=4), FAST)
    (c,) = _one(res, "seed_comparison")
    sc = res.seed_comparisons.iloc[0]
    assert f"P(lora_rank=16 > lora_rank=8) = {sc['p_a_gt_b']:.2f}" in c.text and "5 vs 5 seeds" in c.text
    (s,) = _one(res, "seed_spread")
    assert f"over {int(res.seeds['n_seeds'].max())} seeds" in s.text


def test_production_config_says_when_the_baseline_is_as_good():
    rng = np.random.default_rng(5)
    x = (rng.random(150) < 0.6).astype(float)
    flip = rng.random(150) < 0.05
    exp = _exp({"ft": np.where(flip, 1 - x, x), "base": x},
               [{"run": "ft", "type": "fine-tuned", "gpu_hours": 3.0}, {"run": "base", "type": "control"}])
    res = analyze(exp, FAST)
    (p,) = _one(res, "production_config")
    assert p.data["run"] == "base" and p.data["gpu_hours"] == 0
    assert "fine-tuning did not pay for its cost here" in p.text
    assert res.best[0].run == "base" and "the best (" in p.text


def test_a_gap_too_small_for_any_practical_seed_count_says_so():
    """One run per configuration and a 0.3 pp gap against a 2.9 pp SE: the seeds a test would
    need run to four digits, and the sentence says the gap is too small to be worth testing."""
    from analyze_experiment.report.findings import PRACTICAL_SEEDS, rule_confounded

    a = Analysis()
    a.anova_note = "qa/match: each configuration was trained once (full grid of 4 cells × 1 run(s))"
    a.effects = pd.DataFrame([
        {"task": "qa", "scorer": "match", "metric": "accuracy", "variable": "lora_rank", "level": lv, "mean": m,
         "ci_low": m - 0.05, "ci_high": m + 0.05, "n_runs": 2, "n_samples": 400}
        for lv, m in ((4, 0.725), (16, 0.728))])
    a.intervals = pd.DataFrame({"task": ["qa"] * 4, "scorer": ["match"] * 4, "metric": ["accuracy"] * 4,
                                "stderr": [0.029] * 4})
    ctx = FindingContext()
    (f,) = rule_confounded(a, ctx)
    need = f.data["seeds_needed"]
    assert need > PRACTICAL_SEEDS
    assert f"would take at least {int(need):,} seeds per configuration" in f.text
    assert f.text.endswith("so it is too small to be worth a seed sweep")
    a.effects.loc[1, "mean"] = 0.825  # a 10 pp gap: a handful of seeds
    (g,) = rule_confounded(a, ctx)
    assert g.data["seeds_needed"] <= PRACTICAL_SEEDS
    assert f"at least {int(g.data['seeds_needed'])} seeds per configuration" in g.text
