"""Seed replicates pooled into configurations: the unit of "best", "production" and "more seeds".

When runs share every parameter but the seed (the design varies a seed, or runs simply
repeat one configuration), the luckiest single seed is not a choice: another seed of the
same configuration could score lower than a seed of the runner-up. Recommendations then
name configurations with their mean and spread across seeds (``lora_rank=32 (3 seeds: mean
65.8%, SD 8.0 pp)``) and rest on the seed-level Welch tests of :mod:`.seeds`; the paired
per-sample tests stay for checkpoint-level questions ("is this checkpoint better than that
one on these samples?").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.formatting import fmt_diff, fmt_value
from analyze_experiment.stats.candidates import epoch_key
from analyze_experiment.stats.intervals import t_interval
from analyze_experiment.tables import by_epoch


@dataclass
class ConfigStat:
    """One configuration's values across its seed replicates at one checkpoint epoch."""

    config: str
    runs: list[str]
    epoch: float | None
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    gpu_hours: float = math.nan
    """Mean training GPU-hours per run (NaN when unknown)."""
    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)


def replicated(a: Analysis) -> bool:
    """True when some configuration was trained more than once (seed replicates)."""
    c = a.configs
    return c is not None and len(c) > 0 and int(c.value_counts().max()) >= 2


def direction(a: Analysis, task: str, scorer: str, metric: str) -> str:
    """``higher`` or ``lower`` (the metric registry's, when the analysis has one)."""
    m = a.metrics
    if isinstance(m, pd.DataFrame) and len(m) and {"task", "scorer", "metric", "direction"} <= set(m.columns):
        g = m[(m["task"] == task) & (m["scorer"] == scorer) & (m["metric"] == metric)]
        if len(g) and str(g["direction"].iloc[0]) == "lower":
            return "lower"
    return "higher"


def config_stats(a: Analysis, task: str, scorer: str, metric: str, *, exclude: set[str] | None = None,
                 runs: pd.DataFrame | None = None) -> list[ConfigStat]:
    """Every configuration × evaluated epoch of one family, best first (by the metric's direction).

    Runs in ``exclude`` (failed runs) do not count towards a configuration's mean.
    """
    if not replicated(a) or a.intervals.empty:
        return []
    iv = a.intervals[(a.intervals["task"] == task) & (a.intervals["scorer"] == scorer)
                     & (a.intervals["metric"] == metric)]
    iv = iv[iv["run"].astype(str).isin(a.configs.index) & ~iv["run"].astype(str).isin(exclude or set())]
    if iv.empty:
        return []
    cost: dict[str, float] = {}
    if runs is not None and len(runs) and "gpu_hours" in runs.columns:
        cost = {str(r): float(h) for r, h in zip(runs["run"], pd.to_numeric(runs["gpu_hours"], errors="coerce"),
                                                   strict=True)}
    iv = iv.assign(_cfg=iv["run"].astype(str).map(a.configs),
                   _ep=pd.to_numeric(iv["epoch"], errors="coerce"),
                   _v=pd.to_numeric(iv["value"], errors="coerce"))
    out: list[ConfigStat] = []
    for (cfg, ep), g in by_epoch(iv.dropna(subset=["_v"]), ["_cfg", "_ep"], epoch="_ep"):
        vals = g.sort_values("run")["_v"].to_numpy(float)
        run_names = sorted(g["run"].astype(str))
        ti = t_interval(vals, a.confidence) if len(vals) >= 2 else None
        hours = [cost.get(r, math.nan) for r in run_names]
        known = [h for h in hours if not math.isnan(h)]
        out.append(ConfigStat(
            config=str(cfg), runs=run_names, epoch=epoch_key(ep), mean=float(vals.mean()),
            sd=float(np.std(vals, ddof=1)) if len(vals) >= 2 else math.nan,
            ci_low=ti.ci_low if ti else math.nan, ci_high=ti.ci_high if ti else math.nan,
            gpu_hours=float(np.mean(known)) if known else math.nan, values=list(vals)))
    sign = -1.0 if direction(a, task, scorer, metric) == "lower" else 1.0
    # more seeds first among equal means: a mean over 3 seeds is a better pick than one run
    out.sort(key=lambda c: (-sign * c.mean, -c.n, c.config, -1 if c.epoch is None else c.epoch))
    return out


def best_config(stats: list[ConfigStat]) -> ConfigStat | None:
    """The configuration with the best mean, preferring one with replicates over a single run
    that happens to score higher (a single run's value is one seed's draw)."""
    if not stats:
        return None
    with_reps = [c for c in stats if c.n >= 2]
    return with_reps[0] if with_reps else stats[0]


def describe(metric: str, c: ConfigStat, multi_epoch: bool = False, *, cost: str | None = None) -> str:
    """``lora_rank=32 (3 seeds: mean 65.8%, SD 8.0 pp)``."""
    where = f" at epoch {int(c.epoch)}" if multi_epoch and c.epoch is not None else ""
    if c.n >= 2:
        inner = (f"{c.n} seeds: mean {fmt_value(metric, c.mean)}, SD {fmt_diff(metric, c.sd).lstrip('+')}")
    else:
        inner = f"1 run: {fmt_value(metric, c.mean)}, no replicate"
    if cost:
        inner += f", {cost}"
    return f"{c.config}{where} ({inner})"


def welch_rows(a: Analysis, task: str, scorer: str, metric: str, c: ConfigStat) -> pd.DataFrame:
    """The seed-level Welch tests of configuration ``c`` against every other configuration."""
    sc = a.seed_comparisons
    if sc is None or sc.empty:
        return pd.DataFrame()
    g = sc[(sc["task"] == task) & (sc["scorer"] == scorer) & (sc["metric"] == metric) & (sc["a"] == c.config)]
    if c.epoch is not None:
        g = g[pd.to_numeric(g["epoch"], errors="coerce") == c.epoch]
    else:
        g = g[g["epoch"].isna()]
    return g


def not_separated(a: Analysis, task: str, scorer: str, metric: str, c: ConfigStat,
                  stats: list[ConfigStat]) -> list[str]:
    """Configurations the best one is not shown better than (Welch, Holm), or that have no
    seed-level test (a single run), in order of their mean."""
    rows = welch_rows(a, task, scorer, metric, c)
    sig = {str(r["b"]) for _, r in rows.iterrows() if bool(r["significant"])}
    out = []
    for s in stats:
        if s.config == c.config or s.epoch != c.epoch:
            continue
        if s.config not in sig:
            out.append(s.config)
    return list(dict.fromkeys(out))


def config_of(a: Analysis, run: Any) -> str | None:
    """The configuration label of a fine-tuned run (None for controls and unknown runs)."""
    c = a.configs
    if c is None or not len(c):
        return None
    v = c.get(str(run))
    return None if v is None else str(v)


def claim_row(rows: pd.DataFrame) -> dict[str, Any] | None:
    """The least significant Welch test of a set (the one a "better than all" claim rests on)."""
    if rows is None or rows.empty:
        return None
    return rows.sort_values("p_adjusted", ascending=False).iloc[0].to_dict()
