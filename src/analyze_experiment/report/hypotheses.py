"""``hypothesis_verdict``: the design's expectations answered from the registered tests.

For each expectation (:class:`~analyze_experiment.experiment.Hypothesis`) and each task's lead
metric, the evidence is the test the plan registered for the variable:

- the seed-level ANOVA term of the variable (``effects`` family, Holm, α split over the
  difference families) — the direction between two levels read from their means;
- for ``epoch``, the run-level paired test of consecutive epochs (same family);
- without seed replicates nothing tests a configuration's effect (``effect_confounded``): the
  gap is described and the verdict is *inconclusive*.

Verdicts: **supported** — the test is significant in the expected direction (and the observed gap
reaches the stated margin); **contradicted** — significant the other way, or significant where no
effect (or "no better") was expected; **inconclusive** — anything else (a non-significant test is
not evidence of no effect). Each sentence carries the claim of the test it rests on.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Claim, Finding
from analyze_experiment.experiment import Hypothesis
from analyze_experiment.formatting import fmt_diff, fmt_level, fmt_p, fmt_value
from analyze_experiment.ingest.design_hypotheses import PAIR_OPS, parse_expect
from analyze_experiment.report.context import FindingContext
from analyze_experiment.report.metric_findings import metric_direction
from analyze_experiment.report.story import lead_keys

VERDICTS = ("supported", "contradicted", "inconclusive")

_WORDS = {">": "better than", "<": "worse than", ">=": "no worse than", "<=": "no better than", "=": "the same as"}


def expectation_text(h: Hypothesis) -> str:
    """``lora_rank 32 better than 8 by ≥ 3.0 pp`` — the expectation in words."""
    parsed = parse_expect(h.expect)
    if parsed is None:
        return f"{h.variable}: {h.expect}"
    op, a, b = parsed
    if a is None:
        text = {"matters": f"{h.variable} matters", "no effect": f"{h.variable} has no effect",
                "higher": f"larger {h.variable} is better", "lower": f"smaller {h.variable} is better"}[op]
    else:
        text = f"{h.variable} {a} {_WORDS[op]} {b}"
    return text + (f" by ≥ {fmt_diff('accuracy', h.margin).lstrip('+')}" if h.margin else "")


def _level_mean(g: pd.DataFrame, level: Any) -> float | None:
    for lv, m in zip(g["level"], g["mean"], strict=True):
        try:
            if math.isclose(float(lv), float(level), rel_tol=1e-9):
                return float(m)
        except (TypeError, ValueError):
            if str(lv) == str(level):
                return float(m)
    return None


def _test_row(a: Analysis, key: tuple[str, str, str], var: str, levels: tuple[Any, Any] | None) -> dict[str, Any] | None:
    """The registered test of ``var`` on ``key``: its ANOVA term, or for epoch the run-level step."""
    task, scorer, metric = key
    if var == "epoch":
        d = a.diminishing
        if d.empty or "unit" not in d.columns:
            return None
        g = d[(d["task"] == task) & (d["scorer"] == scorer) & (d["metric"] == metric) & (d["variable"] == "epoch")
              & (d["unit"] == "runs")]
        if levels is not None:
            lo, hi = sorted(float(x) for x in levels)
            g = g[(g["from_level"].astype(float) == lo) & (g["to_level"].astype(float) == hi)]
        if g.empty:
            return None
        r = g.iloc[0]
        return {"family": r.get("family"), "test": "paired_t_runs", "statistic": None, "p_value": r["p_value"],
                "p_adjusted": r["p_adjusted"], "significant": bool(r["significant"]) if not pd.isna(r["significant"])
                else False, "what": "run-level paired t"}
    an = a.anova
    if an.empty:
        return None
    g = an[(an["task"] == task) & (an["scorer"] == scorer) & (an["metric"] == metric) & (an["term"] == var)]
    if g.empty:
        return None
    r = g.iloc[0]
    sig = r.get("significant")
    sig = bool(sig) if sig is not None and not pd.isna(sig) else bool(r["p_value"] < 1 - a.confidence)
    n = r.get("n_units")
    what = f"seed-level ANOVA over {int(n)} runs" if n is not None and not pd.isna(n) else "seed-level ANOVA"
    return {"family": r.get("family"), "test": "anova_f", "statistic": r["F"], "p_value": r["p_value"],
            "p_adjusted": r.get("p_adjusted", r["p_value"]), "significant": sig, "what": what}


def _verdict(op: str, sig: bool, gap: float | None, margin: float | None) -> tuple[str, str]:
    """(verdict, why) from the test's significance and the observed gap A − B (positive: A better)."""
    if not sig:
        return "inconclusive", "the test is not significant, which is not evidence of no effect"
    if op == "matters":
        return "supported", "the test is significant"
    if op in ("no effect", "="):
        return "contradicted", "the test finds an effect"
    if gap is None or math.isnan(gap):
        return "inconclusive", "the levels' means are not both known"
    if op in ("higher", "lower", ">"):
        if gap <= 0:
            return "contradicted", "significant in the other direction"
        if margin and gap < margin:
            return "inconclusive", "significant, but the observed gap is below the stated margin"
        return "supported", "significant in the expected direction"
    if op == "<":
        return _verdict(">", sig, -gap, margin)
    if op == ">=":
        return ("contradicted", "significantly worse") if gap < 0 else ("supported", "significant, and not worse")
    if op == "<=":
        return ("contradicted", "significantly better") if gap > 0 else ("supported", "significant, and not better")
    return "inconclusive", "the expectation could not be read"


