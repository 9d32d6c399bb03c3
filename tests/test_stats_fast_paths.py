"""The statistics' fast paths give the floats the general paths give, to the last bit.

Each fast path (issue 16: the analysis of a 100-run sweep) skips pandas work whose result it
can predict — aligning indexes that are equal, a sub-frame per group, str() of every target —
or runs BLAS on one thread. Each test runs the general computation (the code the fast path
replaced, or the same function with the shortcut disabled) on random data with ties, NaN,
single-sample and single-candidate groups, and compares values exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.stats import comparisons
from analyze_experiment.stats.blas import one_blas_thread
from analyze_experiment.stats.candidates import Family, _candidate_scores, epoch_key
from analyze_experiment.stats.classification import _labels
from analyze_experiment.stats.comparisons import family_comparisons, family_intervals
from analyze_experiment.stats.effects import _level_scores
from analyze_experiment.stats.outliers import MIN_CONSTANT_ANSWERS, _constant_answers
from analyze_experiment.stats.paired import mcnemar_matrix
from analyze_experiment.stats.selection import selection_adjusted
from analyze_experiment.tables import by_epoch


def _scores(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "binary":
        return (rng.random(n) < 0.6).astype(float)
    if kind == "ties":  # a few distinct values: many equal sums
        return rng.integers(0, 3, n) / 2.0
    return rng.normal(0.5, 0.2, n)


# --- effects._level_scores: the level mean without pd.concat ------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25), st.integers(1, 40), st.sampled_from(["binary", "ties", "normal"]),
       st.sampled_from(["same", "nan", "shifted"]), st.integers(0, 2**32 - 1))
def test_level_scores_equal_the_concatenated_mean(k, n, kind, layout, seed):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"s{i:03d}" for i in range(n)], name="sample_id")
    fam = Family("qa", "match", "accuracy", binary=kind == "binary")
    for c in range(k):
        x = _scores(rng, n, kind)
        if layout == "nan" and c == k - 1:
            x[rng.integers(0, n)] = math.nan  # pandas skips it row by row: the general path
        index = idx[1:] if layout == "shifted" and c % 2 else idx  # inner join on fewer samples
        fam.scores[(f"r{c}", None)] = pd.Series(x[: len(index)], index=index, name="score")
    keys = [*fam.scores, ("absent", None)]
    got = _level_scores(fam, keys)
    want = pd.concat([fam.scores[k] for k in keys if k in fam.scores], axis=1, join="inner").mean(axis=1)
    pd.testing.assert_series_equal(got, want, check_exact=True, check_names=False)
    assert got.index.equals(want.index)


def test_level_scores_of_no_candidate_is_empty():
    assert _level_scores(Family("qa", "match", "accuracy", binary=True), [("r", None)]).empty


# --- candidates._candidate_scores: each candidate's Series sliced by group positions ---------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.booleans(), st.integers(0, 2**32 - 1))
def test_candidate_scores_equal_set_index_per_group(runs, n, shuffle, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(runs):
        for ep in ([math.nan] if r == 0 else [0.0, 1.0]):  # a base model (no epoch) and checkpoints
            m = int(rng.integers(1, n + 1))  # a single-sample candidate now and then
            for i in sorted(rng.choice(n, m, replace=False)):
                rows.append({"run": f"run{r}", "epoch": ep, "sample_id": f"s{i:03d}",
                             "score": float(rng.integers(0, 3)) / 2})
    g = pd.DataFrame(rows)
    g["run"] = g["run"].astype("category")
    g["sample_id"] = g["sample_id"].astype(str)
    if shuffle:
        g = g.sample(frac=1.0, random_state=seed % 2**31).reset_index(drop=True)
    got = _candidate_scores(g)
    want = {(str(run), epoch_key(ep)): cg.set_index("sample_id")["score"].astype(float)
            for (run, ep), cg in g.groupby(["run", "epoch"], sort=True, dropna=False)}
    assert list(got) == list(want)
    for key, s in want.items():
        pd.testing.assert_series_equal(got[key], s, check_exact=True, check_index_type=True)
        assert got[key].index.dtype == s.index.dtype


# --- outliers._constant_answers: one groupby instead of a drop_duplicates per eval -----------


def _constant_answers_per_eval(samples: pd.DataFrame) -> list[tuple]:
    """The per-eval loop the groupby replaced."""
    out = []
    for (run, task, _), g in by_epoch(samples, ["run", "task", "epoch"]):
        ans = g.drop_duplicates(["sample_id", "sample_epoch"])["answer"].dropna().astype(str)
        if len(ans) >= MIN_CONSTANT_ANSWERS and ans.nunique() == 1:
            out.append((run, task, len(ans), ans.iloc[0]))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["str", "object"]))
def test_constant_answers_equal_the_per_eval_loop(seed, dtype):
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(4):
        for ep in ([None] if r == 0 else [0, 1]):
            constant = rng.random() < 0.5
            n = int(rng.integers(MIN_CONSTANT_ANSWERS - 2, MIN_CONSTANT_ANSWERS + 5))
            for i in range(n):
                for scorer in ("match", "includes"):  # one row per scorer: each sample counts once
                    for sep in (1, 2) if i % 3 == 0 else (1,):
                        ans = "A" if constant else str(rng.integers(0, 3))
                        if rng.random() < 0.1:
                            ans = None  # unanswered: not counted
                        rows.append({"run": f"run{r}", "task": "qa", "epoch": ep, "sample_id": f"s{i}",
                                     "sample_epoch": sep, "scorer": scorer, "answer": ans})
    s = pd.DataFrame(rows)
    s["run"] = s["run"].astype("category")
    s["epoch"] = pd.array(s["epoch"], dtype="Int64")
    s["answer"] = s["answer"].astype(dtype)
    want = _constant_answers_per_eval(s)
    got = [(r["run"], r["task"], int(r["value"]), r["detail"]) for r in _constant_answers(s)]
    assert [(r, t, n) for r, t, n, _ in want] == [(r, t, n) for r, t, n, _ in got]
    assert [f"all {n} answers are {a[:40]!r}" for *_, n, a in want] == [d for *_, d in got]


def test_a_constant_eval_is_flagged_and_a_varied_one_is_not():
    rows = [{"run": run, "task": "qa", "epoch": 0, "sample_id": f"s{i}", "sample_epoch": 1,
             "answer": "yes" if run == "stuck" or i % 2 else "no"} for run in ("stuck", "fine") for i in range(12)]
    s = pd.DataFrame(rows)
    s["answer"] = s["answer"].astype(str)
    got = _constant_answers(s)
    assert [(r["run"], r["value"], r["detail"]) for r in got] == [("stuck", 12.0, "all 12 answers are 'yes'")]


# --- classification._labels: the distinct targets before str() -------------------------------


def test_labels_of_many_repeated_targets():
    t = pd.Series([" yes", "no", "yes ", None, "no"] * 1000, dtype=str)
    assert _labels(t) == ["no", "yes"]
    assert _labels(pd.Series([0, 1, None], dtype=object)) == ["0", "1"]
    assert _labels(pd.Series([0, 1, 1.0], dtype=object)) is None  # "0", "1" and "1.0": three labels
    assert _labels(pd.Series(["a", "b", "c"], dtype=str)) is None


# --- comparisons: stated pairs read from the candidates × samples matrix ----------------------


@pytest.mark.parametrize("kind", ["binary", "ties", "normal"])
def test_stated_pairs_from_the_matrix_equal_aligning_each_pair(monkeypatch, kind):
    rng = np.random.default_rng(7)
    n = 120
    idx = pd.Index([f"s{i:04d}" for i in range(n)], name="sample_id")
    fam = Family("qa", "match", "accuracy" if kind == "binary" else "mean", binary=kind == "binary")
    for c in range(9):
        fam.scores[(f"run{c}", None if c == 0 else 1.0)] = pd.Series(_scores(rng, n, kind) + 0.01 * c * (kind != "binary"),
                                                                       idx, name="score")
    fam.scores[("run9", 1.0)] = fam.scores[("run8", 1.0)].copy()  # a pair with no difference at all
    iv = family_intervals(fam, 0.95)

    def run():
        comp, eq, best, power = family_comparisons(fam, iv, ["run0"], confidence=0.95, margin=0.05,
                                                   n_resamples=500, seed=3)
        return comp, eq, best, power

    fast = run()
    # the reference: every stated pair aligned from its two Series (compare), no all-pairs matrix
    monkeypatch.setattr(comparisons, "_aligned_scores", lambda fam: None)
    slow = run()
    if kind == "binary":  # McNemar: the matrix never changes a stated pair's numbers
        pd.testing.assert_frame_equal(fast[0], slow[0], check_exact=True)
    else:  # the permutation p comes from the all-pairs draw either way; everything else is equal
        cols = [c for c in fast[0].columns if c not in ("p_value", "p_adjusted", "p_holm", "q_value", "significant",
                                                        "p_mc_se", "n_resamples", "family_size")]
        pd.testing.assert_frame_equal(fast[0][cols], slow[0][cols], check_exact=True)
    pd.testing.assert_frame_equal(fast[1], slow[1], check_exact=True)
    assert fast[3] == slow[3]
    assert len(fast[0]) == 9 + 8  # 9 against the best, 8 against the baseline not already stated


# --- one BLAS thread: the same floats -------------------------------------------------------


def test_one_blas_thread_gives_the_same_floats():
    rng = np.random.default_rng(11)
    x = (rng.random((60, 800)) < rng.random((60, 1))).astype(float)
    scores = {f"c{i}": pd.Series(rng.normal(0.5, 0.3, 400)) for i in range(40)}
    threaded = mcnemar_matrix(x), selection_adjusted(scores, n_boot=500, seed=2)
    with one_blas_thread():
        single = mcnemar_matrix(x), selection_adjusted(scores, n_boot=500, seed=2)
    for key in threaded[0]:
        np.testing.assert_array_equal(threaded[0][key], single[0][key])
    assert threaded[1] == single[1]


# --- outliers: only the groups large enough to test are materialised -------------------------


def _seed_sweep(seed: int) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Intervals, config labels and training steps of a sweep whose configurations have 1 to 7
    seeds (MIN_GROUP is 5), a control model without epoch, and a run with no config."""
    rng = np.random.default_rng(seed)
    values, labels, steps = [], {}, []
    run = 0
    for cfg in range(5):
        for _ in range(int(rng.integers(1, 8))):
            name = f"run{run:02d}"
            run += 1
            labels[name] = f"lr={cfg}"
            for ep in (0, 1):
                for scorer in ("match", "includes"):
                    values.append({"task": "qa", "scorer": scorer, "metric": "accuracy", "run": name,
                                   "epoch": float(ep), "value": float(rng.normal(0.6, 0.05))})
            for step in range(1, int(rng.integers(8, 12))):
                steps.append({"run": name, "step": step, "loss": float(rng.normal(2 / step, 0.1))})
    values.append({"task": "qa", "scorer": "match", "metric": "accuracy", "run": "base", "epoch": math.nan,
                   "value": 0.3})
    values.append({"task": "qa", "scorer": "match", "metric": "accuracy", "run": "stray", "epoch": 1.0,
                   "value": 0.5})
    return pd.DataFrame(values), pd.Series(labels, dtype=object), pd.DataFrame(steps).assign(
        loss=lambda d: d["loss"].where(rng.random(len(d)) > 0.05))  # a few missing losses


