"""The report's error-control plan and claims registry, and the methods behind the claims,
each checked against a reference implementation (scipy/statsmodels) or by simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import DescrStatsW

from analyze_experiment import tables
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Options
from analyze_experiment.report.summary_json import build_summary, dumps
from analyze_experiment.stats.equivalence import (
    default_margin,
    noninferiority_paired,
    pairs_for_noninferiority,
)
from analyze_experiment.stats.intervals import clustered_se, cr2_se, mean_interval
from analyze_experiment.stats.paired import adaptive_sign_flip, compare, mcnemar_exact, mcnemar_exact_ci
from analyze_experiment.stats.plan import primary_keys
from analyze_experiment.stats.selection import selection_adjusted
from stats_synth import grid, make_experiment

FAST = Options(n_permutations=1000, n_bootstrap=200)
ASSERTING = ("significantly", "matters", "clear winner", "equivalent", "outlier", "shown to be at most")


def _two_scorers(seed=0, gap=0.25):
    """qa scored by two scorers; the second ("judge") sees a large planted difference."""
    a = make_experiment({"a": 0.6, "b": 0.6}, n=200, seed=seed, scorer="exact")
    b = make_experiment({"a": 0.6, "b": 0.6 + gap}, n=200, seed=seed + 1, scorer="judge")
    a.eval_samples = pd.concat([a.eval_samples, b.eval_samples], ignore_index=True)
    a.design.scorers = ["exact", "judge"]
    return a


def test_primary_keys_first_scorer_per_task_unless_the_registry_says_otherwise():
    keys = [("qa", "judge", "mean"), ("qa", "exact", "accuracy"), ("math", "exact", "accuracy")]
    assert primary_keys(keys, None, ["exact", "judge"]) == {("qa", "exact", "accuracy"), ("math", "exact", "accuracy")}
    assert primary_keys(keys, None, [], "all") == set(keys)
    reg = pd.DataFrame({"task": ["qa", "qa"], "scorer": ["judge", "exact"], "metric": ["mean", "accuracy"],
                        "direction": ["higher", "higher"], "primary": [True, False]})
    assert primary_keys(keys, reg, ["exact", "judge"]) == {("qa", "judge", "mean")}
    reg["direction"] = ["descriptive", "higher"]
    assert ("qa", "judge", "mean") not in primary_keys(keys, reg, ["exact", "judge"], "all")


def test_secondary_scorers_are_described_not_tested_unless_confirmatory_all():
    exp = _two_scorers()
    a = analyze(exp, FAST)
    judge = a.comparisons[a.comparisons["scorer"] == "judge"]
    assert judge["p_holm"].min() < 1e-4  # the test is computed and tabled …
    assert not judge["significant"].any() and not judge["confirmatory"].any()  # … but claims nothing
    assert not [c for c in a.claims if "judge" in c.claim.family]
    fam = a.families.set_index("family")
    assert not fam.loc["checkpoints: qa/judge/accuracy", "confirmatory"]
    b = analyze(_two_scorers(), Options(n_permutations=1000, n_bootstrap=200, confirmatory="all"))
    judge = b.comparisons[b.comparisons["scorer"] == "judge"]
    assert judge["significant"].any()
    # two confirmatory difference families: α split over both, Holm within each
    p = judge["p_holm"].to_numpy()
    assert judge["p_adjusted"].to_numpy() == pytest.approx(np.minimum(1, 2 * p))


def test_p_adjusted_is_holm_within_the_family_times_the_number_of_families():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.65, seeds=3)
    a = analyze(make_experiment(accs, params=params, n=150, seed=2), FAST)
    fam = a.families.set_index("family")
    diff = fam[fam["kind"].isin(["checkpoints", "configurations", "effects", "outliers"])]
    n_fam = len(diff)
    assert n_fam == 2 and set(diff["kind"]) == {"checkpoints", "configurations"}
    pt = a.pair_tests
    assert len(pt) == fam.loc["checkpoints: qa/match/accuracy", "size"] == 15
    ref = multipletests(pt["p_value"].to_numpy(), method="holm")[1]
    assert pt["p_holm"].to_numpy() == pytest.approx(ref, abs=1e-12)
    assert pt["p_adjusted"].to_numpy() == pytest.approx(np.minimum(1, n_fam * ref), abs=1e-12)
    assert (pt["significant"] == (pt["p_adjusted"] < 0.05)).all()
    (txt,) = [f.text for f in a.findings if f.rule == "error_control"]
    assert "checkpoints: qa/match/accuracy (15 tests" in txt and "split over the 2 difference families" in txt


def test_every_asserting_sentence_carries_its_test():
    accs, params = grid([8, 16, 32], [1e-5, 1e-4], lambda r, lr: 0.6 + 0.1 * (r >= 16) + 0.05 * (lr > 5e-5))
    accs["base"] = 0.5
    hours = {k: 1.0 + (k != "base") for k in accs}
    a = analyze(make_experiment(accs, params=params, controls=("base",), shared_difficulty=1.0,
                                gpu_hours=hours), FAST)
    sections = ("key_findings", "best_performers", "recommendations", "next_steps")
    for f in a.findings:
        if f.section in sections and any(w in f.text for w in ASSERTING) and "not tested" not in f.text:
            assert f.claim is not None, f.text
            assert f.claim.family in set(a.families["family"]), f.claim
    kinds = {f.claim.kind for f in a.claims}
    assert {"winner", "difference"} <= kinds
    # one verdict per contrast: a pair stated in two sentences carries the same test and p
    seen: dict[tuple, tuple] = {}
    for f in a.claims:
        if f.claim.kind == "difference" and f.claim.p_value is not None:
            key = (f.claim.family, f.claim.p_value)
            seen.setdefault(key, (f.claim.significant,))
            assert seen[key] == (f.claim.significant,)


def test_summary_json_lists_claims_families_and_seed_tables():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6 if r == 8 else 0.75, seeds=3)
    exp = make_experiment(accs, params=params, n=200, seed=5)
    a = analyze(exp, FAST)
    s = json.loads(dumps(build_summary(exp, a)))
    assert len(s["claims"]) == len(a.claims) > 0
    c = s["claims"][0]
    assert set(c) >= {"kind", "text", "test", "statistic", "p", "p_adjusted", "family", "significant"}
    assert {f["family"] for f in s["families"]} >= {c["family"] for c in s["claims"] if c["family"]}
    assert len(s["seeds"]) == 2 and {r["config"] for r in s["seeds"]} == {"lora_rank=8", "lora_rank=16"}
    assert len(s["seed_comparisons"]) == 1 and s["seed_comparisons"][0]["test"] == "welch"


def test_inspect_stderr_belongs_to_the_mean_metric_only():
    exp = make_experiment({"a": 0.6}, n=50, seed=1)
    exp.eval_scores = tables.frame(tables.EVAL_SCORES, [
        {"run": "a", "task": "qa", "epoch": 0, "scorer": "match", "metric": m, "value": v, "stderr": None, "n": 50,
         "log": "a.eval"} for m, v in (("accuracy", 0.6), ("cat_a", 0.7), ("cat_b", 0.5), ("stderr", 0.0699))])
    exp.eval_samples = exp.eval_samples.iloc[0:0]
    s = build_summary(exp, analyze(exp, FAST))
    metrics = s["runs"][0]["evals"][0]["metrics"]
    assert metrics["accuracy"]["stderr"] == pytest.approx(0.0699)
    assert metrics["cat_a"]["stderr"] is None and metrics["cat_b"]["stderr"] is None


# --- paired tests ---------------------------------------------------------------------
def test_mcnemar_interval_agrees_with_the_exact_test_where_the_t_interval_did_not():
    b, c, n = 12, 4, 200  # exact McNemar p = 0.077 …
    assert mcnemar_exact(b, c) == pytest.approx(2 * stats.binom.cdf(4, 16, 0.5))
    x = np.r_[np.ones(b), np.zeros(c), np.ones(60), np.zeros(n - b - c - 60)]
    y = np.r_[np.zeros(b), np.ones(c), np.ones(60), np.zeros(n - b - c - 60)]
    d = x - y
    t_lo = d.mean() - stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    assert t_lo > 0  # … while the t interval excluded 0
    lo, hi = mcnemar_exact_ci(b, c, n)
    assert lo < 0 < hi
    ids = pd.Index([f"s{i}" for i in range(n)])
    r = compare(pd.Series(x, index=ids), pd.Series(y, index=ids), binary=True)
    assert (r.ci_low, r.ci_high) == (lo, hi) and r.test == "mcnemar_exact"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 100), st.sampled_from([0.9, 0.95, 0.99]))
def test_mcnemar_interval_excludes_zero_exactly_when_the_test_rejects(b, c, concordant, conf):
    n = b + c + concordant
    if n == 0:
        return
    lo, hi = mcnemar_exact_ci(b, c, n, conf)
    reject = mcnemar_exact(b, c) < 1 - conf
    assert (lo > 0 or hi < 0) == reject
    assert lo <= (b - c) / n <= hi


def test_permutation_p_near_alpha_is_redrawn_and_reports_its_monte_carlo_error():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 1, 60)
    d += 2.0 * d.std() / math.sqrt(60) - d.mean()  # t ≈ 2: p near 0.05
    _mean, p, se, draws = adaptive_sign_flip(d, n_resamples=2000, seed=1, alpha=0.05)
    assert draws == 20_000 and se == pytest.approx(math.sqrt(p * (1 - p) / draws))
    far = d + 1.0
    _, p2, se2, draws2 = adaptive_sign_flip(far, n_resamples=2000, seed=1, alpha=0.05)
    assert draws2 == 2000 and p2 < 0.01 and se2 == pytest.approx(math.sqrt(p2 * (1 - p2) / 2000))
    _, _, se3, draws3 = adaptive_sign_flip(d[:10], n_resamples=2000)  # 2^10 ≤ 2000: exact
    assert se3 == 0 and draws3 == 0


# --- clusters -------------------------------------------------------------------------
def test_cr2_equals_the_bell_mccaffrey_matrix_formula():
    rng = np.random.default_rng(3)
    sizes = [2, 3, 7, 12, 4]
    cl = np.repeat(np.arange(len(sizes)), sizes)
    x = rng.normal(0, 1, len(cl)) + np.repeat(rng.normal(0, 1, len(sizes)), sizes)
    n = len(x)
    X = np.ones((n, 1))
    e = x - x.mean()
    meat = 0.0
    for g in range(len(sizes)):
        idx = cl == g
        h = X[idx] @ np.linalg.inv(X.T @ X) @ X[idx].T
        adj = linalg.inv(linalg.sqrtm(np.eye(idx.sum()) - h)).real
        u = X[idx].T @ adj @ e[idx]
        meat += float(u @ u)
    ref = math.sqrt(meat) / n  # (X'X)^-1 meat (X'X)^-1 with X'X = n
    assert cr2_se(x, cl)[0] == pytest.approx(ref, rel=1e-10)
    bal = np.repeat(np.arange(4), 5)
    y = rng.normal(0, 1, 20)
    assert cr2_se(y, bal)[0] == pytest.approx(clustered_se(y, bal)[0], rel=1e-12)  # equal sizes: CR1
    assert mean_interval(x, binary=False, clusters=cl).stderr == pytest.approx(ref, rel=1e-10)


def test_few_clusters_warn_and_say_when_nothing_can_be_significant():
    meta = {"doc": [f"d{i % 4}" for i in range(200)]}
    exp = make_experiment({"a": 0.5, "b": 0.9}, n=200, seed=1, meta=meta)
    a = analyze(exp, Options(n_permutations=1000, n_bootstrap=100, cluster_by="doc"))
    msgs = [w.message for w in exp.diagnostics.warnings]
    assert any("only 4 clusters" in m and "CR2" in m and "smallest attainable p-value is 0.125" in m for m in msgs)
    assert not a.comparisons["significant"].any()


# --- equivalence / non-inferiority ------------------------------------------------------
def test_noninferiority_matches_statsmodels_one_sided_test():
    rng = np.random.default_rng(2)
    d = rng.normal(-0.01, 0.3, 250)
    r = noninferiority_paired(d, 0.05, 0.05)
    _t, p, _ = DescrStatsW(d).ttest_mean(-0.05, alternative="larger")
    assert r.p_value == pytest.approx(p, abs=1e-12) and r.non_inferior == (p < 0.05)
    lower = DescrStatsW(d).tconfint_mean(alpha=0.10)[0]  # one-sided 95% bound = two-sided 90% lower end
    assert r.lower == pytest.approx(lower, abs=1e-12)
    n = NormalIndPower().solve_power(effect_size=0.05 / 0.3, alpha=0.05, power=0.8, ratio=0, alternative="larger")
    assert pairs_for_noninferiority(0.05, 0.3) == math.ceil(n)


def test_default_margin_is_on_the_metric_scale():
    assert default_margin(0.70, 0.80, None) == (pytest.approx(0.05), "0.5 × the width of the best's CI")
    assert default_margin(3.1, 3.9, None)[0] == pytest.approx(0.4)  # rubric points, not 0.01
    assert default_margin(0.7, 0.8, 0.02) == (0.02, "--margin")


# --- winner's curse -----------------------------------------------------------------------
def test_selection_adjusted_value_removes_most_of_the_winners_curse():
    rng = np.random.default_rng(11)
    ids = [f"s{i}" for i in range(200)]
    raw, adj, cov_raw, cov_adj, reps = [], [], 0, 0, 60
    for r in range(reps):
        sc = {f"c{j}": pd.Series((rng.random(200) < 0.7).astype(float), index=ids) for j in range(9)}
        s = selection_adjusted(sc, n_boot=400, seed=r)
        assert sum(s.p_best.values()) == pytest.approx(1.0)
        raw.append(s.raw - 0.7)
        adj.append(s.adjusted - 0.7)
        iv = mean_interval(sc[s.best].to_numpy(), binary=True)
        cov_raw += iv.ci_low <= 0.7 <= iv.ci_high
        cov_adj += s.ci_low <= 0.7 <= s.ci_high
    assert np.mean(raw) > 0.03  # the best of 9 equal candidates reads ~4.5 pp high …
    assert abs(np.mean(adj)) < np.mean(raw) / 2  # … the adjusted value removes most of it
    assert cov_adj / reps >= 0.85 and cov_adj >= cov_raw


def test_selection_for_a_lower_is_better_metric_picks_the_smallest():
    ids = [f"s{i}" for i in range(50)]
    rng = np.random.default_rng(1)
    sc = {"a": pd.Series(rng.normal(4.0, 1, 50), index=ids), "b": pd.Series(rng.normal(6.0, 1, 50), index=ids)}
    s = selection_adjusted(sc, direction="lower", n_boot=300)
    assert s.best == "a" and s.p_best["a"] > 0.99 and s.adjusted == pytest.approx(s.raw, abs=0.05)


def test_the_best_sentence_states_the_adjusted_value_beside_the_raw_one():
    a = analyze(make_experiment({f"r{i}": 0.7 for i in range(6)}, n=200, seed=3), FAST)
    b = a.best[0]
    (f,) = [f for f in a.findings if f.rule.startswith("best_")]
    assert b.adjusted_value is not None and b.adjusted_value < b.value
    assert f"selection-adjusted {b.adjusted_value * 100:.1f}%" in f.text and "P(best):" in f.text


def test_checkpoint_families_are_named_per_row_and_registered_once_in_order_of_first_row():
    from types import SimpleNamespace

    from analyze_experiment.stats.plan import _pair_families, _Registry

    pairs = pd.DataFrame({"task": ["qa", "qa", "math", "qa", "math"], "scorer": ["m", "m", "m", "m", "m"],
                          "metric": ["accuracy"] * 5, "p_value": [0.1, 0.2, 0.3, 0.4, 0.5],
                          "p_adjusted": [0.2, 0.4, 0.6, 0.8, 1.0], "family_size": [3, 3, 2, np.nan, 2]})
    a = SimpleNamespace(comparisons=pairs.iloc[:2].copy(), pair_tests=pairs.copy(), seed_comparisons=None)
    reg = _Registry({("qa", "m", "accuracy")})
    _pair_families(a, reg)
    assert a.pair_tests["family"].tolist() == ["checkpoints: qa/m/accuracy", "checkpoints: qa/m/accuracy",
                                               "checkpoints: math/m/accuracy", "checkpoints: qa/m/accuracy",
                                               "checkpoints: math/m/accuracy"]
    assert a.comparisons["family"].tolist() == ["checkpoints: qa/m/accuracy"] * 2
    # one family per key, in the order of first appearance, with the first row's size
    assert [(f["family"], f["size"], f["confirmatory"]) for f in reg.rows] == [
        ("checkpoints: qa/m/accuracy", 3, True), ("checkpoints: math/m/accuracy", 2, False)]
    assert a.pair_tests["p_holm"].tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
