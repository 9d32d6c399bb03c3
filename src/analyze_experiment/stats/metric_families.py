"""Families as each scorer defines its metrics: direction, primary metric, per-sample values.

:func:`~analyze_experiment.stats.candidates.build_families` gives one family per task × scorer
holding the raw per-sample values (C = 1, I = 0, numbers as they are). That is right for a C/I
scorer and wrong for the scorers whose metrics are not the mean of those values:

* a **continuous** scorer (``metadata.prediction``, ``target_value``, ``error``; value
  ``|error|``, ``"I"`` = 0 for an answer without a number) — the raw mean counts every
  unparsable answer as zero error, so a run rewarded for failing to answer. Here it becomes two
  families: ``mae`` (per-sample ``|error|`` over the *parsed* samples only; lower is better;
  paired permutation test on absolute error) and ``parse_rate`` (per sample 1 parsed, 0 not;
  higher is better; exact McNemar between runs);
* a **risk** scorer (``metadata.risk_score``, ``option_probs``, ``target``) — its C/I values are
  a thresholded accuracy; ``brier_score`` (per-sample ``(risk − y)²`` over readable outputs,
  positive label = the last key of ``option_probs``; lower is better; paired permutation test)
  is added and is the scorer's primary metric;
* any other scorer keeps its family under inspect's own metric name when the log header has a
  metric equal to the mean of the per-sample values (a judge's ``accuracy`` of C/P/I scores is
  not relabelled ``mean``).

Every family gets its direction from :mod:`analyze_experiment.metrics`, and the metrics table
(:data:`analyze_experiment.metrics.METRICS`) lists every family and header metric with its
direction, whether it is the scorer's primary metric and where the direction came from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment import metrics as reg
from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.stats.candidates import CandKey, Family, epoch_key
from analyze_experiment.stats.intervals import wilson
from analyze_experiment.stats.risk import risk_samples, risk_scorers
from analyze_experiment.tables import at_epoch, by_epoch

PRED, TRUTH, ERROR = "score_meta.prediction", "score_meta.target_value", "score_meta.error"
NOT_METRICS = {"stderr", "std", "var", "count"}
PARSE_WARN = 0.05
"""A run whose share of unparsable answers exceeds this is named in a warning."""
REL_TOL = 1e-6
"""Relative tolerance between a recomputed metric and the log header's."""

CONTINUOUS = [
    "task", "scorer", "run", "epoch", "n", "n_parsed", "n_unparsed", "parse_rate", "parse_ci_low",
    "parse_ci_high", "mae", "rmse", "r_squared", "header_mae", "header_rmse", "header_r_squared",
    "header_parse_rate", "header_agrees", "log",
]
"""Columns of the per-candidate continuous-scorer table (``Analysis.continuous``)."""


def _sub(df: pd.DataFrame, task: str, scorer: str) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame()
    return df[(df["task"].astype(str) == task) & (df["scorer"].astype(str) == scorer)]


