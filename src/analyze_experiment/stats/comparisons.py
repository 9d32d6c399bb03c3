"""Per family: intervals, the best candidate, paired comparisons, equivalence, power.

Reported pairs: each candidate against the family's best (is anything as good?) and
against each baseline (did fine-tuning help?), not all n² pairs. But the best is chosen
*after* seeing the data, so "best vs X" is not a pre-specified hypothesis: with 8 equal
candidates, Holm over the 7 best-vs-X tests makes a false "significant" claim ~9% of the
time at α = 0.05 (simulated). The Holm family is therefore every pair of the family's
candidates, k(k−1)/2 tests, whichever are reported — a fixed family, so selecting which to
show cannot inflate the family-wise error rate. The best is a *clear winner* only when every
runner-up is significantly worse after that correction; "equivalent" needs TOST at the
margin, never p > α alone.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analyze_experiment.analysis import COMPARISONS, EQUIVALENCE, INTERVALS, Best
from analyze_experiment.formatting import fmt_diff, fmt_p
from analyze_experiment.stats.candidates import CandKey, Family, label
from analyze_experiment.stats.equivalence import tost_paired
from analyze_experiment.stats.intervals import (
    MIN_N_FOR_VERDICT,
    bounded,
    from_log_interval,
    mean_interval,
    too_small,
)
from analyze_experiment.stats.multiplicity import benjamini_hochberg, holm
from analyze_experiment.stats.paired import (
    align,
    compare,
    compare_rows,
    mcnemar_matrix,
    sign_flip_all_pairs,
)
from analyze_experiment.stats.power import minimum_detectable_difference

POWER = 0.8


def family_intervals(fam: Family, confidence: float) -> pd.DataFrame:
    """One INTERVALS row per candidate of the family."""
    rows: list[dict[str, Any]] = []
    for key, s in fam.scores.items():
        cl = fam.clusters.reindex(s.index) if fam.clusters is not None else None
        if cl is not None:
            cl = cl.astype(object).where(cl.notna(), pd.Series([f"__sample_{i}" for i in s.index], index=s.index))
        x = s.to_numpy(float)
        binary = bool(np.isin(x, (0.0, 1.0)).all())
        iv = mean_interval(x, binary=binary, clusters=None if cl is None else cl.to_numpy(), confidence=confidence)
        iv = bounded(iv, fam.metric, fam.binary)  # an accuracy never leaves [0, 1], whatever the method
        rows.append(_row(fam, key, iv, binary))
    for key, d in fam.from_log.items():
        if key in fam.scores:
            continue
        iv = from_log_interval(d["value"], d["stderr"], d["n"], d.get("metric", fam.metric), confidence,
                               binary=fam.binary)
        iv = bounded(iv, fam.metric, fam.binary)
        rows.append(_row(fam, key, iv, fam.binary))
    return pd.DataFrame(rows, columns=INTERVALS)


def _row(fam: Family, key: CandKey, iv: Any, binary: bool) -> dict[str, Any]:
    return {"run": key[0], "task": fam.task, "epoch": math.nan if key[1] is None else key[1],
            "scorer": fam.scorer, "metric": fam.metric, "value": iv.value, "stderr": iv.stderr,
            "ci_low": iv.ci_low, "ci_high": iv.ci_high, "n": iv.n, "n_clusters": iv.n_clusters,
            "method": iv.method, "binary": binary, "too_small": iv.too_small}


def _key(row: pd.Series) -> CandKey:
    ep = row["epoch"]
    return (str(row["run"]), None if pd.isna(ep) else float(ep))


def family_comparisons(
    fam: Family,
    intervals: pd.DataFrame,
    baselines: list[str],
    *,
    confidence: float,
    margin: float,
    n_resamples: int,
    seed: int,
    pairs_out: list[pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, Best | None, dict[str, Any] | None]:
    """Comparisons (vs best, vs baselines), TOST vs best, the Best record and power.

    ``pairs_out``, when given, receives the family's table of every pair of candidates (every
    pair of the Holm family, reported or not; columns :data:`PAIR_TESTS`) with its raw and
    within-family Holm p-value, so other sentences about the same contrast (an epoch step of
    one run, a step between two single runs) reuse this test instead of running a second one.
    """
    alpha = 1 - confidence
    if intervals.empty:
        return pd.DataFrame(columns=COMPARISONS), pd.DataFrame(columns=EQUIVALENCE), None, None
    # the best is the largest value, or the smallest for a lower-is-better metric (mae, brier_score)
    sign = -1.0 if fam.direction == "lower" else 1.0
    ranked = intervals.assign(_v=sign * intervals["value"]).sort_values(["_v", "run"], ascending=[False, True],
                                                                       kind="stable").drop(columns="_v")
    best_row = ranked.iloc[0]
    best = _key(best_row)
    pairs = _reported_pairs(fam, best, baselines)
    seen = {frozenset((a, b)) for a, b, _ in pairs}
    aligned = _aligned_scores(fam)
    binary = _binary_matrix(fam, aligned)
    if binary is not None:  # every pair at once: the same numbers as compare(), one matrix product
        at_once, test = mcnemar_matrix(binary, confidence), "mcnemar_exact"
    else:  # the unreported pairs' permutation tests at once (stats.paired.sign_flip_all_pairs)
        at_once, test = _continuous_matrix(fam, aligned, confidence, n_resamples, seed), "paired_permutation"
    if at_once is not None:
        others = _matrix_table(fam, at_once, test, pairs)
    else:
        others = pd.DataFrame([_pair_row(fam, x, y, compare(fam.scores[x], fam.scores[y], binary=fam.binary,
                                                             confidence=confidence, clusters=fam.clusters,
                                                             n_resamples=n_resamples, seed=seed))
                               for x, y in _unreported(fam, seen)], columns=_OTHER_COLUMNS)
    cont = at_once if binary is None else None
    index = {k: i for i, k in enumerate(fam.scores)}
    matrix = _Aligned(aligned, next(iter(fam.scores.values())).index.to_numpy()) if aligned is not None else None
    rows = _reported_rows(fam, pairs, cont, index, matrix, confidence=confidence, n_resamples=n_resamples, seed=seed)
    eq_rows = [_tost_row(fam, a, b, margin, alpha, index, matrix) for a, b, kind in pairs if kind == "vs_best"]
    comp = pd.DataFrame(rows, columns=[*COMPARISONS, "stderr", "family_size", "p_mc_se", "n_resamples", "sd_diff"])
    if not comp.empty:
        _holm_family(comp, others, alpha, pairs_out)
    eq = pd.DataFrame(eq_rows, columns=EQUIVALENCE)
    return comp, eq, _best(fam, best_row, comp, intervals, alpha), _power(fam, comp, alpha)


def _reported_pairs(fam: Family, best: CandKey, baselines: list[str]) -> list[tuple[CandKey, CandKey, str]]:
    """The pairs the report states: every candidate vs the best, every candidate vs each
    baseline (a pair already stated once is not repeated)."""
    pairs: list[tuple[CandKey, CandKey, str]] = []
    seen: set[frozenset] = set()
    for key in fam.scores:
        if key != best and best in fam.scores:
            pairs.append((best, key, "vs_best"))
            seen.add(frozenset((best, key)))
    for bkey in [k for k in fam.scores if k[0] in baselines]:
        for key in fam.scores:
            if key == bkey or key[0] in baselines or frozenset((key, bkey)) in seen:
                continue
            pairs.append((key, bkey, "vs_baseline"))
            seen.add(frozenset((key, bkey)))
    return pairs


def _unreported(fam: Family, seen: set[frozenset]) -> list[tuple[CandKey, CandKey]]:
    """Every other pair of candidates: not stated, but in the Holm family (the best was chosen
    after seeing the data)."""
    keys = list(fam.scores)
    return [(x, y) for i, x in enumerate(keys) for y in keys[i + 1:] if frozenset((x, y)) not in seen]


_OTHER_COLUMNS = ["task", "scorer", "metric", "a", "epoch_a", "b", "epoch_b", "diff", "ci_low", "ci_high",
                  "test", "statistic", "p_value", "n_paired"]
"""Columns of the unreported pairs' table, before the Holm p-value and the family size."""


