"""One error-control plan per report: which tests may make claims, in which family, at what level.

Every p-value the report can turn into a "significant" sentence belongs to a named family:

- ``checkpoints`` — paired per-sample tests between candidates (run × epoch) of one task ×
  scorer × metric; every pair counts (the best is chosen after seeing the data);
- ``configurations`` — seed-level Welch tests between configurations (every pair counts);
- ``effects`` — seed-level ANOVA terms (only with run-level replication);
- ``outliers`` — leave-one-out tests among ≥ 5 seeds of a configuration (and of their training loss).
- ``discrimination`` — DeLong's paired AUC tests between candidates of a risk scorer;
- ``heterogeneity`` — whether the best's gain differs across the levels of a sample category
  (both from stats/scorer_kinds.py).

Holm (1979) adjusts within each family; the report's level α is split equally over the
confirmatory difference families (Bonferroni across families), so the chance that a report
on a sweep where nothing differs states *any* significant difference stays ≤ α however many
families it holds: ``p_adjusted = min(1, F · p_holm)``. Equivalence and non-inferiority
families (TOST, one-sided tests against a margin) hold their own level with Holm within; a
wrong "equivalent" is a different error from a wrong "better".

Only the primary metric of each task is confirmatory (``Options.confirmatory == "primary"``):
the other scorers and metrics are computed and tabled, never called significant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.stats.multiplicity import holm

FAMILIES = ["family", "kind", "task", "scorer", "metric", "size", "alpha", "correction", "confirmatory", "unit"]
"""Columns of :attr:`Analysis.families`: one row per family of tests."""

DIFFERENCE_KINDS = ("checkpoints", "configurations", "effects", "outliers", "discrimination", "heterogeneity")
"""Families whose claims assert a difference; they share the report's α."""

Key = tuple[str, str, str]

UNITS = {"checkpoints": "evaluation samples (paired)", "configurations": "training runs (seeds)",
         "effects": "training runs (seeds)", "outliers": "training runs (seeds)",
         "equivalence": "evaluation samples (paired)", "non-inferiority": "evaluation samples (paired)",
         "reference": "evaluation samples (against a fixed number)",
         "discrimination": "evaluation samples (paired)", "heterogeneity": "evaluation samples (paired)"}

EXTRA_TABLES = (("auc_tests", "discrimination"), ("subgroup_tests", "heterogeneity"))
"""Tables of stats/scorer_kinds.py whose rows carry ``p_holm`` (Holm within their family) and
``family_size``: DeLong's paired AUC tests and the heterogeneity tests of subgroups."""


def family_name(kind: str, task: Any, scorer: Any, metric: Any, extra: str = "") -> str:
    """``checkpoints: qa/match/accuracy`` — the name the report and summary.json use."""
    return f"{kind}: {task}/{scorer}/{metric}{extra}"


def primary_keys(keys: Iterable[Key], metrics: pd.DataFrame | None, scorer_order: list[str],
                 confirmatory: str = "primary") -> set[Key]:
    """The task × scorer × metric keys allowed to make significance claims.

    ``confirmatory == "all"``: every key. Otherwise the primary metric of each task: the rows
    of ``metrics`` (the metric registry's table) with ``primary`` true, when it has them; else
    the first key of each task in scorer order (the design's scorer order, then by name).
    A metric whose direction is ``descriptive`` is never confirmatory.
    """
    keys = list(dict.fromkeys(keys))
    descriptive: set[Key] = set()
    if metrics is not None and not metrics.empty and {"task", "scorer", "metric", "direction"} <= set(metrics.columns):
        d = metrics[metrics["direction"].astype(str) == "descriptive"]
        descriptive = {(str(t), str(s), str(m)) for t, s, m in zip(d["task"], d["scorer"], d["metric"], strict=True)}
    keys = [k for k in keys if k not in descriptive]
    if confirmatory == "all":
        return set(keys)
    if metrics is not None and not metrics.empty and "primary" in metrics.columns \
            and {"task", "scorer", "metric"} <= set(metrics.columns):
        p = metrics[metrics["primary"].fillna(False).astype(bool)]
        chosen = {(str(t), str(s), str(m)) for t, s, m in zip(p["task"], p["scorer"], p["metric"], strict=True)}
        chosen &= set(keys)
        if chosen:
            return chosen
    order = {s: i for i, s in enumerate(scorer_order)}
    out: dict[str, Key] = {}
    for k in sorted(keys, key=lambda k: (k[0], order.get(k[1], len(order)), k[1], k[2])):
        out.setdefault(k[0], k)
    return set(out.values())