def continuous_scorers(samples: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, scorer) pairs whose score metadata has a continuous scorer's ``prediction`` or
    ``error`` (on any sample: an unparsable answer has neither)."""
    if samples is None or samples.empty:
        return []
    cols = [c for c in (PRED, ERROR) if c in samples.columns]
    if not cols:
        return []
    has = samples[samples[cols].notna().any(axis=1)]
    return sorted({(str(t), str(s)) for t, s in zip(has["task"], has["scorer"], strict=True)})


def _reduce(df: pd.DataFrame, cols: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """One row per run × epoch × sample id (sample epochs averaged; epoch NaN kept)."""
    d = df.copy()
    d["epoch"] = pd.to_numeric(d["epoch"], errors="coerce").astype(float)
    d["sample_id"] = d["sample_id"].astype(str)
    return by_epoch(d, ["run", "epoch", "sample_id"]).agg(**cols).reset_index()


def continuous_samples(samples: pd.DataFrame, task: str, scorer: str) -> pd.DataFrame:
    """Per candidate × sample: ``parsed`` (share of sample epochs with a number), ``abs_error``,
    ``sq_error``, ``prediction``, ``target_value`` (means over the parsed sample epochs)."""
    g = _sub(samples, task, scorer).copy()
    pred = pd.to_numeric(g[PRED], errors="coerce") if PRED in g.columns else pd.Series(np.nan, index=g.index)
    truth = pd.to_numeric(g[TRUTH], errors="coerce") if TRUTH in g.columns else pd.Series(np.nan, index=g.index)
    err = pd.to_numeric(g[ERROR], errors="coerce") if ERROR in g.columns else pd.Series(np.nan, index=g.index)
    err = err.where(err.notna(), pred - truth)
    g["parsed"] = (pred.notna() & err.notna()).astype(float)
    ok = g["parsed"] > 0
    g["abs_error"] = err.abs().where(ok)
    g["sq_error"] = (err ** 2).where(ok)
    g["prediction"] = pred.where(ok)
    g["target_value"] = truth.where(ok)
    return _reduce(g, {"parsed": ("parsed", "mean"), "abs_error": ("abs_error", "mean"),
                       "sq_error": ("sq_error", "mean"), "prediction": ("prediction", "mean"),
                       "target_value": ("target_value", "mean"), "log": ("log", "first")})


def _series(df: pd.DataFrame, col: str) -> dict[CandKey, pd.Series]:
    out: dict[CandKey, pd.Series] = {}
    for (run, ep), g in by_epoch(df, ["run", "epoch"]):
        s = g.set_index("sample_id")[col].astype(float).dropna()
        if len(s):
            out[(str(run), epoch_key(ep))] = s
    return out


def _header(scores: pd.DataFrame, task: str, scorer: str) -> pd.DataFrame:
    h = _sub(scores, task, scorer)
    if h.empty:
        return h
    h = h.copy()
    h["value"] = pd.to_numeric(h["value"], errors="coerce")
    return h


def _header_value(h: pd.DataFrame, key: CandKey, metric: str) -> float:
    if h.empty:
        return math.nan
    g = h[(h["run"].astype(str) == key[0]) & at_epoch(h["epoch"], key[1]) & (h["metric"].astype(str) == metric)]
    return float(g["value"].iloc[-1]) if len(g) and pd.notna(g["value"].iloc[-1]) else math.nan


def _from_log(fam: Family, h: pd.DataFrame, metric: str) -> None:
    """Header-only candidates (no per-sample rows) of ``metric``."""
    if h.empty:
        return
    for (run, ep), g in by_epoch(h[h["metric"].astype(str) == metric], ["run", "epoch"]):
        key: CandKey = (str(run), epoch_key(ep))
        if key in fam.scores or pd.isna(g["value"].iloc[-1]):
            continue
        fam.from_log[key] = {"metric": metric, "value": float(g["value"].iloc[-1]),
                             "stderr": pd.to_numeric(g["stderr"].iloc[-1], errors="coerce"),
                             "n": pd.to_numeric(g["n"].iloc[-1], errors="coerce")}


def _header_name(fam: Family, h: pd.DataFrame) -> str | None:
    """The header metric whose value is the mean of the per-sample values on every candidate
    that has both (inspect's own name for the family), or None."""
    if h.empty or not fam.scores:
        return None
    for metric in dict.fromkeys(h["metric"].astype(str)):
        if metric in NOT_METRICS:
            continue
        checked = 0
        for key, s in fam.scores.items():
            v = _header_value(h, key, metric)
            if math.isnan(v):
                continue
            if not math.isclose(v, float(s.mean()), rel_tol=REL_TOL, abs_tol=1e-9):
                checked = -1
                break
            checked += 1
        if checked > 0:
            return metric
    return None


def _family(base: Family, metric: str, binary: bool, scores: dict[CandKey, pd.Series]) -> Family:
    return Family(base.task, base.scorer, metric, binary, scores=scores, clusters=base.clusters)


def derive_families(experiment: Experiment, options: Options,
                    families: list[Family]) -> tuple[list[Family], pd.DataFrame]:
    """The families as their scorers define them, with directions set, and the metrics table.

    See the module docstring. Returns the families sorted by task, scorer, primary metric first,
    and the METRICS table (one row per family and per header metric without a family).
    """
    samples, scores = experiment.eval_samples, experiment.eval_scores
    cont = set(continuous_scorers(samples))
    risk = set(risk_scorers(samples))
    rs = risk_samples(samples) if risk else pd.DataFrame()
    design_dirs = dict(getattr(experiment.design, "metrics", {}) or {})
    out: list[Family] = []
    rows: list[dict[str, Any]] = []
    for fam in families:
        key = (fam.task, fam.scorer)
        h = _header(scores, *key)
        header_metrics = list(dict.fromkeys(h["metric"].astype(str))) if not h.empty else []
        if key in cont or {"mae", "parse_rate"} <= set(header_metrics):
            kind, derived = "continuous", _continuous_families(fam, samples if key in cont else None, h)
        elif key in risk:
            kind, derived = "risk", _risk_families(fam, rs, h)
        else:
            kind, derived = ("binary" if fam.binary else "numeric"), [_named_from_header(fam, h)]
        names = [d.metric for d in derived]
        names_all = names + [m for m in header_metrics if m not in names and m not in NOT_METRICS]
        primary = _primary(experiment, options, fam, kind, names, names_all)
        fam_rows = _metric_rows(experiment, options, design_dirs, fam, kind, names, names_all, primary)
        rows += fam_rows
        direction = {r["metric"]: r["direction"] for r in fam_rows}
        for d in derived:
            d.direction = direction[d.metric]
        derived.sort(key=lambda d: (d.metric != primary, names.index(d.metric)))
        out.extend(derived)
    table = reg.metrics_table(rows)
    table["family"] = [bool(r.get("family")) for r in rows]
    _warn_unmatched(experiment, options, design_dirs, table)
    return out, table


def _continuous_families(fam: Family, samples: pd.DataFrame | None, h: pd.DataFrame) -> list[Family]:
    """MAE over the parsed answers and the parse rate, per sample when the samples carry the
    scorer's metadata, else from the log headers."""
    cs = continuous_samples(samples, fam.task, fam.scorer) if samples is not None else pd.DataFrame()
    if not cs.empty:
        mae = _family(fam, "mae", False, _series(cs, "abs_error"))
        parse = _family(fam, "parse_rate", False, _series(cs, "parsed"))
        parse.binary = all(bool(np.isin(s.to_numpy(), (0.0, 1.0)).all()) for s in parse.scores.values())
        derived = [mae, parse]
    else:
        derived = [_family(fam, "mae", False, {}), _family(fam, "parse_rate", False, {})]
    for d in derived:
        _from_log(d, h, d.metric)
    return [d for d in derived if d.candidates()]


def _risk_families(fam: Family, rs: pd.DataFrame, h: pd.DataFrame) -> list[Family]:
    """The scorer's own family plus the Brier score (squared error of the parsed risks)."""
    g = rs[(rs["task"] == fam.task) & (rs["scorer"] == fam.scorer) & rs["parsed"]].copy()
    g["sq_error"] = (g["risk"] - g["y"]) ** 2
    brier = _family(fam, "brier_score", False, _series(g, "sq_error"))
    _from_log(brier, h, "brier_score")
    return [fam] + ([brier] if brier.candidates() else [])


def _named_from_header(fam: Family, h: pd.DataFrame) -> Family:
    """A numeric scorer's ``mean`` takes the metric name its log header gives it."""
    if not fam.binary and fam.metric == "mean":
        name = _header_name(fam, h)
        if name is not None:
            fam.metric = name
    return fam


def _primary(experiment: Experiment, options: Options, fam: Family, kind: str, names: list[str],
             names_all: list[str]) -> str:
    """``--primary-metric`` for the scorer when it names one of its metrics, else the kind's default."""
    primary = options.primary_metrics.get(fam.scorer) or reg.default_primary(kind, names)
    if primary not in names_all:
        experiment.diagnostics.warn(None, f"--primary-metric {fam.scorer}={primary}: {fam.task}/{fam.scorer} "
                                    f"has no metric {primary} (it has {', '.join(names_all)}); "
                                    f"{reg.default_primary(kind, names)} is used", stage="stats")
        primary = reg.default_primary(kind, names)
    return primary


def _metric_rows(experiment: Experiment, options: Options, design_dirs: dict[str, str], fam: Family, kind: str,
                 names: list[str], names_all: list[str], primary: str) -> list[dict[str, Any]]:
    """One METRICS row per metric of the scorer, with its direction and where that came from."""
    rows = []
    for m in names_all:
        binary = kind == "binary" or (fam.binary and m == fam.metric)
        direction, source, note = reg.resolve_direction(fam.scorer, m, binary=binary,
                                                        cli=options.metric_directions, design=design_dirs)
        rows.append({"task": fam.task, "scorer": fam.scorer, "metric": m, "direction": direction,
                     "primary": m == primary, "direction_source": source, "kind": kind, "note": note,
                     "family": m in names})
        if note and m in names and direction == reg.DESCRIPTIVE:
            experiment.diagnostics.warn(None, note, stage="stats")
    return rows


def _warn_unmatched(experiment: Experiment, options: Options, design_dirs: dict[str, str],
                    table: pd.DataFrame) -> None:
    """A declared direction or primary metric that names nothing evaluated is a typo the user
    must hear about: a warning (the analysis goes on without it)."""
    if table.empty:
        return
    scorers = set(table["scorer"].astype(str))
    names = scorers | set(table["metric"].astype(str)) | {f"{s}/{m}" for s, m in
                                                          zip(table["scorer"], table["metric"], strict=True)}
    lower = {n.lower() for n in names}
    for what, declared in (("--metric-direction", options.metric_directions),
                           ("the design's evaluation.metrics", design_dirs)):
        for name in declared:
            if str(name).lower() not in lower:
                experiment.diagnostics.warn(None, f"{what}: {name} names no metric or scorer of the evaluations "
                                            f"(metrics: {', '.join(sorted(set(table['metric'].astype(str))))}); "
                                            "ignored", stage="stats")
    for scorer in options.primary_metrics:
        if scorer not in scorers:
            experiment.diagnostics.warn(None, f"--primary-metric {scorer}={options.primary_metrics[scorer]}: no "
                                        f"scorer {scorer} was evaluated (scorers: {', '.join(sorted(scorers))}); "
                                        "ignored", stage="stats")


def continuous_table(experiment: Experiment, confidence: float = 0.95) -> pd.DataFrame:
    """Per candidate of each continuous scorer: parse rate (Wilson CI), MAE, RMSE, R² recomputed
    from the samples, the header's values beside them and whether they agree."""
    samples, scores = experiment.eval_samples, experiment.eval_scores
    rows = []
    for task, scorer in continuous_scorers(samples):
        cs = continuous_samples(samples, task, scorer)
        h = _header(scores, task, scorer)
        for (run, ep), g in by_epoch(cs, ["run", "epoch"]):
            key: CandKey = (str(run), epoch_key(ep))
            n = len(g)
            parsed = g[g["parsed"] > 0]
            k = float(g["parsed"].sum())
            lo, hi = wilson(k, n, confidence)
            mae = float(parsed["abs_error"].mean()) if len(parsed) else math.nan
            rmse = math.sqrt(float(parsed["sq_error"].mean())) if len(parsed) else math.nan
            r2 = math.nan
            if len(parsed) > 1:
                t = parsed["target_value"].to_numpy(float)
                ss_tot = float(((t - t.mean()) ** 2).sum())
                r2 = 1.0 - float(parsed["sq_error"].sum()) / ss_tot if ss_tot > 0 else math.nan
            row = {"task": task, "scorer": scorer, "run": key[0], "epoch": key[1], "n": n,
                   "n_parsed": round(k), "n_unparsed": n - round(k), "parse_rate": k / n if n else math.nan,
                   "parse_ci_low": lo, "parse_ci_high": hi, "mae": mae, "rmse": rmse, "r_squared": r2,
                   "log": str(g["log"].iloc[0]) if "log" in g.columns else None}
            agrees = True
            for m in ("mae", "rmse", "r_squared", "parse_rate"):
                hv = _header_value(h, key, m)
                row[f"header_{m}"] = hv
                mine = row[m]
                if not (math.isnan(hv) or math.isnan(mine)) and not math.isclose(hv, mine, rel_tol=1e-4, abs_tol=1e-9):
                    agrees = False
            row["header_agrees"] = agrees
            rows.append(row)
    return pd.DataFrame(rows, columns=CONTINUOUS)


def warn_continuous(experiment: Experiment, table: pd.DataFrame) -> None:
    """A warning per candidate whose parse-failure share exceeds :data:`PARSE_WARN`, and per
    candidate whose header metrics disagree with the samples (naming the log)."""
    for _, r in table.iterrows():
        file = experiment.root / str(r["log"]) if r.get("log") else None
        who = r["run"] if pd.isna(r["epoch"]) or r["epoch"] is None else f"{r['run']} (epoch {int(r['epoch'])})"
        if r["n"] and r["n_unparsed"] / r["n"] > PARSE_WARN:
            experiment.diagnostics.warn(file, (
                f"{who}: {int(r['n_unparsed'])} of {int(r['n'])} answers to {r['task']}/{r['scorer']} "
                f"({r['n_unparsed'] / r['n']:.1%}) have no readable number — parse failures, left out of its MAE "
                f"(not counted as zero error); parse rate {r['parse_rate']:.1%} (95% Wilson CI "
                f"{r['parse_ci_low']:.1%} to {r['parse_ci_high']:.1%})"), stage="stats")
        if not bool(r["header_agrees"]):
            parts = [f"{m} {r[m]:.4g} vs {r[f'header_{m}']:.4g}" for m in ("mae", "rmse", "r_squared", "parse_rate")
                     if not (math.isnan(r[m]) or math.isnan(r[f"header_{m}"]))
                     and not math.isclose(r[m], r[f"header_{m}"], rel_tol=1e-4, abs_tol=1e-9)]
            experiment.diagnostics.warn(file, (
                f"{who}: {r['task']}/{r['scorer']} metrics recomputed from the samples disagree with the log "
                f"header ({'; '.join(parts)}; samples vs header): the report uses the samples"), stage="stats")


def confirmatory_table(metrics: pd.DataFrame, scorer_order: list[str]) -> pd.DataFrame:
    """The metrics table with ``primary`` kept only for the first scorer of each task (design
    order, then by name) whose primary metric is ranked: one confirmatory metric per task, as
    :func:`~analyze_experiment.stats.plan.primary_keys` expects."""
    if metrics is None or metrics.empty:
        return metrics
    m = metrics.copy()
    order = {s: i for i, s in enumerate(scorer_order)}
    keep = m["primary"].astype(bool) & (m["direction"] != reg.DESCRIPTIVE) & m["family"].astype(bool)
    first: dict[str, str] = {}
    for t, sc in sorted(zip(m.loc[keep, "task"], m.loc[keep, "scorer"], strict=True),
                        key=lambda ts: (ts[0], order.get(ts[1], len(order)), ts[1])):
        first.setdefault(str(t), str(sc))
    m["primary"] = [bool(k) and first.get(str(t)) == str(sc) for k, t, sc in zip(keep, m["task"], m["scorer"],
                                                                                 strict=True)]
    return m


def mark_saturated(intervals: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """``direction`` and ``saturated`` columns on the intervals: a rate at ≥ 0.95 (higher is
    better) or ≤ 0.05 (lower is better), where differences say little
    (:func:`analyze_experiment.metrics.saturated`)."""
    iv = intervals.copy()
    if iv.empty:
        iv["direction"] = pd.Series(dtype=object)
        iv["saturated"] = pd.Series(dtype=bool)
        return iv
    dirs = {}
    if metrics is not None and not metrics.empty:
        dirs = {(str(t), str(s), str(m)): str(d) for t, s, m, d in
                zip(metrics["task"], metrics["scorer"], metrics["metric"], metrics["direction"], strict=True)}
    iv["direction"] = [dirs.get((str(t), str(s), str(m)), reg.HIGHER)
                       for t, s, m in zip(iv["task"], iv["scorer"], iv["metric"], strict=True)]
    iv["saturated"] = [reg.saturated(str(m), d, v, bool(b)) for m, d, v, b in
                       zip(iv["metric"], iv["direction"], iv["value"], iv["binary"].fillna(False), strict=True)]
    return iv
