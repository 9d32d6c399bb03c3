"""What the report's story is about: the lead metric of each task, and which question a finding answers.

The report tells one story per question (which configuration is best, does it beat the baseline,
which variables matter, was training healthy) on each task's *lead* metric — the confirmatory one
of the error-control plan — and shows every other scorer once, in one table that says whether it
agrees with the lead. These helpers decide that; :mod:`report.build` arranges the result.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Best, Finding
from analyze_experiment.formatting import fmt_ci, fmt_value
from analyze_experiment.report.doc import Bullets, LinkedBullets, Paragraph, Section, Table
from analyze_experiment.report.metric_findings import metric_direction, primary_best
from analyze_experiment.stats.candidates import label

Key = tuple[str, str, str]

QUESTIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("Which configuration is best", "best", frozenset({
        "best_clear_winner", "best_no_clear_winner", "best_config", "best_so_far", "not_distinguishable",
        "equivalent", "auc_difference", "auc_difference_more", "auc_not_distinguishable"})),
    ("Does it beat the baseline", "baseline", frozenset({"vs_baseline", "vs_reference"})),
    ("Which variables matter", "variables", frozenset({
        "anova_effect", "anova_no_effect", "effect_confounded", "marginal_effect", "diminishing_returns",
        "no_significant_step", "epoch_effect", "seed_comparison", "seed_spread", "gain_heterogeneous"})),
    ("Was training healthy", "health", frozenset({
        "failed_runs_excluded", "failed_runs_included", "outlier", "suspicious_eval", "overfitting", "saturated", "parse_failures",
        "no_evals"})),
)
"""Key Findings' questions, in order: title, short id, and the finding rules that answer each. A
key finding of a rule not listed here joins the variables question (the finer points)."""


OPENING = frozenset({"failed_runs_excluded", "failed_runs_included"})
"""Key findings stated before the questions: what changes how every answer below reads."""


def question_of(rule: str) -> str:
    """The short id of the question a finding rule answers (``best``, ``baseline``, …)."""
    for _, qid, rules in QUESTIONS:
        if rule in rules:
            return qid
    return "variables"


def lead_keys(a: Analysis) -> set[Key]:
    """The task × scorer × metric keys the story speaks of: the confirmatory families of the plan,
    else each scorer's primary metric (every best when nothing says otherwise)."""
    f = a.families
    if f is not None and not f.empty and {"confirmatory", "task", "scorer", "metric"} <= set(f.columns):
        c = f[f["confirmatory"].fillna(False).astype(bool)]
        keys = {(str(t), str(s), str(m)) for t, s, m in zip(c["task"], c["scorer"], c["metric"], strict=True)}
        if keys:
            return keys
    return {(b.task, b.scorer, b.metric) for b in primary_best(a.best, a.metrics)}


def lead_bests(a: Analysis) -> list[Best]:
    """The best of each lead key, in the analysis' order (one per task on a usual sweep)."""
    keys = lead_keys(a)
    return [b for b in a.best if (b.task, b.scorer, b.metric) in keys]


def on_lead(a: Analysis, f: Finding, keys: set[Key] | None = None) -> bool:
    """Whether a finding speaks of a lead key (findings without a task × scorer always do)."""
    keys = lead_keys(a) if keys is None else keys
    task, scorer = f.data.get("task"), f.data.get("scorer")
    if task is None or scorer is None:
        return True
    pairs = {(t, s) for t, s, _ in keys}
    return (str(task), str(scorer)) in pairs or not any(t == str(task) for t, _ in pairs)


def other_scorers_table(a: Analysis) -> pd.DataFrame:
    """Every scorer and metric that is not a lead (the primary metric), in one row each: its own
    best, the primary's best candidate's value on it, and whether it agrees (ranks that candidate first). Descriptive: these metrics are
    not tested (``--confirmatory all`` tests them)."""
    keys = lead_keys(a)
    lead_by_task = {b.task: b for b in lead_bests(a)}
    rows: list[dict[str, Any]] = []
    iv = a.intervals
    for b in primary_best(a.best, a.metrics):
        if (b.task, b.scorer, b.metric) in keys or b.task not in lead_by_task:
            continue
        lead = lead_by_task[b.task]
        pick = iv[(iv["task"] == b.task) & (iv["scorer"] == b.scorer) & (iv["metric"] == b.metric)
                  & (iv["run"] == lead.run)]
        if lead.epoch is not None and not pd.isna(lead.epoch) and "epoch" in pick.columns:
            pick = pick[pd.to_numeric(pick["epoch"], errors="coerce") == float(lead.epoch)]
        same = b.run == lead.run and _same_epoch(b.epoch, lead.epoch)
        way = metric_direction(a.metrics, b.task, b.scorer, b.metric)
        rows.append({
            "task": b.task,
            "scorer": f"{b.scorer} ({b.metric}, {'lower' if way == 'lower' else 'higher'} is better)",
            "best here": label((b.run, None if b.epoch is None or pd.isna(b.epoch) else float(b.epoch))),
            "value": f"{fmt_value(b.metric, b.value)} ({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence)})",
            "primary's best here": fmt_value(b.metric, float(pick["value"].iloc[0])) if len(pick) else "—",
            "agrees with primary": "agrees" if same else "disagrees",
        })
    return pd.DataFrame(rows)