@pytest.mark.parametrize("seed", range(6))
def test_group_and_loss_curve_outliers_equal_testing_every_group(seed):
    from analyze_experiment.stats import outliers as o

    values, configs, steps = _seed_sweep(seed)
    runs = pd.DataFrame({"run": list(configs.index), "final_loss": np.linspace(1, 2, len(configs))})
    # the reference: every group materialised and tested when it has MIN_GROUP members
    want_rows = []
    v = values[values["run"].isin(configs.index)].copy()
    v["config"] = v["run"].map(configs)
    for (task, scorer, metric, _, cfg), g in by_epoch(v, ["task", "scorer", "metric", "epoch", "config"]):
        if len(g) >= o.MIN_GROUP:
            want_rows += o._tested_rows(g, "value", {"task": task, "scorer": scorer, "metric": metric,
                                                     "kind": "metric"},
                                        f"{scorer} {metric} against the other seeds of {cfg}")
    got = o.group_outliers(values, configs, runs)
    metric_rows = got[got["kind"] == "metric"].reset_index(drop=True)
    want = pd.DataFrame(want_rows, columns=o.OUTLIER_COLUMNS)
    pd.testing.assert_frame_equal(metric_rows, want, check_exact=True, check_dtype=False)
    big = configs.value_counts()
    assert set(metric_rows["run"]) == set(configs[configs.map(big) >= o.MIN_GROUP].index)
    # loss curves: the same rows whether or not small configurations are skipped up front
    curve = o.loss_curve_outliers(steps, configs)
    ts = steps.dropna(subset=["loss"])
    expected = set()
    for _, members in configs.groupby(configs):
        if ts[ts["run"].isin(members.index)]["run"].nunique() >= o.MIN_GROUP:
            expected |= set(members.index)
    assert set(curve["run"]) == expected
    assert curve["p_value"].notna().all() or curve.empty


