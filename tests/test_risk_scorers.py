"""Risk scorers, DeLong, two-class scorers and subgroups on real inspect-ai logs.

Truth from outside the package: scikit-learn (AUC, Brier, confusion matrix, balanced
accuracy, F1), a direct O(m·n) DeLong computation from the 1988 definitions, the published
example of the ``pauc`` package, scipy's one-way ANOVA and statsmodels' Holm, and the
logs' own per-sample metadata read with inspect-ai's reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import value_to_float
from scipy import stats
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from statsmodels.stats.multitest import multipletests

from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.classification import classification_table
from analyze_experiment.stats.delong import auc_ci, paired_test, placements
from analyze_experiment.stats.risk import auc_tests, ece, risk_samples, risk_table, roc_points
from analyze_experiment.stats.subgroups import category_keys, heterogeneity_tests, subgroup_table

SWEEP = Path(__file__).parent / "fixtures" / "evals" / "scorer_sweep"
TO_FLOAT = value_to_float()
BASE, GOOD, SHARP = "Llama-3.2-1B_base", "rank4_lr1e-4", "rank16_lr1e-4"


def log_samples(kind: str) -> pd.DataFrame:
    """The per-sample rows of a sweep read with inspect-ai's own reader (score metadata as
    ``score_meta.<key>``, dict values as JSON text, sample metadata as ``meta.<key>``)."""
    rows = []
    for path in sorted((SWEEP / kind).glob("*/eval/logs/*.eval")):
        log = read_eval_log(str(path))
        run = path.parts[-4]
        for s in log.samples:
            for name, sc in s.scores.items():
                row = {"run": run, "task": log.eval.task, "epoch": None, "sample_id": str(s.id),
                       "sample_epoch": s.epoch, "scorer": name, "score": TO_FLOAT(sc.value), "answer": sc.answer,
                       "target": s.target}
                row.update({f"meta.{k}": v for k, v in (s.metadata or {}).items()})
                for k, v in (sc.metadata or {}).items():
                    row[f"score_meta.{k}"] = json.dumps(v) if isinstance(v, dict) else v
                rows.append(row)
    return pd.DataFrame(rows)


def naive_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """AUCs and Var(AUC_a − AUC_b) straight from DeLong et al. (1988), eqs. for V10/V01/S."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def psi(x, z):
        return 1.0 if x > z else 0.5 if x == z else 0.0

    def comps(s):
        v10 = np.array([np.mean([psi(s[i], s[j]) for j in neg]) for i in pos])
        v01 = np.array([np.mean([psi(s[i], s[j]) for i in pos]) for j in neg])
        return v10, v01

    (a10, a01), (b10, b01) = comps(a), comps(b)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    s = s10 / len(pos) + s01 / len(neg)
    return float(a10.mean()), float(b10.mean()), float(s[0, 0] + s[1, 1] - 2 * s[0, 1])


# --- DeLong --------------------------------------------------------------------------------------


def test_delong_matches_published_example():
    """The pauc package's README example (https://pypi.org/project/pauc/0.1.5/, "Quick Usage"):
    AUC 0.708, 95% DeLong CI (0.378, 1.000)."""
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.35, 0.24, 0.8, 0.2, 0.85, 0.13, 0.85, 0.74, 0.58, 0.71, 0.25])
    r = auc_ci(y, p)
    assert round(r.auc, 3) == 0.708
    assert round(r.ci_low, 3) == 0.378
    assert r.ci_high == 1.0
    assert r.auc == pytest.approx(roc_auc_score(y, p))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 6)), min_size=4, max_size=30))
def test_delong_fast_equals_definition(rows):
    """Sun & Xu's midrank algorithm gives exactly the 1988 definition, ties included."""
    y = np.array([r[0] for r in rows])
    y[:2], y[2:4] = 1, 0  # at least two of each class (a variance needs two)
    a = np.array([r[1] for r in rows], float)
    b = np.array([r[2] for r in rows], float)
    auc_a, auc_b, var = naive_delong(y, a, b)
    t = paired_test(y, a, b)
    assert t.auc_a == pytest.approx(auc_a) and t.auc_b == pytest.approx(auc_b)
    assert t.auc_a == pytest.approx(roc_auc_score(y, a))
    assert t.se**2 == pytest.approx(var, abs=1e-12)
    if var > 1e-12:
        assert t.p_value == pytest.approx(2 * stats.norm.sf(abs((auc_a - auc_b) / math.sqrt(var))))


