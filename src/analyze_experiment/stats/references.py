"""Reference numbers: how the sweep's runs compare with a value from elsewhere (a paper, a
leaderboard, last month's model).

A reference is a fixed number with, at best, a sample size or an interval. The comparison
asked is "is this run above or below that number?", so each candidate of the matching task ×
scorer × metric is tested against it, and the tests of one target form one family (Holm
within it, at the report's α: a reference is a question the user asked by name, not one the
tool went looking for, so it does not share α with the difference families of
:mod:`analyze_experiment.stats.plan`).

Which test depends on what is known about the reference:

- **its n (0/1 metric)** — two independent proportions: Agresti–Caffo test and Newcombe
  interval of the difference (statsmodels ``test_proportions_2indep`` /
  ``confint_proportions_2indep``), the reference's count taken as ``round(value · n)``;
- **its interval** — the two estimates are independent: difference ± z·√(se² + se_ref²), the
  reference's se read from its interval (taken at the report's confidence level);
- **nothing but the value** — a one-sample test against a fixed number: the exact binomial test
  with a Wilson interval for 0/1 scores (scipy ``binomtest``), else the one-sample t-test
  (scipy ``ttest_1samp``). Candidates known only from a log header use z = (value − ref)/stderr.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import REFERENCES
from analyze_experiment.ingest.references import (  # noqa: F401 - re-exported: where the tests are
    Reference,
    ReferenceError_,
    design_references,
    make_reference,
    parse_reference,
)
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.multiplicity import holm


def matching(ref: Reference, keys: list[tuple[str, str, str]], primary: set[tuple[str, str, str]]
             ) -> list[tuple[str, str, str]]:
    """The task × scorer × metric keys ``ref`` applies to (its metric, else each task's primary)."""
    out = [k for k in keys if (ref.task is None or k[0] == ref.task) and (ref.scorer is None or k[1] == ref.scorer)]
    if ref.metric is not None:
        return [k for k in out if k[2] == ref.metric]
    return [k for k in out if k in primary]


def _one(fam: Family, key: Any, ref: Reference, z: float, conf: float) -> dict[str, Any]:
    """Value, difference, interval and test of one candidate against ``ref``."""
    from scipy import stats as sps  # here: reading a design needs no scipy
    x = fam.scores.get(key)
    if x is not None and len(x):
        x = pd.to_numeric(x, errors="coerce").dropna().to_numpy(float)
    if x is None or not len(x):
        info = fam.from_log.get(key, {})
        value, se = info.get("value"), info.get("stderr")
        if value is None:
            return {}
        value = float(value)
        ref_se = _ref_se(ref, z, fam.binary)
        if se is None or not math.isfinite(float(se)):
            return {"value": value, "diff": value - ref.value, "test": "none (no per-sample scores or stderr)"}
        s = math.hypot(float(se), ref_se or 0.0)
        stat = (value - ref.value) / s if s > 0 else math.nan
        return {"value": value, "diff": value - ref.value, "ci_low": value - ref.value - z * s,
                "ci_high": value - ref.value + z * s, "test": "z (from the log header)", "statistic": stat,
                "p_value": 2 * sps.norm.sf(abs(stat)) if math.isfinite(stat) else math.nan}
    n, value = len(x), float(x.mean())
    row: dict[str, Any] = {"value": value, "diff": value - ref.value}
    binary = bool(np.isin(x, (0.0, 1.0)).all())
    if binary and ref.n is not None and ref.ci_low is None:
        from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

        k1, k2 = int(x.sum()), round(ref.value * ref.n)
        res = test_proportions_2indep(k1, n, k2, ref.n, value=0, method="agresti-caffo", compare="diff")
        lo, hi = confint_proportions_2indep(k1, n, k2, ref.n, method="newcomb", compare="diff", alpha=1 - conf)
        row.update(ci_low=float(lo), ci_high=float(hi), test="two_proportions (Agresti-Caffo)",
                   statistic=float(res.statistic), p_value=float(res.pvalue))
        return row
    ref_se = _ref_se(ref, z, binary)
    if ref_se is not None:
        se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        s = math.hypot(se, ref_se)
        stat = row["diff"] / s if s > 0 else math.nan
        row.update(ci_low=row["diff"] - z * s, ci_high=row["diff"] + z * s, test="z_two_estimates",
                   statistic=stat, p_value=2 * sps.norm.sf(abs(stat)) if math.isfinite(stat) else math.nan)
        return row
    if binary:
        res = sps.binomtest(int(x.sum()), n, p=min(max(ref.value, 0.0), 1.0))
        ci = res.proportion_ci(confidence_level=conf, method="wilson")
        row.update(ci_low=ci.low - ref.value, ci_high=ci.high - ref.value, test="binomial_exact",
                   statistic=float(x.sum()), p_value=float(res.pvalue))
        return row
    if n < 2 or float(x.std(ddof=1)) == 0.0:
        row.update(test="none (fewer than 2 distinct scores)")
        return row
    res = sps.ttest_1samp(x, ref.value)
    ci = res.confidence_interval(confidence_level=conf)
    row.update(ci_low=ci.low - ref.value, ci_high=ci.high - ref.value, test="one_sample_t",
               statistic=float(res.statistic), p_value=float(res.pvalue))
    return row


def _ref_se(ref: Reference, z: float, binary: bool) -> float | None:
    """The reference's standard error: from its interval, else from n for a proportion."""
    if ref.ci_low is not None and ref.ci_high is not None:
        return (ref.ci_high - ref.ci_low) / (2 * z)
    if ref.n is not None and binary and 0.0 <= ref.value <= 1.0:
        return math.sqrt(ref.value * (1 - ref.value) / ref.n)
    return None


def reference_table(families: list[Family], references: list[Reference], primary: set[tuple[str, str, str]],
                    *, confidence: float = 0.95) -> tuple[pd.DataFrame, list[Reference]]:
    """Every candidate of each matching family against each reference; Holm per family.

    Returns the table (columns :data:`REFERENCES`) and the references that matched no
    evaluated task × scorer × metric (the caller warns about them).
    """
    from scipy import stats as sps  # here: reading a design needs no scipy
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    by_key = {(f.task, f.scorer, f.metric): f for f in families}
    rows: list[dict[str, Any]] = []
    unmatched: list[Reference] = []
    for ref in references:
        keys = matching(ref, list(by_key), primary)
        if not keys:
            unmatched.append(ref)
        for key in keys:
            fam = by_key[key]
            for cand in fam.candidates():
                r = _one(fam, cand, ref, z, confidence)
                if not r:
                    continue
                better = None
                if fam.direction in ("higher", "lower") and math.isfinite(r["diff"]):
                    better = r["diff"] > 0 if fam.direction == "higher" else r["diff"] < 0
                rows.append({"reference": ref.name, "source": ref.source, "task": key[0], "scorer": key[1],
                             "metric": key[2], "run": cand[0], "epoch": cand[1], "reference_value": ref.value,
                             "reference_n": ref.n, "better": better,
                             "family": f"reference: {key[0]}/{key[1]}/{key[2]}", **r})
    df = pd.DataFrame(rows, columns=REFERENCES)
    if df.empty:
        return df, unmatched
    df["p_value"] = pd.to_numeric(df["p_value"], errors="coerce")
    df["p_adjusted"] = np.nan
    for _, idx in df.groupby("family").groups.items():
        p = df.loc[idx, "p_value"]
        ok = p.notna()
        if ok.any():
            df.loc[p[ok].index, "p_adjusted"] = holm(p[ok].to_numpy(float))
    alpha = 1 - confidence
    df["significant"] = df["p_adjusted"].lt(alpha)
    return df, unmatched