# --- paired.compare_rows: every stated pair of a matrix at once -------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 7), st.integers(1, 40), st.sampled_from(["binary", "ties", "normal", "nan"]),
       st.sampled_from([0.9, 0.95]), st.integers(0, 2**32 - 1))
def test_compare_rows_equals_compare_pair_by_pair(k, n, kind, conf, seed):
    from analyze_experiment.stats.paired import compare, compare_rows

    rng = np.random.default_rng(seed)
    x = np.vstack([_scores(rng, n, "binary" if kind == "binary" else "ties" if kind == "nan" else kind)
                   for _ in range(k)])
    x[0] = x[1]  # identical candidates: no discordant pair, every difference 0
    if k > 2:
        x[2] = x[2, 0]  # a constant candidate: no correlation
    if kind == "nan":
        x[-1, rng.integers(0, n)] = math.nan
    idx = pd.Index([f"s{i:03d}" for i in range(n)])
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    binary = kind == "binary"
    got = compare_rows(x, pairs, binary=binary, confidence=conf, n_resamples=200, seed=5)
    for (i, j), r in zip(pairs, got, strict=True):
        want = compare(pd.Series(x[i], idx), pd.Series(x[j], idx), binary=binary, confidence=conf,
                       n_resamples=200, seed=5)
        assert r == want or _same(r, want), (i, j, r, want)


