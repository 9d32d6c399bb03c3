"""Which hyperparameters matter: main effects, ANOVA and diminishing returns.

Main effects average the metric over every run at one level of a variable (the marginal
mean). An ANOVA partitions variance among variables only when the sweep is a full,
balanced grid — otherwise the sums of squares depend on the order of terms and on which
cells are missing, so we say so and keep the marginal effects.

"Does lora_rank matter?" is a question about *configurations*, so its unit is the training
run: only seed replicates (several runs per cell) can separate a configuration's effect from
training noise. With one run per cell the evaluation items are not replicates of anything
that was varied — one unlucky or broken run becomes "rank matters" — so no F-test is run:
the report says the effect is confounded with training noise and how many seeds would answer
it (:func:`seeds_needed`). The blocked per-sample ANOVA (:func:`blocked_anova`) remains as a
function for checkpoint-level questions, never as a configuration claim. Effects are
estimated on one epoch per run, the same for every run (:func:`grid_epoch_values`); a grid
whose runs were evaluated at different epochs is never analysed as one. Effect sizes are
partial η² = SS/(SS + SS_resid) and partial ω² (Olejnik & Algina 2003).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import ANOVA, DIMINISHING, EFFECTS
from analyze_experiment.stats.candidates import Family, epoch_key
from analyze_experiment.stats.distributions import t_ppf, t_sf
from analyze_experiment.stats.intervals import t_interval
from analyze_experiment.stats.paired import compare
from analyze_experiment.stats.power import two_sample_power


def final_epoch_values(values: pd.DataFrame) -> pd.DataFrame:
    """One row per run and family: the candidate at the run's last evaluated epoch."""
    if values.empty:
        return values
    v = values.copy()
    v["_ep"] = pd.to_numeric(v["epoch"], errors="coerce")
    v = v.sort_values("_ep", na_position="first").groupby(["task", "scorer", "metric", "run"], sort=True).tail(1)
    return v.drop(columns="_ep").sort_values(["task", "scorer", "metric", "run"]).reset_index(drop=True)