def _levels(op: str, a: str | None, b: str | None, g: pd.DataFrame) -> tuple[Any, Any] | None:
    """The two levels compared: written ones, or the extremes for ``higher``/``lower``/``matters``."""
    if a is not None and b is not None:
        return a, b
    if g.empty:
        return None
    lv = sorted(g["level"].tolist(), key=lambda x: float(x) if _numeric(x) else math.inf)
    if len(lv) < 2:
        return None
    return (lv[0], lv[-1]) if op == "lower" else (lv[-1], lv[0])


def _numeric(x: Any) -> bool:
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True


def rule_hypotheses(a: Analysis, ctx: FindingContext) -> list[Finding]:
    """``hypothesis_verdict``: one sentence per expectation and task (see the module docstring)."""
    out: list[Finding] = []
    hyps: list[Hypothesis] = ctx.hypotheses or []
    if not hyps or a.intervals.empty:
        return out
    keys = sorted(lead_keys(a))
    for h in hyps:
        parsed = parse_expect(h.expect)
        if parsed is None:
            continue
        op, la, lb = parsed
        for key in keys:
            task, scorer, metric = key
            if (h.task and h.task != task) or (h.scorer and h.scorer != scorer) or (h.metric and h.metric != metric):
                continue
            out.append(_one(a, ctx, h, op, la, lb, key))
    return out


def _one(a: Analysis, ctx: FindingContext, h: Hypothesis, op: str, la: str | None, lb: str | None,
         key: tuple[str, str, str]) -> Finding:
    task, scorer, metric = key
    e = a.effects
    g = e[(e["task"] == task) & (e["scorer"] == scorer) & (e["metric"] == metric) & (e["variable"] == h.variable)] \
        if not e.empty else e
    levels = _levels(op, la, lb, g)
    sign = -1.0 if metric_direction(a.metrics, task, scorer, metric) == "lower" else 1.0
    mean_a = _level_mean(g, levels[0]) if levels and not g.empty else None
    mean_b = _level_mean(g, levels[1]) if levels and not g.empty else None
    gap = sign * (mean_a - mean_b) if mean_a is not None and mean_b is not None else None
    test = _test_row(a, key, h.variable, levels if op in PAIR_OPS else None)
    on = f"{task} ({scorer})" if task in ctx.multi_scorer else task
    described = ""
    if levels and mean_a is not None and mean_b is not None:
        described = (f"{h.variable} {fmt_level(levels[0])} vs {fmt_level(levels[1])}: "
                     f"{fmt_diff(metric, mean_a - mean_b)} ({fmt_value(metric, mean_a)} vs {fmt_value(metric, mean_b)})")
    claim = None
    if test is None:
        verdict = "inconclusive"
        why = ("not tested: each configuration was trained once, so its effect cannot be told from training noise"
               if "trained once" in (a.anova_note or "") else f"no registered test of {h.variable} on {on}")
        evidence = described or f"{h.variable} was not compared on {on}"
    else:
        verdict, why = _verdict(op, test["significant"], gap, h.margin)
        evidence = (f"{described + ', ' if described else ''}{test['what']}, Holm p {fmt_p(test['p_adjusted'])}")
        claim = Claim(kind="effect", family="" if test["family"] is None or pd.isna(test["family"]) else str(test["family"]),
                      test=test["test"], statistic=None if test["statistic"] is None else float(test["statistic"]),
                      p_value=float(test["p_value"]), p_adjusted=float(test["p_adjusted"]),
                      correction=_correction(a, test["family"]), significant=bool(test["significant"]))
    text = f"Expected {expectation_text(h)} on {on}: {verdict} — {why} ({evidence})"
    if h.unsure:
        text += f"; read from the {h.source} text, unsure: {h.unsure}"
    return Finding("hypotheses", text, "hypothesis_verdict", {
        "variable": h.variable, "expect": h.expect, "margin": h.margin, "source": h.source, "from_text": h.text,
        "unsure": h.unsure, "task": task, "scorer": scorer, "metric": metric, "verdict": verdict, "why": why,
        "evidence": evidence, "expectation": expectation_text(h),
        "level_a": None if not levels else levels[0], "level_b": None if not levels else levels[1],
        "mean_a": mean_a, "mean_b": mean_b, "gap": gap,
        "p_adjusted": None if test is None else float(test["p_adjusted"]),
        "tested": test is not None}, claim)


def _correction(a: Analysis, family: Any) -> str:
    if family is None or (isinstance(family, float) and math.isnan(family)) or a.families.empty:
        return "none"
    row = a.families[a.families["family"] == str(family)]
    return str(row["correction"].iloc[0]) if len(row) else "none"