def _same(a, b) -> bool:
    """Dataclass equality with NaN equal to NaN."""
    from dataclasses import astuple

    return all(u == v or (isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v))
               for u, v in zip(astuple(a), astuple(b), strict=True))


# --- subgroups.text_equals: astype(str) once per distinct value --------------------------------


@pytest.mark.parametrize("dtype", ["category", "str", "object"])
@pytest.mark.parametrize("value", ["qa", "1", "nan", "None", "absent"])
def test_text_equals_is_astype_str_equals(dtype, value):
    from analyze_experiment.stats.subgroups import text_equals

    raw = ["qa", None, "math", "qa", math.nan, "1", "qa ", "nan"] * 50
    if dtype == "object":
        raw += [1, 1.0, None]  # numbers: str() of each, as astype(str) converts them
    col = pd.Series(raw, dtype=dtype)
    want = (col.astype(str) == value).to_numpy(dtype=bool, na_value=False)
    np.testing.assert_array_equal(text_equals(col, value), want)
    assert text_equals(col, "qa").sum() == 100  # "qa " (trailing space) is another text


# --- classification: a sweep without a two-label scorer is not split into families -------------


def test_classification_table_is_the_same_with_and_without_the_two_label_check():
    from analyze_experiment.stats.classification import classification_table

    rng = np.random.default_rng(3)
    rows = []
    for run in ("a", "b", "c"):
        for i in range(40):
            two = " yes" if i % 3 else "no "  # two labels once stripped
            rows.append({"task": "yesno", "scorer": "match", "run": run, "epoch": 0, "target": two,
                         "answer": rng.choice(["yes", "no", "maybe"]), "score": float(rng.integers(0, 2))})
            rows.append({"task": "open", "scorer": "match", "run": run, "epoch": 0, "target": f"t{i}",
                         "answer": f"t{i}", "score": float(rng.integers(0, 2))})
    s = pd.DataFrame(rows)
    s["epoch"] = pd.array(s["epoch"], dtype="Int64")
    as_text = classification_table(s.astype({"target": "str"}))
    as_object = classification_table(s.astype({"target": object}))  # the check does not apply: every group
    pd.testing.assert_frame_equal(as_text, as_object)
    assert set(as_text["task"]) == {"yesno"} and len(as_text) == 3
    assert (as_text["positive_label"] == "yes").all()
    none = classification_table(s[s["task"] == "open"].astype({"target": "str"}))
    assert none.empty and list(none.columns) == list(as_text.columns)


