"""Which hyperparameters matter: main effects, ANOVA and diminishing returns.

Main effects average the metric over every run at one level of a variable (the marginal
mean). An ANOVA partitions variance among variables only when the sweep is a full,
balanced grid — otherwise the sums of squares depend on the order of terms and on which
cells are missing, so we say so and keep the marginal effects. Without seed replicates
the eval samples are the replicates: a complete block ANOVA on per-sample scores with the
sample as block. Effect sizes are partial η² = SS/(SS + SS_resid) and partial ω² (Olejnik
& Algina 2003), less biased than η² for small samples.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from analyze_experiment.analysis import ANOVA, DIMINISHING, EFFECTS
from analyze_experiment.stats.candidates import Family, epoch_key
from analyze_experiment.stats.intervals import t_interval
from analyze_experiment.stats.multiplicity import holm
from analyze_experiment.stats.paired import compare


def final_epoch_values(values: pd.DataFrame) -> pd.DataFrame:
    """One row per run and family: the candidate at the run's last evaluated epoch."""
    if values.empty:
        return values
    v = values.copy()
    v["_ep"] = pd.to_numeric(v["epoch"], errors="coerce").fillna(-1.0)
    v = v.sort_values("_ep").groupby(["task", "scorer", "metric", "run"], sort=True).tail(1)
    return v.drop(columns="_ep").sort_values(["task", "scorer", "metric", "run"]).reset_index(drop=True)


def main_effects(
    values: pd.DataFrame,
    runs: pd.DataFrame,
    variables: list[str],
    confidence: float = 0.95,
    families: list[Family] | None = None,
    configs: pd.Series | None = None,
) -> pd.DataFrame:
    """Mean metric per level of each variable (the marginal mean over the level's runs).

    The interval depends on what varies: with seed replicates at the level, runs are the
    unit (t interval across runs); otherwise the other variables' levels are fixed design
    points, so the per-sample scores are averaged over the level's runs and the interval
    is the t interval over samples (a single run keeps its own interval). ``values`` holds
    one row per candidate (task, scorer, metric, run, epoch, value, n, ci_low, ci_high).
    When several epochs were evaluated, ``epoch`` is reported as a variable too.
    """
    rows: list[dict[str, Any]] = []
    if values.empty:
        return pd.DataFrame(columns=EFFECTS)
    fams = {(f.task, f.scorer, f.metric): f for f in families or []}
    cfg = configs if configs is not None else pd.Series(dtype=object)

    def scores(task: str, scorer: str, metric: str, lg: pd.DataFrame) -> pd.Series | None:
        fam = fams.get((task, scorer, metric))
        labels = [cfg.get(r) for r in lg["run"]]
        if fam is None or (len(set(labels)) < len(labels) and None not in labels):
            return None
        keys = [(str(r), epoch_key(e)) for r, e in zip(lg["run"], lg["epoch"], strict=True)]
        if not all(k in fam.scores for k in keys):
            return None
        return _level_scores(fam, keys)
    final = final_epoch_values(values).merge(runs, on="run", how="inner", suffixes=("", "_run"))
    for (task, scorer, metric), g in final.groupby(["task", "scorer", "metric"], sort=True):
        for var in variables:
            if var not in g.columns:
                continue
            sub = g[g[var].notna()]
            if sub[var].nunique() < 2:
                continue
            for level, lg in sorted(sub.groupby(var), key=lambda kv: _sort_key(kv[0])):
                rows.append(_effect_row(task, scorer, metric, var, level, lg, confidence,
                                        scores(task, scorer, metric, lg)))
    ep = values[pd.to_numeric(values["epoch"], errors="coerce").notna()]
    for (task, scorer, metric), g in ep.groupby(["task", "scorer", "metric"], sort=True):
        if g["epoch"].nunique() < 2:
            continue
        for level, lg in g.groupby("epoch", sort=True):
            rows.append(_effect_row(task, scorer, metric, "epoch", int(level), lg, confidence,
                                    scores(task, scorer, metric, lg)))
    return pd.DataFrame(rows, columns=EFFECTS)


def _sort_key(v: Any) -> tuple[int, Any]:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _effect_row(task: str, scorer: str, metric: str, var: str, level: Any, lg: pd.DataFrame,
                confidence: float, per_sample: pd.Series | None = None) -> dict[str, Any]:
    if len(lg) >= 2 and per_sample is not None and len(per_sample) > 1:
        iv = t_interval(per_sample.to_numpy(float), confidence)
        lo, hi, mean = iv.ci_low, iv.ci_high, float(lg["value"].mean())
    elif len(lg) >= 2:
        iv = t_interval(lg["value"].to_numpy(float), confidence)
        lo, hi, mean = iv.ci_low, iv.ci_high, iv.value
    else:
        mean, lo, hi = float(lg["value"].iloc[0]), float(lg["ci_low"].iloc[0]), float(lg["ci_high"].iloc[0])
    return {"task": task, "scorer": scorer, "metric": metric, "variable": var, "level": level,
            "mean": mean, "ci_low": lo, "ci_high": hi, "n_runs": len(lg),
            "n_samples": int(pd.to_numeric(lg["n"], errors="coerce").fillna(0).sum())}


