"""The flipped samples: where the best candidate and the runner-up disagree, with both answers.

The agreement matrix shows *how many* samples separate the candidates; this table shows
*which* — sample id, target and the two answers — so a reader can see what the best run's lead
is made of without opening inspect's log viewer. It follows the per-sample figure of every
target with binary scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.doc import Figure, Table
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots import samples as smp

MAX_ROWS = 20
"""Rows shown per table; the caption gives the full count (the rest are in the HTML matrix)."""

MAX_CHARS = 80
"""Answers and targets are cut to this many characters in the table."""


def _cut(text: object) -> str:
    t = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return t if len(t) <= MAX_CHARS else t[: MAX_CHARS - 1] + "…"


def flipped_table(experiment: Experiment, analysis: Analysis, t: sel.Target) -> Table | None:
    """The samples scored differently by the best candidate and the runner-up, or None when the
    scores are not binary, there is no runner-up, or nothing flipped."""
    iv = sel.target_intervals(analysis, t)
    samples = sel.reduced_samples(experiment, t, iv)
    levels = sel.discrete_levels(samples["score"]) if len(samples) else None
    best = smp.best_label(analysis, t, iv)
    if levels is None or not set(levels) <= {0.0, 1.0} or best is None:
        return None
    pair = smp.partner(iv, best, sel.control_runs(experiment))
    if pair is None:
        return None
    other, role = pair
    flips = smp.flipped_samples(samples, best, other)
    if not len(flips):
        return None
    gained, lost = int((flips["flip"] == "gained").sum()), int((flips["flip"] == "lost").sum())
    shown = flips.head(MAX_ROWS)
    df = pd.DataFrame({
        "sample": shown["sample_id"].astype(str),
        "target": shown["target"].map(_cut),
        f"answer of {best} (best)": shown["best_answer"].map(_cut),
        f"answer of {other}": shown["other_answer"].map(_cut),
        "correct only for": ["best" if f == "gained" else role for f in shown["flip"]],
    })
    more = f"; the first {MAX_ROWS} by sample id" if len(flips) > MAX_ROWS else ""
    caption = (f"Samples that flipped between the best, {best}, and the {role}, {other} — {t.name}: "
               f"{gained} right only for the best, {lost} right only for the {role}{more}")
    return Table(df, caption=caption, name=f"flipped_{t.slug}")


def with_flipped_samples(experiment: Experiment, analysis: Analysis, blocks: Sequence[Figure]) -> list[Figure | Table]:
    """``blocks`` with the flipped-samples table after each per-sample figure."""
    by_name = {f"samples_{t.slug}": t for t in sel.targets(analysis)}
    out: list[Figure | Table] = []
    for b in blocks:
        out.append(b)
        t = by_name.get(b.name)
        table = flipped_table(experiment, analysis, t) if t is not None else None
        if table is not None:
            out.append(table)
    return out