def _same_epoch(x: Any, y: Any) -> bool:
    xn = x is None or pd.isna(x)
    yn = y is None or pd.isna(y)
    return (xn and yn) or (not xn and not yn and float(x) == float(y))


# --- the story's sections -------------------------------------------------------------------------


def _restated(f: Finding, story: list[Finding]) -> bool:
    """A descriptive range of level means (``marginal_effect``) when a sentence about the same
    variable already gives its gap (``effect_confounded``, the ANOVA's): said once is enough."""
    if f.rule != "marginal_effect":
        return False
    key = (f.data.get("task"), f.data.get("scorer"), f.data.get("variable"))
    for g in story:
        if g.rule == "effect_confounded" and (g.data.get("task"), g.data.get("scorer"), g.data.get("variable")) == key:
            return True
        if g.rule in ("anova_effect", "anova_no_effect") and (g.data.get("task"), g.data.get("scorer")) == key[:2] \
                and (key[2] == g.data.get("term") or key[2] in (g.data.get("terms") or [])):
            return True
    return False


def bottom_line_section(a: Analysis) -> Section | None:
    """``## Bottom Line``: the ``bottom_line`` findings, each number linked to its table."""
    items = [[(str(t), None if g is None else str(g)) for t, g in f.data.get("spans", [[f.text, None]])]
             for f in a.section("bottom_line")]
    return Section("Bottom Line", [LinkedBullets(items)], anchor="bottom-line") if items else None


def question_section(question: str | None, hypothesis: str | None, variables: list[str], a: Analysis) -> Section | None:
    """``## Question and Hypothesis``: each expectation the design states, its evidence and verdict
    (``hypothesis_verdict`` findings), or why none could be read."""
    found = a.section("hypotheses")
    if not question and not hypothesis and not found:
        return None
    s = Section("Question and Hypothesis", anchor="question-and-hypothesis")
    if found:
        s.blocks.append(Bullets([f.text for f in found]))
    if hypothesis and not any(f.data.get("source") in ("hypothesis", "yaml") for f in found):
        s.blocks.append(Paragraph(
            f"The hypothesis names none of the swept variables ({', '.join(variables) or 'none'}), so it is not "
            "answered here; a hypotheses: list in the YAML design states it exactly (docs/inputs.md)."))
    return s if s.blocks else None


def key_findings_section(a: Analysis) -> Section:
    """``## Key Findings``: one subsection per question, on the lead metric only; every other scorer
    in one table that says whether it agrees."""
    keys = lead_keys(a)
    s = Section("Key Findings", anchor="key-findings")
    story = [f for f in a.findings if f.section in ("best_performers", "key_findings") and on_lead(a, f, keys)]
    story = [f for f in story if not _restated(f, story)]
    opening = [f.text for f in story if f.rule in OPENING]
    if opening:  # failed runs change how every finding below reads
        s.blocks.append(Bullets(opening))
    story = [f for f in story if f.rule not in OPENING]
    for title, qid, _ in QUESTIONS:
        texts = [f.text for f in story if question_of(f.rule) == qid]
        if texts:
            s.blocks.append(Section(title, [Bullets(texts)], level=3, anchor=f"findings-{qid}"))
    other = other_scorers_table(a)
    if len(other):
        s.blocks.append(Section("Other scorers", [Table(other, caption=(
            "Each other scorer's best, and whether it ranks the primary metric's best first (descriptive: "
            "these metrics are not tested)"), name="other_scorers")], level=3, anchor="findings-other-scorers"))
    if not s.blocks:
        s.blocks.append(Paragraph("No findings could be drawn: there were no evaluation results to compare."))
    return s


# --- summary.json ---------------------------------------------------------------------------------

HYPOTHESIS_KEYS = ("variable", "expect", "margin", "source", "from_text", "unsure", "task", "scorer", "metric",
                   "verdict", "why", "evidence", "gap", "p_adjusted", "tested")


def story_summary(a: Analysis) -> dict[str, Any]:
    """Optional summary.json keys ``bottom_line`` and ``hypotheses`` (docs/summary-schema.md)."""
    out: dict[str, Any] = {}
    lines = a.section("bottom_line")
    if lines:
        out["bottom_line"] = [{"rule": f.rule, "text": f.text,
                               "links": [{"text": t, "target": g} for t, g in f.data.get("spans", []) if g]}
                              for f in lines]
    hyps = a.section("hypotheses")
    if hyps:
        out["hypotheses"] = [{k: f.data.get(k) for k in HYPOTHESIS_KEYS} for f in hyps]
    return out
