"""Which hyperparameters matter: main effects, ANOVA and diminishing returns.

Main effects average the metric over every run at one level of a variable (the marginal
mean). An ANOVA partitions variance among variables only when the sweep is a full,
balanced grid — otherwise the sums of squares depend on the order of terms and on which
cells are missing, so we say so and keep the marginal effects. Effect sizes are partial
η² = SS/(SS + SS_resid) and ω² = (SS − df·MS_resid)/(SS_total + MS_resid) (Olejnik &
Algina 2003), less biased than η² for the few runs of a sweep.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
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


def anova(values: pd.DataFrame, runs: pd.DataFrame, variables: list[str]) -> tuple[pd.DataFrame, str | None]:
    """Type-II ANOVA of run-level metric on the varied variables, per family.

    Interactions are included only with replicates (otherwise they are the residual).
    Returns (table, note); the note says why no ANOVA was run where it was not.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if values.empty:
        return pd.DataFrame(columns=ANOVA), None
    final = final_epoch_values(values).merge(runs, on="run", how="inner", suffixes=("", "_run"))
    for (task, scorer, metric), g in final.groupby(["task", "scorer", "metric"], sort=True):
        varied = [v for v in variables if v in g.columns and g[v].notna().all() and g[v].nunique() >= 2]
        if not varied:
            continue
        full, reps, why = grid_status(g, varied)
        if not full:
            notes.append(f"{task}/{scorer}: {why}; per-variable marginal effects are reported instead of an ANOVA")
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
        rows.extend(_anova_rows(task, scorer, metric, table, varied))
    return pd.DataFrame(rows, columns=ANOVA), ("; ".join(notes) if notes else None)


def _term_name(term: str, varied: list[str]) -> str:
    for i, v in enumerate(varied):
        term = term.replace(f"C(v{i})", v)
    return term.replace(":", " × ")


def _anova_rows(task: str, scorer: str, metric: str, table: pd.DataFrame, varied: list[str]) -> list[dict[str, Any]]:
    ss_res = float(table.loc["Residual", "sum_sq"])
    df_res = float(table.loc["Residual", "df"])
    ms_res = ss_res / df_res
    ss_tot = float(table["sum_sq"].sum())
    out = []
    for term, r in table.iterrows():
        ss, dfe = float(r["sum_sq"]), float(r["df"])
        is_res = term == "Residual"
        out.append({"task": task, "scorer": scorer, "metric": metric,
                    "term": "Residual" if is_res else _term_name(str(term), varied),
                    "sum_sq": ss, "df": dfe, "F": float(r["F"]) if not is_res else math.nan,
                    "p_value": float(r["PR(>F)"]) if not is_res else math.nan,
                    "partial_eta_sq": math.nan if is_res else ss / (ss + ss_res),
                    "omega_sq": math.nan if is_res else (ss - dfe * ms_res) / (ss_tot + ms_res)})
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
