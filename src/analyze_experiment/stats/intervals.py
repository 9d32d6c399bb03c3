"""Confidence intervals for one candidate's mean score.

Why three methods: below a few hundred samples the CLT interval for a proportion is too
narrow and can leave [0, 1] (Bowyer et al. 2025), so binary scores get the Wilson score
interval; continuous scores get the t interval; and when samples share a cluster key
(several questions about one passage, one document, one user) the scores are not
independent and the standard error must be clustered (Miller 2024, "Adding Error Bars to
Evals"), or every interval is too narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyze_experiment.stats.distributions import norm_ppf, t_ppf, t_quantile

MIN_N_FOR_VERDICT = 10
"""Below this many samples an estimate is shown but never decides anything ("too small for a
verdict"): a 0/1 score on 2 samples can only be 0, 0.5 or 1 (issue 11)."""

PROPORTION_METRICS = ("accuracy",)
"""inspect-ai metrics that are a share of 0/1 (or C/P/I) scores: Wilson intervals, within [0, 1]."""


def is_proportion(metric: str, binary: bool) -> bool:
    """A metric that is a share in [0, 1]: 0/1 scores, or an inspect-ai proportion such as
    ``accuracy`` over C/P/I scores (partial credit 0.5) or over averaged sample epochs."""
    return bool(binary) or metric in PROPORTION_METRICS


def within_unit(lo: float, hi: float) -> tuple[float, float]:
    """An interval for a proportion intersected with [0, 1].

    A t interval of 2 C/P/I scores (1, 0.5) is 0.75 ± 12.7 × 0.25 = [−2.43, 3.93] (issue 11);
    the proportion cannot leave [0, 1], so intersecting the interval with [0, 1] keeps its
    coverage and says what it can: anything from 0 to 1. NaN stays NaN.
    """
    lo = lo if math.isnan(lo) else min(max(lo, 0.0), 1.0)
    hi = hi if math.isnan(hi) else min(max(hi, 0.0), 1.0)
    return lo, hi


def bounded(iv: Interval, metric: str, binary: bool) -> Interval:
    """``iv`` kept inside [0, 1] when the metric is a proportion (:func:`is_proportion`)."""
    if not is_proportion(metric, binary) or not (0.0 <= iv.value <= 1.0):
        return iv
    lo, hi = within_unit(iv.ci_low, iv.ci_high)
    if (lo, hi) == (iv.ci_low, iv.ci_high) or (math.isnan(lo) and math.isnan(iv.ci_low)):
        return iv
    return Interval(iv.value, iv.stderr, lo, hi, iv.n, iv.n_clusters, iv.method)


def bounded_rows(df: pd.DataFrame, proportions: set[tuple[str, str, str]]) -> pd.DataFrame:
    """``ci_low``/``ci_high`` of the rows of a task × scorer × metric table (seeds, effects)
    whose metric is a proportion kept inside [0, 1]: a t interval over 2 or 3 seeds' accuracies
    easily leaves it."""
    if df is None or df.empty or not proportions or not {"task", "scorer", "metric", "ci_low", "ci_high"} <= set(df.columns):
        return df
    keys = list(zip(df["task"].astype(str), df["scorer"].astype(str), df["metric"].astype(str), strict=True))
    mask = np.array([k in proportions for k in keys], dtype=bool)
    if not mask.any():
        return df
    out = df.copy()
    for col in ("ci_low", "ci_high"):
        vals = pd.to_numeric(out.loc[mask, col], errors="coerce")
        out.loc[mask, col] = vals.clip(lower=0.0, upper=1.0)
    return out


def too_small(n: float | None) -> bool:
    """Whether ``n`` samples are too few for a verdict (:data:`MIN_N_FOR_VERDICT`)."""
    return n is None or pd.isna(n) or int(n) < MIN_N_FOR_VERDICT


@dataclass(frozen=True)
class Interval:
    """A point estimate with its standard error and two-sided interval."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int | None
    method: str

    @property
    def too_small(self) -> bool:
        """Fewer than :data:`MIN_N_FOR_VERDICT` samples: shown, never a verdict."""
        return too_small(self.n)


def _z(confidence: float) -> float:
    return float(norm_ppf(0.5 + confidence / 2))


def wilson(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (Wilson 1927).

    >>> [round(x, 4) for x in wilson(8, 10)]
    [0.4902, 0.9433]
    """
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_interval(x: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean ± t(n-1)·SD/√n; NaN interval when n ≤ 1 (never a guess)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    mean = float(np.mean(x)) if n else math.nan
    if n <= 1:
        return Interval(mean, math.nan, math.nan, math.nan, n, None, "t")
    se = float(np.std(x, ddof=1) / math.sqrt(n))
    t = t_quantile(0.5 + confidence / 2, n - 1)
    return Interval(mean, se, mean - t * se, mean + t * se, n, None, "t")


def clustered_se(x: np.ndarray, clusters: np.ndarray) -> tuple[float, int]:
    """Cluster-robust standard error of the mean (Miller 2024, eq. 4, with the CR1 factor).

    SE² = G/(G-1) · Σ_c (Σ_{i∈c} (x_i − x̄))² / n². Equals statsmodels' OLS-on-a-constant
    ``cov_type="cluster"`` standard error. Returns (SE, number of clusters G).
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    keys = pd.Series(clusters).astype(str).to_numpy()
    resid = pd.Series(x - x.mean()).groupby(keys).sum().to_numpy()
    g = len(resid)
    if n <= 1 or g <= 1:
        return (math.nan, g)
    return (math.sqrt(g / (g - 1) * float(np.sum(resid**2)) / (n * n)), g)


SMALL_CLUSTERS = 20
"""Below this many clusters CR1 standard errors are too small (Cameron & Miller 2015): CR2."""


def cr2_se(x: np.ndarray, clusters: np.ndarray) -> tuple[float, int]:
    """Bias-reduced (CR2, Bell & McCaffrey 2002) cluster-robust SE of the mean.

    For the mean (a model with only an intercept) the hat block of cluster g is J/n, so the
    adjustment (I − H_gg)^(−½) multiplies the cluster's residual sum by 1/√(1 − n_g/n):
    SE² = Σ_g (Σ_{i∈g} (x_i − x̄))² / (1 − n_g/n) / n². Equals CR1 for equal cluster sizes
    and corrects CR1's downward bias when a few clusters dominate. Returns (SE, G); NaN
    when one cluster holds every sample.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    keys = pd.Series(clusters).astype(str).to_numpy()
    grp = pd.Series(x - x.mean()).groupby(keys)
    resid, sizes = grp.sum().to_numpy(), grp.size().to_numpy(float)
    g = len(resid)
    if n <= 1 or g <= 1:
        return (math.nan, g)
    return (math.sqrt(float(np.sum(resid**2 / (1 - sizes / n)))) / n, g)


def cluster_se(x: np.ndarray, clusters: np.ndarray) -> tuple[float, int, str]:
    """CR1 with ≥ ``SMALL_CLUSTERS`` clusters, else CR2: (SE, G, ``"CR1"`` | ``"CR2"``)."""
    se, g = clustered_se(x, clusters)
    if g < SMALL_CLUSTERS:
        se, g = cr2_se(x, clusters)
        return (se, g, "CR2")
    return (se, g, "CR1")


def mean_interval(
    scores: np.ndarray,
    *,
    binary: bool,
    clusters: np.ndarray | None = None,
    confidence: float = 0.95,
) -> Interval:
    """Interval for the mean of per-sample scores (sample epochs already reduced).

    Clustered when ``clusters`` is given (t with G−1 degrees of freedom, since the
    effective sample size is the number of clusters; CR2 below ``SMALL_CLUSTERS`` clusters); else Wilson for 0/1 scores and t
    otherwise. The reported stderr is SD(ddof=1)/√n, as inspect-ai's ``stderr`` metric.
    """
    x = np.asarray(scores, dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0, None, "t")
    mean = float(x.mean())
    if clusters is not None:
        se, g, _ = cluster_se(x, clusters)
        if g > 1:
            t = float(t_ppf(0.5 + confidence / 2, g - 1))
            return Interval(mean, se, mean - t * se, mean + t * se, n, g, "clustered_t")
        return Interval(mean, math.nan, math.nan, math.nan, n, g, "clustered_t")
    if binary:
        lo, hi = wilson(float(x.sum()), n, confidence)
        se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return Interval(mean, se, lo, hi, n, None, "wilson")
    return t_interval(x, confidence)


def from_log_interval(
    value: float,
    stderr: float | None,
    n: float | None,
    metric: str,
    confidence: float = 0.95,
    *,
    binary: bool | None = None,
) -> Interval:
    """Interval from inspect's own metric when there are no per-sample scores.

    A proportion (``accuracy``, or ``binary=True``: the scorer's scores are 0/1) with n:
    the Wilson interval of value·n successes out of n, at every n — never value ± z·stderr,
    which at n = 3 (accuracy 0.667, stderr 0.333) gives [0.01, 1.32]; a proportion stays in
    [0, 1]. Otherwise, with a logged stderr: value ± z·stderr (inspect's stderr is a CLT
    standard error); else no interval.

    >>> [round(x, 3) for x in (lambda iv: (iv.ci_low, iv.ci_high))(from_log_interval(2 / 3, 1 / 3, 3, "accuracy"))]
    [0.208, 0.939]
    """
    nn = int(n) if n is not None and not pd.isna(n) else 0
    se = float(stderr) if stderr is not None and not pd.isna(stderr) else math.nan
    proportion = (metric in PROPORTION_METRICS) if binary is None else (binary or metric in PROPORTION_METRICS)
    if proportion and nn > 0 and 0.0 <= value <= 1.0:
        lo, hi = wilson(value * nn, nn, confidence)
        return Interval(float(value), se, lo, hi, nn, None, "from_log")
    if not math.isnan(se):
        z = _z(confidence)
        lo, hi = value - z * se, value + z * se
        if proportion and 0.0 <= value <= 1.0:
            lo, hi = max(0.0, lo), min(1.0, hi)
        return Interval(float(value), se, lo, hi, nn, None, "from_log")
    return Interval(float(value), math.nan, math.nan, math.nan, nn, None, "from_log")