def _holm_by(df: pd.DataFrame, p_col: str, group: pd.Series) -> np.ndarray:
    out = np.full(len(df), np.nan)
    if df.empty:
        return out
    p = df[p_col].to_numpy(float)
    for _, idx in pd.Series(range(len(df))).groupby(group.to_numpy()).groups.items():
        ix = np.asarray(list(idx), int)
        out[ix] = holm(p[ix])
    return out


class _Registry:
    """The families named so far, in the order the report lists them."""

    def __init__(self, confirmatory: set[Key]) -> None:
        self.rows: list[dict[str, Any]] = []
        self.confirmatory = confirmatory

    def add(self, kind: str, key: Key, size: int, extra: str = "") -> str:
        name = family_name(kind, *key, extra)
        if not any(f["family"] == name for f in self.rows):
            self.rows.append({"family": name, "kind": kind, "task": key[0], "scorer": key[1], "metric": key[2],
                              "size": int(size), "alpha": math.nan, "correction": "holm",
                              "confirmatory": key in self.confirmatory or key[0] == "",
                              "unit": UNITS.get(kind, "")})
        return name

    def is_confirmatory(self) -> dict[str, bool]:
        return {f["family"]: f["confirmatory"] for f in self.rows}


def _key_of(r: pd.Series) -> Key:
    return (str(r["task"]), str(r["scorer"]), str(r["metric"]))


def _keys(df: pd.DataFrame) -> list[Key]:
    """:func:`_key_of` of every row, read column by column: the all-pairs table of a 100-run
    sweep has 10,000 rows, and building a Series per row (``iterrows``) cost a second."""
    return [(str(t), str(s), str(m)) for t, s, m in zip(df["task"], df["scorer"], df["metric"], strict=True)]


def _size(df: pd.DataFrame, r: pd.Series) -> int:
    return int(r["family_size"]) if "family_size" in df.columns and not pd.isna(r.get("family_size")) else 1


def apply_plan(a: Any, confirmatory: set[Key], alpha: float) -> pd.DataFrame:
    """Name each test's family, Holm within it, split α over the difference families.

    Reads and updates (in place) the tables of the :class:`~analyze_experiment.analysis.Analysis`
    ``a``: ``comparisons`` and ``pair_tests`` (column ``p_holm`` already holds Holm within the
    checkpoint family over every pair), ``seed_comparisons`` (``p_holm`` within the
    configuration family), ``anova``, ``outliers``, ``equivalence``. Adds ``family``,
    ``confirmatory``, ``p_adjusted`` and ``significant`` (``equivalent`` for TOST). Returns the
    FAMILIES table.
    """
    reg = _Registry(confirmatory)
    _pair_families(a, reg)
    _effect_family(a, reg)
    _outlier_families(a.outliers, reg)
    for tbl, kind in EXTRA_TABLES:
        df = getattr(a, tbl, None)
        if df is not None and not df.empty:
            df["family"] = [reg.add(kind, k, int(size)) for k, size in zip(_keys(df), df["family_size"], strict=True)]
    n_fam = _split_alpha(reg.rows, alpha)
    conf = reg.is_confirmatory()
    for df in (a.comparisons, a.pair_tests, a.seed_comparisons, a.anova, a.outliers,
               *(getattr(a, t, None) for t, _ in EXTRA_TABLES)):
        _verdicts(df, conf, n_fam, alpha)
    dm = a.diminishing
    if dm is not None and not dm.empty and "family" in dm.columns:
        run_level = dm["test"] == "paired_t_runs"
        if run_level.any():
            sub = dm[run_level].copy()
            _verdicts(sub, conf, n_fam, alpha)
            for col in ("confirmatory", "p_adjusted", "significant"):
                dm.loc[sub.index, col] = sub[col]
        _checkpoint_steps(dm, a.pair_tests)
    _equivalence_family(a.equivalence, reg, conf, confirmatory, alpha)
    return pd.DataFrame(reg.rows, columns=FAMILIES)


def _pair_families(a: Any, reg: _Registry) -> None:
    """Checkpoints (every pair counts in the family size, reported or not) and configurations."""
    for tbl in ("comparisons", "pair_tests"):
        df = getattr(a, tbl)
        if df is None or df.empty:
            continue
        if "p_holm" not in df.columns:
            df["p_holm"] = df["p_adjusted"]
        df["family"] = _checkpoint_names(df, reg)
    sc = a.seed_comparisons
    if sc is not None and not sc.empty:
        sc["family"] = [reg.add("configurations", _key_of(r), _size(sc, r),
                                "" if pd.isna(r.get("epoch")) else f" @ epoch {int(r['epoch'])}")
                        for _, r in sc.iterrows()]
        if "p_holm" not in sc.columns:
            sc["p_holm"] = sc["p_adjusted"]