def _matrix_table(fam: Family, m: dict[str, np.ndarray], test: str,
                  reported: list[tuple[CandKey, CandKey, str]]) -> pd.DataFrame:
    """The unreported pairs' rows read from an all-pairs result matrix, column by column.

    The pairs are the upper triangle (i < j, in row-major order: the order
    :func:`_unreported` lists them) without the reported ones; at 1,000 candidates that is
    about 497,000 rows per metric, so each column is one fancy-indexed array, never a dict
    per pair."""
    keys = list(fam.scores)
    index = {k: i for i, k in enumerate(keys)}
    k = len(keys)
    keep = np.triu(np.ones((k, k), bool), 1)
    for a, b, _ in reported:
        i, j = index[a], index[b]
        keep[min(i, j), max(i, j)] = False
    iu, ju = np.nonzero(keep)
    n = len(next(iter(fam.scores.values())))
    runs = np.array([key[0] for key in keys], dtype=object)
    epochs = np.array([_ep(key) for key in keys], dtype=float)
    return pd.DataFrame({
        "task": np.full(len(iu), fam.task, dtype=object), "scorer": np.full(len(iu), fam.scorer, dtype=object),
        "metric": np.full(len(iu), fam.metric, dtype=object), "a": runs[iu], "epoch_a": epochs[iu],
        "b": runs[ju], "epoch_b": epochs[ju], "diff": np.asarray(m["diff"], float)[iu, ju],
        "ci_low": np.asarray(m["ci_low"], float)[iu, ju], "ci_high": np.asarray(m["ci_high"], float)[iu, ju],
        "test": np.full(len(iu), test, dtype=object), "statistic": np.asarray(m["statistic"], float)[iu, ju],
        "p_value": np.asarray(m["p_value"], float)[iu, ju], "n_paired": np.full(len(iu), n, dtype=np.int64)},
        columns=_OTHER_COLUMNS)