def grid_epoch_values(values: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per run and family, every run at the *same* epoch: the latest epoch at which
    every fine-tuned run of the family was evaluated (control models, with no epoch, stay).

    When no epoch is shared by all runs, the latest epoch is used with the runs evaluated at
    it and the others are left out (named in the returned notes): rank-16 runs at epoch 0
    beside rank-4 runs at epoch 1 would make rank and epoch one confounded variable.
    """
    notes: list[str] = []
    if values.empty:
        return values, notes
    v = values.copy()
    v["_ep"] = pd.to_numeric(v["epoch"], errors="coerce")
    parts = []
    for (task, scorer, _metric), g in v.groupby(["task", "scorer", "metric"], sort=True):
        ctrl = g[g["_ep"].isna()]
        ft = g[g["_ep"].notna()]
        if ft.empty:
            parts.append(ctrl)
            continue
        runs = set(ft["run"])
        eps = sorted(ft["_ep"].unique())
        shared = [e for e in eps if set(ft.loc[ft["_ep"] == e, "run"]) == runs]
        if shared:
            e = shared[-1]
        else:
            e = max(eps, key=lambda x: (ft.loc[ft["_ep"] == x, "run"].nunique(), x))
            left = sorted(runs - set(ft.loc[ft["_ep"] == e, "run"]))
            notes.append(f"{task}/{scorer}: the runs were evaluated at different epochs; effects use epoch "
                         f"{int(e)} and leave out {', '.join(left)} (not evaluated there), so epoch is not "
                         "confounded with the swept variables")
        parts.append(pd.concat([ctrl, ft[ft["_ep"] == e]]))
    out = pd.concat(parts, ignore_index=True).drop(columns="_ep")
    return out.sort_values(["task", "scorer", "metric", "run"]).reset_index(drop=True), notes


def seeds_needed(diff: float, sd_run: float, configs_per_level: int, alpha: float = 0.05,
                 power: float = 0.8) -> float:
    """Seeds per configuration for a two-sample t test between two levels to detect ``diff``
    with ``power`` at ``alpha``, when a run's score varies with SD ``sd_run`` between seeds.

    n runs per level (statsmodels ``TTestIndPower``'s power, :func:`two_sample_power`), divided
    over the ``configs_per_level`` configurations sharing the level; at least 2; NaN beyond a
    million runs. Without replicates the run-to-run SD is unknown: the caller passes a lower
    bound (the evaluation's own SE of one run's score, which every retraining adds to), so this
    is a lower bound too.

    The answer is a whole number of seeds, so it is searched among whole numbers: the fewest
    seeds k whose k·configs runs per level reach ``power`` (power grows with n). That is
    ⌈n*/configs⌉ for the real root n* that ``TTestIndPower().solve_power`` approximates, without
    its solver's tolerance and without importing statsmodels and scipy.stats for it; a test
    compares the two over a grid of effects.
    """
    if not sd_run or math.isnan(sd_run) or not diff or math.isnan(diff):
        return math.nan
    es = abs(diff) / sd_run
    if two_sample_power(es, 2, alpha, normal_limit=True) >= power:
        return 2.0
    per = max(1, configs_per_level)

    def short(n: float) -> bool:  # NaN (no degrees of freedom) counts as short
        return not two_sample_power(es, n, alpha, normal_limit=True) >= power

    lo, hi = 0, 1  # short(lo · per) holds (no seeds), hi is the candidate
    while short(hi * per):
        if hi * per > MAX_RUNS:
            return math.nan
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if short(mid * per) else (lo, mid)
    if hi * per > MAX_RUNS and short(MAX_RUNS):  # the root itself lies beyond the cap
        return math.nan
    return float(max(2, hi))


MAX_RUNS = 1e6
"""Above this many runs per level :func:`seeds_needed` answers NaN rather than a number."""


def main_effects(
    values: pd.DataFrame,
    runs: pd.DataFrame,
    variables: list[str],
    confidence: float = 0.95,
    families: list[Family] | None = None,
    configs: pd.Series | None = None,
    grid: tuple[pd.DataFrame, list[str]] | None = None,
) -> pd.DataFrame:
    """Mean metric per level of each variable (the marginal mean over the level's runs).

    The interval depends on what varies: with seed replicates at the level, runs are the
    unit (t interval across runs); otherwise the other variables' levels are fixed design
    points, so the per-sample scores are averaged over the level's runs and the interval
    is the t interval over samples (a single run keeps its own interval). ``values`` holds
    one row per candidate (task, scorer, metric, run, epoch, value, n, ci_low, ci_high).
    When several epochs were evaluated, ``epoch`` is reported as a variable too.
    ``grid``: :func:`grid_epoch_values` of ``values`` when the caller has it (computed otherwise).
    """
    rows: list[dict[str, Any]] = []
    if values.empty:
        return pd.DataFrame(columns=EFFECTS)
    fams = {(f.task, f.scorer, f.metric): f for f in families or []}
    cfg = configs if configs is not None else pd.Series(dtype=object)
    # run -> label as a dict (Series.get per run of every level was most of this function's
    # time at 100 runs); the Series itself where a dict could answer differently
    cfg_of = cfg.to_dict() if cfg.index.is_unique and bool(cfg.notna().all()) else None

    def scores(task: str, scorer: str, metric: str, lg: pd.DataFrame) -> pd.Series | None:
        fam = fams.get((task, scorer, metric))
        labels = [cfg_of.get(r) if cfg_of is not None else cfg.get(r) for r in lg["run"]]
        if fam is None or (len(set(labels)) < len(labels) and None not in labels):
            return None
        keys = [(str(r), epoch_key(e)) for r, e in zip(lg["run"], lg["epoch"], strict=True)]
        if not all(k in fam.scores for k in keys):
            return None
        return _level_scores(fam, keys)
    final = (grid or grid_epoch_values(values))[0].merge(runs, on="run", how="inner", suffixes=("", "_run"))
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
          families: list[Family] | None = None,
          grid_values: tuple[pd.DataFrame, list[str]] | None = None) -> tuple[pd.DataFrame, str | None]:
    """Type-II ANOVA of the metric on the varied variables, per family.

    Which ANOVA depends on what replicates the grid holds:

    - seed replicates (several runs per cell): run-level ANOVA with interactions; the run
      (seed) is the unit, so training noise is in the residual;
    - one run per cell: no ANOVA. The evaluation items would be the only replicates, and
      they replicate the *checkpoints*, not the configurations: training noise (or one
      broken run) would read as "the variable matters". The note says so; the findings give
      the seed count that would answer the question;
    - one variable with two levels: no ANOVA either — the seed-level Welch test between
      the two configurations is the one test of that contrast.

    Every run enters at the same epoch (:func:`grid_epoch_values`). An unbalanced grid gets
    no ANOVA. Returns (table, note); the note says why no ANOVA was run where it was not. Extra columns: ``partial_omega_sq``, ``unit``
    (``samples`` | ``runs``), ``n_units``. ``grid_values``: :func:`grid_epoch_values` of
    ``values`` when the caller has it.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if values.empty:
        return pd.DataFrame(columns=[*ANOVA, *ANOVA_EXTRA]), None
    grid, epoch_notes = grid_values or grid_epoch_values(values)
    notes.extend(epoch_notes)
    final = grid.merge(runs, on="run", how="inner", suffixes=("", "_run"))
    for (task, scorer, metric), g in final.groupby(["task", "scorer", "metric"], sort=True):
        varied = [v for v in variables if v in g.columns and g[v].notna().all() and g[v].nunique() >= 2]
        if not varied:
            continue
        full, reps, why = grid_status(g, varied)
        if not full:
            notes.append(f"{task}/{scorer}: {why}; per-variable marginal effects are reported instead of an ANOVA")
            continue
        if not reps:
            notes.append(f"{task}/{scorer}: each configuration was trained once ({why}), so a configuration's "
                         "effect cannot be told from training noise; no ANOVA (the paired tests compare the "
                         "checkpoints themselves)")
            continue
        if len(varied) == 1 and g[varied[0]].nunique() == 2:
            continue  # one two-level contrast: the seed-level Welch test of the two configurations is its test
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
        table = _ols_anova(formula, data)
        rows.extend(_anova_rows(task, scorer, metric, table, varied, "runs", len(data)))
    return pd.DataFrame(rows, columns=[*ANOVA, *ANOVA_EXTRA]), ("; ".join(notes) if notes else None)


def _ols_anova(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """The type II ANOVA table of the OLS fit of ``formula``.

    statsmodels is imported here rather than with the module: its formula interface takes a
    quarter of a second to import, and most reports fit no model (a grid without seed
    replicates gets no ANOVA), while every report imports this module for its effects."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    return anova_lm(smf.ols(formula, data=data).fit(), typ=2)


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
    fit = _ols_anova(formula, d)
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
    from scipy import stats

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
    """The per-sample mean over the level's candidates (on the samples all of them have)."""
    frames = [fam.scores[k] for k in runs_at if k in fam.scores]
    if not frames:
        return pd.Series(dtype=float)
    first = frames[0].index
    if (len(frames) > 1 and first.is_unique and all(f.index.equals(first) for f in frames[1:])
            and all(f.dtype == np.float64 for f in frames)):
        # every candidate scored on the same samples (the usual sweep): the column-wise sum pandas'
        # mean(axis=1) of the concatenated frame computes, in its order (first + second + …) and
        # divided by the count — without aligning a 1,000-sample index per candidate (0.2 s of
        # CPU at 100 runs). NaN scores (pandas skips them per row) take the general path.
        values = [f.to_numpy() for f in frames]
        if not any(np.isnan(v).any() for v in values):
            total = values[0].copy()
            for v in values[1:]:
                total = np.add(total, v)
            return pd.Series(total / len(values), index=first)
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
    grid: tuple[pd.DataFrame, list[str]] | None = None,
) -> pd.DataFrame:
    """Gain between consecutive levels of each numeric variable (and of epoch).

    Runs are matched on every other parameter (so only the variable changes), every run at
    the grid's one epoch. The unit of each step decides whether it is a test:

    - one run on each side: a contrast between two checkpoints — the paired per-sample test
      of the ``checkpoints`` family (the same test, looked up by the plan; ``a``/``b`` name
      the candidates), never a second verdict;
    - epoch steps over ≥ 3 runs evaluated at both epochs: a run-level paired t test of the
      per-run gains (``paired_t_runs``, ``effects`` family): the epoch effect generalised
      over runs, never from one run;
    - otherwise (averages over several runs of a configuration contrast, without seeds):
      descriptive — the gain and its item-level interval, no p-value.

    ``grid``: :func:`grid_epoch_values` of ``values`` when the caller has it.
    """
    rows: list[dict[str, Any]] = []
    final = (grid or grid_epoch_values(values))[0]
    info = runs.set_index("run") if not runs.empty else pd.DataFrame()
    for fam in families:
        fv = final[(final["task"] == fam.task) & (final["scorer"] == fam.scorer) & (final["metric"] == fam.metric)]
        fv = fv[fv["run"].isin(info.index)]
        steps: list[dict[str, Any] | None] = []
        # each run's first row and its other parameters, looked up once: filtering the table
        # (and the runs table) again for every run of every step made this O(runs^2)
        first = {}
        for pos, r in enumerate(fv["run"]):
            first.setdefault(r, pos)
        fv_epochs = fv["epoch"].tolist()
        for var in variables:
            if var not in info.columns:
                continue
            others = [v for v in variables if v != var and v in info.columns]
            lv = pd.to_numeric(info.loc[fv["run"], var], errors="coerce")
            levels = sorted(set(lv.dropna()))
            if len(levels) < 2:
                continue
            # the other parameters as text, column by column (only equality of the tuples matters)
            as_text = [info[o].astype(str).tolist() for o in others]
            other_values = dict(zip(info.index, zip(*as_text, strict=True), strict=True)) if others else {}

            def others_of(r: Any, memo: dict[Any, tuple[str, ...]] = other_values) -> tuple[str, ...]:
                return memo.get(r, ())

            run_level = list(zip(fv["run"].tolist(), lv.tolist(), strict=True))  # read once, not per step
            for lo_l, hi_l in itertools.pairwise(levels):
                at = {lvl: [r for r, x in run_level if x == lvl] for lvl in (lo_l, hi_l)}
                key = {lvl: {r: others_of(r) for r in at[lvl]} for lvl in at}
                common = set(key[lo_l].values()) & set(key[hi_l].values())
                pick = {lvl: [(r, epoch_key(fv_epochs[first[r]]))
                              for r, k in key[lvl].items() if k in common] for lvl in at}
                steps.append(_step(fam, var, lo_l, hi_l, pick[lo_l], pick[hi_l], confidence, n_resamples, seed))
        epochs = sorted({k[1] for k in fam.scores if k[1] is not None})
        for e0, e1 in itertools.pairwise(epochs):
            both = sorted({k[0] for k in fam.scores if k[1] == e0} & {k[0] for k in fam.scores if k[1] == e1})
            if both:
                steps.append(_step(fam, "epoch", int(e0), int(e1), [(r, e0) for r in both],
                                   [(r, e1) for r in both], confidence, n_resamples, seed))
        rows.extend(s for s in steps if s is not None)
    return pd.DataFrame(rows, columns=[*DIMINISHING, "p_adjusted", "n_paired", "test", "n_runs",
                                       "a", "epoch_a", "b", "epoch_b", "unit"])


def one_sample_t(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The t interval of the mean of ``x`` and the two-sided p of mean = 0: (low, high, p).

    The floats ``scipy.stats.ttest_1samp(x, 0)`` and its ``confidence_interval`` give,
    computed as scipy does (variance as the mean squared deviation times n/(n − 1), the
    quantile and tail from ``stdtrit``/``stdtr``) — without importing scipy.stats for one test.
    """
    x = np.asarray(x, dtype=float)
    n = np.asarray(len(x), dtype=float)
    mean = np.mean(x)
    var = np.mean((x - mean) ** 2) * (n / (n - 1))
    se = np.sqrt(var / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(mean, se)
    dof = len(x) - 1
    p = 2 * t_sf(np.abs(t), dof)
    tail = (1 - np.asarray(confidence, dtype=float)) / 2
    lo_q, hi_q = t_ppf(np.stack((tail, 1 - tail)), dof)
    return float(lo_q * se + mean), float(hi_q * se + mean), float(p)


MIN_RUNS_FOR_EPOCH_TEST = 3
"""An epoch effect is tested across runs only with at least this many runs at both epochs."""


def _step(fam: Family, var: str, lo: Any, hi: Any, at_lo: list, at_hi: list, confidence: float,
          n_resamples: int, seed: int) -> dict[str, Any] | None:
    a, b = _level_scores(fam, at_hi), _level_scores(fam, at_lo)
    if a.empty or b.empty:
        return None
    single = len(at_lo) == 1 and len(at_hi) == 1
    # only a step between two single checkpoints reports a p-value (below): the others need the
    # gain and its interval, not a permutation test whose p would be thrown away
    res = compare(a, b, binary=fam.binary and single, confidence=confidence,
                  clusters=fam.clusters, n_resamples=n_resamples, seed=seed, describe_only=not single)
    if res.n_paired == 0:
        return None
    lo_v = int(lo) if float(lo).is_integer() else lo
    hi_v = int(hi) if float(hi).is_integer() else hi
    row = {"task": fam.task, "scorer": fam.scorer, "metric": fam.metric, "variable": var,
           "from_level": lo_v, "to_level": hi_v, "gain": res.diff, "ci_low": res.ci_low,
           "ci_high": res.ci_high, "p_value": math.nan, "p_adjusted": math.nan, "significant": False,
           "n_paired": res.n_paired, "test": "descriptive", "n_runs": len(at_lo) + len(at_hi),
           "a": None, "epoch_a": math.nan, "b": None, "epoch_b": math.nan,
           "unit": "configurations without seeds: descriptive"}
    if single:
        (ra, ea), (rb, eb) = at_hi[0], at_lo[0]
        row.update(p_value=res.p_value, test=res.test, a=ra, epoch_a=math.nan if ea is None else ea,
                   b=rb, epoch_b=math.nan if eb is None else eb, unit="checkpoints")
    elif var == "epoch" and len(at_lo) >= MIN_RUNS_FOR_EPOCH_TEST:
        gains = np.array([float(fam.scores[h].mean() - fam.scores[lo_k].mean())
                          for h, lo_k in zip(at_hi, at_lo, strict=True)])
        if np.std(gains, ddof=1) > 0:
            ci_low, ci_high, p = one_sample_t(gains, confidence)
            row.update(gain=float(gains.mean()), ci_low=ci_low, ci_high=ci_high,
                       p_value=p, test="paired_t_runs", unit="runs")
    return row