def _checkpoint_names(df: pd.DataFrame, reg: _Registry) -> np.ndarray:
    """Each row's checkpoint family, registered once per (key, size) in order of first row: the
    all-pairs table has k(k-1)/2 rows per metric (499,500 at 1,000 runs), so the rows are
    grouped by their key columns instead of being read one by one."""
    cols = ["task", "scorer", "metric"]
    size = df["family_size"] if "family_size" in df.columns else pd.Series(1, index=df.index)
    groups = pd.DataFrame({**{c: df[c].astype(object) for c in cols}, "_size": size.astype(object)})
    grouped = groups.groupby([*cols, "_size"], sort=False, dropna=False)
    first = grouped.head(1)  # the first row of each group, in the order ngroup numbers them
    names = [reg.add("checkpoints", (str(t), str(sc), str(m)), 1 if pd.isna(z) else int(z))
             for t, sc, m, z in zip(first["task"], first["scorer"], first["metric"], first["_size"], strict=True)]
    return np.asarray(names, dtype=object)[grouped.ngroup().to_numpy()]


def _effect_family(a: Any, reg: _Registry) -> None:
    """Seed-level ANOVA terms and run-level epoch tests share one family per key."""
    tests: list[tuple[pd.DataFrame, Any, Key, float]] = []
    an = a.anova
    if an is not None and not an.empty:
        an["family"] = None
        an["p_holm"] = math.nan
        tests += [(an, i, _key_of(r), float(r["p_value"])) for i, r in an[an["p_value"].notna()].iterrows()]
    dm = a.diminishing
    if dm is not None and not dm.empty and "test" in dm.columns:
        dm["family"] = None
        if "p_holm" not in dm.columns:
            dm["p_holm"] = math.nan
        tests += [(dm, i, _key_of(r), float(r["p_value"])) for i, r in dm[dm["test"] == "paired_t_runs"].iterrows()]
    for k in dict.fromkeys(t[2] for t in tests):
        group = [t for t in tests if t[2] == k]
        name = reg.add("effects", k, len(group))
        for (df, i, _, _), ph in zip(group, holm(np.array([t[3] for t in group], float)), strict=True):
            df.loc[i, "family"] = name
            df.loc[i, "p_holm"] = float(ph)


def _outlier_families(out: pd.DataFrame | None, reg: _Registry) -> None:
    """Leave-one-out seed tests: one family per metric (training loss has its own)."""
    if out is None or out.empty or "p_value" not in out.columns:
        return
    tested = out["p_value"].notna()
    key = [("", "training", "loss") if pd.isna(r.get("metric")) or r.get("metric") is None
           else (str(r["task"]), str(r["scorer"]), str(r["metric"])) for _, r in out.iterrows()]
    out["family"] = None
    out["p_holm"] = _holm_by(out, "p_value", pd.Series(["\0".join(k) for k in key], index=out.index))
    for k in dict.fromkeys(k for k, t in zip(key, tested, strict=True) if t):
        idx = [i for i, kk in zip(out.index, key, strict=True) if kk == k]
        name = reg.add("outliers", k, int(tested.loc[idx].sum()))
        out.loc[[i for i in idx if tested.loc[i]], "family"] = name


def _split_alpha(fams: list[dict[str, Any]], alpha: float) -> int:
    """α split equally over the confirmatory difference families; returns their number."""
    n_fam = max(1, len([f for f in fams if f["kind"] in DIFFERENCE_KINDS and f["confirmatory"]]))
    for f in fams:
        f["alpha"] = alpha / n_fam if f["confirmatory"] else math.nan
        f["correction"] = "holm" if n_fam == 1 else f"holm × {n_fam} families (Bonferroni across families)"
        if not f["confirmatory"]:
            f["correction"] = "none (descriptive: not a confirmatory metric)"
    return n_fam


def _verdicts(df: pd.DataFrame | None, conf: dict[str, bool], n_fam: int, alpha: float,
              flag: str = "significant") -> None:
    """``confirmatory``, ``p_adjusted`` = min(1, F · p_holm) and the verdict of each row."""
    if df is not None and df.empty and len(df.columns):
        # an empty table keeps the plan's columns: queries over many reports (the catalog)
        # need the same schema whether or not a sweep had such tests
        for col, dtype in (("family", object), ("confirmatory", bool), ("p_adjusted", float), (flag, bool)):
            if col not in df.columns:
                df[col] = pd.Series(dtype=dtype)
        return
    if df is None or df.empty or "family" not in df.columns:
        return
    # column by column: the all-pairs table has k(k-1)/2 rows per metric
    c = df["family"].isin([f for f, yes in conf.items() if yes]).to_numpy(bool)
    ph = df["p_holm"].to_numpy(float)
    padj = np.where(c, np.minimum(1.0, ph * n_fam), ph)
    df["confirmatory"] = c
    df["p_adjusted"] = padj
    with np.errstate(invalid="ignore"):
        df[flag] = c & ~np.isnan(padj) & (padj < alpha)


