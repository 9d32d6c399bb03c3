"""``analyze-experiment compare EXP A B``: two runs (or checkpoints) side by side.

What a researcher looks at when two runs disagree: which parameters differ, how their training
went, the paired difference on every metric (the report's own registered tests: same family,
same Holm correction), and the samples that flipped — input, target and both answers, which
inspect's own viewer shows one log at a time. Everything is read from the report's tables; the
inputs come from the two runs' logs, read only here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.markdown import escape, escape_cell, markdown_table
from analyze_experiment.report.metric_findings import metric_direction
from analyze_experiment.sources.inspect_log import read_log, short

MAX_FLIPS = 50
"""Flipped samples listed per task × scorer (the count says how many there are in all)."""


class CompareError(ValueError):
    """A run or checkpoint the experiment does not have (the message lists the ones it has)."""


@dataclass(frozen=True)
class Side:
    run: str
    epoch: float | None
    """None: each metric's best checkpoint of the run."""

    @property
    def label(self) -> str:
        return self.run if self.epoch is None else f"{self.run}@{fmt.epoch(self.epoch)}"


def parse_side(text: str, exp: Experiment) -> Side:
    """``run`` or ``run@epoch`` -> a :class:`Side` of this experiment."""
    run, _, ep = text.partition("@")
    known = sorted(exp.runs["run"].astype(str)) if len(exp.runs) else []
    if run not in known:
        raise CompareError(f"{run!r} is not a run of this experiment; runs: {', '.join(known)}")
    if not ep:
        return Side(run, None)
    try:
        epoch = float(int(ep))
    except ValueError:
        raise CompareError(f"{text!r}: the epoch after '@' must be a whole number") from None
    return Side(run, epoch)


@dataclass
class Comparison:
    a: Side
    b: Side
    params: pd.DataFrame
    training: pd.DataFrame
    metrics: pd.DataFrame
    flips: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    n_flips: dict[tuple[str, str], int] = field(default_factory=dict)


def _params(exp: Experiment, a: Side, b: Side) -> pd.DataFrame:
    info = exp.runs.drop_duplicates("run", keep="last").set_index("run")
    rows = []
    for p in exp.param_names:
        if p not in info.columns:
            continue
        va, vb = info.loc[a.run, p], info.loc[b.run, p]
        if fmt.value(va) != fmt.value(vb):
            rows.append({"parameter": p, a.label: fmt.value(va), b.label: fmt.value(vb)})
    return pd.DataFrame(rows, columns=["parameter", a.label, b.label])


def _training(exp: Experiment, a: Side, b: Side) -> pd.DataFrame:
    info = exp.runs.drop_duplicates("run", keep="last").set_index("run")
    fields = [("status", "status"), ("steps", "steps"), ("planned steps", "planned_steps"),
              ("final loss", "final_loss"), ("lowest loss", "min_loss"), ("GPU-hours", "gpu_hours"),
              ("final validation loss", "val_loss_final")]
    rows = []
    for label, col in fields:
        if col not in info.columns:
            continue
        va, vb = info.loc[a.run, col], info.loc[b.run, col]
        if fmt.is_missing(va) and fmt.is_missing(vb):
            continue
        rows.append({"": label, a.label: fmt.value(va), b.label: fmt.value(vb)})
    return pd.DataFrame(rows, columns=["", a.label, b.label])


def _epoch_of(side: Side, iv: pd.DataFrame, direction: str) -> float | None:
    g = iv[iv["run"].astype(str) == side.run]
    if side.epoch is not None:
        return side.epoch
    g = g[pd.to_numeric(g["value"], errors="coerce").notna()]
    if not len(g):
        return None
    top = g.sort_values("value", ascending=direction == "lower").iloc[0]
    e = top["epoch"]
    return None if fmt.is_missing(e) else float(e)


def _same_epoch(x: Any, y: float | None) -> bool:
    return (fmt.is_missing(x) and y is None) or (not fmt.is_missing(x) and y is not None and float(x) == y)


