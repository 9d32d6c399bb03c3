"""Risk scorers: a predicted probability per sample, judged on calibration and discrimination.

A risk scorer (``risk_scorer``, ``numeric_risk_scorer`` and anything following their
convention) writes per sample ``metadata.risk_score`` (P(positive)), ``metadata.option_probs``
(``{negative: 1 − p, positive: p}``, the positive label is the *last* key) and
``metadata.target``; an output it could not read has ``risk_score`` null. Its C/I value is
the prediction thresholded at 0.5 (``risk ≥ 0.5`` → positive).

Why recompute from the samples rather than read the header: the header holds one number per
metric, without an interval, and cannot be compared between runs. From the samples we get

* **Brier score** — mean of (p − y)², a proper scoring rule (lower is better); its interval is
  the t interval of the per-sample squared errors (they are independent across samples);
* **AUC** — discrimination alone, with DeLong's interval (:mod:`.delong`), and DeLong's
  paired test between runs on the same samples;
* **risk calibration error** — calibration of the risk itself: 10 equal-width bins of p over
  [0, 1], each right-closed ``(lo, hi]`` with p = 0 in the first bin (the scorers' own
  binning), the weighted mean of |mean p − share positive| per bin;
* **ECE** — expected calibration error of the *confidence*, as the scorers' header defines
  it: the same bins over max(p, 1 − p) (the probability of the label predicted at 0.5),
  weighted mean of |mean confidence − share correct|;
* thresholded rates at 0.5 and the confusion matrix (:mod:`.binary`), the eval set's class
  balance, and the count of unreadable outputs (left out of Brier, AUC and ECE, counted as
  "other" — wrong — in the thresholded rates).
"""

from __future__ import annotations

import json
import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.stats.binary import CONFUSION, confusion, rates
from analyze_experiment.stats.candidates import epoch_key
from analyze_experiment.stats.delong import auc_ci, paired_test
from analyze_experiment.stats.distributions import t_ppf
from analyze_experiment.stats.multiplicity import holm
from analyze_experiment.tables import by_epoch

RISK = "score_meta.risk_score"
PROBS = "score_meta.option_probs"
TARGET = "score_meta.target"

ECE_BINS = 10
THRESHOLD = 0.5

RISK_SAMPLES = ["run", "task", "epoch", "scorer", "sample_id", "risk", "y", "positive", "parsed"]

RISK_TABLE = [
    "task", "scorer", "run", "epoch", "n", "n_parsed", "n_unparsed", "n_pos", "n_neg", "prevalence",
    "positive_label", "brier", "brier_ci_low", "brier_ci_high", "auc", "auc_se", "auc_ci_low", "auc_ci_high",
    "ece", "risk_calibration_error", "mean_risk", "accuracy", "balanced_accuracy", "f1", "precision", "recall", "specificity", *CONFUSION,
]

AUC_TESTS = [
    "task", "scorer", "metric", "a", "epoch_a", "b", "epoch_b", "auc_a", "auc_b", "diff", "ci_low", "ci_high",
    "test", "statistic", "p_value", "p_holm", "family_size", "n_paired", "n_pos", "n_neg",
]


def _positive_of(probs: Any) -> str | None:
    """The last key of ``option_probs`` (a dict, or its JSON text): the positive label."""
    if isinstance(probs, str):
        try:
            probs = json.loads(probs)
        except ValueError:
            return None
    if isinstance(probs, dict) and probs:
        return str(list(probs)[-1])
    return None


def _risk_value(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) and 0.0 <= f <= 1.0 else math.nan