def test_delong_identical_orderings_give_no_difference():
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.3, 0.6, 0.9, 0.2])
    t = paired_test(y, p, p**3)
    assert t.diff == 0 and t.z == 0 and t.p_value == 1.0
    with pytest.raises(ValueError):
        placements(np.array([1, 1]), np.array([0.2, 0.3]))


# --- risk scorers on the real sweep --------------------------------------------------------------


@pytest.fixture(scope="module")
def risk():
    raw = log_samples("risk")
    rs = risk_samples(raw)
    return raw, rs, risk_table(rs)


def test_risk_metrics_equal_sklearn_and_the_header(risk):
    _, _, table = risk
    assert set(table["run"]) == {BASE, GOOD, SHARP}
    for run in (BASE, GOOD, SHARP):
        log = read_eval_log(str(next((SWEEP / "risk" / run).glob("eval/logs/*.eval"))))
        header = {k: m.value for k, m in log.results.scores[0].metrics.items()}
        p, y = [], []
        for s in log.samples:
            meta = s.scores["stated_risk"].metadata
            if meta["risk_score"] is not None:
                p.append(meta["risk_score"])
                y.append(int(meta["target"] == "1"))
        row = table[table["run"] == run].iloc[0]
        assert row["n_parsed"] == len(p) and row["n"] == 80
        assert row["brier"] == pytest.approx(brier_score_loss(y, p))
        assert row["auc"] == pytest.approx(roc_auc_score(y, p))
        assert row["brier"] == pytest.approx(header["brier_score"])
        assert row["auc"] == pytest.approx(header["auc_score"])
        assert row["risk_calibration_error"] == pytest.approx(header["risk_calibration_error"])
        assert row["ece"] == pytest.approx(header["expected_calibration_error"])
        # a direct ECE: 10 bins (lo, hi], 0 in the first
        pa, ya = np.array(p), np.array(y)
        direct = 0.0
        for b in range(10):
            m = ((pa > b / 10) & (pa <= (b + 1) / 10)) | ((b == 0) & (pa == 0))
            if m.any():
                direct += m.mean() * abs(pa[m].mean() - ya[m].mean())
        assert row["risk_calibration_error"] == pytest.approx(direct)
        sq = (pa - ya) ** 2
        half = stats.t.ppf(0.975, len(sq) - 1) * sq.std(ddof=1) / math.sqrt(len(sq))
        assert row["brier_ci_low"] == pytest.approx(sq.mean() - half)
        assert row["brier_ci_high"] == pytest.approx(sq.mean() + half)
        assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"]
        # confusion matrix at 0.5 over the read outputs, unreadable ones counted apart
        tn, fp, fn, tp = confusion_matrix(ya, (pa >= 0.5).astype(int), labels=[0, 1]).ravel()
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (tp, fp, tn, fn)
        assert row["other_pos"] + row["other_neg"] == 80 - len(p)
        truth = [int(s.target == "1") for s in log.samples]
        assert row["n_pos"] == sum(truth) and row["prevalence"] == pytest.approx(sum(truth) / 80)
        # accuracy counts an unreadable output as wrong: the scorer's own C/I mean
        assert row["accuracy"] == pytest.approx(np.mean([TO_FLOAT(s.scores["stated_risk"].value) for s in log.samples]))
    assert table.set_index("run").loc[BASE, "n_unparsed"] == 8
    assert table.set_index("run").loc[GOOD, "n_unparsed"] == 0


def test_best_brier_and_delong_between_runs(risk):
    _, rs, table = risk
    t = table.set_index("run")
    assert t["brier"].idxmin() == GOOD  # calibrated beats overconfident at the same ordering
    assert t.loc[GOOD, "auc"] == pytest.approx(t.loc[SHARP, "auc"])
    tests = auc_tests(rs)
    assert len(tests) == 3 and set(tests["family_size"]) == {3}
    pair = tests[(tests[["a", "b"]].apply(frozenset, axis=1) == frozenset({GOOD, SHARP}))].iloc[0]
    assert pair["diff"] == pytest.approx(0, abs=1e-12) and pair["p_value"] == pytest.approx(1.0)
    vs_base = tests[tests["b"] == BASE]
    assert len(vs_base) == 2 and (vs_base["p_value"] < 0.01).all()
    # paired over the 72 samples the base run read
    assert set(vs_base["n_paired"]) == {72}
    assert np.allclose(tests["p_holm"], multipletests(tests["p_value"], method="holm")[1])
    ok = rs[(rs["run"] == GOOD)]
    roc = roc_points(ok["risk"].to_numpy(), ok["y"].to_numpy())
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(t.loc[GOOD, "auc"])


