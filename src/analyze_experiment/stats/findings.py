"""Rules that turn the statistics into the report's sentences.

Each rule has an id (documented with its thresholds in docs/statistics.md), fires only
when the data say so, and puts its numbers in the sentence and in ``Finding.data``. No
sentence is written that the tables do not back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis, Best, Finding
from analyze_experiment.model import Options
from analyze_experiment.stats._format import (
    fmt_ci,
    fmt_diff,
    fmt_hours,
    fmt_level,
    fmt_p,
    fmt_usd,
    fmt_value,
    gpu_unit,
)
from analyze_experiment.stats.candidates import label
from analyze_experiment.stats.effects import BLOCK_TERM
from analyze_experiment.stats.power import minimum_detectable_difference, samples_for_difference

MAX_PAIR_SENTENCES = 3
"""At most this many ``equivalent`` sentences per family."""
MAX_TIED_LISTED = 6
"""``not_distinguishable`` lists at most this many candidates (the rest: "and k more")."""
WIDE_CI_FACTOR = 2.0
"""``larger_eval_set`` fires when the best's CI half-width exceeds this × margin."""
FEW_SEEDS = 5
"""``more_seeds`` fires without a clear winner when configs have fewer seeds than this."""
LOW_RESIDUAL_DF = 3
"""ANOVA sentences warn of little power below this many residual degrees of freedom."""


def _cand(ctx: dict[str, Any], run: str, epoch: Any) -> str:
    """Run name, with the epoch only when the run was evaluated at several epochs."""
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    return label((str(run), ep if str(run) in ctx["multi_epoch"] else None))


def _on(ctx: dict[str, Any], task: str, scorer: str) -> str:
    """"qa" or "qa (match)" when the task was scored by several scorers."""
    return f"{task} ({scorer})" if task in ctx["multi_scorer"] else str(task)


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


def _f(section: str, rule: str, text: str, **data: Any) -> Finding:
    return Finding(section=section, text=text, rule=rule, data=data)