def _metrics(a: Analysis, sa: Side, sb: Side) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[Any, Any]]]:
    """Per task × scorer × metric: both values, the paired difference a − b and its registered test."""
    iv, pt = a.intervals, a.pair_tests
    rows, epochs = [], {}
    for (task, scorer, metric), g in iv.groupby(["task", "scorer", "metric"], sort=True):
        direction = metric_direction(a.metrics, task, scorer, metric)
        ea, eb = _epoch_of(sa, g, direction), _epoch_of(sb, g, direction)
        ra = g[(g["run"].astype(str) == sa.run) & g["epoch"].map(lambda e, ea=ea: _same_epoch(e, ea))]
        rb = g[(g["run"].astype(str) == sb.run) & g["epoch"].map(lambda e, eb=eb: _same_epoch(e, eb))]
        if not len(ra) or not len(rb):
            continue
        epochs[(str(task), str(scorer))] = (ea, eb)
        va, vb = float(ra["value"].iloc[0]), float(rb["value"].iloc[0])
        row = {"task": task, "scorer": scorer, "metric": f"{metric} ({'↓' if direction == 'lower' else '↑'})",
               "epoch A": fmt.epoch(ea), "A": va, "epoch B": fmt.epoch(eb), "B": vb, "A − B": va - vb,
               "CI": "", "test": "not tested", "p (Holm)": "", "significant": ""}
        t = pt[(pt["task"] == task) & (pt["scorer"] == scorer) & (pt["metric"] == metric)] if len(pt) else pt
        hit, sign = None, 1.0
        for _, r in t.iterrows():
            if str(r["a"]) == sa.run and _same_epoch(r["epoch_a"], ea) and str(r["b"]) == sb.run \
                    and _same_epoch(r["epoch_b"], eb):
                hit = r
            elif str(r["a"]) == sb.run and _same_epoch(r["epoch_a"], eb) and str(r["b"]) == sa.run \
                    and _same_epoch(r["epoch_b"], ea):
                hit, sign = r, -1.0
        if hit is not None:
            lo, hi = sorted((sign * float(hit["ci_low"]), sign * float(hit["ci_high"])))
            row.update({"A − B": sign * float(hit["diff"]), "CI": f"{lo:+.3f} to {hi:+.3f}", "test": str(hit["test"]),
                        "p (Holm)": fmt.pvalue(hit.get("p_adjusted")),
                        "significant": ("yes" if bool(hit.get("significant")) else "no")
                        if bool(hit.get("confirmatory", True)) else "— (secondary metric: described, not tested)"})
        rows.append(row)
    df = pd.DataFrame(rows)
    for c in ("A", "B"):
        if c in df.columns:
            df[c] = df[c].map(lambda v: f"{v:.3f}")
    if "A − B" in df.columns:
        df["A − B"] = df["A − B"].map(lambda v: f"{v:+.3f}")
    return df, epochs


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for m in value:
            if isinstance(m, dict) and m.get("role", "user") == "user":
                c = m.get("content")
                parts.append(c if isinstance(c, str) else " ".join(
                    str(x.get("text", "")) for x in c if isinstance(x, dict)) if isinstance(c, list) else str(c))
        return "\n".join(parts)
    return "" if value is None else str(value)


def _inputs(exp: Experiment, logs: set[str]) -> dict[str, str]:
    """Sample id -> input text, from the given logs (paths relative to the experiment)."""
    out: dict[str, str] = {}
    for rel in sorted(logs):
        try:
            data = read_log(exp.root / rel)
        except Exception:  # an unreadable log only costs the inputs column
            continue
        for s in data.samples:
            out.setdefault(str(s.get("id")), short(_input_text(s.get("input"))) or "")
    return out


def _flips(exp: Experiment, sa: Side, sb: Side, epochs: dict[tuple[str, str], tuple[Any, Any]]
           ) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[tuple[str, str], int]]:
    s = exp.eval_samples
    out, counts = {}, {}
    for (task, scorer), (ea, eb) in epochs.items():
        g = s[(s["task"] == task) & (s["scorer"] == scorer)]
        ga = g[(g["run"].astype(str) == sa.run) & g["epoch"].map(lambda e, ea=ea: _same_epoch(e, ea))]
        gb = g[(g["run"].astype(str) == sb.run) & g["epoch"].map(lambda e, eb=eb: _same_epoch(e, eb))]
        if not len(ga) or not len(gb):
            continue
        ma = ga.groupby("sample_id").agg(score_a=("score", "mean"), answer_a=("answer", "first"),
                                         target=("target", "first"), log_a=("log", "first"))
        mb = gb.groupby("sample_id").agg(score_b=("score", "mean"), answer_b=("answer", "first"), log_b=("log", "first"))
        m = ma.join(mb, how="inner")
        flipped = m[(m["score_a"] - m["score_b"]).abs() > 1e-12]
        counts[(task, scorer)] = len(flipped)
        if not len(flipped):
            continue
        flipped = flipped.assign(_d=flipped["score_a"] - flipped["score_b"]).sort_values(["_d"], ascending=False)
        shown = flipped.head(MAX_FLIPS)
        inputs = _inputs(exp, set(shown["log_a"].dropna().astype(str)))
        rows = [{"sample": sid, "input": inputs.get(str(sid), ""), "target": r["target"],
                 "A answer": r["answer_a"], "A score": fmt.num(r["score_a"], 3), "B answer": r["answer_b"],
                 "B score": fmt.num(r["score_b"], 3)} for sid, r in shown.iterrows()]
        out[(task, scorer)] = pd.DataFrame(rows).astype(str)
    return out, counts