class _Aligned(NamedTuple):
    """The family's candidates × samples matrix (rows in ``fam.scores`` order) and the shared,
    sorted sample ids: what :func:`~analyze_experiment.stats.paired.align` returns for any
    pair of them, read by row instead of aligning two Series per stated pair."""

    scores: np.ndarray
    ids: np.ndarray

    def pair(self, index: dict[CandKey, int], a: CandKey, b: CandKey) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.scores[index[a]], self.scores[index[b]], self.ids


def _reported_rows(fam: Family, pairs: list[tuple[CandKey, CandKey, str]], cont: dict[str, np.ndarray] | None,
                   index: dict[CandKey, int], matrix: _Aligned | None, *, confidence: float, n_resamples: int,
                   seed: int) -> list[dict[str, Any]]:
    """The stated comparisons; a continuous pair's permutation test is taken from the all-pairs
    matrix when there is one (two-sided: the same either way round). ``index``: each
    candidate's row in that matrix and in ``matrix`` (the aligned scores, when they are: then
    every pair at once, :func:`~analyze_experiment.stats.paired.compare_rows`)."""
    perms = []
    for a, b, _ in pairs:
        perm = None
        if cont is not None:
            i, j = sorted((index[a], index[b]))
            perm = (float(cont["p_value"][i, j]), float(cont["p_mc_se"][i, j]), int(cont["n_resamples"][i, j]))
        perms.append(perm)
    if matrix is not None and fam.clusters is None:
        results = compare_rows(matrix.scores, [(index[a], index[b]) for a, b, _ in pairs], binary=fam.binary,
                               confidence=confidence, n_resamples=n_resamples, seed=seed, permutations=perms)
    else:
        results = [compare(fam.scores[a], fam.scores[b], binary=fam.binary, confidence=confidence,
                           clusters=fam.clusters, n_resamples=n_resamples, seed=seed, permutation=perm)
                   for (a, b, _), perm in zip(pairs, perms, strict=True)]
    return [_stated_row(fam, a, b, kind, r) for (a, b, kind), r in zip(pairs, results, strict=True)]


def _stated_row(fam: Family, a: CandKey, b: CandKey, kind: str, r: Any) -> dict[str, Any]:
    return {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric,
            "a": a[0], "epoch_a": _ep(a), "b": b[0], "epoch_b": _ep(b), "kind": kind,
            "diff": r.diff, "ci_low": r.ci_low, "ci_high": r.ci_high, "test": r.test,
            "statistic": r.statistic, "p_value": r.p_value, "n_paired": r.n_paired,
            "n_a_only": r.n_a_only, "n_b_only": r.n_b_only, "correlation": r.correlation,
            "stderr": r.stderr, "p_mc_se": r.p_mc_se, "n_resamples": r.n_resamples,
            "sd_diff": r.sd_diff}