def _equivalence_family(eq: pd.DataFrame | None, reg: _Registry, conf: dict[str, bool], confirmatory: set[Key],
                        alpha: float) -> None:
    """TOST against the best: its own family per key at the full α (a wrong "equivalent" is a
    different error from a wrong "better"), Holm within. ``conf``: the difference families'
    confirmatory flags, as the verdicts read them."""
    if eq is None or eq.empty:
        return
    keys = _keys(eq)
    names = [reg.add("equivalence", k, 0) for k in keys]
    eq["family"] = names
    for f in reg.rows:
        if f["kind"] == "equivalence":
            f["size"] = names.count(f["family"])
            f["alpha"] = alpha if f["confirmatory"] else math.nan
            f["correction"] = "holm" if f["confirmatory"] else "none (descriptive: not a confirmatory metric)"
    eq["p_adjusted"] = _holm_by(eq, "p_tost", eq["family"])
    eq["confirmatory"] = [bool(conf.get(f, False)) or k in confirmatory
                          for f, k in zip(eq["family"], keys, strict=True)]
    eq["equivalent"] = [bool(c and not math.isnan(p) and p < alpha)
                        for c, p in zip(eq["confirmatory"], eq["p_adjusted"], strict=True)]


def _checkpoint_steps(dm: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """Steps between two single checkpoints take the verdict of that pair's test in the
    checkpoint family (same test, same p): one test per contrast."""
    if pairs is None or pairs.empty or "a" not in dm.columns:
        return

    def ck(run: Any, ep: Any) -> tuple[str, float | None]:
        return (str(run), None if ep is None or pd.isna(ep) else float(ep))

    steps = dm[dm["unit"] == "checkpoints"]
    if steps.empty:
        return
    # the index holds row positions of the pairs a step can hit, read column by column (the
    # all-pairs table has k(k-1)/2 rows per family); only the rows hit are built as a row, as
    # iterrows built them
    stepped = {str(x) for x in (*steps["a"], *steps["b"])}
    near = np.flatnonzero((pairs["a"].astype(str).isin(stepped) & pairs["b"].astype(str).isin(stepped)).to_numpy())
    sub = pairs.iloc[near]
    index = {}
    for pos, key, a, ea, b, eb in zip(near, _keys(sub), sub["a"], sub["epoch_a"], sub["b"], sub["epoch_b"],
                                      strict=True):
        index[(*key, frozenset((ck(a, ea), ck(b, eb))))] = int(pos)
    for i, r in steps.iterrows():
        pos = index.get((str(r["task"]), str(r["scorer"]), str(r["metric"]),
                         frozenset((ck(r["a"], r["epoch_a"]), ck(r["b"], r["epoch_b"])))))
        if pos is None:
            continue
        hit = pd.Series(pairs.iloc[[pos]].values[0], index=pairs.columns, name=pairs.index[pos])
        for col in ("p_value", "p_holm", "p_adjusted", "significant", "family", "confirmatory"):
            if col in hit.index:
                dm.loc[i, col] = hit[col]


def add_family(families: pd.DataFrame, kind: str, key: Key, size: int, alpha: float,
               confirmatory: bool) -> tuple[pd.DataFrame, str]:
    """Append one family (non-inferiority tests, decided after the plan) and return its name."""
    name = family_name(kind, *key)
    row = {"family": name, "kind": kind, "task": key[0], "scorer": key[1], "metric": key[2], "size": size,
           "alpha": alpha if confirmatory else math.nan,
           "correction": "holm" if confirmatory else "none (descriptive: not a confirmatory metric)",
           "confirmatory": confirmatory, "unit": UNITS.get(kind, "")}
    fams = families[families["family"] != name]
    return pd.concat([fams, pd.DataFrame([row], columns=FAMILIES)], ignore_index=True), name


def difference_alpha(families: pd.DataFrame, alpha: float) -> float:
    """The per-family level of the difference families (α / F)."""
    if families is None or families.empty:
        return alpha
    d = families[families["kind"].isin(DIFFERENCE_KINDS) & families["confirmatory"].astype(bool)]
    return alpha / max(1, len(d))