def risk_scorers(samples: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, scorer) pairs whose samples carry a ``risk_score`` in their score metadata."""
    if samples is None or samples.empty or RISK not in samples.columns:
        return []
    has = samples[samples[RISK].notna()]
    return sorted({(str(t), str(s)) for t, s in zip(has["task"], has["scorer"], strict=True)})


def risk_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate × sample of each risk scorer: risk (NaN when unreadable), y, parsed.

    The positive label is the last key of ``option_probs``; where a sample has none (an
    unreadable output) the label the other samples of the task × scorer use, else ``"1"``.
    Sample epochs are averaged (the sample is the unit); a sample is unparsed when no epoch of
    it was read.
    """
    pairs = risk_scorers(samples)
    if not pairs:
        return pd.DataFrame(columns=RISK_SAMPLES)
    keep = pd.Series(list(zip(samples["task"].astype(str), samples["scorer"].astype(str), strict=True)),
                     index=samples.index).isin(set(pairs))
    df = samples[keep].copy()
    df["risk"] = [_risk_value(v) for v in df[RISK]]
    probs = df[PROBS] if PROBS in df.columns else pd.Series(None, index=df.index)
    positive = [_positive_of(p) for p in probs]
    common: dict[tuple[str, str], str] = {}
    for p, t, s in zip(positive, df["task"], df["scorer"], strict=True):
        if p is not None:
            common.setdefault((t, s), p)
    df["positive"] = [p if p is not None else common.get((t, s), "1")
                      for p, t, s in zip(positive, df["task"], df["scorer"], strict=True)]
    target = df[TARGET] if TARGET in df.columns else pd.Series(None, index=df.index)
    target = target.where(target.notna(), df.get("target"))
    df["y"] = [float(str(t).strip() == str(p)) if t is not None and not pd.isna(t) else math.nan
               for t, p in zip(target, df["positive"], strict=True)]
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce").astype(float)
    df["sample_id"] = df["sample_id"].astype(str)
    out = by_epoch(df, ["run", "task", "epoch", "scorer", "sample_id"]).agg(
        risk=("risk", "mean"), y=("y", "first"), positive=("positive", "first")).reset_index()
    out["parsed"] = out["risk"].notna()
    return out[out["y"].notna()][RISK_SAMPLES].reset_index(drop=True)


