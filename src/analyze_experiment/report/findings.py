"""Rules that turn the statistics into the report's sentences.

Each rule has an id (documented with its thresholds in docs/statistics.md), fires only
when the data say so, and puts its numbers in the sentence and in ``Finding.data``. No
sentence is written that the tables do not back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis, Best, Claim, Finding
from analyze_experiment.experiment import Options
from analyze_experiment.formatting import (
    fmt_ci,
    fmt_diff,
    fmt_hours,
    fmt_level,
    fmt_p,
    fmt_usd,
    fmt_value,
    gpu_unit,
)
from analyze_experiment.ingest import validation as val
from analyze_experiment.ingest.design_facts import qualifiers
from analyze_experiment.report import health_findings as health
from analyze_experiment.report.bottom_line import bottom_line
from analyze_experiment.report.context import FindingContext
from analyze_experiment.report.hypotheses import rule_hypotheses
from analyze_experiment.report.metric_findings import (
    metric_direction,
    primary_best,
    rule_parse_failures,
    rule_saturated,
)
from analyze_experiment.stats import configs as cfgs
from analyze_experiment.stats.candidates import label
from analyze_experiment.stats.effects import BLOCK_TERM, seeds_needed
from analyze_experiment.stats.power import minimum_detectable_difference, samples_for_difference
from analyze_experiment.stats.selection import p_best_text
from analyze_experiment.tables import at_epoch

MAX_PAIR_SENTENCES = 3
"""At most this many ``equivalent`` sentences per family."""
MAX_TIED_LISTED = 6
"""``not_distinguishable`` lists at most this many candidates (the rest: "and k more")."""
WIDE_CI_FACTOR = 2.0
"""``larger_eval_set`` fires when the best's CI half-width exceeds this × margin."""
FEW_SEEDS = 5
"""``more_seeds`` fires without a clear winner when configs have fewer seeds than this."""
PRACTICAL_SEEDS = 20
"""``effect_confounded``: a gap that would take more seeds per configuration than this to test is
called too small to be worth a seed sweep (the Retrospective fixes such a variable)."""

LOW_RESIDUAL_DF = 3
"""ANOVA sentences warn of little power below this many residual degrees of freedom."""


def _cand(ctx: FindingContext, run: str, epoch: Any) -> str:
    """Run name, with the epoch only when the run was evaluated at several epochs."""
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    name = label((str(run), ep if str(run) in ctx.multi_epoch else None))
    mark = ctx.failed_marks.get(str(run))  # a failed run is never named without its mark
    return f"{name} ({mark})" if mark else name


def _on(ctx: FindingContext, task: str, scorer: str) -> str:
    """"qa" or "qa (match)" when the task was scored by several scorers."""
    return f"{task} ({scorer})" if task in ctx.multi_scorer else str(task)


def _tied(a: Analysis, b: Best) -> list[tuple[str, float | None]]:
    """Candidates (run, epoch) not significantly worse than ``b`` after Holm correction."""
    c = a.comparisons
    if c.empty:
        return []
    g = c[(c["task"] == b.task) & (c["scorer"] == b.scorer) & (c["metric"] == b.metric)
          & (c["kind"] == "vs_best") & ~c["significant"].astype(bool)]
    return [(str(r), None if pd.isna(e) else float(e)) for r, e in zip(g["b"], g["epoch_b"], strict=True)]


def _same(run: Any, epoch: Any, key: tuple[str, float | None]) -> bool:
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    return str(run) == key[0] and ep == key[1]


def _f(section: str, rule: str, text: str, claim: Claim | None = None, **data: Any) -> Finding:
    return Finding(section=section, text=text, rule=rule, data=data, claim=claim)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _claim(a: Analysis, kind: str, family: Any, test: Any, statistic: Any, p: Any, p_adj: Any,
           significant: Any) -> Claim:
    """The registered test behind a sentence; the correction is read from the report's plan."""
    fam = "" if family is None or (isinstance(family, float) and math.isnan(family)) else str(family)
    correction = "none"
    if fam and not a.families.empty:
        row = a.families[a.families["family"] == fam]
        if len(row):
            correction = str(row["correction"].iloc[0])
    return Claim(kind=kind, family=fam, test=str(test), statistic=_num(statistic), p_value=_num(p),
                 p_adjusted=_num(p_adj), correction=correction, significant=bool(significant))


def _direction(a: Analysis, task: Any, scorer: Any, metric: Any) -> str:
    """``higher`` | ``lower`` | ``descriptive`` from the metrics table (default ``higher``)."""
    return metric_direction(a.metrics, task, scorer, metric)


def _sign(a: Analysis, task: Any, scorer: Any, metric: Any) -> float:
    """+1 when larger is better, −1 when smaller is (so ``sign · diff > 0`` is an improvement)."""
    return -1.0 if _direction(a, task, scorer, metric) == "lower" else 1.0


def _confirmatory(a: Analysis, task: Any, scorer: Any, metric: Any) -> bool:
    """Whether the plan lets this task × scorer × metric make significance claims (a
    descriptive metric never does)."""
    if _direction(a, task, scorer, metric) == "descriptive":
        return False
    f = a.families
    if f.empty:
        return True
    g = f[(f["task"] == task) & (f["scorer"] == scorer) & (f["metric"] == metric)]
    return bool(g["confirmatory"].astype(bool).any()) if len(g) else True