def compare(exp: Experiment, a: Analysis, side_a: Side, side_b: Side) -> Comparison:
    """Everything ``compare`` shows, from the experiment's tables and the report's tests."""
    metrics, epochs = _metrics(a, side_a, side_b)
    flips, counts = _flips(exp, side_a, side_b, epochs)
    return Comparison(side_a, side_b, _params(exp, side_a, side_b), _training(exp, side_a, side_b), metrics,
                      flips, counts)


def to_markdown(c: Comparison, exp: Experiment) -> str:
    """The comparison as markdown (untrusted text escaped, as in report.md)."""
    parts = [f"# {escape(c.a.label)} vs {escape(c.b.label)}", ""]
    parts += [escape(f"Experiment: {exp.design.name}. A = {c.a.label}, B = {c.b.label}. Differences are A − B; "
                     "each test is the report's own paired test on the same samples, Holm-adjusted in its family; "
                     "a run without an epoch is compared at each metric's best checkpoint."), ""]
    parts += ["## Parameters that differ", ""]
    parts += [markdown_table(c.params) if len(c.params) else "_(none: the runs share every parameter)_", ""]
    if len(c.training):
        parts += ["## Training", "", markdown_table(c.training), ""]
    parts += ["## Metrics", ""]
    parts += [markdown_table(c.metrics.astype(str)) if len(c.metrics) else "_(no metric evaluated for both)_", ""]
    for (task, scorer), n in c.n_flips.items():
        parts += [f"## Samples that flipped: {escape_cell(task)} ({escape_cell(scorer)})", ""]
        if not n:
            parts += ["_(none: every shared sample has the same score)_", ""]
            continue
        shown = c.flips.get((task, scorer), pd.DataFrame())
        more = f", the first {len(shown)} shown" if n > len(shown) else ""
        parts += [escape(f"{n} samples score differently{more} (A better first)."), "", markdown_table(shown), ""]
    return "\n".join(parts).rstrip() + "\n"


def to_html(c: Comparison, exp: Experiment) -> str:
    """The same content as one self-contained HTML page (the report's renderer and escaping)."""
    from analyze_experiment.report.doc import KeyValues, Paragraph, ReportDoc, Section, Table
    from analyze_experiment.report.html import render_html

    sections = [Section("Parameters that differ", [Table(c.params.astype(str)) if len(c.params) else
                                                   Paragraph("None: the runs share every parameter.")])]
    if len(c.training):
        sections.append(Section("Training", [Table(c.training.astype(str))]))
    sections.append(Section("Metrics", [Table(c.metrics.astype(str)) if len(c.metrics) else
                                        Paragraph("No metric was evaluated for both.")]))
    for (task, scorer), n in c.n_flips.items():
        shown = c.flips.get((task, scorer))
        blocks = [Paragraph(f"{n} samples score differently (A better first).")]
        if shown is not None and len(shown):
            blocks.append(Table(shown, name=f"flips-{task}-{scorer}"))
        sections.append(Section(f"Samples that flipped: {task} ({scorer})", blocks))
    doc = ReportDoc(title=f"{c.a.label} vs {c.b.label}", header=KeyValues([
        ("Experiment", str(exp.design.name)), ("A", c.a.label), ("B", c.b.label),
        ("Differences", "A − B; the report's paired tests, Holm-adjusted in their family")]), sections=sections)
    return render_html(doc, {}, None)


def write(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
