"""Paired comparison of two candidates scored on the same samples.

Why paired: two checkpoints answer the same questions, so most of the per-sample variance
is shared; the SE of the per-sample *differences* is far smaller than the unpaired SE
(Miller 2024, §4), which is what makes small sweeps decidable at all.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyze_experiment.stats.distributions import (
    beta_ppf,
    binom_cdf,
    binom_cdf_at,
    binom_sf,
    binom_sf_at,
    t_ppf,
    t_quantile,
)
from analyze_experiment.stats.intervals import cluster_se
from analyze_experiment.stats.roots import brent_root, brent_roots


@dataclass(frozen=True)
class Paired:
    """Result of one paired comparison (a − b)."""

    diff: float
    stderr: float
    ci_low: float
    ci_high: float
    test: str
    statistic: float
    p_value: float
    n_paired: int
    n_a_only: int | None
    n_b_only: int | None
    correlation: float
    p_mc_se: float = 0.0
    """Monte Carlo standard error of a permutation p-value (0 when exact)."""
    n_resamples: int = 0
    """Sign patterns drawn (0: exact test or enumeration)."""
    sd_diff: float = math.nan
    """SD of the per-sample differences (what the power of the paired design depends on)."""


def align(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of ``a`` and ``b`` on their common sample ids (and the ids), sorted by id."""
    if a.index.equals(b.index) and a.index.is_monotonic_increasing and a.index.is_unique:
        return a.to_numpy(float), b.to_numpy(float), a.index.to_numpy()
    common = a.index.intersection(b.index).sort_values()
    return a.loc[common].to_numpy(float), b.loc[common].to_numpy(float), common.to_numpy()


def paired_diff_ci(
    d: np.ndarray, confidence: float = 0.95, clusters: np.ndarray | None = None
) -> tuple[float, float, float, float]:
    """Mean difference, its SE (SD(d)/√n, or clustered) and the t interval.

    Returns (diff, se, ci_low, ci_high); NaN interval when n ≤ 1.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if clusters is not None:
        se, g, _ = cluster_se(d, clusters)
        dof = g - 1
    else:
        se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        dof = n - 1
    if dof < 1 or math.isnan(se):
        return (mean, se, math.nan, math.nan)
    t = t_quantile(0.5 + confidence / 2, dof)
    return (mean, se, mean - t * se, mean + t * se)


def mcnemar_exact_ci(n_a_only: int, n_b_only: int, n: int, confidence: float = 0.95,
                     interval: tuple[float, float] | None = None) -> tuple[float, float]:
    """Interval for the paired difference of proportions that agrees with exact McNemar.

    Conditional on the m = b + c discordant pairs, b ~ Bin(m, π) and the difference is
    (b − c)/n = (m/n)·(2π − 1). The Clopper–Pearson interval for π excludes ½ exactly when the
    exact McNemar p (twice the smaller binomial tail) is below 1 − ``confidence``, so the
    interval (m/n)·(2π_lo − 1) … (m/n)·(2π_hi − 1) excludes 0 exactly when the test rejects —
    never "CI excludes 0, p = 0.077". (0, 0) when there are no discordant pairs.
    """
    m = n_a_only + n_b_only
    if n <= 0:
        return (math.nan, math.nan)
    if m == 0:
        return (0.0, 0.0)
    low, high = interval if interval is not None else clopper_pearson(n_a_only, m, confidence)
    share = m / n
    return (share * (2 * low - 1), share * (2 * high - 1))


@functools.lru_cache(maxsize=65_536)
def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson 1934) interval for a binomial proportion, k successes of n.

    Memoised: the stated pairs of a 1,000-run sweep (each candidate against the best and the
    baselines, ~4,000 rows) repeat a few hundred distinct discordant counts, and each interval
    is two root searches.

    The value ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="exact")``
    gives: each end is the p at which the binomial tail on that side equals (1 − confidence)/2,
    found by the same root finder from the same bracket [0, 1], so the float is the same to the
    last bit (tests/test_roots.py) — without importing scipy.stats for it.
    """
    alpha = (1 - confidence) / 2
    low = 0.0 if k == 0 else brent_root(lambda p: binom_sf_at(k - 1, n, p) - alpha, 0, 1)
    high = 1.0 if k == n else brent_root(lambda p: binom_cdf_at(k, n, p) - alpha, 0, 1)
    return (low, high)