def ece(risk: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins, right-closed (0 in the first)."""
    risk, y = np.asarray(risk, float), np.asarray(y, float)
    if len(risk) == 0:
        return math.nan
    idx = np.clip(np.ceil(risk * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += m.sum() / len(risk) * abs(risk[m].mean() - y[m].mean())
    return float(total)


def confidence_ece(risk: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of the confidence max(p, 1 − p) against being right at the 0.5 threshold."""
    risk, y = np.asarray(risk, float), np.asarray(y, float)
    conf = np.maximum(risk, 1.0 - risk)
    right = ((risk >= THRESHOLD).astype(float) == y).astype(float)
    return ece(conf, right, n_bins)


def reliability(risk: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Per non-empty bin: its range, mean predicted risk, observed share positive and count."""
    risk, y = np.asarray(risk, float), np.asarray(y, float)
    idx = np.clip(np.ceil(risk * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = [{"bin_low": b / n_bins, "bin_high": (b + 1) / n_bins, "mean_risk": float(risk[idx == b].mean()),
             "observed": float(y[idx == b].mean()), "n": int((idx == b).sum())} for b in np.unique(idx)]
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "mean_risk", "observed", "n"])


def _mean_ci(x: np.ndarray, confidence: float) -> tuple[float, float, float]:
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan
    half = float(t_ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m, max(0.0, m - half), min(1.0, m + half)


def candidate_risk(g: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """Every risk statistic of one candidate's samples (rows of :func:`risk_samples`)."""
    ok = g[g["parsed"]]
    r, y = ok["risk"].to_numpy(float), ok["y"].to_numpy(float)
    brier, lo, hi = _mean_ci((r - y) ** 2, confidence)
    row: dict[str, Any] = {"n_parsed": len(ok), "n_unparsed": int((~g["parsed"]).sum()),
                           "positive_label": str(g["positive"].iloc[0]), "brier": brier,
                           "brier_ci_low": lo, "brier_ci_high": hi,
                           "ece": confidence_ece(r, y) if len(r) else math.nan,
                           "risk_calibration_error": ece(r, y) if len(r) else math.nan,
                           "mean_risk": float(r.mean()) if len(r) else math.nan,
                           "auc": math.nan, "auc_se": math.nan, "auc_ci_low": math.nan, "auc_ci_high": math.nan}
    if len(ok) and 0 < y.sum() < len(y):
        a = auc_ci(y, r, confidence)
        row.update(auc=a.auc, auc_se=a.se, auc_ci_low=a.ci_low, auc_ci_high=a.ci_high)
    truth = [bool(v) for v in g["y"]]
    pred = [None if not p else bool(v >= THRESHOLD) for v, p in zip(g["risk"], g["parsed"], strict=True)]
    counts = confusion(truth, pred)
    row.update(counts)
    row.update({k: v for k, v in rates(**counts).items() if k != "other"})
    return row


def risk_table(rs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`candidate_risk` for every candidate of :func:`risk_samples` (RISK_TABLE columns)."""
    rows = []
    for (task, scorer, run, ep), g in by_epoch(rs, ["task", "scorer", "run", "epoch"]):
        row = {"task": task, "scorer": scorer, "run": run, "epoch": epoch_key(ep)}
        row.update(candidate_risk(g, confidence))
        rows.append(row)
    return pd.DataFrame(rows, columns=RISK_TABLE)


def auc_tests(rs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """DeLong's paired test for every pair of candidates of each risk task × scorer.

    Paired over the samples both candidates read (an unreadable output on either side drops
    the sample from that pair). ``a`` is the candidate with the larger AUC. Holm within the
    task × scorer over every pair (``p_holm``; the plan turns it into ``p_adjusted``).
    """
    out = []
    for (task, scorer), fam in rs.groupby(["task", "scorer"], sort=True):
        cands = {}
        for (run, ep), g in by_epoch(fam, ["run", "epoch"]):
            cands[(str(run), epoch_key(ep))] = g[g["parsed"]].set_index("sample_id")
        rows = []
        for ka, kb in combinations(cands, 2):
            ga, gb = cands[ka], cands[kb]
            common = ga.index.intersection(gb.index)
            y = ga.loc[common, "y"].to_numpy(float)
            if len(common) < 2 or not 0 < y.sum() < len(y):
                continue
            t = paired_test(y, ga.loc[common, "risk"].to_numpy(float), gb.loc[common, "risk"].to_numpy(float),
                            confidence)
            if t.diff < 0:
                ka, kb = kb, ka
                t = paired_test(y, gb.loc[common, "risk"].to_numpy(float), ga.loc[common, "risk"].to_numpy(float),
                                confidence)
            rows.append({"task": task, "scorer": scorer, "metric": "auc", "a": ka[0], "epoch_a": ka[1],
                         "b": kb[0], "epoch_b": kb[1], "auc_a": t.auc_a, "auc_b": t.auc_b, "diff": t.diff,
                         "ci_low": t.ci_low, "ci_high": t.ci_high, "test": "delong", "statistic": t.z,
                         "p_value": t.p_value, "n_paired": len(common), "n_pos": t.n_pos, "n_neg": t.n_neg})
        ph = holm(np.array([r["p_value"] for r in rows], float))
        for r, p in zip(rows, ph, strict=True):
            r["p_holm"] = float(p)
            r["family_size"] = len(rows)
        out.extend(rows)
    return pd.DataFrame(out, columns=AUC_TESTS)


def roc_points(risk: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """The empirical ROC curve (false and true positive rate at every distinct threshold)."""
    risk, y = np.asarray(risk, float), np.asarray(y, bool)
    order = np.argsort(-risk, kind="mergesort")
    r, t = risk[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(r)), len(r) - 1]
    tps, fps = np.cumsum(t)[last], np.cumsum(~t)[last]
    n_pos, n_neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return pd.DataFrame({"fpr": np.r_[0.0, fps / n_neg], "tpr": np.r_[0.0, tps / n_pos]})