def grid_status(df: pd.DataFrame, variables: list[str]) -> tuple[bool, bool, str]:
    """(full balanced grid?, replicates?, explanation) for the runs in ``df``."""
    levels = [sorted(df[v].unique(), key=_sort_key) for v in variables]
    counts = df.groupby(variables).size()
    n_cells = math.prod(len(lv) for lv in levels)
    missing = n_cells - len(counts)
    if missing:
        return (False, False, f"unbalanced sweep: {missing} of {n_cells} cells of the "
                f"{' × '.join(variables)} grid have no run")
    if counts.nunique() > 1:
        return (False, True, f"unbalanced sweep: cells hold {counts.min()} to {counts.max()} runs")
    return (True, bool(counts.iloc[0] > 1), f"full grid of {n_cells} cells × {counts.iloc[0]} run(s)")


def anova(values: pd.DataFrame, runs: pd.DataFrame, variables: list[str],
          families: list[Family] | None = None) -> tuple[pd.DataFrame, str | None]:
    """Type-II ANOVA of the metric on the varied variables, per family.

    Which ANOVA depends on what replicates the grid holds:

    - seed replicates (several runs per cell): run-level ANOVA with interactions; the run
      (seed) is the unit, so training noise is in the residual;
    - one run per cell and per-sample scores for every cell: a randomized complete block
      ANOVA on the per-sample scores, ``score ~ C(v1) * C(v2) … + C(sample_id)`` on the
      samples every cell shares — the eval samples are the replicates and each sample is a
      block. Four cell means with 1 residual df can only say "no detectable effect" of a
      20-point gap that the paired tests find at p < 1e-9; blocking on samples tests the
      same contrasts with (cells − 1)(n − 1) residual df. It says nothing about training
      seeds (there are none to vary), and the sentences say so;
    - otherwise (no per-sample scores): the additive run-level ANOVA, whose interaction is
      the residual.

    An unbalanced grid gets no ANOVA. Returns (table, note); the note says why no ANOVA
    was run where it was not. Extra columns: ``partial_omega_sq``, ``unit``
    (``samples`` | ``runs``), ``n_units``.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if values.empty:
        return pd.DataFrame(columns=[*ANOVA, *ANOVA_EXTRA]), None
    fams = {(f.task, f.scorer, f.metric): f for f in families or []}
    final = final_epoch_values(values).merge(runs, on="run", how="inner", suffixes=("", "_run"))
    for (task, scorer, metric), g in final.groupby(["task", "scorer", "metric"], sort=True):
        varied = [v for v in variables if v in g.columns and g[v].notna().all() and g[v].nunique() >= 2]
        if not varied:
            continue
        full, reps, why = grid_status(g, varied)
        if not full:
            notes.append(f"{task}/{scorer}: {why}; per-variable marginal effects are reported instead of an ANOVA")
            continue
        blocked = None if reps else blocked_frame(fams.get((task, scorer, metric)), g, varied)
        if blocked is not None and float(blocked.groupby("sample_id")["y"].transform("std").fillna(0).max()) == 0:
            notes.append(f"{task}/{scorer}: every cell scores each shared sample alike, so there is no "
                         "variation within samples to test against; no ANOVA")
            continue
        if blocked is not None:
            table = blocked_anova(blocked, len(varied))
            rows.extend(_anova_rows(task, scorer, metric, table, varied, "samples",
                                    int(blocked["sample_id"].nunique())))
            continue
        data = pd.DataFrame({f"v{i}": g[v].astype(str).to_numpy() for i, v in enumerate(varied)})
        data["y"] = g["value"].to_numpy(float)
        op = " * " if reps else " + "
        formula = "y ~ " + op.join(f"C(v{i})" for i in range(len(varied)))
        n_params = math.prod(data[f"v{i}"].nunique() for i in range(len(varied))) if reps else (
            1 + sum(data[f"v{i}"].nunique() - 1 for i in range(len(varied))))
        if len(data) - n_params < 1:
            notes.append(f"{task}/{scorer}: {why} without replicates leaves no residual degrees of "
                         "freedom; per-variable marginal effects are reported instead of an ANOVA")
            continue
        table = anova_lm(smf.ols(formula, data=data).fit(), typ=2)
        rows.extend(_anova_rows(task, scorer, metric, table, varied, "runs", len(data)))
    return pd.DataFrame(rows, columns=[*ANOVA, *ANOVA_EXTRA]), ("; ".join(notes) if notes else None)


ANOVA_EXTRA = ["partial_omega_sq", "unit", "n_units"]
"""Columns the ANOVA table adds to the ``ANOVA`` contract."""
BLOCK_TERM = "sample (block)"


def blocked_frame(fam: Family | None, g: pd.DataFrame, varied: list[str]) -> pd.DataFrame | None:
    """Per-sample scores of every cell on the samples all cells share (long format).

    Columns ``sample_id``, ``y`` and ``v0``, ``v1`` … (the cell's levels as text). None when
    a cell has no per-sample scores or fewer than 2 samples are shared: then there is no
    complete block design.
    """
    if fam is None:
        return None
    series = []
    for run, ep in zip(g["run"], g["epoch"], strict=True):
        s = fam.scores.get((str(run), epoch_key(ep)))
        if s is None:
            return None
        series.append(s)
    common = series[0].index
    for s in series[1:]:
        common = common.intersection(s.index)
    if len(common) < 2:
        return None
    common = common.sort_values()
    parts = []
    for (_, r), s in zip(g.iterrows(), series, strict=True):
        part = pd.DataFrame({"sample_id": common.astype(str), "y": s.loc[common].to_numpy(float)})
        for i, v in enumerate(varied):
            part[f"v{i}"] = str(r[v])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def blocked_anova(data: pd.DataFrame, n_factors: int) -> pd.DataFrame:
    """``y ~ C(v0) * C(v1) … + C(sample_id)`` (type II) for a complete block design.

    Every sample appears once in every cell, so the sample blocks are orthogonal to the
    factors: the factors' sums of squares are those of the model fitted to the scores
    centred within each sample, and the residual loses the n − 1 block degrees of freedom.
    This gives the direct ``ols`` + ``anova_lm`` table exactly (tests check it) without a
    design matrix with one column per sample. Rows as ``anova_lm``: the factor terms,
    ``C(sample_id)``, ``Residual``.
    """
    d = data.copy()
    block_mean = d.groupby("sample_id")["y"].transform("mean")
    grand = float(d["y"].mean())
    d["yc"] = d["y"] - block_mean
    formula = "yc ~ " + " * ".join(f"C(v{i})" for i in range(n_factors))
    fit = anova_lm(smf.ols(formula, data=d).fit(), typ=2)
    n_blocks = d["sample_id"].nunique()
    df_res = float(fit.loc["Residual", "df"]) - (n_blocks - 1)
    ss_res = float(fit.loc["Residual", "sum_sq"])
    ss_block = float(((block_mean - grand) ** 2).sum())
    table = fit.drop(index="Residual")[["sum_sq", "df"]].copy()
    table.loc["C(sample_id)"] = [ss_block, float(n_blocks - 1)]
    table.loc["Residual"] = [ss_res, df_res]
    ms_res = ss_res / df_res if df_res > 0 else math.nan
    table["F"] = (table["sum_sq"] / table["df"]) / ms_res
    table.loc["Residual", "F"] = math.nan
    table["PR(>F)"] = [stats.f.sf(f, dfe, df_res) if not math.isnan(f) else math.nan
                       for f, dfe in zip(table["F"], table["df"], strict=True)]
    return table


def _term_name(term: str, varied: list[str]) -> str:
    if term == "C(sample_id)":
        return BLOCK_TERM
    for i, v in enumerate(varied):
        term = term.replace(f"C(v{i})", v)
    return term.replace(":", " × ")


def _anova_rows(task: str, scorer: str, metric: str, table: pd.DataFrame, varied: list[str],
                unit: str, n_units: int) -> list[dict[str, Any]]:
    """Rows with effect sizes: partial η² = SS/(SS + SS_res); ω² = (SS − df·MS_res)/(SS_total
    + MS_res); partial ω² = (SS − df·MS_res)/(SS + (N − df)·MS_res) (Olejnik & Algina 2003),
    N the number of observations. None for the residual or the block."""
    ss_res = float(table.loc["Residual", "sum_sq"])
    df_res = float(table.loc["Residual", "df"])
    ms_res = ss_res / df_res
    ss_tot = float(table["sum_sq"].sum())
    n_obs = float(table["df"].sum()) + 1
    out = []
    for term, r in table.iterrows():
        ss, dfe = float(r["sum_sq"]), float(r["df"])
        name = "Residual" if term == "Residual" else _term_name(str(term), varied)
        effect = name not in ("Residual", BLOCK_TERM)
        out.append({"task": task, "scorer": scorer, "metric": metric, "term": name,
                    "sum_sq": ss, "df": dfe, "F": float(r["F"]) if effect else math.nan,
                    "p_value": float(r["PR(>F)"]) if effect else math.nan,
                    "partial_eta_sq": ss / (ss + ss_res) if effect else math.nan,
                    "omega_sq": (ss - dfe * ms_res) / (ss_tot + ms_res) if effect else math.nan,
                    "partial_omega_sq": ((ss - dfe * ms_res) / (ss + (n_obs - dfe) * ms_res)
                                         if effect else math.nan),
                    "unit": unit, "n_units": n_units})
    return out


def _level_scores(fam: Family, runs_at: list[tuple[str, float | None]]) -> pd.Series:
    frames = [fam.scores[k] for k in runs_at if k in fam.scores]
    if not frames:
        return pd.Series(dtype=float)
    return pd.concat(frames, axis=1, join="inner").mean(axis=1)


def diminishing_returns(
    families: list[Family],
    values: pd.DataFrame,
    runs: pd.DataFrame,
    variables: list[str],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Gain between consecutive levels of each numeric variable (and of epoch).

    Runs are matched on every other parameter (so only the variable changes); per-sample
    scores are averaged over the matched runs of each level and compared paired. Holm
    within the variable's steps says after which step the gain stops being significant.
    """
    rows: list[dict[str, Any]] = []
    alpha = 1 - confidence
    final = final_epoch_values(values)
    info = runs.set_index("run") if not runs.empty else pd.DataFrame()
    for fam in families:
        fv = final[(final["task"] == fam.task) & (final["scorer"] == fam.scorer) & (final["metric"] == fam.metric)]
        fv = fv[fv["run"].isin(info.index)]
        steps: list[dict[str, Any]] = []
        for var in variables:
            if var not in info.columns:
                continue
            others = [v for v in variables if v != var and v in info.columns]
            lv = pd.to_numeric(info.loc[fv["run"], var], errors="coerce")
            levels = sorted(set(lv.dropna()))
            if len(levels) < 2:
                continue
            for lo_l, hi_l in itertools.pairwise(levels):
                at = {lvl: [r for r, x in zip(fv["run"], lv, strict=True) if x == lvl] for lvl in (lo_l, hi_l)}
                key = {lvl: {r: tuple(info.loc[r, others].astype(str)) for r in at[lvl]} for lvl in at}
                common = set(key[lo_l].values()) & set(key[hi_l].values())
                pick = {lvl: [(r, epoch_key(fv.loc[fv["run"] == r, "epoch"].iloc[0]))
                              for r, k in key[lvl].items() if k in common] for lvl in at}
                steps.append(_step(fam, var, lo_l, hi_l, pick[lo_l], pick[hi_l], confidence, n_resamples, seed))
        epochs = sorted({k[1] for k in fam.scores if k[1] is not None})
        for e0, e1 in itertools.pairwise(epochs):
            both = sorted({k[0] for k in fam.scores if k[1] == e0} & {k[0] for k in fam.scores if k[1] == e1})
            if both:
                steps.append(_step(fam, "epoch", int(e0), int(e1), [(r, e0) for r in both],
                                   [(r, e1) for r in both], confidence, n_resamples, seed))
        steps = [s for s in steps if s is not None]
        for var in dict.fromkeys(s["variable"] for s in steps):
            group = [s for s in steps if s["variable"] == var]
            padj = holm(np.array([s["p_value"] for s in group], float))
            for s, pa in zip(group, padj, strict=True):
                s.update(p_adjusted=float(pa), significant=bool(not math.isnan(pa) and pa < alpha))
            rows.extend(group)
    return pd.DataFrame(rows, columns=[*DIMINISHING, "p_adjusted", "n_paired", "test", "n_runs"])


def _step(fam: Family, var: str, lo: Any, hi: Any, at_lo: list, at_hi: list, confidence: float,
          n_resamples: int, seed: int) -> dict[str, Any] | None:
    a, b = _level_scores(fam, at_hi), _level_scores(fam, at_lo)
    if a.empty or b.empty:
        return None
    single = len(at_lo) == 1 and len(at_hi) == 1
    res = compare(a, b, binary=fam.binary and single, confidence=confidence,
                  clusters=fam.clusters, n_resamples=n_resamples, seed=seed)
    if res.n_paired == 0:
        return None
    lo_v = int(lo) if float(lo).is_integer() else lo
    hi_v = int(hi) if float(hi).is_integer() else hi
    return {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "variable": var,
            "from_level": lo_v, "to_level": hi_v, "gain": res.diff, "ci_low": res.ci_low,
            "ci_high": res.ci_high, "p_value": res.p_value, "n_paired": res.n_paired, "test": res.test,
            "n_runs": len(at_lo) + len(at_hi)}