# --- distributions.binom_*_at: the root search's one-point tails --------------------------------


def test_one_point_binomial_tails_equal_the_array_functions_and_scipy_stats():
    import warnings

    from scipy import stats

    from analyze_experiment.stats.distributions import binom_cdf, binom_cdf_at, binom_sf, binom_sf_at

    rng = np.random.default_rng(4)
    ps = [0.0, 1.0, 0.5, 1e-300, 1 - 1e-16, math.nan, *rng.uniform(0, 1, 30)]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for n in (1, 2, 9, 200, 1000):
            for k in [-1, -0.5, 0, 0.5, 1, n // 2, n - 1, n - 0.5, n, n + 1, math.inf, -math.inf, math.nan]:
                for p in ps:
                    for one, arr, ref in ((binom_cdf_at, binom_cdf, stats.binom.cdf),
                                          (binom_sf_at, binom_sf, stats.binom.sf)):
                        got, want = one(k, n, p), float(arr(k, n, p))
                        assert type(got) is float
                        assert got == want or (math.isnan(got) and math.isnan(want)), (one.__name__, k, n, p)
                        if math.isfinite(k) and k == int(k) and not math.isnan(p):
                            assert got == float(ref(k, n, p)), (one.__name__, k, n, p)


# --- roots.brent_roots / paired.clopper_pearson_many: many root searches at once ----------------


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99, 0.5])
def test_clopper_pearson_many_equals_one_at_a_time(confidence):
    from analyze_experiment.stats.paired import clopper_pearson, clopper_pearson_many

    rng = np.random.default_rng(int(confidence * 100))
    pairs = [(k, n) for n in range(1, 41) for k in range(n + 1)]
    pairs += [(int(rng.integers(0, n + 1)), int(n)) for n in rng.integers(41, 5000, 150)]
    pairs += [(0, 0), (3, 2), (-1, 5)]  # no interval: left out
    got = clopper_pearson_many(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), confidence)
    valid = {(k, n) for k, n in pairs if 0 <= k <= n and n > 0}
    assert set(got) == valid
    for k, n in valid:
        assert got[(k, n)] == clopper_pearson.__wrapped__(k, n, confidence), (k, n)


def test_brent_roots_equals_brent_root_lane_by_lane():
    from analyze_experiment.stats.roots import brent_root, brent_roots

    rng = np.random.default_rng(9)
    # x^p − c (smooth), a step-like logistic, a root at an end, and lanes brent_root refuses
    power, c = rng.uniform(0.2, 5, 60), rng.uniform(0.01, 0.99, 60)
    slope = rng.uniform(5, 500, 60)

    def f_np(x, lanes):
        kind = lanes % 4
        out = np.where(kind == 0, x ** power[lanes] - c[lanes],
                       np.where(kind == 1, 1 / (1 + np.exp(-slope[lanes] * (x - c[lanes]))) - 0.5,
                                np.where(kind == 2, x - 1.0, x + 0.5)))  # kind 3: no sign change
        return out

    def f_one(i):
        return lambda x: float(f_np(np.array([x]), np.array([i]))[0])

    roots = brent_roots(f_np, 60)
    for i in range(60):
        if i % 4 == 3:
            with pytest.raises(ValueError):
                brent_root(f_one(i), 0, 1)
            assert math.isnan(roots[i])
        else:
            assert roots[i] == brent_root(f_one(i), 0, 1), i
