"""Per-subgroup results and the question "is the gain the same for every subgroup?".

Subgroups are sample metadata categories: a ``meta.<key>`` column whose values are text with
2 to :data:`MAX_LEVELS` levels on a task (``group: short|long``, ``region: north|south|…``).
Numeric metadata are quantities, not categories, and many-level keys (an id, the word
itself) are not subgroups; both are left out.

For each confirmatory family (task × scorer × primary metric) the table gives every
candidate's mean per level. The heterogeneity test compares the *gain* of the family's best
over each baseline (no baseline: over every other candidate) across the levels of each key:
the per-sample paired differences best − other are grouped by level and a one-way ANOVA
asks whether their means differ — in a paired design that is the candidate × subgroup
interaction test. Holm adjusts within the family over every key × comparison; the plan
(``stats/plan.py``, kind ``heterogeneity``) puts the family beside the other difference
families. A significant result says the gain is not the same in every subgroup; a
non-significant one does not say it is (too few samples per level is the usual reason).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.stats.candidates import CandKey, Family, epoch_key
from analyze_experiment.stats.distributions import norm_ppf, t_ppf
from analyze_experiment.stats.multiplicity import holm

MAX_LEVELS = 8
"""A metadata key with more distinct text values on a task is not treated as a subgroup."""

SUBGROUPS = ["task", "scorer", "metric", "key", "level", "run", "epoch", "n", "value", "ci_low", "ci_high"]

SUBGROUP_TESTS = [
    "task", "scorer", "metric", "key", "a", "epoch_a", "b", "epoch_b", "n_levels", "n_paired", "gains",
    "gain_low_level", "gain_high_level", "test", "statistic", "df1", "df2", "p_value", "p_holm", "family_size",
]


def text_equals(col: pd.Series, value: str) -> np.ndarray:
    """``col.astype(str) == value`` as a boolean array, each distinct value converted once (a
    100-run sweep's sample table has 200,000 rows and a couple of tasks: converting every row
    to text took 30 ms per family). Text and categorical columns only: in an object column 1
    and 1.0 are one distinct value but two texts."""
    if not isinstance(col.dtype, pd.CategoricalDtype | pd.StringDtype):
        return (col.astype(str) == value).to_numpy(dtype=bool, na_value=False)
    codes, uniques = pd.factorize(col)
    hit = np.append((pd.Series(uniques, dtype=col.dtype).astype(str) == value).to_numpy(bool), False)
    mask = hit[codes]  # code -1 (missing) reads the appended False, replaced just below
    missing = codes < 0
    if missing.any():  # a missing value as astype(str) converts it
        mask[missing] = bool((col[missing].iloc[:1].astype(str) == value).iloc[0])
    return mask


def category_keys(samples: pd.DataFrame, task: str) -> dict[str, pd.Series]:
    """``key`` -> (sample id -> level) for every subgroup key of ``task``."""
    if samples is None or samples.empty:
        return {}
    rows = samples[text_equals(samples["task"], task)]
    out: dict[str, pd.Series] = {}
    for col in sorted(c for c in rows.columns if str(c).startswith("meta.")):
        vals = rows[["sample_id", col]].dropna()
        if vals.empty or not all(isinstance(v, str) for v in vals[col]):
            continue
        levels = vals.groupby(vals["sample_id"].astype(str))[col].first()
        if 2 <= levels.nunique() <= MAX_LEVELS:
            out[col[len("meta."):]] = levels
    return out


def _ci(x: np.ndarray, binary: bool, confidence: float) -> tuple[float, float]:
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    z = float(norm_ppf(0.5 + confidence / 2))
    m = float(x.mean())
    if binary:  # Wilson
        den = 1 + z * z / n
        c = (m + z * z / (2 * n)) / den
        h = z * math.sqrt(m * (1 - m) / n + z * z / (4 * n * n)) / den
        return max(0.0, c - h), min(1.0, c + h)
    h = float(t_ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m - h, m + h


def subgroup_table(fam: Family, keys: dict[str, pd.Series], confidence: float = 0.95) -> pd.DataFrame:
    """Every candidate's mean of ``fam``'s per-sample score in each level of each key."""
    rows: list[dict[str, Any]] = []
    for key, levels in keys.items():
        for (run, ep), s in fam.scores.items():
            lv = levels.reindex(s.index)
            for level in sorted(lv.dropna().unique()):
                x = s[lv == level].to_numpy(float)
                lo, hi = _ci(x, fam.binary, confidence)
                rows.append({"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "key": key,
                             "level": level, "run": run, "epoch": ep, "n": len(x),
                             "value": float(x.mean()) if len(x) else math.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=SUBGROUPS)


def interaction_test(diff: pd.Series, levels: pd.Series) -> dict[str, Any] | None:
    """One-way ANOVA of per-sample paired differences across levels (None: not testable)."""
    lv = levels.reindex(diff.index)
    groups = {str(k): g.to_numpy(float) for k, g in diff.groupby(lv, sort=True) if len(g) >= 1}
    groups = {k: g for k, g in groups.items() if len(g) >= 2}
    if len(groups) < 2:
        return None
    n = sum(len(g) for g in groups.values())
    pooled = sum(((g - g.mean()) ** 2).sum() for g in groups.values())
    if pooled == 0:
        return None
    from scipy import stats  # only the subgroup test needs scipy.stats; not imported with the module

    f, p = stats.f_oneway(*groups.values())
    gains = {k: float(g.mean()) for k, g in groups.items()}
    return {"n_levels": len(groups), "n_paired": n, "gains": json.dumps(gains), "statistic": float(f),
            "df1": len(groups) - 1, "df2": n - len(groups), "p_value": float(p),
            "gain_low_level": min(gains, key=gains.__getitem__), "gain_high_level": max(gains, key=gains.__getitem__)}


def heterogeneity_tests(fam: Family, keys: dict[str, pd.Series], best: CandKey,
                        others: Iterable[CandKey]) -> pd.DataFrame:
    """:func:`interaction_test` of best − other for every key × other, Holm within the family."""
    rows: list[dict[str, Any]] = []
    if best not in fam.scores:
        return pd.DataFrame(columns=SUBGROUP_TESTS)
    sb = fam.scores[best]
    for other in others:
        if other == best or other not in fam.scores:
            continue
        so = fam.scores[other]
        common = sb.index.intersection(so.index)
        diff = sb.loc[common] - so.loc[common]
        for key, levels in keys.items():
            t = interaction_test(diff, levels)
            if t is None:
                continue
            rows.append({"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "key": key,
                         "a": best[0], "epoch_a": best[1], "b": other[0], "epoch_b": other[1],
                         "test": "anova_interaction", **t})
    ph = holm(np.array([r["p_value"] for r in rows], float))
    for r, p in zip(rows, ph, strict=True):
        r["p_holm"] = float(p)
        r["family_size"] = len(rows)
    return pd.DataFrame(rows, columns=SUBGROUP_TESTS)


def comparison_set(fam: Family, best: CandKey, baselines: list[str]) -> list[CandKey]:
    """The candidates the best's gain is measured against: the baselines', else all others."""
    base = [k for k in fam.scores if k[0] in baselines and k != best]
    return base or [k for k in fam.scores if k != best]


def best_key(run: str, epoch: Any) -> CandKey:
    """The :data:`CandKey` of a :class:`~analyze_experiment.analysis.Best`."""
    return (str(run), epoch_key(epoch))
