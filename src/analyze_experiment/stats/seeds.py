"""Replicate runs: when runs differ only in their seed, the seed is the unit.

Per-sample tests between two single runs say nothing about training noise: another seed
of the same config can move accuracy by more than the gap between configs. With
replicates we summarise each config by mean ± SD across seeds (t interval), compare
configs on their seed means (Welch 1947), and with ≥ 5 seeds per config also report the
probability of improvement P(A > B) with a bootstrap CI (Agarwal et al. 2021).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.ingest.configurations import (  # noqa: F401 - re-exported
    config_labels,
    seed_variable,
)
from analyze_experiment.stats.candidates import epoch_key
from analyze_experiment.stats.distributions import t_ppf, t_sf
from analyze_experiment.stats.intervals import t_interval
from analyze_experiment.stats.multiplicity import benjamini_hochberg, holm
from analyze_experiment.tables import by_epoch

SEED_COMPARISONS = [
    "task", "scorer", "metric", "epoch", "a", "b", "n_a", "n_b", "diff", "ci_low", "ci_high",
    "t", "df", "test", "p_value", "p_adjusted", "q_value", "significant",
    "p_a_gt_b", "p_a_gt_b_low", "p_a_gt_b_high",
]
MIN_SEEDS_FOR_PROB = 5


def welch(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Welch's unequal-variance t-test and interval for mean(a) − mean(b).

    SE = √(s²ₐ/nₐ + s²ᵦ/nᵦ); Welch–Satterthwaite degrees of freedom.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    diff = float(a.mean() - b.mean())
    nan = {"diff": diff, "se": math.nan, "df": math.nan, "t": math.nan, "p_value": math.nan,
           "ci_low": math.nan, "ci_high": math.nan}
    if na < 2 or nb < 2:
        return nan
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return nan
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = diff / se
    p = float(2 * t_sf(abs(t), dof))
    q = float(t_ppf(0.5 + confidence / 2, dof))
    return {"diff": diff, "se": se, "df": float(dof), "t": float(t), "p_value": p,
            "ci_low": diff - q * se, "ci_high": diff + q * se}


def prob_improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(X_A > X_B) for a random seed of each config (ties count ½) = U / (nₐ·nᵦ)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    gt = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    return float(gt / (len(a) * len(b)))


def prob_improvement_ci(
    a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95, n_boot: int = 2_000, seed: int = 0
) -> tuple[float, float, float]:
    """P(A > B) with a percentile bootstrap CI, resampling seeds within each config."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(n_boot, len(a)))
    ib = rng.integers(0, len(b), size=(n_boot, len(b)))
    boots = np.array([prob_improvement(a[i], b[j]) for i, j in zip(ia, ib, strict=True)])
    tail = (1 - confidence) / 2
    return (prob_improvement(a, b), float(np.quantile(boots, tail)), float(np.quantile(boots, 1 - tail)))