def _tost_row(fam: Family, a: CandKey, b: CandKey, margin: float, alpha: float, index: dict[CandKey, int],
              matrix: _Aligned | None) -> dict[str, Any]:
    """Paired TOST of a candidate against the best within ``margin`` (clusters respected)."""
    x, y, ids = matrix.pair(index, a, b) if matrix is not None else align(fam.scores[a], fam.scores[b])
    cl = None
    if fam.clusters is not None:
        c = fam.clusters.reindex(ids).astype(object).to_numpy()
        cl = np.where(pd.isna(c), np.array([f"__sample_{i}" for i in ids], dtype=object), c)
    t = tost_paired(x - y, margin, alpha, cl)
    return {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric,
            "a": a[0], "epoch_a": _ep(a), "b": b[0], "epoch_b": _ep(b), "margin": margin,
            "diff": t.diff, "ci_low": t.ci_low, "ci_high": t.ci_high,
            "p_tost": t.p_tost, "equivalent": t.equivalent}


def _holm_family(comp: pd.DataFrame, others: pd.DataFrame, alpha: float,
                 pairs_out: list[pd.DataFrame] | None) -> None:
    """Holm (and BH q-values) over every pair of the family, stated or not; the stated ones'
    adjusted p-values and verdicts go into ``comp`` (in place), the family's table of every
    pair (the stated ones first, in ``comp``'s order) into ``pairs_out``."""
    p = np.concatenate([comp["p_value"].to_numpy(float), others["p_value"].to_numpy(float)])
    adj = holm(p)
    size = int(np.sum(~np.isnan(p)))
    comp["p_adjusted"] = adj[: len(comp)]
    comp["p_holm"] = comp["p_adjusted"]
    comp["q_value"] = benjamini_hochberg(p)[: len(comp)]
    comp["family_size"] = size
    comp["significant"] = [bool(not math.isnan(x) and x < alpha and not too_small(n))  # n < 10: no verdict
                           for x, n in zip(comp["p_adjusted"], comp["n_paired"], strict=True)]
    if pairs_out is not None:
        stated = comp[[c for c in PAIR_TESTS if c in comp.columns]].assign(p_holm=adj[: len(comp)])
        parts = [stated.astype({"p_holm": float})]
        if len(others):
            parts.append(others.assign(p_holm=adj[len(comp):], family_size=size))
        pairs_out.append(pd.concat(parts, ignore_index=True)[PAIR_TESTS] if len(parts) > 1
                         else parts[0].reset_index(drop=True)[PAIR_TESTS])


PAIR_TESTS = ["task", "scorer", "metric", "a", "epoch_a", "b", "epoch_b", "diff", "ci_low", "ci_high",
              "test", "statistic", "p_value", "p_holm", "n_paired", "family_size"]
"""Columns of ``Analysis.pair_tests`` (every pair of a checkpoint family)."""


def _aligned_scores(fam: Family) -> np.ndarray | None:
    """Candidates × samples when every candidate is scored on the same samples, with no clusters
    and at least 3 candidates (an all-pairs shortcut pays off); else None (pair by pair)."""
    if fam.clusters is not None or len(fam.scores) < 3:
        return None
    series = list(fam.scores.values())
    first = series[0].index
    if not (first.is_unique and first.is_monotonic_increasing) or any(not s.index.equals(first) for s in series[1:]):
        return None
    return np.vstack([s.to_numpy(float) for s in series])


def _binary_matrix(fam: Family, x: np.ndarray | None) -> np.ndarray | None:
    """The candidates × samples 0/1 matrix when the family allows the all-pairs shortcut: 0/1
    scores, no clusters, every candidate scored on the same samples (``x``, from
    :func:`_aligned_scores`; else None: pair by pair)."""
    if not fam.binary:
        return None
    return x if x is not None and np.isin(x, (0.0, 1.0)).all() else None


def _continuous_matrix(fam: Family, x: np.ndarray | None, confidence: float, n_resamples: int,
                       seed: int) -> dict[str, np.ndarray] | None:
    """All pairs' permutation tests (:func:`sign_flip_all_pairs`) when the family allows it:
    scores that are not all 0/1 (those take McNemar), no clusters, at least 3 candidates, every
    candidate scored on the same samples (``x``, from :func:`_aligned_scores`). None otherwise
    (pair by pair)."""
    if x is None:
        return None
    if fam.binary and np.isin(x, (0.0, 1.0)).all():
        return None
    return sign_flip_all_pairs(x, confidence, n_resamples=n_resamples, seed=seed)


def _pair_row(fam: Family, a: CandKey, b: CandKey, r: Any) -> dict[str, Any]:
    return {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "a": a[0], "epoch_a": _ep(a),
            "b": b[0], "epoch_b": _ep(b), "diff": r.diff, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "test": r.test, "statistic": r.statistic, "p_value": r.p_value, "n_paired": r.n_paired}