# --- rules ----------------------------------------------------------------------------
def rule_no_evals(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``no_evals``: nothing to compare."""
    if not a.intervals.empty:
        return []
    return [_f("key_findings", "no_evals",
               f"No evaluation scores were found for any of the {ctx.n_runs} runs, so no accuracy, "
               "interval or comparison could be computed.", n_runs=ctx.n_runs)]


def _vs_best_rows(a: Analysis, b: Best) -> pd.DataFrame:
    c = a.comparisons
    if c.empty:
        return c
    return c[(c["task"] == b.task) & (c["scorer"] == b.scorer) & (c["metric"] == b.metric) & (c["kind"] == "vs_best")]


def rule_best(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``best_clear_winner`` / ``best_no_clear_winner``: the best of each family and why,
    with its selection-adjusted value (winner's curse) beside the raw one. The winner claim's
    test is the least significant best-vs-runner-up test of the checkpoint family."""
    out = []
    for b in a.best:
        stats = _config_stats(a, ctx, b)
        if stats:  # seed replicates: the configuration is the unit of "best"
            out.append(_best_config(a, ctx, b, stats))
            continue
        iv = a.intervals[(a.intervals["task"] == b.task) & (a.intervals["scorer"] == b.scorer)
                         & (a.intervals["run"] == b.run)]
        n = int(iv["n"].iloc[0]) if len(iv) else 0
        low = _direction(a, b.task, b.scorer, b.metric) == "lower"
        so_far = " (best so far)" if "did not finish" in ctx.failed_marks.get(b.run, "") else ""
        head = (f"On {_on(ctx, b.task, b.scorer)}, {_cand(ctx, b.run, b.epoch)} has the "
                f"{'lowest' if low else 'highest'} {b.metric} ({'lower' if low else 'higher'} is better){so_far}: "
                f"{fmt_value(b.metric, b.value)} ({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence)}, "
                f"n = {n})")
        if b.adjusted_value is not None:
            k = len(b.p_best)
            head += (f"; picked as the best of {k}, it is likely overestimated: selection-adjusted "
                     f"{fmt_value(b.metric, b.adjusted_value)} "
                     f"({fmt_ci(b.metric, b.adjusted_ci_low, b.adjusted_ci_high, a.confidence)}, bootstrap of the "
                     f"selection; P(best): {p_best_text(b.p_best)})")
        data = {"task": b.task, "scorer": b.scorer, "run": b.run, "epoch": b.epoch, "value": b.value,
                "ci_low": b.ci_low, "ci_high": b.ci_high, "n": n, "tied_with": b.tied_with,
                "adjusted_value": b.adjusted_value, "adjusted_ci_low": b.adjusted_ci_low,
                "adjusted_ci_high": b.adjusted_ci_high, "p_best": dict(b.p_best)}
        vb = _vs_best_rows(a, b)
        claim = None
        if _confirmatory(a, b.task, b.scorer, b.metric) and len(vb) and "family" in vb.columns:
            w = vb.sort_values("p_adjusted", ascending=False).iloc[0]
            claim = _claim(a, "winner", w["family"], w["test"], w["statistic"], w["p_value"], w["p_adjusted"],
                           b.clear_winner)
        if b.clear_winner:
            out.append(_f("best_performers", "best_clear_winner", f"{head}; it is a clear winner: {b.reason}.",
                          claim, **data))
        else:
            out.append(_f("best_performers", "best_no_clear_winner",
                          f"{head}, but it is not a clear winner: {b.reason}.", claim, **data))
    return out


def rule_pairs(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``equivalent`` (TOST, one sentence per pair) and ``not_distinguishable`` (every
    candidate with Holm p ≥ α against the best and TOST not met, grouped in one sentence
    per family, least separated first)."""
    out: list[Finding] = []
    if a.comparisons.empty:
        return out
    vb = a.comparisons[a.comparisons["kind"] == "vs_best"]
    for (_task, _scorer, metric), g in vb.groupby(["task", "scorer", "metric"], sort=True):
        if not _confirmatory(a, _task, _scorer, metric):
            continue  # a secondary metric is described in the tables, not tested in sentences
        eq = a.equivalence
        n_eq = 0
        tied: list[tuple[pd.Series, str]] = []
        for _, r in g.sort_values(["p_adjusted", "diff"], ascending=[False, True]).iterrows():
            if r["significant"]:
                continue
            e = eq[(eq["task"] == r["task"]) & (eq["scorer"] == r["scorer"]) & (eq["b"] == r["b"])
                   & at_epoch(eq["epoch_b"], r["epoch_b"])]
            if len(e) and bool(e["equivalent"].iloc[0]):
                if n_eq >= MAX_PAIR_SENTENCES:
                    continue
                n_eq += 1
                er = e.iloc[0]
                pair = f"{_cand(ctx, r['b'], r['epoch_b'])} and {_cand(ctx, r['a'], r['epoch_a'])}"
                out.append(_f("key_findings", "equivalent",
                              f"On {_on(ctx, r['task'], r['scorer'])}, {pair} are equivalent within ±{fmt_diff(metric, er['margin']).lstrip('+')} "
                              f"(paired diff {fmt_diff(metric, -er['diff'])}, "
                              f"{fmt_ci(metric, -er['ci_high'], -er['ci_low'], 1 - 2 * (1 - a.confidence), True)}, "
                              f"TOST p {fmt_p(er['p_tost'])}, Holm p {fmt_p(er.get('p_adjusted', er['p_tost']))})",
                              _claim(a, "equivalence", er.get("family"), "tost", None, er["p_tost"],
                                     er.get("p_adjusted", er["p_tost"]), True),
                              task=r["task"], scorer=r["scorer"], a=r["a"],
                              b=r["b"], diff=r["diff"], p_tost=er["p_tost"], margin=er["margin"]))
                continue
            item = (f"{_cand(ctx, r['b'], r['epoch_b'])} {fmt_diff(metric, -r['diff'])} "
                    f"({fmt_ci(metric, -r['ci_high'], -r['ci_low'], a.confidence, True, unadjusted=True)}, "
                    f"Holm p {fmt_p(r['p_adjusted'])})")
            tied.append((r, item))
        if not tied:
            continue
        r0 = tied[0][0]
        shown = [t for _, t in tied[:MAX_TIED_LISTED]]
        more = len(tied) - len(shown)
        best_word = ("the highest single run" if cfgs.replicated(a) and cfgs.config_of(a, r0["a"])
                     else "the best")
        text = (f"On {_on(ctx, r0['task'], r0['scorer'])}, {_plural(len(tied), 'candidate')} "
                f"{'is' if len(tied) == 1 else 'are'} within the noise of {best_word}, "
                f"{_cand(ctx, r0['a'], r0['epoch_a'])} (not significantly worse after Holm correction, paired over "
                f"{int(r0['n_paired'])} samples; not evidence that they are equal): {'; '.join(shown)}")
        if more:
            text += f"; and {more} more in the comparison table"
        closest = min((r for r, _ in tied), key=lambda r: float(r["p_adjusted"]) if not pd.isna(r["p_adjusted"]) else 2.0)
        claim = _claim(a, "difference", closest.get("family"), closest["test"], closest["statistic"],
                       closest["p_value"], closest["p_adjusted"], False)
        out.append(_f("key_findings", "not_distinguishable", text, claim, task=r0["task"], scorer=r0["scorer"],
                      a=r0["a"], b=[str(r["b"]) for r, _ in tied],
                      epoch_b=[None if pd.isna(r["epoch_b"]) else float(r["epoch_b"]) for r, _ in tied],
                      diff=[float(r["diff"]) for r, _ in tied],
                      p_adjusted=[float(r["p_adjusted"]) for r, _ in tied]))
    return out


def _vs_baseline(c: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
    """Every candidate-vs-baseline row, oriented as candidate − baseline."""
    rows = []
    for _, r in c.iterrows():
        test = (r.get("family"), r["test"], r["statistic"], r["p_value"])
        if r["b"] in baselines and r["a"] not in baselines:
            rows.append((r["task"], r["scorer"], r["metric"], r["a"], r["epoch_a"], r["b"], r["diff"],
                         r["ci_low"], r["ci_high"], r["p_adjusted"], bool(r["significant"]), *test))
        elif r["a"] in baselines and r["b"] not in baselines:
            rows.append((r["task"], r["scorer"], r["metric"], r["b"], r["epoch_b"], r["a"], -r["diff"],
                         -r["ci_high"], -r["ci_low"], r["p_adjusted"], bool(r["significant"]), *test))
    return pd.DataFrame(rows, columns=["task", "scorer", "metric", "run", "epoch", "baseline", "diff",
                                       "ci_low", "ci_high", "p_adjusted", "significant",
                                       "family", "test", "statistic", "p_value"])


def _interval_value(a: Analysis, task: str, scorer: str, run: str, epoch: Any) -> float:
    iv = a.intervals
    g = iv[(iv["task"] == task) & (iv["scorer"] == scorer) & (iv["run"] == run)]
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    g = g[[(None if pd.isna(e) else float(e)) == ep for e in g["epoch"]]]
    return float(g["value"].iloc[0]) if len(g) else math.nan


def rule_baseline(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``vs_baseline``: the best candidate against each baseline, then how many candidates
    beat (or fall below) it; the largest gain when another candidate has it."""
    out: list[Finding] = []
    if a.comparisons.empty or not ctx.baselines:
        return out
    vb = _vs_baseline(a.comparisons, ctx.baselines)
    bests = {(b.task, b.scorer, b.metric): b for b in a.best}
    for (task, scorer, metric, base), g in vb.groupby(["task", "scorer", "metric", "baseline"], sort=True):
        sign = _sign(a, task, scorer, metric)
        better = g[g["significant"] & (sign * g["diff"] > 0)]
        worse = g[g["significant"] & (sign * g["diff"] < 0)]
        top = g.assign(_s=sign * g["diff"]).sort_values("_s", ascending=False).iloc[0]
        b = bests.get((task, scorer, metric))
        lead = g[[b is not None and _same(r, e, (b.run, b.epoch)) for r, e in zip(g["run"], g["epoch"], strict=True)]]
        r = lead.iloc[0] if len(lead) else top
        who = "the best candidate" if len(lead) else "the candidate with the largest gain"
        if len(lead) and cfgs.replicated(a) and cfgs.config_of(a, r["run"]):  # one seed is not "the best"
            who = f"the highest single run (one seed of {cfgs.config_of(a, r['run'])})"
        base_v = _interval_value(a, task, scorer, base, None)
        confirm = _confirmatory(a, task, scorer, metric)
        if not confirm:
            continue  # a secondary metric is described in the tables, not tested in sentences
        up, down = ("lower (better)", "higher (worse)") if sign < 0 else ("higher", "lower")
        verdict = ("significantly above" if r["significant"] and r["diff"] > 0 else
                   "significantly below" if r["significant"] else "not significantly different from")
        if sign < 0 and r["significant"]:
            verdict += " (better than)" if r["diff"] < 0 else " (worse than)"
        text = (f"On {_on(ctx, task, scorer)}, {who}, {_cand(ctx, r['run'], r['epoch'])} "
                f"({fmt_value(metric, r['diff'] + base_v)}), is {verdict} the baseline {base} "
                f"({fmt_value(metric, base_v)}): {fmt_diff(metric, r['diff'])} "
                f"({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=True)}, "
                f"Holm p {fmt_p(r['p_adjusted'])}); {len(better)} of {len(g)} candidates score significantly "
                f"{up} than the baseline after Holm correction")
        if len(worse):
            text += f" and {len(worse)} significantly {down}"
        if sign < 0:
            text += f" ({metric}: lower is better)"
        if len(lead) and not _same(top["run"], top["epoch"], (r["run"], r["epoch"])) \
                and sign * top["diff"] > sign * r["diff"]:
            text += (f"; the largest {'improvement' if sign < 0 else 'gain'} is {_cand(ctx, top['run'], top['epoch'])} "
                     f"{fmt_diff(metric, top['diff'])} (Holm p {fmt_p(top['p_adjusted'])})")
        claim = (_claim(a, "difference", r["family"], r["test"], r["statistic"], r["p_value"], r["p_adjusted"],
                        r["significant"]) if confirm else None)
        out.append(_f("key_findings", "vs_baseline", text, claim, task=task, scorer=scorer, baseline=base,
                      n_better=len(better), n_worse=len(worse), n=len(g), run=r["run"], diff=r["diff"],
                      p_adjusted=r["p_adjusted"], top_run=top["run"], top_diff=top["diff"],
                      top_p_adjusted=top["p_adjusted"]))
    return out


def _effect_rows(a: Analysis, task: str, scorer: str, metric: str, var: str) -> pd.DataFrame:
    e = a.effects
    return e[(e["task"] == task) & (e["scorer"] == scorer) & (e["metric"] == metric) & (e["variable"] == var)]


def _level_detail(a: Analysis, task: str, scorer: str, metric: str, var: str) -> str:
    """"0.0001 vs 1e-05 +24.2 pp (84.7% vs 60.5%), " for two levels, else the range of means."""
    g = _effect_rows(a, task, scorer, metric, var)
    if len(g) < 2:
        return ""
    if len(g) == 2:
        lo, hi = g.iloc[0], g.iloc[1]
        return (f"{fmt_level(hi['level'])} vs {fmt_level(lo['level'])}: {fmt_diff(metric, hi['mean'] - lo['mean'])}, "
                f"{fmt_value(metric, hi['mean'])} vs {fmt_value(metric, lo['mean'])}; ")
    mx, mn = g.loc[g["mean"].idxmax()], g.loc[g["mean"].idxmin()]
    return (f"means from {fmt_value(metric, mn['mean'])} ({var} = {fmt_level(mn['level'])}) to "
            f"{fmt_value(metric, mx['mean'])} ({var} = {fmt_level(mx['level'])}); ")


def _anova_unit(rows: pd.DataFrame, df_res: int) -> str:
    """What the F-tests generalise over, said in the sentence."""
    unit = rows["unit"].iloc[0] if "unit" in rows.columns and len(rows) else "runs"
    n = rows["n_units"].iloc[0] if "n_units" in rows.columns and len(rows) else math.nan
    if unit == "samples":
        return (f"F-tests across the {int(n)} evaluation samples, each sample a block; training-seed "
                "variation is not captured without seed replicates")
    text = f"F-tests across {int(n)} runs" if not pd.isna(n) else "F-tests across runs"
    if any(" × " in str(t) for t in rows["term"]):  # interactions are fitted only with replicates
        text += ", the seed replicates as the unit"
    if df_res < LOW_RESIDUAL_DF:
        text += f"; with {df_res} residual degree(s) of freedom these tests have little power"
    return text


def _anova_terms(a: Analysis) -> list[tuple[tuple[str, str, str], pd.DataFrame, int]]:
    """Per family: the effect terms (not residual, not block) and the residual df."""
    out = []
    if a.anova.empty:
        return out
    for key, g in a.anova.groupby(["task", "scorer", "metric"], sort=True):
        resid = g[g["term"] == "Residual"]
        df_res = int(resid["df"].iloc[0]) if len(resid) else 0
        terms = g[~g["term"].isin(["Residual", BLOCK_TERM])]
        out.append((key, terms, df_res))
    return out


def _term_text(a: Analysis, key: tuple[str, str, str], r: pd.Series, df_res: int, verb: str = "") -> str:
    """"learning_rate (0.0001 vs 1e-05 +20.5 pp (85.5% vs 65.0%); F(1, 597) = 64.75, …)"."""
    task, scorer, metric = key
    pomega = r.get("partial_omega_sq", r["omega_sq"])
    omega = "partial ω² ≈ 0" if pd.isna(pomega) or pomega < 0.005 else f"partial ω² = {pomega:.2f}"
    eta = "< 0.01" if r["partial_eta_sq"] < 0.005 else f"= {r['partial_eta_sq']:.2f}"
    term = str(r["term"])
    name = f"the {term} interaction" if " × " in term else term
    detail = "" if " × " in term else _level_detail(a, task, scorer, metric, term)
    return (f"{name}{verb} ({detail}F({int(r['df'])}, {df_res}) = {r['F']:.2f}, p {fmt_p(r['p_value'])}, "
            f"partial η² {eta}, {omega})")


def _sig(r: pd.Series, alpha: float) -> bool:
    """The plan's verdict when it gave one, else the raw p against α (standalone tables)."""
    if "significant" in r.index and not pd.isna(r["significant"]):
        return bool(r["significant"])
    return bool(r["p_value"] < alpha)


def rule_anova_effect(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``anova_effect``: one sentence per seed-level ANOVA term significant in the report's
    ``effects`` family (Holm, α split over the difference families), largest effect first.
    The F, η² and ω² details are in Statistical Summary (``anova_detail``)."""
    out: list[Finding] = []
    alpha = 1 - a.confidence
    for key, terms, df_res in _anova_terms(a):
        task, scorer, metric = key
        sig = terms[[_sig(r, alpha) for _, r in terms.iterrows()]].sort_values("partial_eta_sq", ascending=False)
        for _, r in sig.iterrows():
            term = str(r["term"])
            name = f"the {term} interaction" if " × " in term else term
            detail = "" if " × " in term else _level_detail(a, task, scorer, metric, term).rstrip("; ")
            text = (f"On {_on(ctx, task, scorer)}, {name} matters across training runs"
                    f"{f' ({detail})' if detail else ''}: seed-level ANOVA over {int(r['n_units'])} runs, "
                    f"Holm p {fmt_p(r.get('p_adjusted', r['p_value']))}")
            out.append(_f("key_findings", "anova_effect", text,
                          _claim(a, "effect", r.get("family"), "anova_f", r["F"], r["p_value"],
                                 r.get("p_adjusted", r["p_value"]), True),
                          task=task, scorer=scorer, term=term, F=r["F"], p_value=r["p_value"],
                          p_adjusted=r.get("p_adjusted"), partial_eta_sq=r["partial_eta_sq"], df_resid=df_res))
    return out


def rule_anova_no_effect(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``anova_no_effect``: per family, the seed-level terms not significant after the plan's
    correction, in one sentence (the claim carries the term closest to significance)."""
    out: list[Finding] = []
    alpha = 1 - a.confidence
    for key, terms, df_res in _anova_terms(a):
        task, scorer, _ = key
        null = terms[[not _sig(r, alpha) for _, r in terms.iterrows()]]
        if null.empty:
            continue
        names = [str(t) for t in null["term"]]
        closest = null.sort_values("p_value").iloc[0]
        ps = ", ".join(f"{t} Holm p {fmt_p(p)}" for t, p in zip(null["term"], null.get("p_adjusted", null["p_value"]),
                                                                 strict=True))
        out.append(_f("key_findings", "anova_no_effect",
                      f"On {_on(ctx, task, scorer)}, no detectable effect of {_join(names, ' or of')} across training "
                      f"runs ({ps}; seed-level ANOVA over {int(closest['n_units'])} runs); not significant is not "
                      "evidence of no effect",
                      _claim(a, "effect", closest.get("family"), "anova_f", closest["F"], closest["p_value"],
                             closest.get("p_adjusted", closest["p_value"]), False),
                      task=task, scorer=scorer, terms=names, F=list(null["F"]),
                      p_value=list(null["p_value"]), df_resid=df_res))
    return out


def rule_anova_detail(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``anova_detail`` (Statistical Summary): F, partial η² and ω² of every seed-level term."""
    out: list[Finding] = []
    for key, terms, df_res in _anova_terms(a):
        task, scorer, _ = key
        items = [_term_text(a, key, r, df_res) for _, r in terms.iterrows()]
        if items:
            out.append(_f("statistical_summary", "anova_detail",
                          f"On {_on(ctx, task, scorer)}, seed-level ANOVA (type II, {_anova_unit(terms, df_res)}): "
                          f"{'; '.join(items)}", task=task, scorer=scorer, terms=list(terms["term"])))
    return out


def rule_confounded(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``effect_confounded``: a swept variable without seed replicates — its effect is not
    tested (training noise and the variable are one); the seeds per configuration that a
    seed-level test would need to detect the observed gap (a lower bound: the evaluation's
    own SE stands in for the unknown run-to-run SD)."""
    out: list[Finding] = []
    note = a.anova_note or ""
    if "trained once" not in note or a.effects.empty:
        return out
    alpha = 1 - a.confidence
    for (task, scorer, metric, var), g in a.effects.groupby(["task", "scorer", "metric", "variable"], sort=True):
        if var == "epoch" or g["mean"].notna().sum() < 2 or f"{task}/{scorer}: each configuration was trained once" not in note:
            continue
        if not _confirmatory(a, task, scorer, metric):
            continue
        hi = g.loc[g["mean"].idxmax()]
        lo = g.drop(index=hi.name).dropna(subset=["mean"]).loc[lambda d: d["mean"].idxmin()]  # another level on a tie
        diff = float(hi["mean"] - lo["mean"])
        iv = a.intervals[(a.intervals["task"] == task) & (a.intervals["scorer"] == scorer)
                         & (a.intervals["metric"] == metric)]
        sd = float(pd.to_numeric(iv["stderr"], errors="coerce").median()) if len(iv) else math.nan
        per_level = max(1, round(float(g["n_runs"].mean())))
        need = seeds_needed(diff, sd, per_level, alpha)
        se_txt = fmt_diff(metric, sd).lstrip("+")
        if not math.isnan(need) and need > PRACTICAL_SEEDS:
            tail = (f"a gap this small would take at least {int(need):,} seeds per configuration to test against "
                    f"the evaluation's own SE of {se_txt} alone, so it is too small to be worth a seed sweep")
        elif not math.isnan(need):
            tail = (f"at least {int(need)} seeds per configuration (more if run-to-run noise exceeds the "
                    f"evaluation's own SE of {se_txt}) would let a seed-level test answer it")
        else:
            tail = "several seeds per configuration would let a seed-level test answer it"
        out.append(_f("key_findings", "effect_confounded",
                      f"On {_on(ctx, task, scorer)}, whether {var} matters is not tested: each configuration was "
                      f"trained once, so the {fmt_diff(metric, diff)} gap between {var} = {fmt_level(hi['level'])} "
                      f"and {fmt_level(lo['level'])} is confounded with training noise; {tail}", task=task,
                      scorer=scorer, variable=var, diff=diff, seeds_needed=need, sd_eval=sd))
    return out


def _join(items: list[str], sep: str) -> str:
    """"a", "a or of b", "a, b or of c" for ``sep`` " or of"."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f"{sep} " + items[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def rule_epoch(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``epoch_effect``: consecutive checkpoint epochs, at the unit the data allow.

    One run evaluated at both epochs: a statement about that run's two checkpoints (the
    paired test of the checkpoint family), never "epoch matters". At least 3 runs: the
    per-run gains tested across runs (run-level paired t, ``effects`` family). Two runs:
    the averaged gain, described, with no verdict."""
    out: list[Finding] = []
    d = a.diminishing
    if d.empty or "unit" not in d.columns:
        return out
    d = d[d["variable"] == "epoch"]
    for _, r in d.iterrows():
        task, scorer, metric = r["task"], r["scorer"], r["metric"]
        if not _confirmatory(a, task, scorer, metric):
            continue
        sig = bool(r["significant"]) if not pd.isna(r["significant"]) else False
        step = f"epoch {fmt_level(r['to_level'])} vs epoch {fmt_level(r['from_level'])}"
        ci = fmt_ci(metric, r["ci_low"], r["ci_high"], a.confidence, True, unadjusted=True)
        if r["unit"] == "checkpoints":
            verdict = ("scores significantly higher than" if sig and r["gain"] > 0 else
                       "scores significantly lower than" if sig else "is not significantly different from")
            text = (f"On {_on(ctx, task, scorer)}, {r['a']}'s epoch-{fmt_level(r['to_level'])} checkpoint {verdict} its "
                    f"epoch-{fmt_level(r['from_level'])} checkpoint: {fmt_diff(metric, r['gain'])} ({ci}, Holm p "
                    f"{fmt_p(r['p_adjusted'])}, paired over {int(r['n_paired'])} samples) — one run, so this says "
                    "nothing about other runs or seeds")
            claim = _claim(a, "difference", r.get("family"), r["test"], None, r["p_value"], r["p_adjusted"], sig)
        elif r["unit"] == "runs":
            verdict = ("scores significantly higher than" if sig and r["gain"] > 0 else
                       "scores significantly lower than" if sig else "is not significantly different from")
            n_runs = int(r["n_runs"]) // 2
            text = (f"On {_on(ctx, task, scorer)}, across {n_runs} runs, epoch {fmt_level(r['to_level'])} {verdict} "
                    f"epoch {fmt_level(r['from_level'])}: mean per-run gain {fmt_diff(metric, r['gain'])} ({ci}, "
                    f"run-level paired t, Holm p {fmt_p(r['p_adjusted'])})")
            claim = _claim(a, "effect", r.get("family"), "paired_t_runs", None, r["p_value"], r["p_adjusted"], sig)
        else:
            n_runs = int(r["n_runs"]) // 2
            text = (f"On {_on(ctx, task, scorer)}, {step}: {fmt_diff(metric, r['gain'])} averaged over the "
                    f"{_plural(n_runs, 'run')} evaluated at both ({ci}); descriptive — fewer than 3 runs to "
                    "generalise an epoch effect over")
            claim = None
        out.append(_f("key_findings", "epoch_effect", text, claim, task=task, scorer=scorer, gain=r["gain"],
                      p_value=r["p_value"], p_adjusted=r["p_adjusted"], significant=sig, unit=r["unit"]))
    return out


def rule_marginal(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``marginal_effect`` per variable without ANOVA (and epoch without a paired test);
    ``unbalanced``. Descriptive only: no verdict is drawn from whether intervals overlap."""
    out: list[Finding] = []
    covered = set(zip(a.anova["task"], a.anova["scorer"], strict=True))
    tested_epoch = set()
    if not a.diminishing.empty:
        de = a.diminishing[a.diminishing["variable"] == "epoch"]
        tested_epoch = set(zip(de["task"], de["scorer"], strict=True))
    for (task, scorer, metric, var), g in a.effects.groupby(["task", "scorer", "metric", "variable"], sort=True):
        if var == "epoch" and (task, scorer) in tested_epoch:
            continue
        if var != "epoch" and (task, scorer) in covered:
            continue
        if g["mean"].notna().sum() < 2:
            continue
        hi = g.loc[g["mean"].idxmax()]
        lo = g.drop(index=hi.name).dropna(subset=["mean"]).loc[lambda d: d["mean"].idxmin()]  # another level on a tie
        out.append(_f("key_findings", "marginal_effect",
                      f"On {_on(ctx, task, scorer)}, mean {metric} by {var} ranges from {fmt_value(metric, lo['mean'])} "
                      f"({var} = {fmt_level(lo['level'])}, {fmt_ci(metric, lo['ci_low'], lo['ci_high'], a.confidence)}) to "
                      f"{fmt_value(metric, hi['mean'])} ({var} = {fmt_level(hi['level'])}, "
                      f"{fmt_ci(metric, hi['ci_low'], hi['ci_high'], a.confidence)}); these are descriptive means "
                      "over different sets of runs, not a test (the paired comparisons test candidates)",
                      task=task, scorer=scorer, variable=var, low_level=lo["level"], high_level=hi["level"],
                      low=lo["mean"], high=hi["mean"]))
    if a.anova_note:
        out.append(_f("statistical_summary", "unbalanced", f"No ANOVA: {a.anova_note}.", note=a.anova_note))
    return out


def rule_diminishing(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``diminishing_returns`` / ``no_significant_step``: steps of an ordinal variable
    between two single checkpoints (the checkpoint family's tests; configuration contrasts
    without seeds are not tested, see ``effect_confounded``). Epoch steps are ``epoch_effect``'s."""
    out: list[Finding] = []
    d = a.diminishing
    if d.empty or "unit" not in d.columns:
        return out
    d = d[(d["unit"] == "checkpoints") & (d["variable"] != "epoch")]
    for (task, scorer, metric, var), g in d.groupby(["task", "scorer", "metric", "variable"], sort=True):
        if not _confirmatory(a, task, scorer, metric):
            continue
        g = g.reset_index(drop=True)
        sign = _sign(a, task, scorer, metric)  # a gain is a fall for a lower-is-better metric
        sig = g.index[g["significant"].fillna(False).astype(bool) & (sign * g["gain"] > 0)].tolist()
        if sig and sig[-1] < len(g) - 1:
            last = g.iloc[sig[-1]]
            nxt = g.iloc[sig[-1] + 1]
            text = (f"On {_on(ctx, task, scorer)}, raising {var} from {fmt_level(last['from_level'])} to "
                    f"{fmt_level(last['to_level'])} gains {fmt_diff(metric, last['gain'])} between the two runs "
                    f"(Holm p {fmt_p(last['p_adjusted'])}), but beyond {fmt_level(last['to_level'])} the gain is not "
                    f"significant ({fmt_level(nxt['from_level'])}→{fmt_level(nxt['to_level'])}: "
                    f"{fmt_diff(metric, nxt['gain'])}, "
                    f"{fmt_ci(metric, nxt['ci_low'], nxt['ci_high'], a.confidence, True, unadjusted=True)}, "
                    f"Holm p {fmt_p(nxt['p_adjusted'])}); single runs, so training noise is not ruled out")
            out.append(_f("key_findings", "diminishing_returns", text,
                          _claim(a, "difference", nxt.get("family"), nxt["test"], None, nxt["p_value"],
                                 nxt["p_adjusted"], False),
                          task=task, scorer=scorer, variable=var, plateau_from=last["to_level"], gain=nxt["gain"],
                          p_adjusted=nxt["p_adjusted"]))
        elif not sig and len(g) >= 2:  # one step is the vs-best contrast, already stated
            top = g.loc[(sign * g["gain"]).idxmax()]
            out.append(_f("key_findings", "no_significant_step",
                          f"On {_on(ctx, task, scorer)}, no step in {var} gives a significant gain between single runs "
                          f"(largest: {fmt_level(top['from_level'])}→{fmt_level(top['to_level'])} "
                          f"{fmt_diff(metric, top['gain'])}, "
                          f"{fmt_ci(metric, top['ci_low'], top['ci_high'], a.confidence, True, unadjusted=True)}, "
                          f"Holm p {fmt_p(top['p_adjusted'])})",
                          _claim(a, "difference", top.get("family"), top["test"], None, top["p_value"],
                                 top["p_adjusted"], False),
                          task=task, scorer=scorer, variable=var, gain=top["gain"], p_adjusted=top["p_adjusted"]))
    return out


def rule_seeds(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``seed_spread`` (largest seed SD per family) and ``seed_comparison`` (Welch, P(A>B))."""
    out: list[Finding] = []
    same = _same_seed(a)
    for (task, scorer, metric), g in a.seeds.groupby(["task", "scorer", "metric"], sort=True):
        r = g.loc[g["sd"].idxmax()]
        detail = (f"{r['config']}: mean {fmt_value(metric, r['mean'])} over {int(r['n_seeds'])} "
                  f"{'runs' if same else 'seeds'}, {fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence)}")
        sd = fmt_diff(metric, r["sd"]).lstrip("+")
        if same is not None:  # the design's own facts: the "seeds" were one seed
            text = (f"On {_on(ctx, task, scorer)}, {same}; the spread between repeats of one configuration, up to "
                    f"SD {sd} ({detail}), is run-to-run nondeterminism, not seed-to-seed variation")
        else:
            text = f"On {_on(ctx, task, scorer)}, seed-to-seed variation is up to SD {sd} ({detail})"
        out.append(_f("key_findings", "seed_spread", text,
                      task=task, config=r["config"], sd=r["sd"], n_seeds=int(r["n_seeds"]),
                      seed_variation_measurable=same is None))
    sc = a.seed_comparisons
    for _, r in sc.iterrows() if not sc.empty else []:
        metric = r["metric"]
        if not _confirmatory(a, r["task"], r["scorer"], metric):
            continue
        verdict = "is significantly better than" if r["significant"] else "is not distinguishable from"
        text = (f"On {_on(ctx, r['task'], r['scorer'])}, across seeds {r['a']} {verdict} {r['b']} (diff of seed means "
                f"{fmt_diff(metric, r['diff'])}, {fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=True)}, "
                f"Welch Holm p {fmt_p(r['p_adjusted'])}, {int(r['n_a'])} vs {int(r['n_b'])} seeds)")
        if not pd.isna(r["p_a_gt_b"]):
            text += (f"; P({r['a']} > {r['b']}) = {r['p_a_gt_b']:.2f} "
                     f"({a.confidence:.0%} bootstrap CI {r['p_a_gt_b_low']:.2f} to {r['p_a_gt_b_high']:.2f})")
        out.append(_f("key_findings", "seed_comparison", text,
                      _claim(a, "difference", r.get("family"), "welch", r["t"], r["p_value"], r["p_adjusted"],
                             r["significant"]),
                      task=r["task"], a=r["a"], b=r["b"],
                      diff=r["diff"], p_adjusted=r["p_adjusted"], p_a_gt_b=r["p_a_gt_b"]))
    return out


def _same_seed(a: Analysis) -> str | None:
    """The ``same_seed`` fact's caveat (every replicate trained with one seed), else None."""
    f = a.facts
    if f is None or not len(f) or "kind" not in f.columns:
        return None
    g = f[f["kind"] == "same_seed"]
    return str(g["qualifier"].iloc[0]) if len(g) else None


def rule_outliers(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``outlier`` (robust z) and ``suspicious_eval`` (constant answers, 0/100%, errors)."""
    out = []
    for _, r in a.outliers.iterrows():
        where = f" on {r['task']}" if r["task"] is not None and not pd.isna(r["task"]) else ""
        if r["kind"] in ("metric", "loss", "loss_curve"):
            out.append(_f("key_findings", "outlier",
                          f"{r['run']}{where} is an outlier: {r['detail']}, value {r['value']:.4g} (leave-one-out t = "
                          f"{r.get('statistic', math.nan):.2f} among {int(r.get('n_group', 0))} seeds, Holm p "
                          f"{fmt_p(r.get('p_adjusted'))}; robust z = {r['robust_z']:.1f})",
                          _claim(a, "outlier", r.get("family"), "loo_t", r.get("statistic"), r.get("p_value"),
                                 r.get("p_adjusted"), True),
                          run=r["run"], kind=r["kind"], robust_z=r["robust_z"], value=r["value"]))
        else:
            out.append(_f("key_findings", "suspicious_eval",
                          f"Check {r['run']}{where}: {r['detail']} — this usually means a broken prompt, "
                          "scorer or model load rather than a result", run=r["run"], kind=r["kind"],
                          value=r["value"]))
    return out


def rule_overfitting(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``overfitting``: a run whose validation loss rose over its last k validations while its
    training loss fell (analyze_experiment.ingest.validation). Descriptive: the flag is a rule on one
    run's curve, not a test, so it carries no claim."""
    runs = ctx.runs
    if "overfitting" not in runs.columns:
        return []
    out = []
    for r in runs[runs["overfitting"].map(lambda v: v is True or v is np.True_)].to_dict("records"):
        steps = ctx.train_steps
        if steps is None or not len(steps):
            continue
        curve = val.validation_curve(steps[steps["run"] == r["run"]])
        curve = curve[np.isfinite(curve["val_loss"].astype(float))]
        if not len(curve):
            continue
        ev = val.overfit_evidence(curve)
        out.append(_f("key_findings", "overfitting",
                      f"{r['run']} overfits: its validation loss was lowest at step {ev['best_step']} "
                      f"({ev['best_val']:.4f}) and stayed above it for the {ev['evaluations_after_best']} "
                      f"validations after (last {ev['last_val']:.4f} at step {ev['last_step']}), while the training "
                      f"loss fell from {ev['best_train']:.4f} to {ev['last_train']:.4f} (mean over the steps before "
                      f"each validation; flag after k = {val.OVERFIT_PATIENCE} validations without improvement) — "
                      f"a checkpoint near step {ev['best_step']} or fewer steps would likely generalise better",
                      run=r["run"], patience=val.OVERFIT_PATIENCE, **ev))
    return out


TEST_NAMES = {"mcnemar_exact": "exact McNemar", "paired_permutation": "paired permutation",
              "cluster_permutation": "cluster permutation"}


def rule_summary(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``methods`` (what was tested, how corrected) and ``power`` (MDD once per family, for
    one uncorrected test and at the Bonferroni level α/m that Holm applies to the smallest p)."""
    out = []
    c = a.comparisons
    sizes: dict[tuple[str, str], int] = {}
    if not c.empty:
        fams = c.groupby(["task", "scorer", "metric"]).ngroups
        tests = ", ".join(f"{TEST_NAMES.get(str(t), t)} ({n})" for t, n in c["test"].value_counts().sort_index().items())
        nsig = int(c["significant"].astype(bool).sum())
        if "family_size" in c.columns:
            fs = c.groupby(["task", "scorer"])["family_size"].max()
            sizes = {k: int(v) for k, v in fs.items() if not pd.isna(v)}
        m = sorted(set(sizes.values()))
        over = (f"over all {m[0]} pairs of candidates in each family" if len(m) == 1 else
                "over all pairs of candidates within each family")
        out.append(_f("statistical_summary", "methods",
                      f"{len(c)} paired comparisons reported in {fams} task × scorer "
                      f"{'family' if fams == 1 else 'families'} ({tests}); "
                      f"{nsig} significant at α = {1 - a.confidence:.2g} after Holm correction {over} "
                      f"(Benjamini–Hochberg q-values in the comparison table).",
                      n_comparisons=len(c), n_families=fams, n_significant=nsig))
    out.extend(_plan_sentences(a))
    for p in a.power:
        if p["mdd"] is None or math.isnan(p["mdd"]):
            continue
        if not _confirmatory(a, p["task"], p["scorer"], p.get("metric", "accuracy")):
            continue
        metric = p.get("metric", "accuracy")
        m = sizes.get((p["task"], p["scorer"]), 1)
        n_fam = _n_difference_families(a)
        text = (f"On {_on(ctx, p['task'], p['scorer'])}, with n = {p['n']} samples per candidate a single "
                f"uncorrected paired test at α = {p['alpha']:.2g} detects a difference of "
                f"{fmt_diff(metric, p['mdd']).lstrip('+')} with {p['power']:.0%} power")
        data = dict(p)
        if m * n_fam > 1:
            mdd_m = minimum_detectable_difference(int(p["n"]), float(p["sd_diff"]), p["alpha"] / (m * n_fam),
                                                  p["power"])
            level = f"α/{m}" if n_fam == 1 else f"α/({m} × {n_fam} families)"
            text += (f"; after Holm correction over {m} pairs{'' if n_fam == 1 else f' and {n_fam} families'} it takes "
                     f"up to {fmt_diff(metric, mdd_m).lstrip('+')} (Bonferroni level {level})")
            data.update(mdd_corrected=mdd_m, family_size=m, n_families=n_fam)
        out.append(_f("statistical_summary", "power",
                      text + "; smaller differences reported as not significant may still be real.", **data))
    return out


def _n_difference_families(a: Analysis) -> int:
    f = a.families
    if f.empty:
        return 1
    from analyze_experiment.stats.plan import DIFFERENCE_KINDS
    return max(1, int((f["kind"].isin(DIFFERENCE_KINDS) & f["confirmatory"].astype(bool)).sum()))


def _plan_sentences(a: Analysis) -> list[Finding]:
    """``error_control`` (the families, their sizes, levels and corrections) and
    ``monte_carlo_error`` (the largest Monte Carlo SE of a permutation p-value)."""
    out: list[Finding] = []
    f = a.families
    if not f.empty:
        conf = f[f["confirmatory"].astype(bool)]
        desc = f[~f["confirmatory"].astype(bool)]
        n_fam = _n_difference_families(a)
        items = "; ".join(f"{r['family']} ({int(r['size'])} test{'s' if int(r['size']) != 1 else ''}, unit: {r['unit']}, "
                          f"level {r['alpha']:.2g})" for _, r in conf.iterrows())
        text = (f"Error control: every significance claim belongs to one of {len(conf)} families — {items}. "
                f"Holm within each family; the report's α = {1 - a.confidence:.2g} is split over the {n_fam} "
                f"difference famil{'y' if n_fam == 1 else 'ies'} (Bonferroni across families), so on a sweep where "
                "nothing differs the chance of any significant difference in this report is at most α; "
                "equivalence and non-inferiority families hold α each")
        if (f["kind"] == "reference").any():
            text += ("; each reference family (runs against a number given with --reference or in the design) "
                     "holds α too: it answers a question asked by name, not one the report went looking for")
        if len(desc):
            names = sorted({f"{r['scorer']}/{r['metric']}" for _, r in desc.iterrows()})
            text += (f". Secondary metrics ({', '.join(names)}) are described, not tested "
                     "(--confirmatory all makes them confirmatory)")
        out.append(_f("statistical_summary", "error_control", text, families=list(f["family"]),
                      sizes=[int(x) for x in f["size"]], n_difference_families=n_fam))
    c = a.comparisons
    if not c.empty and "p_mc_se" in c.columns and (c["n_resamples"].fillna(0) > 0).any():
        mc = c[c["n_resamples"].fillna(0) > 0]
        worst = mc.loc[mc["p_mc_se"].idxmax()]
        out.append(_f("statistical_summary", "monte_carlo_error",
                      f"{len(mc)} permutation p-values are Monte Carlo estimates (largest Monte Carlo SE "
                      f"{float(worst['p_mc_se']):.2g} at p {fmt_p(worst['p_value'])}; a p-value within 3 SE of α is "
                      f"redrawn with 10× the resamples)", n=len(mc), max_se=float(worst["p_mc_se"])))
    return out


def _config_of(a: Analysis, run: str) -> str | None:
    """The configuration label of a run that has seed replicates (seeds table), else None."""
    if a.seeds.empty or "runs" not in a.seeds.columns:
        return None
    for cfg, runs in zip(a.seeds["config"], a.seeds["runs"], strict=True):
        if isinstance(runs, list | tuple) and run in runs:
            return str(cfg)
    return None


def _name(a: Analysis, ctx: FindingContext, run: Any, epoch: Any) -> str:
    """A candidate, or "configuration C (run R)" when seeds of its configuration were run."""
    cfg = _config_of(a, str(run))
    cand = _cand(ctx, run, epoch)
    return f"configuration {cfg} ({cand}, one of its seeds)" if cfg else cand


def rule_production(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``production_config``: the cheapest candidate *shown* non-inferior to the best (one-sided
    paired test at a margin on the metric's own scale, Holm within the family), else the best;
    ``cannot_tell`` when a cheaper candidate could be neither shown non-inferior nor worse,
    with the paired samples that would settle it; ``pareto``. Failed runs are never picked.
    GPU time is written in one unit per sentence, chosen by magnitude."""
    out = []
    for b in a.best:
        if not _confirmatory(a, b.task, b.scorer, b.metric):
            continue
        stats = _config_stats(a, ctx, b)
        if stats:  # seed replicates: production names a configuration, never one lucky seed
            out.extend(_production_config(a, ctx, b, stats))
        elif b.run not in ctx.failed:
            out.extend(_production_candidate(a, ctx, b))
    return out


def _of(df: pd.DataFrame, b: Best) -> pd.DataFrame:
    """The rows of ``df`` about the best's task × scorer × metric."""
    if df.empty:
        return df
    return df[(df["task"] == b.task) & (df["scorer"] == b.scorer) & (df["metric"] == b.metric)]


def _production_candidate(a: Analysis, ctx: FindingContext, b: Best) -> list[Finding]:
    """Production pick among single candidates (no seed replicates): the sentence, then a
    cheaper candidate that could not be told apart, then the Pareto front."""
    failed = ctx.failed
    fam = _of(a.pareto, b)
    ni = _of(a.noninferiority, b)
    shown = ni[ni["non_inferior"].astype(bool) & ~ni["run"].isin(failed)] if len(ni) else ni
    margin = float(ni["margin"].iloc[0]) if len(ni) else math.nan
    msrc = str(ni["margin_source"].iloc[0]) if len(ni) else ""
    mtxt = f"{fmt_diff(b.metric, margin).lstrip('+')} ({msrc})" if not math.isnan(margin) else "n/a"
    ok = [(b.run, b.epoch), *[(str(r), None if pd.isna(e) else float(e))
                              for r, e in zip(shown["run"], shown["epoch"], strict=True)]]
    if fam.empty:
        return []
    cand = fam[[any(_same(r, e, k) for k in ok) for r, e in zip(fam["run"], fam["epoch"], strict=True)]]
    known = cand.dropna(subset=["gpu_hours"])
    best_cost = fam[[_same(r, e, (b.run, b.epoch)) for r, e in zip(fam["run"], fam["epoch"], strict=True)]]["gpu_hours"]
    bc = float(best_cost.iloc[0]) if len(best_cost) else math.nan
    if known.empty:
        return [_f("recommendations", "production_config",
                   f"Production config for {_on(ctx, b.task, b.scorer)}: {_name(a, ctx, b.run, b.epoch)} "
                   f"({fmt_value(b.metric, b.value)}); no GPU-hour data to weigh cost, so the best "
                   f"candidate is the default choice", task=b.task, run=b.run, gpu_hours=None)]
    low = _direction(a, b.task, b.scorer, b.metric) == "lower"
    pick = known.sort_values(["gpu_hours", "value"], ascending=[True, low]).iloc[0]
    unit = gpu_unit([float(pick["gpu_hours"]), bc])
    text, claim = _production_sentence(a, ctx, b, pick, cand, shown, mtxt, unit, bc)
    out = [_f("recommendations", "production_config", text, claim, task=b.task, run=pick["run"],
              epoch=pick["epoch"], value=pick["value"], gpu_hours=pick["gpu_hours"],
              best_run=b.run, best_gpu_hours=bc, margin=margin)]
    out += _cannot_tell(a, ctx, b, fam, ni, pick, mtxt, unit, margin)
    out += _pareto_front(ctx, b, fam)
    return out


def _production_sentence(a: Analysis, ctx: FindingContext, b: Best, pick: pd.Series, cand: pd.DataFrame,
                         shown: pd.DataFrame, mtxt: str, unit: Any, bc: float) -> tuple[str, Claim | None]:
    """The production sentence and the non-inferiority claim it rests on (None: the best itself)."""
    cost = fmt_hours(pick["gpu_hours"], unit)
    if not pd.isna(pick["cost_usd"]):
        cost += f", {fmt_usd(pick['cost_usd'])}"
    claim = None
    if _same(pick["run"], pick["epoch"], (b.run, b.epoch)) and len(cand) == 1:
        text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {_name(a, ctx, b.run, b.epoch)} — the best "
                f"({fmt_value(b.metric, b.value)}, {cost}); no cheaper candidate could be shown to be within "
                f"{mtxt} of it")
    elif _same(pick["run"], pick["epoch"], (b.run, b.epoch)):
        text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {_name(a, ctx, b.run, b.epoch)} — the best "
                f"({fmt_value(b.metric, b.value)}) and the cheapest of the {len(cand)} candidates shown to be at "
                f"most {mtxt} worse than it ({cost})")
        w = shown.sort_values("p_adjusted").iloc[-1]
        claim = _claim(a, "non_inferiority", w["family"], "noninferiority_t", None, w["p_value"],
                       w["p_adjusted"], True)
    else:
        row = shown[[_same(r, e, (str(pick["run"]), None if pd.isna(pick["epoch"]) else float(pick["epoch"])))
                     for r, e in zip(shown["run"], shown["epoch"], strict=True)]].iloc[0]
        text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {_name(a, ctx, pick['run'], pick['epoch'])} "
                f"({fmt_value(b.metric, pick['value'])}, {cost}) — shown to be at most {mtxt} worse than the best "
                f"{_cand(ctx, b.run, b.epoch)} ({fmt_value(b.metric, b.value)}, {fmt_hours(bc, unit)}): "
                f"one-sided {a.confidence:.0%} lower bound {fmt_diff(b.metric, row['lower'])}, non-inferiority "
                f"Holm p {fmt_p(row['p_adjusted'])}, at lower cost")
        claim = _claim(a, "non_inferiority", row["family"], "noninferiority_t", None, row["p_value"],
                       row["p_adjusted"], True)
    if pick["run"] in ctx.baselines:
        text += "; it is a baseline, so fine-tuning did not pay for its cost here"
    return text, claim


def _cannot_tell(a: Analysis, ctx: FindingContext, b: Best, fam: pd.DataFrame, ni: pd.DataFrame, pick: pd.Series,
                 mtxt: str, unit: Any, margin: float) -> list[Finding]:
    """The cheapest cheaper candidate that is neither shown worse nor shown non-inferior, with
    the paired samples that would settle it."""
    failed = ctx.failed
    cheaper = fam.dropna(subset=["gpu_hours"])
    cheaper = cheaper[(cheaper["gpu_hours"] < float(pick["gpu_hours"])) & ~cheaper["run"].isin(failed)]
    c = a.comparisons
    out = []
    for _, r in cheaper.sort_values("gpu_hours").head(1).iterrows():
        key = (str(r["run"]), None if pd.isna(r["epoch"]) else float(r["epoch"]))
        nr = ni[[_same(x, e, key) for x, e in zip(ni["run"], ni["epoch"], strict=True)]] if len(ni) else ni
        vb = c[(c["task"] == b.task) & (c["scorer"] == b.scorer) & (c["kind"] == "vs_best")
               & np.array([_same(x, e, key) for x, e in zip(c["b"], c["epoch_b"], strict=True)], dtype=bool)] \
            if not c.empty else c
        if len(vb) and bool(vb["significant"].iloc[0]):
            continue  # shown worse: nothing to tell
        if not len(nr):
            continue
        need = nr["n_needed"].iloc[0]
        need_txt = f"about {int(need):,} paired samples" if not pd.isna(need) else "more samples"
        out.append(_f("recommendations", "cannot_tell",
                      f"On {_on(ctx, b.task, b.scorer)}, cannot tell whether the cheaper {_name(a, ctx, r['run'], r['epoch'])} "
                      f"({fmt_value(b.metric, r['value'])}, {fmt_hours(r['gpu_hours'], unit)}) is as good as the best: it is "
                      f"neither shown worse nor shown within {mtxt} of it (one-sided lower bound "
                      f"{fmt_diff(b.metric, nr['lower'].iloc[0])}); if the two are equal, {need_txt} would show "
                      f"non-inferiority with 80% power", task=b.task, run=r["run"], n_needed=need, margin=margin))
    return out


def _pareto_front(ctx: FindingContext, b: Best, fam: pd.DataFrame) -> list[Finding]:
    """The Pareto-optimal candidates (metric vs training GPU time), when there are two or more."""
    front = fam[fam["pareto"].astype(bool)].sort_values("gpu_hours")
    if len(front) < 2:
        return []
    funit = gpu_unit([float(x) for x in front["gpu_hours"]])
    items = "; ".join(f"{_cand(ctx, r['run'], r['epoch'])} {fmt_value(b.metric, r['value'])} at "
                      f"{fmt_hours(r['gpu_hours'], funit)}" for _, r in front.iterrows())
    return [_f("recommendations", "pareto",
               f"On {_on(ctx, b.task, b.scorer)}, the {len(front)} Pareto-optimal candidates ({b.metric} vs "
               f"training GPU time) are: {items}", task=b.task, runs=list(front["run"]))]


def _runs_claim(a: Analysis, b: Best, runs: set[str]) -> Claim | None:
    """The vs-best test behind "a run at level L is (not) significantly different": the
    least significant of the best's tests against those runs (None without one)."""
    vb = _vs_best_rows(a, b)
    if vb.empty or "family" not in vb.columns:
        return None
    g = vb[vb["b"].astype(str).isin(runs)]
    if g.empty:
        return None
    w = g.sort_values("p_adjusted").iloc[-1]
    return _claim(a, "difference", w["family"], w["test"], w["statistic"], w["p_value"], w["p_adjusted"],
                  w["significant"])


def _midpoint(lo: float, hi: float) -> float | None:
    """Level between two tested ones: geometric for ratios ≥ 4 (ranks 4 and 16 → 8,
    learning rates), else arithmetic; integers stay integers; None when none fits."""
    if float(lo).is_integer() and float(hi).is_integer() and lo > 0 and hi / lo >= 4:
        mid = round(math.sqrt(lo * hi))
        return float(mid) if lo < mid < hi else None
    if float(lo).is_integer() and float(hi).is_integer():
        mid = round((lo + hi) / 2)
        return float(mid) if lo < mid < hi else None
    if lo > 0 and hi / lo >= 2:
        return float(f"{math.sqrt(lo * hi):.2g}")
    return float(f"{(lo + hi) / 2:.3g}")


def rule_next_steps(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``untested_level``, ``edge_of_grid``, ``more_seeds``, ``larger_eval_set``: grid advice
    for every task first, then per task whether more seeds or a larger evaluation set would
    settle what this sweep could not. A secondary metric is described, not tested: no advice
    comes from it."""
    out: list[Finding] = []
    runs: pd.DataFrame = ctx.runs
    info = runs.set_index("run") if not runs.empty else pd.DataFrame()
    primary = [b for b in a.best if _confirmatory(a, b.task, b.scorer, b.metric)]
    for b in primary:
        out += _grid_advice(a, ctx, b, info)
    power = {(p["task"], p["scorer"]): p for p in a.power}
    for b in primary:
        p = power.get((b.task, b.scorer))
        out += _seed_advice(a, ctx, b, p)
        out += _eval_set_advice(a, ctx, b, p)
    return out


def _grid_advice(a: Analysis, ctx: FindingContext, b: Best, info: pd.DataFrame) -> list[Finding]:
    """A level between the best's and a neighbour it could not be told from; a level beyond
    the edge of the grid when the best sits there and its neighbour is worse."""
    out: list[Finding] = []
    anchor, anchor_name, good, level_claim = _anchor(a, ctx, b)
    anchor_label = "the best configuration" if anchor_name.startswith("the best configuration") else "the best run"
    if anchor not in info.index:
        return out
    an = a.anova[(a.anova["task"] == b.task) & (a.anova["scorer"] == b.scorer)]
    null_terms = set(an.loc[~(an["p_value"] < 1 - a.confidence), "term"])
    for var in ctx.variables:
        if var not in info.columns or ctx.seed_var == var:
            continue
        lv = pd.to_numeric(info[var], errors="coerce").dropna()
        levels = sorted(set(lv))
        best_level = pd.to_numeric(pd.Series([info.loc[anchor, var]]), errors="coerce").iloc[0]
        if len(levels) < 2 or pd.isna(best_level):
            continue
        i = levels.index(best_level)
        for j in (i - 1, i + 1):
            if not 0 <= j < len(levels):
                continue
            neighbour_good = any(r in good for r in lv.index[lv == levels[j]])
            lo, hi = sorted((levels[i], levels[j]))
            mid = _midpoint(lo, hi)
            if neighbour_good and mid is not None and var not in null_terms:
                out.append(_f("next_steps", "untested_level",
                              f"Try {var} = {fmt_level(mid)} on {_on(ctx, b.task, b.scorer)}: {anchor_name}"
                              f"{var} = {fmt_level(levels[i])}) and a run at {var} = {fmt_level(levels[j])} are not "
                              f"significantly different, and nothing between them was tested",
                              level_claim(set(lv.index[lv == levels[j]].astype(str))),
                              task=b.task, variable=var, level=mid, between=[lo, hi]))
        if i in (0, len(levels) - 1):
            j = 1 if i == 0 else len(levels) - 2
            if not any(r in good for r in lv.index[lv == levels[j]]):
                side = "below" if i == 0 else "above"
                out.append(_f("next_steps", "edge_of_grid",
                              f"On {_on(ctx, b.task, b.scorer)} {anchor_label} has {var} = {fmt_level(levels[i])}, the edge of the tested range "
                              f"({fmt_level(levels[0])}–{fmt_level(levels[-1])}), and its neighbour {var} = {fmt_level(levels[j])} is "
                              f"significantly worse: test {side} {fmt_level(levels[i])}",
                              level_claim(set(lv.index[lv == levels[j]].astype(str))),
                              task=b.task, variable=var, edge=levels[i]))
    return out


def _seed_advice(a: Analysis, ctx: FindingContext, b: Best, p: dict[str, Any] | None) -> list[Finding]:
    """More seeds when candidates cannot be separated from the best and configurations have few."""
    out: list[Finding] = []
    mdd = p["mdd"] if p else math.nan
    seeds = a.seeds[(a.seeds["task"] == b.task)] if not a.seeds.empty else a.seeds
    max_seeds = int(seeds["n_seeds"].max()) if len(seeds) else 1
    stats = _config_stats(a, ctx, b)
    if stats:
        out.extend(_more_seeds_configs(a, ctx, b, stats))
    elif not b.clear_winner and b.tied_with and max_seeds < FEW_SEEDS:
        # seeds are trained per configuration: name configurations, never a control or base model
        names = _seed_targets(a, ctx, [r for r, _ in [(b.run, b.epoch), *_tied(a, b)]])
        if names:
            out.append(_f("next_steps", "more_seeds",
                          f"On {_on(ctx, b.task, b.scorer)}, {_plural(len(b.tied_with), 'candidate')} cannot be "
                          f"separated from the best (minimum detectable difference "
                          f"{fmt_diff(b.metric, mdd).lstrip('+')} for one uncorrected paired test) and configs "
                          f"have at most {_plural(max_seeds, 'seed')}: run {FEW_SEEDS} seeds of "
                          f"{_join(names[:3], ' and')} to tell training noise from real differences",
                          task=b.task, mdd=mdd, max_seeds=max_seeds, n_tied=len(b.tied_with),
                          configs=names[:3]))
    return out


def _eval_set_advice(a: Analysis, ctx: FindingContext, b: Best, p: dict[str, Any] | None) -> list[Finding]:
    """A larger evaluation set when the best's interval is much wider than the margin."""
    out: list[Finding] = []
    margin = ctx.margin
    if margin is None:
        eq = a.equivalence
        eq = eq[(eq["task"] == b.task) & (eq["scorer"] == b.scorer)] if not eq.empty else eq
        margin = float(eq["margin"].iloc[0]) if len(eq) else math.nan
    if b.ci_low is not None and b.ci_high is not None and p and not math.isnan(margin):
        half = (b.ci_high - b.ci_low) / 2
        if half > WIDE_CI_FACTOR * margin:
            need = samples_for_difference(margin, p["sd_diff"], p["alpha"], p["power"])
            need_txt = f"about {int(need):,} paired samples" if not math.isnan(need) else "many more samples"
            out.append(_f("next_steps", "larger_eval_set",
                          f"On {_on(ctx, b.task, b.scorer)} the best candidate's {a.confidence:.0%} CI spans "
                          f"{fmt_diff(b.metric, 2 * half).lstrip('+')} "
                          f"({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence).split(' CI ')[1]}) with "
                          f"n = {p['n']}; detecting a "
                          f"{fmt_diff(b.metric, margin).lstrip('+')} difference with "
                          f"{p['power']:.0%} power needs {need_txt}: use a larger eval set",
                          task=b.task, half_width=half, n=p["n"], n_needed=need))
    return out


def rule_references(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``vs_reference``: the best candidate of each target against each reference number, with
    how many candidates are significantly above and below it (Holm within the reference family)."""
    out: list[Finding] = []
    ref = a.references
    if ref is None or ref.empty:
        return out
    bests = {(b.task, b.scorer, b.metric): b for b in a.best}
    for (task, scorer, metric, name), g in ref.groupby(["task", "scorer", "metric", "reference"], sort=False):
        g = g[g["p_value"].notna()] if g["p_value"].notna().any() else g
        b = bests.get((task, scorer, metric))
        lead = g[[b is not None and _same(r, e, (b.run, b.epoch)) for r, e in zip(g["run"], g["epoch"], strict=True)]]
        if not len(lead):
            continue  # no best here (a descriptive metric): the table shows the values
        r = lead.iloc[0]
        sig = bool(r["significant"])
        verdict = ("significantly above" if sig and r["diff"] > 0 else "significantly below" if sig
                   else "not significantly different from")
        fam = a.families[a.families["family"] == r["family"]] if not a.families.empty else a.families
        size = int(fam["size"].iloc[0]) if len(fam) else len(g)
        lower = _direction(a, task, scorer, metric) == "lower"
        if sig and lower:
            verdict += " (worse: lower is better)" if r["diff"] > 0 else " (better: lower is better)"
        src = f", {r['source']}" if isinstance(r["source"], str) and r["source"] else ""
        above = int((g["significant"].astype(bool) & (g["diff"] > 0)).sum())
        below = int((g["significant"].astype(bool) & (g["diff"] < 0)).sum())
        text = (f"On {_on(ctx, task, scorer)}, the best candidate {_cand(ctx, r['run'], r['epoch'])} "
                f"({fmt_value(metric, r['value'])}) is {verdict} the reference {name} "
                f"({fmt_value(metric, r['reference_value'])}{src}): {fmt_diff(metric, r['diff'])} "
                f"({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=True)}, {r['test']}, "
                f"Holm p {fmt_p(r['p_adjusted'])} over the {size} tests of its reference family); {above} of "
                f"{len(g)} candidates are significantly above it and {below} below")
        claim = _claim(a, "difference", r["family"], r["test"], r["statistic"], r["p_value"], r["p_adjusted"], sig)
        out.append(_f("key_findings", "vs_reference", text, claim, task=task, scorer=scorer, metric=metric,
                      reference=name, run=r["run"], diff=r["diff"], p_adjusted=r["p_adjusted"], n_above=above,
                      n_below=below, n=len(g)))
    return out


# --- configurations (seed replicates pooled) ------------------------------------------------


def _config_stats(a: Analysis, ctx: FindingContext, b: Best) -> list[cfgs.ConfigStat]:
    """The family's configurations across seeds (empty without seed replicates)."""
    return cfgs.config_stats(a, b.task, b.scorer, b.metric, exclude=ctx.failed, runs=ctx.runs)


def _multi_epoch(stats: list[cfgs.ConfigStat]) -> bool:
    return len({s.epoch for s in stats}) > 1


def _welch_claim(a: Analysis, row: dict[str, Any] | None, kind: str, significant: bool) -> Claim | None:
    if row is None:
        return None
    return _claim(a, kind, row.get("family"), "welch", row.get("t"), row.get("p_value"), row.get("p_adjusted"),
                  significant)


def _tied_text(a: Analysis, b: Best, top: cfgs.ConfigStat, tied: list[str], stats: list[cfgs.ConfigStat]) -> str:
    """"lora_rank=8 (3 seeds: mean …; diff of seed means …, Welch Holm p = …)" per tied configuration."""
    rows = cfgs.welch_rows(a, b.task, b.scorer, b.metric, top)
    by = {s.config: s for s in stats if s.epoch == top.epoch}
    items = []
    for name in tied[:MAX_TIED_LISTED]:
        r = rows[rows["b"] == name]
        desc = cfgs.describe(b.metric, by[name]) if name in by else name
        if len(r) and not pd.isna(r["p_adjusted"].iloc[0]):
            desc += (f", diff of seed means {fmt_diff(b.metric, -float(r['diff'].iloc[0]))}, Welch Holm p "
                     f"{fmt_p(r['p_adjusted'].iloc[0])}")
        else:
            desc += ", no seed-level test"
        items.append(desc)
    return "; ".join(items)


def _best_config(a: Analysis, ctx: FindingContext, b: Best, stats: list[cfgs.ConfigStat]) -> Finding:
    """``best_config``: with seed replicates the best is a configuration — mean and SD across
    its seeds, tested against every other configuration across seeds (Welch, Holm); the
    highest single run is named only as one seed's draw."""
    top = cfgs.best_config(stats)
    assert top is not None
    multi = _multi_epoch(stats)
    others = [s for s in stats if s.config != top.config and s.epoch == top.epoch]
    tied = cfgs.not_separated(a, b.task, b.scorer, b.metric, top, stats)
    rows = cfgs.welch_rows(a, b.task, b.scorer, b.metric, top)
    ci = (f", {fmt_ci(b.metric, top.ci_low, top.ci_high, a.confidence)} across seeds"
          if not math.isnan(top.ci_low) else "")
    head = f"On {_on(ctx, b.task, b.scorer)}, the best configuration is {cfgs.describe(b.metric, top, multi)}{ci}"
    confirm = _confirmatory(a, b.task, b.scorer, b.metric)
    clear = confirm and bool(others) and not tied and len(rows) > 0
    if not confirm:
        tied = []
        text = (f"{head}; {b.scorer} {b.metric} is a secondary metric here, described but not tested "
                "(--confirmatory all makes it confirmatory)")
    elif not others:
        text = f"{head}; there is no other configuration to compare it with"
    elif clear:
        worst = rows["p_adjusted"].max()
        text = (f"{head}; it is a clear winner: it scores significantly better than every other configuration "
                f"across seeds (Welch, Holm p {fmt_p(worst)})")
    else:
        text = (f"{head}, but it is not a clear winner: across seeds it is not distinguishable from "
                f"{_tied_text(a, b, top, tied, stats)}")
    top_cfg = cfgs.config_of(a, b.run)
    if len(top.runs) > 1 or b.run not in top.runs:
        seed_of = f"one seed of {top_cfg}" if top_cfg else "a single run"
        text += (f"; the highest single run, {_cand(ctx, b.run, b.epoch)} ({fmt_value(b.metric, b.value)}), is "
                 f"{seed_of} — one seed's draw, not a choice by itself")
    claim = None
    if confirm and len(rows):
        claim = _welch_claim(a, cfgs.claim_row(rows), "winner", clear)
    return _f("best_performers", "best_config", text, claim, task=b.task, scorer=b.scorer, config=top.config,
              runs=top.runs, epoch=top.epoch, value=top.mean, mean=top.mean, sd=top.sd, n_seeds=top.n,
              ci_low=top.ci_low, ci_high=top.ci_high, tied_with=tied, clear_winner=clear, best_run=b.run,
              best_run_value=b.value)


def _production_config(a: Analysis, ctx: FindingContext, b: Best, stats: list[cfgs.ConfigStat]) -> list[Finding]:
    """``production_config`` with seed replicates: the configuration with the best mean across
    seeds (failed runs left out), its cost per run, and whether the seed-level tests settle it."""
    top = cfgs.best_config(stats)
    if top is None:
        return []
    multi = _multi_epoch(stats)
    cost = None
    if not math.isnan(top.gpu_hours):
        cost = f"{fmt_hours(top.gpu_hours, gpu_unit([top.gpu_hours]))} per run"
    tied = cfgs.not_separated(a, b.task, b.scorer, b.metric, top, stats)
    rows = cfgs.welch_rows(a, b.task, b.scorer, b.metric, top)
    text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {cfgs.describe(b.metric, top, multi, cost=cost)} "
            f"— the best mean across seeds")
    others = [s for s in stats if s.config != top.config and s.epoch == top.epoch]
    if others and not tied and len(rows):
        text += (f", significantly better than every other configuration (Welch, Holm p "
                 f"{fmt_p(rows['p_adjusted'].max())})")
        claim = _welch_claim(a, cfgs.claim_row(rows), "difference", True)
    elif tied:
        text += (f"; the seeds do not settle the choice: it is not distinguishable from "
                 f"{_tied_text(a, b, top, tied, stats)}; pick by cost or run more seeds")
        closest = rows[rows["b"].isin(tied)] if len(rows) else rows
        claim = _welch_claim(a, cfgs.claim_row(closest), "difference", False)
    else:
        claim = None
    return [_f("recommendations", "production_config", text, claim, task=b.task, config=top.config,
               runs=top.runs, epoch=top.epoch, value=top.mean, sd=top.sd, n_seeds=top.n,
               gpu_hours=None if math.isnan(top.gpu_hours) else top.gpu_hours, tied_with=tied)]


def _more_seeds_configs(a: Analysis, ctx: FindingContext, b: Best, stats: list[cfgs.ConfigStat]) -> list[Finding]:
    """``more_seeds`` with replicates: the best configuration and those it cannot be told from,
    by name — never a seed replicate, a control or a base model."""
    top = cfgs.best_config(stats)
    if top is None:
        return []
    tied = cfgs.not_separated(a, b.task, b.scorer, b.metric, top, stats)
    by = {s.config: s for s in stats if s.epoch == top.epoch}
    have = min(by[c].n for c in [top.config, *tied] if c in by)
    if not tied or have >= FEW_SEEDS:
        return []
    names = [top.config, *tied][:3]
    return [_f("next_steps", "more_seeds",
               f"On {_on(ctx, b.task, b.scorer)}, the best configuration {top.config} cannot be told from "
               f"{_join(tied[:2], ' or')} across seeds with {_plural(have, 'seed')} each: run {FEW_SEEDS} distinct seeds of "
               f"each of {_join(names, ' and')} to tell training noise from real differences",
               task=b.task, configs=names, max_seeds=have)]


def _seed_targets(a: Analysis, ctx: FindingContext, runs: list[str]) -> list[str]:
    """Configurations to run more seeds of: fine-tuned, not a baseline, each named once
    (``lora_rank=32 (run r32)`` when the run has a configuration label)."""
    info = ctx.runs.set_index("run") if len(ctx.runs) else pd.DataFrame()
    out: list[str] = []
    for r in dict.fromkeys(runs):
        if r in ctx.baselines or r in ctx.failed:
            continue
        if len(info) and r in info.index and "type" in info.columns and str(info.loc[r, "type"]) != "fine-tuned":
            continue
        cfg = cfgs.config_of(a, r)
        out.append(f"{cfg} ({r})" if cfg and cfg != "all" else r)
    return out


def _anchor(a: Analysis, ctx: FindingContext, b: Best) -> tuple[str, str, set[str], Callable[[set[str]], Claim | None]]:
    """What the grid suggestions start from: the best configuration with seed replicates
    (its runs, and the runs of configurations not shown worse across seeds), else the best
    checkpoint and the candidates tied with it."""
    stats = _config_stats(a, ctx, b)
    top = cfgs.best_config(stats) if stats else None
    if top is None:
        return (b.run, f"the best ({_cand(ctx, b.run, b.epoch)}, ", {b.run} | {k[0] for k in _tied(a, b)},
                lambda runs: _runs_claim(a, b, runs))
    tied = set(cfgs.not_separated(a, b.task, b.scorer, b.metric, top, stats))
    good = set(top.runs) | {str(r) for r, c in a.configs.items() if c in tied}
    rows = cfgs.welch_rows(a, b.task, b.scorer, b.metric, top)

    def claim(runs: set[str]) -> Claim | None:
        names = {str(a.configs.get(r)) for r in runs if r in a.configs.index}
        g = rows[rows["b"].isin(names)] if len(rows) else rows
        r = cfgs.claim_row(g)
        return _welch_claim(a, r, "difference", bool(r["significant"])) if r else None

    return top.runs[0], "the best configuration (", good, claim


# --- scorer kinds: risk, two-class and subgroup rules (tables from stats/scorer_kinds.py) -------
IMBALANCED = 0.4
"""``class_imbalance`` fires when the eval set's minority class is below this share."""


def _auc_pair(ctx: FindingContext, r: pd.Series, conf: float) -> str:
    return (f"{_cand(ctx, r['a'], r['epoch_a'])} AUC {r['auc_a']:.3f} vs {_cand(ctx, r['b'], r['epoch_b'])} "
            f"{r['auc_b']:.3f} (difference {r['diff']:+.3f}, unadjusted {conf:.0%} CI {r['ci_low']:+.3f} to "
            f"{r['ci_high']:+.3f}, DeLong z = {r['statistic']:.2f}, Holm p {fmt_p(r['p_adjusted'])}, paired over "
            f"{int(r['n_paired'])} samples)")


def rule_auc_differences(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``auc_difference`` (a DeLong test that survives Holm in its discrimination family: one
    sentence per pair, at most MAX_PAIR_SENTENCES per family) and ``auc_not_distinguishable``
    (the other pairs of the family, in one sentence)."""
    t = getattr(a, "auc_tests", None)
    out: list[Finding] = []
    if t is None or t.empty or "significant" not in t.columns:
        return out
    for (task, scorer), g in t.groupby(["task", "scorer"], sort=True):
        if not g["confirmatory"].astype(bool).any():
            continue
        g = g.sort_values(["p_adjusted", "diff"], ascending=[True, False])
        sig = g[g["significant"].astype(bool)]
        for _, r in sig.head(MAX_PAIR_SENTENCES).iterrows():
            out.append(_f("key_findings", "auc_difference",
                          f"On {_on(ctx, task, scorer)}, {_cand(ctx, r['a'], r['epoch_a'])} separates positives from "
                          f"negatives better than {_cand(ctx, r['b'], r['epoch_b'])}: {_auc_pair(ctx, r, a.confidence)}",
                          _claim(a, "difference", r.get("family"), "delong", r["statistic"], r["p_value"],
                                 r["p_adjusted"], True),
                          task=task, scorer=scorer, a=r["a"], b=r["b"], auc_a=r["auc_a"], auc_b=r["auc_b"],
                          diff=r["diff"], p_value=r["p_value"], p_adjusted=r["p_adjusted"]))
        if len(sig) > MAX_PAIR_SENTENCES:
            out.append(_f("key_findings", "auc_difference_more",
                          f"On {_on(ctx, task, scorer)}, {len(sig) - MAX_PAIR_SENTENCES} more AUC differences are "
                          "significant after Holm correction (AUC comparison table)",
                          task=task, scorer=scorer, n=len(sig) - MAX_PAIR_SENTENCES))
        rest = g[~g["significant"].astype(bool)]
        if len(rest):
            r0 = rest.iloc[0]
            items = "; ".join(_auc_pair(ctx, r, a.confidence) for _, r in rest.head(MAX_TIED_LISTED).iterrows())
            more = len(rest) - min(len(rest), MAX_TIED_LISTED)
            out.append(_f("key_findings", "auc_not_distinguishable",
                          f"On {_on(ctx, task, scorer)}, {_plural(len(rest), 'pair')} of candidates "
                          f"{'has' if len(rest) == 1 else 'have'} AUCs not significantly different after Holm "
                          f"correction (not evidence that they are equal): {items}"
                          + (f"; and {more} more in the AUC comparison table" if more else ""),
                          _claim(a, "difference", r0.get("family"), "delong", r0["statistic"], r0["p_value"],
                                 r0["p_adjusted"], False),
                          task=task, scorer=scorer, a=[str(x) for x in rest["a"]], b=[str(x) for x in rest["b"]],
                          p_adjusted=[float(x) for x in rest["p_adjusted"]]))
    return out


def _gain_text(metric: str, gains: dict[str, float], sign: float) -> str:
    """Per-level differences, largest improvement first (``sign``: −1 when lower is better)."""
    return ", ".join(f"{fmt_diff(metric, v)} in {k}" for k, v in sorted(gains.items(), key=lambda kv: -sign * kv[1]))


def rule_heterogeneity(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``gain_heterogeneous`` (the best's gain over a candidate differs across the levels of a
    sample category: one-way ANOVA of the paired differences, significant after Holm in its
    heterogeneity family) and ``gain_homogeneous`` (no evidence that it differs; not evidence
    that it is the same)."""
    t = getattr(a, "subgroup_tests", None)
    out: list[Finding] = []
    if t is None or t.empty or "significant" not in t.columns:
        return out
    from analyze_experiment.stats.scorer_kinds import gains as level_gains

    for _, r in t.sort_values(["p_adjusted", "key"]).iterrows():
        if not bool(r["confirmatory"]):
            continue
        metric = str(r["metric"])
        g = level_gains(r)
        sign = _sign(a, r["task"], r["scorer"], metric)
        worst = min(g, key=lambda k: sign * g[k]) if g else r["gain_low_level"]
        way = " (lower is better)" if sign < 0 else ""
        who = f"{_cand(ctx, r['a'], r['epoch_a'])} over {_cand(ctx, r['b'], r['epoch_b'])}{way}"
        test = (f"one-way ANOVA of the paired differences across {int(r['n_levels'])} levels, F({int(r['df1'])}, "
                f"{int(r['df2'])}) = {r['statistic']:.2f}, Holm p {fmt_p(r['p_adjusted'])}")
        claim = _claim(a, "difference", r.get("family"), "anova_interaction", r["statistic"], r["p_value"],
                       r["p_adjusted"], bool(r["significant"]))
        data = dict(task=r["task"], scorer=r["scorer"], metric=metric, key=r["key"], a=r["a"], b=r["b"], gains=g,
                    p_value=r["p_value"], p_adjusted=r["p_adjusted"])
        if bool(r["significant"]):
            out.append(_f("key_findings", "gain_heterogeneous",
                          f"On {_on(ctx, r['task'], r['scorer'])}, the {metric} gain of {who} is not the same in "
                          f"every {r['key']}: {_gain_text(metric, g, sign)} ({test}); the average gain hides the "
                          f"{worst} subgroup", claim, **data))
        else:
            out.append(_f("statistical_summary", "gain_homogeneous",
                          f"On {_on(ctx, r['task'], r['scorer'])}, no evidence that the {metric} gain of {who} "
                          f"differs across {r['key']}: {_gain_text(metric, g, sign)} ({test}); not evidence that it is "
                          "the same (few samples per level give the test little power)", claim, **data))
    return out


def _share(k: float, n: float) -> str:
    return f"{k / n:.0%}" if n else "n/a"


def rule_scorer_quality(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """Data-quality notes of risk and two-class scorers (descriptive, no test):
    ``unparsed_risk`` (outputs a risk scorer could not read as a probability), ``other_answers``
    (two-class answers that are neither label), ``class_imbalance`` (an eval set whose minority
    class is below IMBALANCED, and the candidates that answer one label only)."""
    out: list[Finding] = []
    risk = getattr(a, "risk", None)
    cls = getattr(a, "classification", None)
    if risk is not None and not risk.empty:
        for _, r in risk[risk["n_unparsed"] > 0].iterrows():
            out.append(_f("data_quality", "unparsed_risk",
                          f"{_cand(ctx, r['run'], r['epoch'])} on {_on(ctx, r['task'], r['scorer'])}: "
                          f"{int(r['n_unparsed'])} of {int(r['n'])} outputs ({_share(r['n_unparsed'], r['n'])}) could "
                          "not be read as a probability; they are left out of Brier, AUC and ECE and count as wrong "
                          "in the rates at 0.5", run=r["run"], task=r["task"], scorer=r["scorer"],
                          n_unparsed=r["n_unparsed"], n=r["n"]))
    if cls is not None and not cls.empty:
        for _, r in cls[cls["other"] > 0].iterrows():
            out.append(_f("data_quality", "other_answers",
                          f"{_cand(ctx, r['run'], r['epoch'])} on {_on(ctx, r['task'], r['scorer'])}: "
                          f"{int(r['other'])} of {int(r['n'])} answers ({_share(r['other'], r['n'])}) are neither "
                          f"'{r['negative_label']}' nor '{r['positive_label']}'; they count as wrong",
                          run=r["run"], task=r["task"], scorer=r["scorer"], other=r["other"], n=r["n"]))
    frames = [(f, lab) for f, lab in ((risk, "risk"), (cls, "classification")) if f is not None and not f.empty]
    for f, _kind in frames:
        for (task, scorer), g in f.groupby(["task", "scorer"], sort=True):
            prev = float(g["prevalence"].iloc[0])
            if math.isnan(prev) or min(prev, 1 - prev) >= IMBALANCED:
                continue
            pos = str(g["positive_label"].iloc[0])
            neg = (str(g["negative_label"].iloc[0]) if "negative_label" in g.columns
                   else {"1": "0", "yes": "no", "true": "false"}.get(pos.lower(), f"not {pos}"))
            major, share = (neg, 1 - prev) if prev < 0.5 else (pos, prev)
            text = (f"The eval set of {_on(ctx, task, scorer)} is imbalanced: {prev:.0%} of its "
                    f"{int(g['n'].iloc[0])} samples are '{pos}', so always answering '{major}' scores "
                    f"{share:.0%} accuracy; balanced accuracy and F1 (classification table) do not reward it")
            one = [r for _, r in g.iterrows() if (r["tp"] + r["fp"] == 0) != (r["tn"] + r["fn"] == 0)]
            if one:
                text += "; " + ", ".join(
                    f"{_cand(ctx, r['run'], r['epoch'])} never predicts '{pos if r['tp'] + r['fp'] == 0 else neg}' "
                    f"(accuracy {r['accuracy']:.0%}, balanced accuracy {r['balanced_accuracy']:.0%})" for r in one)
            out.append(_f("data_quality", "class_imbalance", text, task=task, scorer=scorer, prevalence=prev,
                          one_label=[str(r["run"]) for r in one]))
    return out


RULES: list[Callable[[Analysis, dict[str, Any]], list[Finding]]] = [
    health.rule_failed_runs, health.rule_failed_key, rule_no_evals, rule_best, health.rule_best_so_far,
    rule_baseline, rule_references, rule_anova_effect, rule_anova_no_effect, rule_confounded, rule_pairs,
    rule_epoch, rule_marginal, rule_diminishing, rule_seeds, rule_outliers, rule_overfitting, rule_summary, rule_anova_detail,
    rule_production, rule_next_steps, health.rule_rerun_failed, rule_saturated, rule_parse_failures,
]
"""In report order: Key Findings lead with the best against the baseline, then the
variables that matter (largest effect first), those that do not, the candidates tied with
the best, and the finer points (epochs, steps, seeds, outliers)."""
RULES += [rule_auc_differences, rule_heterogeneity, rule_scorer_quality]  # risk, two-class and subgroup tables
RULES += [rule_hypotheses]  # the design's expectations answered (report/hypotheses.py)


def build_findings(a: Analysis, *, runs: pd.DataFrame, variables: list[str], baselines: list[str],
                   options: Options, seed_var: str | None = None, train_steps: pd.DataFrame | None = None,
                   on_error: Callable[[str, Exception], None] | None = None,
                   hypotheses: list[Any] | None = None) -> list[Finding]:
    """Apply every rule in order, then the bottom line over their findings; sentences end with a
    full stop.

    A rule that fails on odd data is skipped and reported to ``on_error(rule, error)``
    (re-raised when no handler is given, so tests see it). ``hypotheses``: the design's
    expectations (:func:`analyze_experiment.ingest.design_hypotheses.design_hypotheses`).
    """
    multi_scorer: set[str] = set()
    if not a.intervals.empty:
        n_sc = a.intervals.groupby("task")["scorer"].nunique()
        multi_scorer = set(n_sc[n_sc > 1].index.astype(str))
    multi = set()
    if not a.intervals.empty:
        n_ep = a.intervals.groupby("run")["epoch"].nunique(dropna=False)
        multi = set(n_ep[n_ep > 1].index.astype(str))
    marks = health.failed_marks(a)
    ctx = FindingContext(runs=runs, variables=variables, baselines=baselines, margin=options.margin,
                         seed_var=seed_var, train_steps=train_steps, hypotheses=list(hypotheses or []),
                         multi_scorer=multi_scorer, multi_epoch=multi,
                         failed=set() if options.include_failed else set(marks), failed_marks=marks,
                         include_failed=options.include_failed)
    out: list[Finding] = []
    # best, findings and recommendations speak of each scorer's primary metric; the other
    # metrics' bests stay in the tables (Analysis.best), reported beside it
    ranked = replace(a, best=primary_best(a.best, a.metrics))
    for rule in RULES:
        try:
            found = rule(ranked, ctx)
        except Exception as err:
            if on_error is None:
                raise
            on_error(rule.__name__.removeprefix("rule_"), err)
            continue
        for f in found:
            text = f.text
            caveats = qualifiers(a.facts, f.rule, f.data, text)
            if caveats:  # the design's own facts qualify every finding they touch
                text = text.rstrip(".") + f" (caveat: {'; '.join(caveats)})"
            text = text if text.endswith(".") else text + "."
            out.append(Finding(f.section, text, f.rule, {k: _plain(v) for k, v in f.data.items()}, f.claim))
    try:  # the bottom line restates the findings above: it runs last, over them
        out = bottom_line(ranked, ctx, out) + out
    except Exception as err:
        if on_error is None:
            raise
        on_error("bottom_line", err)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