def clopper_pearson_many(ks: np.ndarray, ns: np.ndarray,
                         confidence: float = 0.95) -> dict[tuple[int, int], tuple[float, float]]:
    """:func:`clopper_pearson` of every distinct (k, n), all root searches at once
    (:func:`~analyze_experiment.stats.roots.brent_roots`: the same floats as one by one).

    A first report's stated pairs need a few hundred intervals of a dozen scalar tail
    evaluations each; this is a dozen array passes. An interval the vectorised search could not
    settle is left out (:func:`clopper_pearson` computes it, and raises where it raised)."""
    todo = sorted({(int(k), int(n)) for k, n in zip(ks, ns, strict=True) if 0 <= k <= n and n > 0})
    if not todo:
        return {}
    k = np.array([t[0] for t in todo], dtype=float)
    n = np.array([t[1] for t in todo], dtype=float)
    alpha = (1 - confidence) / 2

    def lower(p: np.ndarray, lanes: np.ndarray) -> np.ndarray:
        return binom_sf(k[lanes] - 1, n[lanes], p) - alpha

    def upper(p: np.ndarray, lanes: np.ndarray) -> np.ndarray:
        return binom_cdf(k[lanes], n[lanes], p) - alpha

    # the support's ends need no search (k = 0: low is 0; k = n: high is 1): their lanes are
    # searched anyway (outside the tails' support the wrappers answer 0 or 1) and overwritten
    low = np.where(k == 0, 0.0, brent_roots(lower, len(todo)))
    high = np.where(k == n, 1.0, brent_roots(upper, len(todo)))
    return {t: (float(lo), float(hi)) for t, lo, hi in zip(todo, low, high, strict=True)
            if not (math.isnan(lo) or math.isnan(hi))}


def mcnemar_exact(n_a_only: int, n_b_only: int) -> float:
    """Exact (binomial) McNemar p-value on the discordant pairs (McNemar 1947).

    p = min(1, 2·P[X ≤ min(b, c)]), X ~ Bin(b + c, ½); 1 when there are no discordant pairs.
    """
    m = n_a_only + n_b_only
    if m == 0:
        return 1.0
    return float(min(1.0, 2 * binom_cdf(min(n_a_only, n_b_only), m, 0.5)))