def _ep(key: CandKey) -> float:
    return math.nan if key[1] is None else key[1]


def _best(fam: Family, row: pd.Series, comp: pd.DataFrame, intervals: pd.DataFrame, alpha: float) -> Best:
    key = _key(row)
    per_run = Counter(k[0] for k in fam.candidates())
    multi = {r for r, count in per_run.items() if count > 1}  # runs with several checkpoints

    def name(run: str, epoch: Any) -> str:
        return label((run, None if pd.isna(epoch) or run not in multi else float(epoch)))

    vb = comp[comp["kind"] == "vs_best"] if not comp.empty else comp
    tied = [name(str(b), ep) for b, ep, sig in zip(vb["b"], vb["epoch_b"], vb["significant"], strict=True)
            if not sig]
    n_other = len(intervals) - 1
    untested = n_other - len(vb)
    if n_other == 0:
        clear, reason = False, "only one candidate was evaluated"
    elif too_small(row["n"]):
        clear, reason = False, (f"n = {_count(row['n'])} samples is too small for a verdict "
                                f"(fewer than {MIN_N_FOR_VERDICT})")
    elif key not in fam.scores:
        clear, reason = False, "the best candidate has no per-sample scores, so no paired test was possible"
    elif tied:
        worst = vb[~vb["significant"].astype(bool)].sort_values("p_adjusted", ascending=False).iloc[0]
        clear = False
        reason = (f"{len(tied)} of {n_other} runners-up are not significantly worse after Holm correction "
                  f"(e.g. {name(str(worst['b']), worst['epoch_b'])}: "
                  f"{fmt_diff(fam.metric, -float(worst['diff']))}, Holm p {fmt_p(worst['p_adjusted'])})")
    elif untested:
        clear = False
        reason = f"{untested} of {n_other} runners-up have no per-sample scores to test against"
    else:
        pmax = float(vb["p_adjusted"].max())
        clear, reason = True, (f"all {n_other} runners-up are significantly worse after Holm correction "
                               f"(largest Holm p {fmt_p(pmax)} < α = {alpha:.2g})")
    return Best(task=fam.task, scorer=fam.scorer, metric=fam.metric, run=key[0], epoch=key[1],
                value=float(row["value"]), ci_low=_num(row["ci_low"]), ci_high=_num(row["ci_high"]),
                clear_winner=clear, reason=reason, tied_with=tied)


def _count(v: Any) -> str:
    return "?" if v is None or pd.isna(v) else str(int(v))


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _power(fam: Family, comp: pd.DataFrame, alpha: float) -> dict[str, Any] | None:
    """MDD at 80% power from the median n and the median SD of the paired differences between
    the best and each runner-up (never the baseline pairs).

    Without comparisons (one candidate) the SD of a difference between two independent
    candidates is √2·SD of the scores — an upper bound, since pairing only reduces it.
    """
    if not fam.scores:
        return None
    n = int(np.median([len(s) for s in fam.scores.values()]))
    vb = comp[comp["kind"] == "vs_best"] if not comp.empty else comp
    if not vb.empty and vb["sd_diff"].notna().any():
        # the spread of differences between the candidates that compete for best: pairs with a
        # baseline differ far more per sample (an untrained model) and would inflate the MDD
        sd = float(np.median(vb["sd_diff"].dropna()))
        basis = "paired"
    else:
        sd = float(np.median([np.std(s.to_numpy(float), ddof=1) for s in fam.scores.values() if len(s) > 1]
                             or [math.nan])) * math.sqrt(2)
        basis = "unpaired_bound"
    return {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "n": n,
            "mdd": minimum_detectable_difference(n, sd, alpha, POWER), "alpha": alpha, "power": POWER,
            "sd_diff": sd, "basis": basis}


def best_record(fam: Family, intervals: pd.DataFrame, comp: pd.DataFrame, alpha: float, best: Best) -> Best:
    """The :class:`Best` of ``best``'s candidate re-judged on ``comp``'s final significance
    (after the report's error-control plan has adjusted the p-values)."""
    target = (best.run, best.epoch)
    iv = intervals[[(str(run), None if pd.isna(ep) else float(ep)) == target
                    for run, ep in zip(intervals["run"], intervals["epoch"], strict=True)]]
    if iv.empty:
        return best
    return _best(fam, iv.iloc[0], comp, intervals, alpha)