def seed_tables(
    values: pd.DataFrame,
    configs: pd.Series,
    *,
    confidence: float = 0.95,
    n_boot: int = 2_000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed summaries per config and Welch comparisons of every config with the best one.

    ``values``: task, scorer, metric, run, epoch, value (one row per candidate). Only
    configs with ≥ 2 replicate runs at the same epoch are summarised; comparisons are a
    Holm family per task × scorer × metric × epoch spanning every pair of configs (the best
    config is chosen after seeing the data), of which the best-vs-other rows are reported.
    """
    from analyze_experiment.analysis import SEEDS

    if values.empty or configs.empty:
        return pd.DataFrame(columns=[*SEEDS, "epoch"]), pd.DataFrame(columns=SEED_COMPARISONS)
    v = values[values["run"].isin(configs.index)].copy()
    v["config"] = v["run"].map(configs)
    v["epoch_key"] = pd.to_numeric(v["epoch"], errors="coerce")
    srows: list[dict[str, Any]] = []
    crows: list[dict[str, Any]] = []
    for (task, scorer, metric, ek), g in by_epoch(v, ["task", "scorer", "metric", "epoch_key"], epoch="epoch_key"):
        groups = {c: cg.sort_values("run") for c, cg in g.groupby("config", sort=True) if len(cg) >= 2}
        if not groups:
            continue
        key = {"task": task, "scorer": scorer, "metric": metric, "epoch": epoch_key(ek)}
        # the best config has the largest seed mean, the smallest for a lower-is-better metric
        direction = str(g["direction"].iloc[0]) if "direction" in g.columns else "higher"
        sign = -1.0 if direction == "lower" else 1.0
        srows += [_seed_summary(key, c, cg, confidence, direction) for c, cg in groups.items()]
        best = max(groups, key=lambda c: (sign * groups[c]["value"].mean(), c))
        crows += _config_family(key, groups, best, confidence=confidence, n_boot=n_boot, seed=seed)
    return (pd.DataFrame(srows, columns=[*SEEDS, "epoch", "direction"]),
            pd.DataFrame(crows, columns=[*SEED_COMPARISONS, "p_holm", "family_size"]))


def _seed_summary(key: dict[str, Any], config: str, cg: pd.DataFrame, confidence: float,
                  direction: str) -> dict[str, Any]:
    """One configuration across its seeds: mean, SD and t interval."""
    iv = t_interval(cg["value"].to_numpy(float), confidence)
    return {"task": key["task"], "scorer": key["scorer"], "metric": key["metric"], "config": config,
            "n_seeds": len(cg), "mean": iv.value, "sd": float(np.std(cg["value"], ddof=1)), "ci_low": iv.ci_low,
            "ci_high": iv.ci_high, "runs": list(cg["run"]), "epoch": key["epoch"], "direction": direction}


def _config_family(key: dict[str, Any], groups: dict[str, pd.DataFrame], best: str, *, confidence: float,
                   n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Welch tests of the best configuration against each other one (P(A > B) with ≥ 5 seeds
    each), Holm-adjusted over every pair of configurations: the best is picked after seeing
    the data, so the family is all pairs, of which only best-vs-other rows are reported."""
    alpha = 1 - confidence
    fam: list[dict[str, Any]] = []
    for c, cg in groups.items():
        if c == best:
            continue
        xa, xb = groups[best]["value"].to_numpy(float), cg["value"].to_numpy(float)
        w = welch(xa, xb, confidence)
        row = {"task": key["task"], "scorer": key["scorer"], "metric": key["metric"], "epoch": key["epoch"],
               "a": best, "b": c, "n_a": len(xa), "n_b": len(xb), "diff": w["diff"], "ci_low": w["ci_low"],
               "ci_high": w["ci_high"], "t": w["t"], "df": w["df"], "test": "welch",
               "p_value": w["p_value"], "p_a_gt_b": math.nan, "p_a_gt_b_low": math.nan,
               "p_a_gt_b_high": math.nan}
        if len(xa) >= MIN_SEEDS_FOR_PROB and len(xb) >= MIN_SEEDS_FOR_PROB:
            p, lo, hi = prob_improvement_ci(xa, xb, confidence=confidence, n_boot=n_boot, seed=seed)
            row.update(p_a_gt_b=p, p_a_gt_b_low=lo, p_a_gt_b_high=hi)
        fam.append(row)
    if not fam:
        return fam
    names = sorted(groups)
    others = [welch(groups[x]["value"].to_numpy(float), groups[y]["value"].to_numpy(float), confidence)["p_value"]
              for i, x in enumerate(names) for y in names[i + 1:] if best not in (x, y)]
    p = np.array([r["p_value"] for r in fam] + others, float)
    padj, q = holm(p)[: len(fam)], benjamini_hochberg(p)[: len(fam)]
    for r, pa, qq in zip(fam, padj, q, strict=True):
        r.update(p_adjusted=float(pa), p_holm=float(pa), q_value=float(qq),
                 significant=bool(not math.isnan(pa) and pa < alpha), family_size=int(np.sum(~np.isnan(p))))
    return fam



def seed_aware_best(best: list[Any], seeds: pd.DataFrame, comparisons: pd.DataFrame,
                    configs: pd.Series) -> None:
    """With replicates, a single run cannot be a clear winner on its own: the best run's
    config must also have the highest seed mean and beat every other config (Welch, Holm).

    Updates ``clear_winner`` and ``reason`` of each :class:`Best` in place (they are this
    stage's own objects).
    """
    if seeds.empty:
        return
    for b in best:
        cfg = configs.get(b.run)
        s = seeds[(seeds["task"] == b.task) & (seeds["scorer"] == b.scorer) & (seeds["metric"] == b.metric)]
        if b.epoch is not None:
            s = s[s["epoch"] == b.epoch]
        if cfg is None or s.empty or cfg not in set(s["config"]):
            continue
        low = "direction" in s.columns and (s["direction"] == "lower").any()
        top = s.assign(_m=(-1.0 if low else 1.0) * s["mean"]).sort_values(["_m", "config"], ascending=[False, True]).iloc[0]
        if top["config"] != cfg:
            b.clear_winner = False
            b.reason += (f"; across seeds, {top['config']} has the {'lower' if low else 'higher'} mean "
                         f"({top['mean']:.4g} over "
                         f"{int(top['n_seeds'])} seeds) than this run's config {cfg}")
            continue
        c = comparisons[(comparisons["task"] == b.task) & (comparisons["scorer"] == b.scorer)
                        & (comparisons["metric"] == b.metric) & (comparisons["a"] == cfg)]
        if b.epoch is not None:
            c = c[c["epoch"] == b.epoch]
        if len(c) and not c["significant"].astype(bool).all():
            ns = c[~c["significant"].astype(bool)]
            names = ", ".join(f"{r['b']} (Holm p = {r['p_adjusted']:.2g})" for _, r in ns.head(3).iterrows())
            b.clear_winner = False
            b.reason += (f"; across seeds, {len(ns)} of {len(c)} other configs are not significantly worse than "
                         f"{cfg} (Welch): {names}")
