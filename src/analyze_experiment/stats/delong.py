"""AUC with DeLong's variance, and DeLong's paired test between two scorings of the same samples.

Why DeLong: the AUC is a Mann-Whitney U statistic, so its variance has a nonparametric
estimate from the *structural components* (placements) of each positive and each negative
sample (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837). Two runs scored on the
same evaluation samples give correlated AUCs; the covariance of their placements gives
the paired test, which is what comparing two checkpoints on one eval set needs (an
unpaired test would ignore the correlation and lose most of its power).

Speed: Sun & Xu (2014, IEEE Signal Processing Letters 21:1389) compute the placements from
midranks in O(n log n) instead of comparing every positive with every negative; the result
is identical (ties count one half).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analyze_experiment.stats.distributions import norm_ppf, norm_sf


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given the mean of the ranks they span."""
    from scipy import stats  # here, not at import: the rest of the report needs no scipy.stats

    return stats.rankdata(np.asarray(x, float), method="average")


@dataclass(frozen=True)
class Placements:
    """DeLong's structural components of one scoring (Sun & Xu 2014, eq. 6-7)."""

    auc: float
    v10: np.ndarray
    """Per positive sample: share of negatives it outranks (ties ½)."""
    v01: np.ndarray
    """Per negative sample: share of positives that outrank it (ties ½)."""


def placements(y: np.ndarray, score: np.ndarray) -> Placements:
    """AUC and placements of ``score`` for labels ``y`` (1 positive, 0 negative)."""
    y = np.asarray(y, bool)
    score = np.asarray(score, float)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("AUC needs at least one positive and one negative sample")
    tz = midranks(np.concatenate([pos, neg]))
    tx, ty = midranks(pos), midranks(neg)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    auc = float((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
    return Placements(auc, v10, v01)


def _cov(a: Placements, b: Placements) -> float:
    m, n = len(a.v10), len(a.v01)
    s10 = np.cov(a.v10, b.v10)[0, 1] if m > 1 else 0.0
    s01 = np.cov(a.v01, b.v01)[0, 1] if n > 1 else 0.0
    return float(s10 / m + s01 / n)


@dataclass(frozen=True)
class AucInterval:
    """An AUC with DeLong's standard error and a normal interval clipped to [0, 1]."""

    auc: float
    se: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int


def auc_ci(y: np.ndarray, score: np.ndarray, confidence: float = 0.95) -> AucInterval:
    """AUC ± z·SE (DeLong variance), clipped to [0, 1] as pROC's ``ci.auc`` does."""
    p = placements(y, score)
    se = math.sqrt(max(_cov(p, p), 0.0))
    z = float(norm_ppf(0.5 + confidence / 2))
    return AucInterval(p.auc, se, max(0.0, p.auc - z * se), min(1.0, p.auc + z * se), len(p.v10), len(p.v01))


@dataclass(frozen=True)
class PairedAuc:
    """DeLong's test of AUC(a) = AUC(b) on the same samples."""

    auc_a: float
    auc_b: float
    diff: float
    """AUC(a) − AUC(b)."""
    se: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    n_pos: int
    n_neg: int


def paired_test(y: np.ndarray, a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedAuc:
    """Two-sided DeLong test for two correlated AUCs (same samples, same labels).

    Var(AUC_a − AUC_b) = Var_a + Var_b − 2·Cov_ab from the placements; z = diff / SE. When
    both scorings rank every pair identically the variance is 0 and the difference is 0:
    z = 0, p = 1 (pROC's convention).
    """
    pa, pb = placements(y, a), placements(y, b)
    var = _cov(pa, pa) + _cov(pb, pb) - 2 * _cov(pa, pb)
    diff = pa.auc - pb.auc
    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    else:
        z = diff / se
        p = float(2 * norm_sf(abs(z)))
    q = float(norm_ppf(0.5 + confidence / 2))
    return PairedAuc(pa.auc, pb.auc, diff, se, diff - q * se, diff + q * se, z, p, len(pa.v10), len(pa.v01))