# --- rules ----------------------------------------------------------------------------
def rule_no_evals(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``no_evals``: nothing to compare."""
    if not a.intervals.empty:
        return []
    return [_f("key_findings", "no_evals",
               f"No evaluation scores were found for any of the {ctx['n_runs']} runs, so no accuracy, "
               "interval or comparison could be computed.", n_runs=ctx["n_runs"])]


def rule_best(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``best_clear_winner`` / ``best_no_clear_winner``: the best of each family and why."""
    out = []
    for b in a.best:
        iv = a.intervals[(a.intervals["task"] == b.task) & (a.intervals["scorer"] == b.scorer)
                         & (a.intervals["run"] == b.run)]
        n = int(iv["n"].iloc[0]) if len(iv) else 0
        head = (f"On {_on(ctx, b.task, b.scorer)}, {_cand(ctx, b.run, b.epoch)} has the highest {b.metric}: "
                f"{fmt_value(b.metric, b.value)} ({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence)}, "
                f"n = {n})")
        data = {"task": b.task, "scorer": b.scorer, "run": b.run, "epoch": b.epoch, "value": b.value,
                "ci_low": b.ci_low, "ci_high": b.ci_high, "n": n, "tied_with": b.tied_with}
        if b.clear_winner:
            out.append(_f("best_performers", "best_clear_winner", f"{head}; it is a clear winner: {b.reason}.", **data))
        else:
            out.append(_f("best_performers", "best_no_clear_winner",
                          f"{head}, but it is not a clear winner: {b.reason}.", **data))
    return out


def rule_pairs(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``equivalent`` (TOST, one sentence per pair) and ``not_distinguishable`` (every
    candidate with Holm p ≥ α against the best and TOST not met, grouped in one sentence
    per family, least separated first)."""
    out: list[Finding] = []
    if a.comparisons.empty:
        return out
    vb = a.comparisons[a.comparisons["kind"] == "vs_best"]
    for (_task, _scorer, metric), g in vb.groupby(["task", "scorer", "metric"], sort=True):
        eq = a.equivalence
        n_eq = 0
        tied: list[tuple[pd.Series, str]] = []
        for _, r in g.sort_values(["p_adjusted", "diff"], ascending=[False, True]).iterrows():
            if r["significant"]:
                continue
            e = eq[(eq["task"] == r["task"]) & (eq["scorer"] == r["scorer"]) & (eq["b"] == r["b"])
                   & (eq["epoch_b"].fillna(-1) == (-1 if pd.isna(r["epoch_b"]) else r["epoch_b"]))]
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
                              f"TOST p {fmt_p(er['p_tost'])})", task=r["task"], scorer=r["scorer"], a=r["a"],
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
        text = (f"On {_on(ctx, r0['task'], r0['scorer'])}, {_plural(len(tied), 'candidate')} "
                f"{'is' if len(tied) == 1 else 'are'} within the noise of the best, "
                f"{_cand(ctx, r0['a'], r0['epoch_a'])} (not significantly worse after Holm correction, paired over "
                f"{int(r0['n_paired'])} samples; not evidence that they are equal): {'; '.join(shown)}")
        if more:
            text += f"; and {more} more in the comparison table"
        out.append(_f("key_findings", "not_distinguishable", text, task=r0["task"], scorer=r0["scorer"],
                      a=r0["a"], b=[str(r["b"]) for r, _ in tied],
                      epoch_b=[None if pd.isna(r["epoch_b"]) else float(r["epoch_b"]) for r, _ in tied],
                      diff=[float(r["diff"]) for r, _ in tied],
                      p_adjusted=[float(r["p_adjusted"]) for r, _ in tied]))
    return out


def _vs_baseline(c: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
    """Every candidate-vs-baseline row, oriented as candidate − baseline."""
    rows = []
    for _, r in c.iterrows():
        if r["b"] in baselines and r["a"] not in baselines:
            rows.append((r["task"], r["scorer"], r["metric"], r["a"], r["epoch_a"], r["b"], r["diff"],
                         r["ci_low"], r["ci_high"], r["p_adjusted"], bool(r["significant"])))
        elif r["a"] in baselines and r["b"] not in baselines:
            rows.append((r["task"], r["scorer"], r["metric"], r["b"], r["epoch_b"], r["a"], -r["diff"],
                         -r["ci_high"], -r["ci_low"], r["p_adjusted"], bool(r["significant"])))
    return pd.DataFrame(rows, columns=["task", "scorer", "metric", "run", "epoch", "baseline", "diff",
                                       "ci_low", "ci_high", "p_adjusted", "significant"])


def _interval_value(a: Analysis, task: str, scorer: str, run: str, epoch: Any) -> float:
    iv = a.intervals
    g = iv[(iv["task"] == task) & (iv["scorer"] == scorer) & (iv["run"] == run)]
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    g = g[[(None if pd.isna(e) else float(e)) == ep for e in g["epoch"]]]
    return float(g["value"].iloc[0]) if len(g) else math.nan


def rule_baseline(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``vs_baseline``: the best candidate against each baseline, then how many candidates
    beat (or fall below) it; the largest gain when another candidate has it."""
    out: list[Finding] = []
    if a.comparisons.empty or not ctx["baselines"]:
        return out
    vb = _vs_baseline(a.comparisons, ctx["baselines"])
    bests = {(b.task, b.scorer, b.metric): b for b in a.best}
    for (task, scorer, metric, base), g in vb.groupby(["task", "scorer", "metric", "baseline"], sort=True):
        better = g[g["significant"] & (g["diff"] > 0)]
        worse = g[g["significant"] & (g["diff"] < 0)]
        top = g.sort_values("diff", ascending=False).iloc[0]
        b = bests.get((task, scorer, metric))
        lead = g[[b is not None and _same(r, e, (b.run, b.epoch)) for r, e in zip(g["run"], g["epoch"], strict=True)]]
        r = lead.iloc[0] if len(lead) else top
        who = "the best candidate" if len(lead) else "the candidate with the largest gain"
        base_v = _interval_value(a, task, scorer, base, None)
        verdict = ("significantly above" if r["significant"] and r["diff"] > 0 else
                   "significantly below" if r["significant"] else "not significantly different from")
        text = (f"On {_on(ctx, task, scorer)}, {who}, {_cand(ctx, r['run'], r['epoch'])} "
                f"({fmt_value(metric, r['diff'] + base_v)}), is {verdict} the baseline {base} "
                f"({fmt_value(metric, base_v)}): {fmt_diff(metric, r['diff'])} "
                f"({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=True)}, "
                f"Holm p {fmt_p(r['p_adjusted'])}); {len(better)} of {len(g)} candidates score significantly "
                f"higher than the baseline after Holm correction")
        if len(worse):
            text += f" and {len(worse)} significantly lower"
        if len(lead) and not _same(top["run"], top["epoch"], (r["run"], r["epoch"])) and top["diff"] > r["diff"]:
            text += (f"; the largest gain is {_cand(ctx, top['run'], top['epoch'])} {fmt_diff(metric, top['diff'])} "
                     f"(Holm p {fmt_p(top['p_adjusted'])})")
        out.append(_f("key_findings", "vs_baseline", text, task=task, scorer=scorer, baseline=base,
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


def rule_anova_effect(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``anova_effect``: per family, the terms that matter (p < α), ranked by partial η²."""
    out: list[Finding] = []
    alpha = 1 - a.confidence
    for key, terms, df_res in _anova_terms(a):
        task, scorer, _ = key
        sig = terms[terms["p_value"] < alpha].sort_values("partial_eta_sq", ascending=False)
        if sig.empty:
            continue
        items = [_term_text(a, key, r, df_res) for _, r in sig.iterrows()]
        head = (_term_text(a, key, sig.iloc[0], df_res, " matters") if len(items) == 1 else
                f"these matter, largest effect first: {'; '.join(items)}")
        out.append(_f("key_findings", "anova_effect",
                      f"On {_on(ctx, task, scorer)}, {head} — {_anova_unit(terms, df_res)}",
                      task=task, scorer=scorer, terms=list(sig["term"]), F=list(sig["F"]),
                      p_value=list(sig["p_value"]), partial_eta_sq=list(sig["partial_eta_sq"]), df_resid=df_res))
    return out


def rule_anova_no_effect(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``anova_no_effect``: per family, the terms with p ≥ α, in one sentence."""
    out: list[Finding] = []
    alpha = 1 - a.confidence
    for key, terms, df_res in _anova_terms(a):
        task, scorer, _ = key
        null = terms[~(terms["p_value"] < alpha)]
        if null.empty:
            continue
        items = [_term_text(a, key, r, df_res) for _, r in null.iterrows()]
        unit = ("the same F-tests" if (terms["p_value"] < alpha).any() and null["unit"].iloc[0] == "samples"
                else _anova_unit(null, df_res))
        out.append(_f("key_findings", "anova_no_effect",
                      f"On {_on(ctx, task, scorer)}, no detectable effect of {_join(items, ' or of')} "
                      f"— {unit}; not significant is not evidence of no effect",
                      task=task, scorer=scorer, terms=list(null["term"]), F=list(null["F"]),
                      p_value=list(null["p_value"]), df_resid=df_res))
    return out


def _join(items: list[str], sep: str) -> str:
    """"a", "a or of b", "a, b or of c" for ``sep`` " or of"."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f"{sep} " + items[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def rule_epoch(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``epoch_effect``: consecutive checkpoint epochs compared paired on the samples, the
    per-sample scores averaged over the runs evaluated at both (never from overlapping
    marginal intervals: those ignore that the same samples were scored). With one step the
    p-value is the test's own; with several, Holm over the steps and the CIs say unadjusted."""
    out: list[Finding] = []
    d = a.diminishing
    if d.empty:
        return out
    d = d[d["variable"] == "epoch"]
    for (task, scorer, metric), g in d.groupby(["task", "scorer", "metric"], sort=True):
        several = len(g) > 1
        steps = []
        for _, r in g.iterrows():
            verdict = ("scores significantly higher than" if r["significant"] and r["gain"] > 0 else
                       "scores significantly lower than" if r["significant"] else
                       "is not significantly different from")
            p = f"Holm p {fmt_p(r['p_adjusted'])}" if several else f"p {fmt_p(r['p_value'])}"
            steps.append(f"epoch {fmt_level(r['to_level'])} {verdict} epoch {fmt_level(r['from_level'])}: "
                         f"{fmt_diff(metric, r['gain'])} "
                         f"({fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=several)}, {p})")
        n_runs = int(g["n_runs"].max()) // 2 if "n_runs" in g.columns else 0
        n = int(g["n_paired"].max()) if "n_paired" in g.columns else 0
        out.append(_f("key_findings", "epoch_effect",
                      f"On {_on(ctx, task, scorer)}, {'; '.join(steps)} — paired over {n} samples, each sample's "
                      f"score averaged over the {_plural(n_runs, 'run')} evaluated at both epochs",
                      task=task, scorer=scorer, gains=list(g["gain"]), p_value=list(g["p_value"]),
                      p_adjusted=list(g["p_adjusted"]), significant=[bool(x) for x in g["significant"]]))
    return out


def rule_marginal(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
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
        hi, lo = g.loc[g["mean"].idxmax()], g.loc[g["mean"].idxmin()]
        out.append(_f("key_findings", "marginal_effect",
                      f"On {_on(ctx, task, scorer)}, mean {metric} by {var} ranges from {fmt_value(metric, lo['mean'])} "
                      f"({var} = {fmt_level(lo['level'])}, {fmt_ci(metric, lo['ci_low'], lo['ci_high'], a.confidence)}) to "
                      f"{fmt_value(metric, hi['mean'])} ({var} = {fmt_level(hi['level'])}, "
                      f"{fmt_ci(metric, hi['ci_low'], hi['ci_high'], a.confidence)}); these are descriptive means "
                      "over different sets of runs, not a test (the paired comparisons test candidates)",
                      task=task, variable=var, low_level=lo["level"], high_level=hi["level"],
                      low=lo["mean"], high=hi["mean"]))
    if a.anova_note:
        out.append(_f("statistical_summary", "unbalanced", f"No ANOVA: {a.anova_note}.", note=a.anova_note))
    return out


def rule_diminishing(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``diminishing_returns``: the last significant step of an ordinal variable and what
    follows; ``no_significant_step``. Epoch steps are ``epoch_effect``'s; a two-level
    variable the ANOVA already tested gets no second sentence."""
    out: list[Finding] = []
    d = a.diminishing
    tested = {(t, sc, term) for t, sc, term in zip(a.anova["task"], a.anova["scorer"], a.anova["term"], strict=True)}
    for (task, scorer, metric, var), g in d.groupby(["task", "scorer", "metric", "variable"], sort=True):
        g = g.reset_index(drop=True)
        if var == "epoch" or (len(g) == 1 and (task, scorer, var) in tested):
            continue
        sig = g.index[g["significant"].astype(bool) & (g["gain"] > 0)].tolist()
        if sig and sig[-1] < len(g) - 1:
            last = g.iloc[sig[-1]]
            nxt = g.iloc[sig[-1] + 1]
            text = (f"On {_on(ctx, task, scorer)}, raising {var} from {fmt_level(last['from_level'])} to {fmt_level(last['to_level'])} gains "
                    f"{fmt_diff(metric, last['gain'])} (Holm p {fmt_p(last['p_adjusted'])}), but beyond "
                    f"{fmt_level(last['to_level'])} the gain is not significant ({fmt_level(nxt['from_level'])}→{fmt_level(nxt['to_level'])}: "
                    f"{fmt_diff(metric, nxt['gain'])}, "
                    f"{fmt_ci(metric, nxt['ci_low'], nxt['ci_high'], a.confidence, True, unadjusted=True)}, "
                    f"Holm p {fmt_p(nxt['p_adjusted'])})")
            out.append(_f("key_findings", "diminishing_returns", text, task=task, variable=var,
                          plateau_from=last["to_level"], gain=nxt["gain"], p_adjusted=nxt["p_adjusted"]))
        elif not sig and len(g):
            top = g.loc[g["gain"].idxmax()]
            out.append(_f("key_findings", "no_significant_step",
                          f"On {_on(ctx, task, scorer)}, no step in {var} gives a significant gain (largest: "
                          f"{fmt_level(top['from_level'])}→{fmt_level(top['to_level'])} {fmt_diff(metric, top['gain'])}, "
                          f"{fmt_ci(metric, top['ci_low'], top['ci_high'], a.confidence, True, unadjusted=True)}, "
                          f"Holm p {fmt_p(top['p_adjusted'])})", task=task, variable=var,
                          gain=top["gain"], p_adjusted=top["p_adjusted"]))
    return out


def rule_seeds(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``seed_spread`` (largest seed SD per family) and ``seed_comparison`` (Welch, P(A>B))."""
    out: list[Finding] = []
    for (task, scorer, metric), g in a.seeds.groupby(["task", "scorer", "metric"], sort=True):
        r = g.loc[g["sd"].idxmax()]
        out.append(_f("key_findings", "seed_spread",
                      f"On {_on(ctx, task, scorer)}, seed-to-seed variation is up to SD {fmt_diff(metric, r['sd']).lstrip('+')} "
                      f"({r['config']}: mean {fmt_value(metric, r['mean'])} over {int(r['n_seeds'])} seeds, "
                      f"{fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence)})",
                      task=task, config=r["config"], sd=r["sd"], n_seeds=int(r["n_seeds"])))
    sc = a.seed_comparisons
    for _, r in sc.iterrows() if not sc.empty else []:
        metric = r["metric"]
        verdict = "is significantly better than" if r["significant"] else "is not distinguishable from"
        text = (f"On {_on(ctx, r['task'], r['scorer'])}, across seeds {r['a']} {verdict} {r['b']} (diff of seed means "
                f"{fmt_diff(metric, r['diff'])}, {fmt_ci(metric, r['ci_low'], r['ci_high'], a.confidence, True, unadjusted=True)}, "
                f"Welch Holm p {fmt_p(r['p_adjusted'])}, {int(r['n_a'])} vs {int(r['n_b'])} seeds)")
        if not pd.isna(r["p_a_gt_b"]):
            text += (f"; P({r['a']} > {r['b']}) = {r['p_a_gt_b']:.2f} "
                     f"({a.confidence:.0%} bootstrap CI {r['p_a_gt_b_low']:.2f} to {r['p_a_gt_b_high']:.2f})")
        out.append(_f("key_findings", "seed_comparison", text, task=r["task"], a=r["a"], b=r["b"],
                      diff=r["diff"], p_adjusted=r["p_adjusted"], p_a_gt_b=r["p_a_gt_b"]))
    return out


def rule_outliers(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``outlier`` (robust z) and ``suspicious_eval`` (constant answers, 0/100%, errors)."""
    out = []
    for _, r in a.outliers.iterrows():
        where = f" on {r['task']}" if r["task"] is not None and not pd.isna(r["task"]) else ""
        if r["kind"] in ("metric", "loss", "loss_curve"):
            out.append(_f("key_findings", "outlier",
                          f"{r['run']}{where}: {r['detail']}; robust z = {r['robust_z']:.1f}, value {r['value']:.4g}",
                          run=r["run"], kind=r["kind"], robust_z=r["robust_z"], value=r["value"]))
        else:
            out.append(_f("key_findings", "suspicious_eval",
                          f"Check {r['run']}{where}: {r['detail']} — this usually means a broken prompt, "
                          "scorer or model load rather than a result", run=r["run"], kind=r["kind"],
                          value=r["value"]))
    return out


TEST_NAMES = {"mcnemar_exact": "exact McNemar", "paired_permutation": "paired permutation",
              "cluster_permutation": "cluster permutation"}


def rule_summary(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
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
    for p in a.power:
        if p["mdd"] is None or math.isnan(p["mdd"]):
            continue
        metric = p.get("metric", "accuracy")
        m = sizes.get((p["task"], p["scorer"]), 1)
        text = (f"On {_on(ctx, p['task'], p['scorer'])}, with n = {p['n']} samples per candidate a single "
                f"uncorrected paired test at α = {p['alpha']:.2g} detects a difference of "
                f"{fmt_diff(metric, p['mdd']).lstrip('+')} with {p['power']:.0%} power")
        data = dict(p)
        if m > 1:
            mdd_m = minimum_detectable_difference(int(p["n"]), float(p["sd_diff"]), p["alpha"] / m, p["power"])
            text += (f"; after Holm correction over {m} pairs it takes up to "
                     f"{fmt_diff(metric, mdd_m).lstrip('+')} (Bonferroni level α/{m})")
            data.update(mdd_corrected=mdd_m, family_size=m)
        out.append(_f("statistical_summary", "power",
                      text + "; smaller differences reported as not significant may still be real.", **data))
    return out


def rule_production(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``production_config``: cheapest candidate not significantly worse than the best (a
    baseline included: then fine-tuning did not pay); ``pareto``. GPU time is written in
    one unit per sentence, chosen by magnitude."""
    out = []
    for b in a.best:
        fam = a.pareto[(a.pareto["task"] == b.task) & (a.pareto["scorer"] == b.scorer)
                       & (a.pareto["metric"] == b.metric)]
        if fam.empty:
            continue
        ok = [(b.run, b.epoch), *_tied(a, b)]
        cand = fam[[any(_same(r, e, k) for k in ok) for r, e in zip(fam["run"], fam["epoch"], strict=True)]]
        known = cand.dropna(subset=["gpu_hours"])
        best_cost = fam[[_same(r, e, (b.run, b.epoch)) for r, e in zip(fam["run"], fam["epoch"], strict=True)]]["gpu_hours"]
        bc = float(best_cost.iloc[0]) if len(best_cost) else math.nan
        if known.empty:
            out.append(_f("recommendations", "production_config",
                          f"Production config for {_on(ctx, b.task, b.scorer)}: {_cand(ctx, b.run, b.epoch)} "
                          f"({fmt_value(b.metric, b.value)}); no GPU-hour data to weigh cost, so the best "
                          f"candidate is the default choice", task=b.task, run=b.run, gpu_hours=None))
            continue
        pick = known.sort_values(["gpu_hours", "value"], ascending=[True, False]).iloc[0]
        unit = gpu_unit([float(pick["gpu_hours"]), bc])
        cost = fmt_hours(pick["gpu_hours"], unit)
        if not pd.isna(pick["cost_usd"]):
            cost += f", {fmt_usd(pick['cost_usd'])}"
        if _same(pick["run"], pick["epoch"], (b.run, b.epoch)):
            text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {_cand(ctx, b.run, b.epoch)} — the best "
                    f"({fmt_value(b.metric, b.value)}) and the cheapest of the {len(cand)} candidate(s) not "
                    f"significantly worse than it ({cost})")
        else:
            c = a.comparisons
            comp = c[(c["task"] == b.task) & (c["scorer"] == b.scorer) & (c["metric"] == b.metric)
                     & (c["kind"] == "vs_best")
                     & np.array([_same(r, e, (str(pick["run"]), None if pd.isna(pick["epoch"]) else float(pick["epoch"])))
                                 for r, e in zip(c["b"], c["epoch_b"], strict=True)], dtype=bool)] if not c.empty else c
            ptxt = f", Holm p {fmt_p(comp['p_adjusted'].iloc[0])} vs best" if len(comp) else ""
            text = (f"Production config for {_on(ctx, b.task, b.scorer)}: {_cand(ctx, pick['run'], pick['epoch'])} "
                    f"({fmt_value(b.metric, pick['value'])}, {cost}) — not significantly worse than the best "
                    f"{_cand(ctx, b.run, b.epoch)} ({fmt_value(b.metric, b.value)}, "
                    f"{fmt_hours(bc, unit)}{ptxt}) at lower cost")
        if pick["run"] in ctx["baselines"]:
            text += "; it is a baseline, so fine-tuning did not significantly improve on it"
        out.append(_f("recommendations", "production_config", text, task=b.task, run=pick["run"],
                      epoch=pick["epoch"], value=pick["value"], gpu_hours=pick["gpu_hours"],
                      best_run=b.run, best_gpu_hours=bc))
        front = fam[fam["pareto"].astype(bool)].sort_values("gpu_hours")
        if len(front) >= 2:
            funit = gpu_unit([float(x) for x in front["gpu_hours"]])
            items = "; ".join(f"{_cand(ctx, r['run'], r['epoch'])} {fmt_value(b.metric, r['value'])} at "
                              f"{fmt_hours(r['gpu_hours'], funit)}" for _, r in front.iterrows())
            out.append(_f("recommendations", "pareto",
                          f"On {_on(ctx, b.task, b.scorer)}, the {len(front)} Pareto-optimal candidates ({b.metric} vs "
                          f"training GPU time) are: {items}", task=b.task, runs=list(front["run"])))
    return out


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


def rule_next_steps(a: Analysis, ctx: dict[str, Any]) -> list[Finding]:
    """``untested_level``, ``edge_of_grid``, ``more_seeds``, ``larger_eval_set``."""
    out: list[Finding] = []
    runs: pd.DataFrame = ctx["runs"]
    info = runs.set_index("run") if not runs.empty else pd.DataFrame()
    for b in a.best:
        if b.run not in info.index:
            continue
        good = {b.run} | {k[0] for k in _tied(a, b)}
        an = a.anova[(a.anova["task"] == b.task) & (a.anova["scorer"] == b.scorer)]
        null_terms = set(an.loc[~(an["p_value"] < 1 - a.confidence), "term"])
        for var in ctx["variables"]:
            if var not in info.columns or ctx.get("seed_var") == var:
                continue
            lv = pd.to_numeric(info[var], errors="coerce").dropna()
            levels = sorted(set(lv))
            best_level = pd.to_numeric(pd.Series([info.loc[b.run, var]]), errors="coerce").iloc[0]
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
                                  f"Try {var} = {fmt_level(mid)} on {_on(ctx, b.task, b.scorer)}: the best ({_cand(ctx, b.run, b.epoch)}, "
                                  f"{var} = {fmt_level(levels[i])}) and a run at {var} = {fmt_level(levels[j])} are not "
                                  f"significantly different, and nothing between them was tested",
                                  task=b.task, variable=var, level=mid, between=[lo, hi]))
            if i in (0, len(levels) - 1):
                j = 1 if i == 0 else len(levels) - 2
                if not any(r in good for r in lv.index[lv == levels[j]]):
                    side = "below" if i == 0 else "above"
                    out.append(_f("next_steps", "edge_of_grid",
                                  f"On {_on(ctx, b.task, b.scorer)} the best run has {var} = {fmt_level(levels[i])}, the edge of the tested range "
                                  f"({fmt_level(levels[0])}–{fmt_level(levels[-1])}), and its neighbour {var} = {fmt_level(levels[j])} is "
                                  f"significantly worse: test {side} {fmt_level(levels[i])}",
                                  task=b.task, variable=var, edge=levels[i]))
    power = {(p["task"], p["scorer"]): p for p in a.power}
    for b in a.best:
        p = power.get((b.task, b.scorer))
        mdd = p["mdd"] if p else math.nan
        seeds = a.seeds[(a.seeds["task"] == b.task)] if not a.seeds.empty else a.seeds
        max_seeds = int(seeds["n_seeds"].max()) if len(seeds) else 1
        if not b.clear_winner and b.tied_with and max_seeds < FEW_SEEDS:
            # seeds are trained per run (config), not per checkpoint: name each run once
            top = ", ".join(list(dict.fromkeys(r for r, _ in [(b.run, b.epoch), *_tied(a, b)]))[:3])
            out.append(_f("next_steps", "more_seeds",
                          f"On {_on(ctx, b.task, b.scorer)}, {_plural(len(b.tied_with), 'candidate')} cannot be "
                          f"separated from the best (minimum detectable difference "
                          f"{fmt_diff(b.metric, mdd).lstrip('+')} for one uncorrected paired test) and configs "
                          f"have at most {_plural(max_seeds, 'seed')}: run {FEW_SEEDS} seeds of {top} to tell training "
                          "noise from real differences", task=b.task, mdd=mdd, max_seeds=max_seeds,
                          n_tied=len(b.tied_with)))
        if b.ci_low is not None and b.ci_high is not None and p:
            half = (b.ci_high - b.ci_low) / 2
            if half > WIDE_CI_FACTOR * ctx["margin"]:
                need = samples_for_difference(ctx["margin"], p["sd_diff"], p["alpha"], p["power"])
                need_txt = f"about {int(need):,} paired samples" if not math.isnan(need) else "many more samples"
                out.append(_f("next_steps", "larger_eval_set",
                              f"On {_on(ctx, b.task, b.scorer)} the best candidate's {a.confidence:.0%} CI spans "
                              f"{fmt_diff(b.metric, 2 * half).lstrip('+')} "
                              f"({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence).split(' CI ')[1]}) with "
                              f"n = {p['n']}; detecting a "
                              f"{fmt_diff(b.metric, ctx['margin']).lstrip('+')} difference with "
                              f"{p['power']:.0%} power needs {need_txt}: use a larger eval set",
                              task=b.task, half_width=half, n=p["n"], n_needed=need))
    return out


RULES: list[Callable[[Analysis, dict[str, Any]], list[Finding]]] = [
    rule_no_evals, rule_best, rule_baseline, rule_anova_effect, rule_anova_no_effect, rule_pairs,
    rule_epoch, rule_marginal, rule_diminishing, rule_seeds, rule_outliers, rule_summary,
    rule_production, rule_next_steps,
]
"""In report order: Key Findings lead with the best against the baseline, then the
variables that matter (largest effect first), those that do not, the candidates tied with
the best, and the finer points (epochs, steps, seeds, outliers)."""


def build_findings(a: Analysis, *, runs: pd.DataFrame, variables: list[str], baselines: list[str],
                   options: Options, seed_var: str | None = None,
                   on_error: Callable[[str, Exception], None] | None = None) -> list[Finding]:
    """Apply every rule in order; sentences end with a full stop.

    A rule that fails on odd data is skipped and reported to ``on_error(rule, error)``
    (re-raised when no handler is given, so tests see it).
    """
    multi_scorer: set[str] = set()
    if not a.intervals.empty:
        n_sc = a.intervals.groupby("task")["scorer"].nunique()
        multi_scorer = set(n_sc[n_sc > 1].index.astype(str))
    multi = set()
    if not a.intervals.empty:
        ep = a.intervals.assign(_e=pd.to_numeric(a.intervals["epoch"], errors="coerce").fillna(-1))
        n_ep = ep.groupby("run")["_e"].nunique()
        multi = set(n_ep[n_ep > 1].index.astype(str))
    ctx = {"multi_scorer": multi_scorer, "multi_epoch": multi, "runs": runs, "variables": variables,
           "baselines": baselines, "margin": options.margin, "n_runs": len(runs), "seed_var": seed_var}
    out: list[Finding] = []
    for rule in RULES:
        try:
            found = rule(a, ctx)
        except Exception as err:
            if on_error is None:
                raise
            on_error(rule.__name__.removeprefix("rule_"), err)
            continue
        for f in found:
            text = f.text if f.text.endswith(".") else f.text + "."
            out.append(Finding(f.section, text, f.rule, {k: _plain(v) for k, v in f.data.items()}))
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
