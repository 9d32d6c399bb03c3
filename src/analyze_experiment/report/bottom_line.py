"""The bottom line: at most ten plain lines that answer "which is best, is it really better, what
went wrong, what next" before anything else is read.

Built after every other rule (it restates their registered claims, never a new test): per task's
lead metric the best with its interval, whether it beats the baseline and the runner-up (the
checkpoint family's tests, or across seeds the configuration family's), then the failed runs,
the data problems that change the reading, the hypotheses' verdicts and the single most useful
next experiment. Each line is a :class:`Finding` of section ``bottom_line``; ``data["spans"]``
splits its text into pieces, each linked to the table or section that holds its numbers (the
renderers turn the targets into anchors).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyze_experiment.analysis import Analysis, Best, Claim, Finding
from analyze_experiment.formatting import fmt_ci, fmt_diff, fmt_p, fmt_value
from analyze_experiment.report.context import FindingContext
from analyze_experiment.report.story import lead_bests, lead_keys
from analyze_experiment.stats.candidates import label

MAX_LINES = 10
NEXT_PRIORITY = ("rerun_failed", "more_seeds", "edge_of_grid", "untested_level", "larger_eval_set")
"""The next experiment the bottom line names: a failed run to re-run first, then seeds to tell
noise from effect, then the grid's edge, a level between, a larger evaluation set."""
READING_FACTS = ("same_seed", "param_conflict", "identical_curves", "duplicate_log")
"""Design facts that change what the numbers mean (Data Quality lists every fact)."""

Span = tuple[str, str | None]


def _line(rule: str, spans: list[Span], claim: Claim | None = None, **data: Any) -> Finding:
    text = "".join(t for t, _ in spans)
    if not text.endswith("."):
        spans = [*spans, (".", None)]
        text += "."
    return Finding("bottom_line", text, rule, {"spans": [list(s) for s in spans], **data}, claim)


def _on(ctx: FindingContext, b: Best) -> str:
    return f"{b.task} ({b.scorer} {b.metric})" if b.task in ctx.multi_scorer else f"{b.task} ({b.metric})"


def _cand(run: str, epoch: Any, multi_epoch: set[str]) -> str:
    ep = None if epoch is None or pd.isna(epoch) else float(epoch)
    return label((str(run), ep if str(run) in multi_epoch else None))


def _find(findings: list[Finding], rule: str, b: Best) -> Finding | None:
    return next((f for f in findings if f.rule == rule and f.data.get("task") == b.task
                 and f.data.get("scorer") == b.scorer), None)


def _best_lines(a: Analysis, ctx: FindingContext, b: Best, findings: list[Finding], room: int) -> list[Finding]:
    multi = ctx.multi_epoch
    cfg = _find(findings, "best_config", b)
    key = {"task": b.task, "scorer": b.scorer, "metric": b.metric}
    so_far = " (best so far: its training did not finish)" if ctx.failed_marks.get(b.run) else ""
    if cfg is not None:
        d = cfg.data
        value = (f"{fmt_value(b.metric, d.get('mean'))} mean over {d.get('n_seeds')} seeds "
                 f"({fmt_ci(b.metric, d.get('ci_low'), d.get('ci_high'), a.confidence)})")
        out = [_line("bottom_best", [(f"Best on {_on(ctx, b)}: {d.get('config')}, ", None), (value, "seeds")],
                     None, **key, config=d.get("config"), value=d.get("mean"))]
        if room > 1:
            tied = list(d.get("tied_with") or [])
            verdict = ("it beats every other configuration across seeds" if d.get("clear_winner") else
                       f"no clear winner: across seeds it is not distinguishable from {'; '.join(tied[:3])}"
                       + (f" and {len(tied) - 3} more" if len(tied) > 3 else "") if tied else
                       "no clear winner across seeds")
            out.append(_line("bottom_runner_up", [(verdict[0].upper() + verdict[1:], None), (" (Welch tests", "seeds"),
                                                  (")", None)], cfg.claim, **key))
    else:
        value = f"{fmt_value(b.metric, b.value)} ({fmt_ci(b.metric, b.ci_low, b.ci_high, a.confidence)})"
        out = [_line("bottom_best", [(f"Best on {_on(ctx, b)}: {_cand(b.run, b.epoch, multi)}{so_far}, ", None),
                                     (value, "evaluation")], None, **key, run=b.run, epoch=b.epoch, value=b.value)]
    base = _find(findings, "vs_baseline", b)
    if base is not None and room > len(out):
        d = base.data
        sig = base.claim is not None and base.claim.significant
        who = "it" if str(d.get("run")) == b.run else _cand(d.get("run"), None, set())
        verdict = "beats" if sig and (d.get("diff") or 0) * _sign(a, b) > 0 else \
            "is significantly worse than" if sig else "is not significantly different from"
        out.append(_line("bottom_baseline", [
            (f"{who[0].upper() + who[1:]} {verdict} the baseline {d.get('baseline')}: ", None),
            (f"{fmt_diff(b.metric, d.get('diff'))}, Holm p {fmt_p(d.get('p_adjusted'))}", "comparisons")],
            base.claim, **key, baseline=d.get("baseline"), diff=d.get("diff")))
    if cfg is None and room > len(out):
        out.extend(_runner_up(a, b, multi, key))
    return out[:room]


def _sign(a: Analysis, b: Best) -> float:
    from analyze_experiment.report.metric_findings import metric_direction

    return -1.0 if metric_direction(a.metrics, b.task, b.scorer, b.metric) == "lower" else 1.0