def test_ece_of_perfect_calibration_is_zero():
    assert ece(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1])) == 0.0
    assert ece(np.array([0.25, 0.25]), np.array([0, 1])) == pytest.approx(0.25)


# --- two-class scorers -------------------------------------------------------------------------


def test_binary_classification_equals_a_direct_count():
    raw = log_samples("binary")
    table = classification_table(raw).set_index("run")
    assert set(table.index) == {BASE, GOOD, SHARP}
    for run in (BASE, GOOD, SHARP):
        g = raw[raw["run"] == run]
        y = [int(t) for t in g["target"]]
        pred = [a.strip() if a.strip() in ("0", "1") else "other" for a in g["answer"]]
        row = table.loc[run]
        cm = confusion_matrix([str(v) for v in y], pred, labels=["0", "1", "other"])
        assert (row["tn"], row["fp"], row["other_neg"]) == tuple(cm[0])
        assert (row["fn"], row["tp"], row["other_pos"]) == tuple(cm[1])
        assert row["accuracy"] == pytest.approx(g["score"].mean())
        assert row["recall"] == pytest.approx(recall_score([str(v) for v in y], pred,
                                                           labels=["1"], average="micro"))
        assert row["balanced_accuracy"] == pytest.approx((row["recall"] + row["specificity"]) / 2)
        if not math.isnan(row["precision"]):
            assert row["precision"] == pytest.approx(precision_score([str(v) for v in y], pred, labels=["1"],
                                                                     average="micro"))
        assert row["prevalence"] == pytest.approx(np.mean(y))
    # "always 0": accuracy is the share of negatives, balanced accuracy 0.5, precision undefined
    sharp = table.loc[SHARP]
    assert sharp["accuracy"] == pytest.approx(0.7) and sharp["balanced_accuracy"] == 0.5
    assert math.isnan(sharp["precision"]) and math.isnan(sharp["f1"])
    assert table.loc[BASE, "other"] == 10
    g = raw[raw["run"] == GOOD]
    y, pred = [int(t) for t in g["target"]], [int(a) for a in g["answer"]]
    assert table.loc[GOOD, "balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert table.loc[GOOD, "f1"] == pytest.approx(f1_score(y, pred))
    # risk scorers are not tabled as classifiers
    assert classification_table(log_samples("risk"), exclude={("acs_income", "stated_risk")}).empty


# --- subgroups -----------------------------------------------------------------------------------


def test_subgroup_table_and_heterogeneity_against_scipy():
    raw = log_samples("binary")
    fam = Family("acs_employment", "match", "accuracy", True)
    for run, g in raw.groupby("run"):
        fam.scores[(run, None)] = g.set_index("sample_id")["score"].astype(float)
    keys = category_keys(raw, "acs_employment")
    assert list(keys) == ["region"]
    table = subgroup_table(fam, keys)
    good = table[table["run"] == GOOD].set_index("level")
    assert good.loc["north", "value"] == pytest.approx(0.9) and good.loc["east", "value"] == pytest.approx(0.5)
    assert good.loc["north", "n"] == 30
    tests = heterogeneity_tests(fam, keys, (GOOD, None), [(BASE, None), (SHARP, None)])
    assert len(tests) == 2
    for _, r in tests.iterrows():
        d = fam.scores[(GOOD, None)] - fam.scores[(r["b"], None)]
        lv = keys["region"].reindex(d.index)
        f, p = stats.f_oneway(*[d[lv == level].to_numpy() for level in sorted(lv.unique())])
        assert r["statistic"] == pytest.approx(f) and r["p_value"] == pytest.approx(p)
        assert r["gain_low_level"] == "east"
    assert np.allclose(tests["p_holm"], multipletests(tests["p_value"], method="holm")[1])
    # the gain over "always 0" differs by region (east: no gain), and the test sees it
    assert tests.set_index("b").loc[SHARP, "p_holm"] < 0.05