def mcnemar_matrix(x: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Exact McNemar for every pair of rows of a 0/1 matrix (candidates × the same samples).

    The same numbers :func:`compare` gives pair by pair (diff, the McNemar-consistent
    Clopper–Pearson interval, statistic min(b, c), p), as k × k arrays: the all-pairs family of
    a sweep with 100 candidates is 4,950 tests, and the discordant counts of all of them are one
    matrix product (b = X·(1 − X)ᵀ).
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[1]
    a_only = x @ (1.0 - x).T
    b_only = a_only.T
    # every number below is a function of the pair's discordant counts (b, c) alone, and the
    # k² pairs share few distinct (b, c) (at most (n + 1)²): each distinct one is computed once,
    # by the same element-wise functions, so the values are those of the k × k computation
    code = (a_only.astype(np.int64) * (n + 1) + b_only.astype(np.int64)).ravel()
    uniq, inv = np.unique(code, return_inverse=True)
    ua, ub = np.divmod(uniq, n + 1)
    p, lo, hi = _mcnemar_cells(ua.astype(float), ub.astype(float), n, confidence)
    shape = a_only.shape
    k = np.minimum(a_only, b_only)
    diff = (x.sum(axis=1)[:, None] - x.sum(axis=1)[None, :]) / n if n else np.full(shape, np.nan)
    return {"diff": diff, "ci_low": lo[inv].reshape(shape), "ci_high": hi[inv].reshape(shape), "statistic": k,
            "p_value": p[inv].reshape(shape), "n_a_only": a_only, "n_b_only": b_only}


def _mcnemar_cells(a_only: np.ndarray, b_only: np.ndarray, n: int,
                   confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact McNemar p and its Clopper–Pearson-based interval for arrays of discordant counts
    (as :func:`mcnemar_exact` and :func:`mcnemar_exact_ci`, the interval's ends by the beta
    quantile: equal within rounding)."""
    m = a_only + b_only
    k = np.minimum(a_only, b_only)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(m > 0, np.minimum(1.0, 2 * binom_cdf(k, np.maximum(m, 1), 0.5)), 1.0)
        alpha = 1 - confidence
        lo_pi = np.where(a_only > 0, beta_ppf(alpha / 2, a_only, m - a_only + 1), 0.0)
        hi_pi = np.where(a_only < m, beta_ppf(1 - alpha / 2, a_only + 1, m - a_only), 1.0)
        share = m / n if n else np.full_like(m, np.nan)
        lo = np.where(m > 0, share * (2 * lo_pi - 1), 0.0)
        hi = np.where(m > 0, share * (2 * hi_pi - 1), 0.0)
    return p, lo, hi


EXACT_MAX_N = 16
"""Up to 2¹⁶ sign patterns are enumerated when ``n_resamples`` allows it."""
_CHUNK = 1000
_CACHE_BYTES = 50_000_000


@functools.lru_cache(maxsize=2)
def _signs(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """The ±1 matrix (int8) one (n, B, seed) draws; every pair of a family reuses it."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n_resamples, n), dtype=np.int8) * 2 - 1


def _sign_chunks(n: int, n_resamples: int, seed: int):
    if n * n_resamples <= _CACHE_BYTES:
        m = _signs(n, n_resamples, seed)
        for i in range(0, n_resamples, _CHUNK):
            yield m[i:i + _CHUNK]
        return
    rng = np.random.default_rng(seed)
    for i in range(0, n_resamples, _CHUNK):
        yield rng.integers(0, 2, size=(min(_CHUNK, n_resamples - i), n), dtype=np.int8) * 2 - 1


NEAR_ALPHA_SE = 3.0
"""A Monte Carlo p within this many standard errors of α is redrawn with more resamples."""
MORE_DRAWS = 10


def adaptive_sign_flip(d: np.ndarray, *, n_resamples: int = 10_000, seed: int = 0,
                       alpha: float = 0.05) -> tuple[float, float, float, int]:
    """:func:`sign_flip_test` with its Monte Carlo error, redrawn with ``MORE_DRAWS`` × the
    resamples when the p-value sits within ``NEAR_ALPHA_SE`` standard errors of ``alpha`` (a
    verdict that would flip with another seed). Returns (mean, p, MC SE of p, resamples; 0
    resamples and SE 0 when the test was exact)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    mean, p = sign_flip_test(d, n_resamples=n_resamples, seed=seed)
    exact = n == 0 or bool(np.all(d == 0)) or (n <= EXACT_MAX_N and 2**n <= n_resamples)
    if exact or math.isnan(p):
        return (mean, p, 0.0, 0)
    b = n_resamples
    se = math.sqrt(p * (1 - p) / b)
    if abs(p - alpha) < NEAR_ALPHA_SE * se:
        b = n_resamples * MORE_DRAWS
        mean, p = sign_flip_test(d, n_resamples=b, seed=seed + 1)
        se = math.sqrt(p * (1 - p) / b)
    return (mean, p, se, b)


def sign_flip_test(d: np.ndarray, *, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Paired permutation (sign-flip) test of mean(d) = 0, two-sided.

    Under H0 each difference is equally likely to carry either sign. Exact (share of all
    2ⁿ sign patterns with |Σ±dᵢ| ≥ |Σdᵢ|) when 2ⁿ ≤ ``n_resamples``; else Monte Carlo with
    p = (1 + #{|Σsᵢdᵢ| ≥ |Σdᵢ|}) / (1 + B) (Phipson & Smyth 2010; never 0), reproducible with
    ``seed``. Signs are drawn in chunks so memory stays at 1000 × n. Returns (mean, p).
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return (math.nan, math.nan)
    if np.all(d == 0):
        return (0.0, 1.0)
    obs = abs(float(d.sum()))
    tol = 1e-9 * float(np.abs(d).sum())  # float noise in sums must not break ties
    if n <= EXACT_MAX_N and 2**n <= n_resamples:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        return (float(d.mean()), float(np.mean(np.abs(np.einsum("ij,j->i", signs, d)) >= obs - tol)))
    hits = 0
    for signs in _sign_chunks(n, n_resamples, seed):
        # einsum, not @: a BLAS matvec this small is slower multithreaded on a busy machine
        hits += int(np.sum(np.abs(np.einsum("ij,j->i", signs, d)) >= obs - tol))
    return (float(d.mean()), float(min(1.0, (hits + 1) / (n_resamples + 1))))


def sign_flip_all_pairs(x: np.ndarray, confidence: float = 0.95, *, n_resamples: int = 10_000,
                        seed: int = 0) -> dict[str, np.ndarray] | None:
    """:func:`compare`'s paired permutation test for every pair of rows of ``x`` (candidates ×
    the same samples, no clusters), as k × k arrays (upper triangle: row − column).

    Pair by pair, each test draws the same sign matrix S (B × n) and sums S·(xᵢ − xⱼ); here
    T = S·Xᵀ is computed once (B × k) and each pair's statistics are Tᵢ − Tⱼ, so the all-pairs
    family of k candidates costs one matrix product and k²/2 vector comparisons instead of
    k²/2 matrix–vector products. The difference, its interval, the ties tolerance and the
    p-value are those of :func:`compare`: pairs whose Monte Carlo p sits near α are redrawn
    as :func:`adaptive_sign_flip` redraws them (together, on one pass over the larger sign
    matrix), and statistics within rounding of the edge are re-tested pair by pair.
    None when the test would be exact (n ≤ :data:`EXACT_MAX_N`): the caller goes pair by pair.

    Long on purpose: one numerical procedure whose steps share the sign matrix and a dozen
    k × k arrays, written in the floating-point order of :func:`compare` so the results are
    equal to it; split into helpers it would pass all of them around.
    """
    x = np.asarray(x, dtype=float)
    k, n = x.shape
    if n <= 1 or (n <= EXACT_MAX_N and 2**n <= n_resamples) or not np.isfinite(x).all():
        return None
    alpha = 1 - confidence
    iu, ju = np.triu_indices(k, 1)
    shape = (k, k)
    diff, lo, hi, sd, obs, tol = (np.full(shape, np.nan) for _ in range(6))
    zero = np.zeros(shape, bool)
    t = float(t_ppf(0.5 + confidence / 2, n - 1))
    for i in range(k - 1):  # per pair exactly as compare() computes them (same floating-point order)
        d = x[i] - x[i + 1:]
        mean = d.mean(axis=1)
        sdd = np.std(d, axis=1, ddof=1)
        se = sdd / math.sqrt(n)
        diff[i, i + 1:], sd[i, i + 1:] = mean, sdd
        lo[i, i + 1:], hi[i, i + 1:] = mean - t * se, mean + t * se
        obs[i, i + 1:] = np.abs(d.sum(axis=1))
        tol[i, i + 1:] = 1e-9 * np.abs(d).sum(axis=1)
        zero[i, i + 1:] = (d == 0).all(axis=1)
    hits = np.zeros(shape, np.int64)
    near = np.zeros(shape, bool)
    for signs in _sign_chunks(n, n_resamples, seed):
        tt = signs.astype(float) @ x.T  # B_chunk × k
        for i in range(k - 1):
            stat = np.abs(tt[:, [i]] - tt[:, i + 1:])
            edge = obs[i, i + 1:] - tol[i, i + 1:]
            hits[i, i + 1:] += (stat >= edge).sum(axis=0)
            # a statistic within rounding of the edge could compare the other way pair by pair
            near[i, i + 1:] |= (np.abs(stat - edge) <= 1e-12 * (np.abs(edge) + 1.0)).any(axis=0)
    p = np.minimum(1.0, (hits + 1) / (n_resamples + 1))
    mc = np.sqrt(p * (1 - p) / n_resamples)
    b = np.full(shape, n_resamples, np.int64)
    p[zero], mc[zero], b[zero] = 1.0, 0.0, 0
    # near α: redrawn with MORE_DRAWS × the patterns and seed + 1, as adaptive_sign_flip does —
    # for all such pairs on one pass over the larger sign matrix
    again = np.triu(~near & ~zero & (np.abs(p - alpha) < NEAR_ALPHA_SE * mc), 1)
    pairs = list(zip(*np.nonzero(again), strict=True))
    if pairs:
        big = n_resamples * MORE_DRAWS
        edge = np.array([obs[i, j] - tol[i, j] for i, j in pairs])
        dd = np.vstack([x[i] - x[j] for i, j in pairs]).T  # n × pairs
        hits2 = np.zeros(len(pairs), np.int64)
        near2 = np.zeros(len(pairs), bool)
        for signs in _sign_chunks(n, big, seed + 1):
            stat = np.abs(signs.astype(float) @ dd)
            hits2 += (stat >= edge).sum(axis=0)
            near2 |= (np.abs(stat - edge) <= 1e-12 * (np.abs(edge) + 1.0)).any(axis=0)
        for (i, j), h, nr in zip(pairs, hits2, near2, strict=True):
            if nr:
                near[i, j] = True
                continue
            p[i, j] = min(1.0, (h + 1) / (big + 1))
            mc[i, j], b[i, j] = math.sqrt(p[i, j] * (1 - p[i, j]) / big), big
    for i, j in zip(*np.nonzero(np.triu(near & ~zero, 1)), strict=True):  # rounding-level ties: pair by pair
        _, p[i, j], mc[i, j], b[i, j] = adaptive_sign_flip(x[i] - x[j], n_resamples=n_resamples, seed=seed,
                                                           alpha=alpha)
    diff[zero], lo[zero], hi[zero] = 0.0, 0.0, 0.0
    mask = np.zeros(shape, bool)
    mask[iu, ju] = True
    for arr in (p, mc, diff, lo, hi, sd):
        arr[~mask] = np.nan
    return {"diff": diff, "ci_low": lo, "ci_high": hi, "statistic": diff, "p_value": p, "p_mc_se": mc,
            "n_resamples": b, "sd_diff": sd}


def compare(
    a: pd.Series,
    b: pd.Series,
    *,
    binary: bool,
    confidence: float = 0.95,
    clusters: pd.Series | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    describe_only: bool = False,
    permutation: tuple[float, float, int] | None = None,
) -> Paired:
    """Compare per-sample scores of two candidates (Series indexed by sample id).

    Binary scores without clusters: exact McNemar. Otherwise a sign-flip permutation
    test — at the cluster level (signs flipped per cluster sum) when clusters are given,
    because flipping single samples would ignore their dependence. ``describe_only``: the
    difference and its interval without a test (test ``descriptive``, p NaN) — for a caller
    that reports no p-value, the 10,000 sign patterns would be drawn for nothing.
    ``permutation``: the (p, Monte Carlo SE, resamples) of this pair's unclustered sign-flip
    test when the caller already has it (:func:`sign_flip_all_pairs` for the whole family).
    """
    x, y, ids = align(a, b)
    return compare_aligned(x, y, ids, binary=binary, confidence=confidence, clusters=clusters,
                           n_resamples=n_resamples, seed=seed, describe_only=describe_only, permutation=permutation)


def compare_rows(
    x: np.ndarray,
    pairs: list[tuple[int, int]],
    *,
    binary: bool,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    permutations: list[tuple[float, float, int] | None] | None = None,
) -> list[Paired]:
    """:func:`compare` of rows ``i`` − ``j`` of ``x`` (candidates × the same samples, no clusters)
    for every ``(i, j)`` in ``pairs``, as :func:`compare` gives them pair by pair.

    The differences, their means, SDs and discordant counts are computed for all pairs at once
    (each row of a row-wise reduction is summed in the order the one-pair reduction sums it, so
    the floats are equal); what stays per pair is the correlation and the p-value.
    ``permutations``: per pair, the unclustered sign-flip result when the caller has it.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[1]
    if not pairs:
        return []
    if n <= 1:  # no spread to estimate: the one-pair path's edge cases
        ids = np.arange(n)
        return [compare_aligned(x[i], x[j], ids, binary=binary, confidence=confidence, n_resamples=n_resamples,
                                seed=seed, permutation=None if permutations is None else permutations[k])
                for k, (i, j) in enumerate(pairs)]
    rows_i = np.array([i for i, _ in pairs])
    rows_j = np.array([j for _, j in pairs])
    d = x[rows_i] - x[rows_j]
    mean = d.mean(axis=1)
    sd = np.std(d, axis=1, ddof=1)
    se = sd / math.sqrt(n)
    t = t_quantile(0.5 + confidence / 2, n - 1)
    lo, hi = mean - t * se, mean + t * se
    spread = np.std(x, axis=1) > 0
    zero_one = np.isin(x, (0.0, 1.0)).all(axis=1)
    a_only = ((x[rows_i] == 1) & (x[rows_j] == 0)).sum(axis=1)
    b_only = ((x[rows_i] == 0) & (x[rows_j] == 1)).sum(axis=1)
    alpha = 1 - confidence
    mcnemar = binary & zero_one[rows_i] & zero_one[rows_j]
    # every McNemar interval's Clopper–Pearson ends in one vectorised root search
    intervals = clopper_pearson_many(a_only[mcnemar], (a_only + b_only)[mcnemar], confidence)
    out = []
    for k, (i, j) in enumerate(pairs):
        corr = float(np.corrcoef(x[i], x[j])[0, 1]) if n > 2 and spread[i] and spread[j] else math.nan
        diff, s, lo_k, hi_k = float(mean[k]), float(se[k]), float(lo[k]), float(hi[k])
        sd_k = float(sd[k])
        if math.isnan(s):
            lo_k = hi_k = math.nan
        if mcnemar[k]:
            ao, bo = int(a_only[k]), int(b_only[k])
            lo_k, hi_k = mcnemar_exact_ci(ao, bo, n, confidence, intervals.get((ao, ao + bo)))
            out.append(Paired(diff, s, lo_k, hi_k, "mcnemar_exact", float(min(ao, bo)), mcnemar_exact(ao, bo), n,
                              ao, bo, corr, sd_diff=sd_k))
            continue
        perm = None if permutations is None else permutations[k]
        if perm is not None:
            p, mc, b = perm
        else:
            _, p, mc, b = adaptive_sign_flip(d[k], n_resamples=n_resamples, seed=seed, alpha=alpha)
        out.append(Paired(diff, s, lo_k, hi_k, "paired_permutation", diff, p, n, None, None, corr, mc, b, sd_k))
    return out


def compare_aligned(
    x: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    *,
    binary: bool,
    confidence: float = 0.95,
    clusters: pd.Series | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    describe_only: bool = False,
    permutation: tuple[float, float, int] | None = None,
) -> Paired:
    """:func:`compare` of scores already aligned on the sample ids ``ids`` (what :func:`align`
    returns): a family whose candidates share one sorted index takes its rows from the
    candidates × samples matrix instead of aligning two Series per pair."""
    n = len(x)
    d = x - y
    cl = None
    if clusters is not None:
        cl = clusters.reindex(ids).astype(object).to_numpy()
        cl = np.where(pd.isna(cl), np.array([f"__sample_{i}" for i in ids], dtype=object), cl)
    diff, se, lo, hi = paired_diff_ci(d, confidence, cl)
    corr = math.nan
    if n > 2 and np.std(x) > 0 and np.std(y) > 0:
        corr = float(np.corrcoef(x, y)[0, 1])
    is_binary = binary and bool(np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all())
    a_only = int(np.sum((x == 1) & (y == 0))) if is_binary else None
    b_only = int(np.sum((x == 0) & (y == 1))) if is_binary else None
    if n == 0:
        return Paired(math.nan, math.nan, math.nan, math.nan, "none", math.nan, math.nan, 0, None, None, corr)
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    alpha = 1 - confidence
    if describe_only:
        return Paired(diff, se, lo, hi, "descriptive", math.nan, math.nan, n, a_only, b_only, corr, sd_diff=sd)
    if is_binary and cl is None:
        assert a_only is not None and b_only is not None
        p = mcnemar_exact(a_only, b_only)
        lo, hi = mcnemar_exact_ci(a_only, b_only, n, confidence)
        return Paired(diff, se, lo, hi, "mcnemar_exact", float(min(a_only, b_only)), p, n, a_only, b_only, corr,
                      sd_diff=sd)
    if cl is not None:
        sums = pd.Series(d).groupby(pd.Series(cl).astype(str).to_numpy()).sum().to_numpy()
        _, p, mc, b = adaptive_sign_flip(sums, n_resamples=n_resamples, seed=seed, alpha=alpha)
        return Paired(diff, se, lo, hi, "cluster_permutation", diff, p, n, a_only, b_only, corr, mc, b, sd)
    if permutation is not None:
        p, mc, b = permutation
    else:
        _, p, mc, b = adaptive_sign_flip(d, n_resamples=n_resamples, seed=seed, alpha=alpha)
    return Paired(diff, se, lo, hi, "paired_permutation", diff, p, n, a_only, b_only, corr, mc, b, sd)