def _runner_up(a: Analysis, b: Best, multi: set[str], key: dict[str, Any]) -> list[Finding]:
    """The closest challenger's vs-best test: the claim behind "clear winner" or not."""
    c = a.comparisons
    if c.empty:
        return []
    g = c[(c["task"] == b.task) & (c["scorer"] == b.scorer) & (c["metric"] == b.metric) & (c["kind"] == "vs_best")]
    if g.empty:
        return []
    r = g.assign(_d=g["diff"].abs()).sort_values(["_d", "b"]).iloc[0]
    sig = bool(r["significant"])
    n_tied = int((~g["significant"].astype(bool)).sum())
    name = _cand(r["b"], r["epoch_b"], multi)
    gap = f"{fmt_diff(b.metric, abs(float(r['diff']))).lstrip('+')} behind"
    if sig:
        tail = ": a clear winner"
        test = f"{gap} (significantly, Holm p {fmt_p(r['p_adjusted'])})"
    else:
        tail = (f": no clear winner ({n_tied} candidate{'s' if n_tied != 1 else ''} within the noise of the best)")
        test = f"{gap} (not significantly, Holm p {fmt_p(r['p_adjusted'])})"
    fam = r.get("family")
    correction = "none"
    if isinstance(fam, str) and not a.families.empty:
        row = a.families[a.families["family"] == fam]
        correction = str(row["correction"].iloc[0]) if len(row) else "none"
    claim = None
    if (b.task, b.scorer, b.metric) in lead_keys(a) and isinstance(fam, str):
        claim = Claim(kind="winner", family=fam, test=str(r["test"]),
                      statistic=None if pd.isna(r["statistic"]) else float(r["statistic"]),
                      p_value=float(r["p_value"]), p_adjusted=float(r["p_adjusted"]), correction=correction,
                      significant=sig)
    return [_line("bottom_runner_up", [(f"Runner-up {name} is ", None), (test, "comparisons"), (tail, None)], claim,
                  **key, runner_up=str(r["b"]), diff=float(r["diff"]), p_adjusted=float(r["p_adjusted"]),
                  significant=sig)]


def _failed_line(a: Analysis) -> Finding | None:
    fr = a.failed_runs
    if fr is None or fr.empty:
        return None
    names = [f"{r} ({m})" for r, m in zip(fr["run"], fr.get("mark", fr.get("status")), strict=True)]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    n = len(names)
    tail = ("kept in every estimate (--include-failed)" if a.include_failed else
            "never best, left out of every estimate")
    return _line("bottom_failed", [(f"{n} run{'s' if n != 1 else ''} failed", "failed-runs"), (f": {shown}; {tail}", None)],
                 runs=[str(r) for r in fr["run"]])


def _data_line(a: Analysis) -> Finding | None:
    f = a.facts
    if f is None or f.empty or "kind" not in f.columns:
        return None
    hit = f[f["kind"].isin(READING_FACTS)]
    if hit.empty:
        return None
    texts = [str(q) if isinstance(q, str) and q else str(m) for q, m in zip(hit["qualifier"], hit["message"], strict=True)]
    shown = "; ".join(dict.fromkeys(texts[:2])) + (f"; and {len(texts) - 2} more" if len(texts) > 2 else "")
    return _line("bottom_data", [("Read with care: ", None), (shown, "data-quality")], kinds=list(hit["kind"]))


def _hypotheses_line(findings: list[Finding]) -> Finding | None:
    hyps = [f for f in findings if f.rule == "hypothesis_verdict"]
    if not hyps:
        return None
    seen: dict[str, str] = {}
    for f in hyps:
        seen.setdefault(str(f.data.get("expectation")), str(f.data.get("verdict")))
    text = "; ".join(f"{e} — {v}" for e, v in seen.items())
    claim = next((f.claim for f in hyps if f.claim is not None), None)
    return _line("bottom_hypotheses", [("Expected: ", None), (text, "question-and-hypothesis")], claim,
                 verdicts=dict(seen))


def _next_line(a: Analysis, findings: list[Finding]) -> Finding | None:
    nxt = [f for f in findings if f.section == "next_steps"]
    keys = {(t, s) for t, s, _ in lead_keys(a)}
    for rule in NEXT_PRIORITY:
        for f in nxt:
            task, scorer = f.data.get("task"), f.data.get("scorer")
            if f.rule == rule and (task is None or scorer is None or (task, scorer) in keys):
                return _line("bottom_next", [("Next: ", None), (f.text.rstrip("."), "next-steps")], rule_of_step=f.rule)
    if nxt:
        return _line("bottom_next", [("Next: ", None), (nxt[0].text.rstrip("."), "next-steps")], rule_of_step=nxt[0].rule)
    return None


def bottom_line(a: Analysis, ctx: FindingContext, findings: list[Finding]) -> list[Finding]:
    """``bottom_*`` lines (at most :data:`MAX_LINES`) from the findings the other rules made."""
    tail = [x for x in (_failed_line(a), _data_line(a), _hypotheses_line(findings), _next_line(a, findings))
            if x is not None]
    bests = lead_bests(a)
    if not bests:
        empty = next((f for f in findings if f.rule == "no_evals"), None)
        head = [_line("bottom_none", [(empty.text if empty else "No evaluation results to rank", None)])]
        return (head + tail)[:MAX_LINES]
    room = MAX_LINES - len(tail)
    out: list[Finding] = []
    for i, b in enumerate(bests):
        left = room - len(out) - (len(bests) - i - 1)  # every later task keeps at least its best line
        if left <= 0:
            break
        out.extend(_best_lines(a, ctx, b, findings, left))
    return out + tail
