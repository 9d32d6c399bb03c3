"""Non-inferiority of each candidate against the best: the basis of the production pick.

"Not significantly worse than the best" is absence of evidence — with 200 items the smallest
detectable difference is 10–18 pp. A cheaper candidate is recommended instead of the best only
when it is *shown* to be at most ``margin`` worse (one-sided paired test, H0: worse by ≥
margin; stats/equivalence.py), Holm within the family's non-inferiority tests. The margin is
on the metric's own scale (``--margin``, else half the width of the best's CI). Failed runs
(``Analysis.failed_runs``) are never candidates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Best
from analyze_experiment.stats.candidates import Family
from analyze_experiment.stats.equivalence import (
    default_margin,
    noninferiority_paired,
    pairs_for_noninferiority,
)
from analyze_experiment.stats.multiplicity import holm
from analyze_experiment.stats.paired import align
from analyze_experiment.stats.plan import family_name

NONINFERIORITY = ["task", "scorer", "metric", "run", "epoch", "best_run", "best_epoch", "margin", "margin_source",
                  "diff", "lower", "p_value", "p_adjusted", "non_inferior", "n_paired", "sd_diff", "n_needed",
                  "family", "confirmatory"]
"""Columns of ``Analysis.noninferiority`` (``diff`` and ``lower`` oriented: positive = candidate better)."""


def failed_set(failed_runs: pd.DataFrame | None) -> set[str]:
    """Run names of ``Analysis.failed_runs`` (empty or missing frame: none failed)."""
    if failed_runs is None or failed_runs.empty or "run" not in failed_runs.columns:
        return set()
    return {str(r) for r in failed_runs["run"].dropna()}


def noninferiority_table(families: list[Family], best: list[Best], *, margin: float | None, alpha: float,
                         confirmatory: set[tuple[str, str, str]], failed: set[str]) -> pd.DataFrame:
    """One row per (best, other candidate with per-sample scores) of each family."""
    rows: list[dict[str, Any]] = []
    by_key = {(f.task, f.scorer, f.metric): f for f in families}
    for b in best:
        fam = by_key.get((b.task, b.scorer, b.metric))
        bkey = (b.run, b.epoch)
        if fam is None or bkey not in fam.scores:
            continue
        m, source = default_margin(b.ci_low, b.ci_high, margin)
        sign = -1.0 if fam.direction == "lower" else 1.0
        name = family_name("non-inferiority", b.task, b.scorer, b.metric)
        group = []
        for key, s in fam.scores.items():
            if key == bkey or key[0] in failed:
                continue
            x, y, ids = align(s, fam.scores[bkey])
            d = sign * (x - y)
            cl = None
            if fam.clusters is not None:
                c = fam.clusters.reindex(ids).astype(object).to_numpy()
                cl = np.where(pd.isna(c), np.array([f"__sample_{i}" for i in ids], dtype=object), c)
            t = noninferiority_paired(d, m, alpha, cl)
            sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
            group.append({"task": b.task, "scorer": b.scorer, "metric": b.metric, "run": key[0],
                          "epoch": math.nan if key[1] is None else key[1], "best_run": b.run,
                          "best_epoch": math.nan if b.epoch is None else b.epoch, "margin": m,
                          "margin_source": source, "diff": t.diff, "lower": t.lower, "p_value": t.p_value,
                          "n_paired": len(d), "sd_diff": sd,
                          "n_needed": pairs_for_noninferiority(m, sd, alpha),
                          "family": name, "confirmatory": (b.task, b.scorer, b.metric) in confirmatory})
        if group:
            padj = holm(np.array([g["p_value"] for g in group], float))
            for g, pa in zip(group, padj, strict=True):
                g["p_adjusted"] = float(pa)
                g["non_inferior"] = bool(g["confirmatory"] and not math.isnan(pa) and pa < alpha)
            rows.extend(group)
    return pd.DataFrame(rows, columns=NONINFERIORITY)
