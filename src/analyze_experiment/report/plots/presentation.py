"""One of the report's figures, sized and styled for a paper or a slide.

The report's figures are drawn for a screen. A figure for a paper needs its column width,
fonts that match the text and are embedded in the PDF, and vector output; a figure for a
talk needs a 16:9 canvas and type that reads from the back of a room. The figure itself is
the report's own (same data, same statistics, same colours: :func:`plan_figures` draws it);
only size, type and file format change here, so a figure in a paper never disagrees with
the report it came from.

Sizes: ``paper`` is one column of a two-column paper (3.5 in, the ACL/NeurIPS/IEEE column),
``paper-wide`` spans both columns (7.0 in), ``talk`` fills a 16:9 slide (13.33 × 7.5 in).
Colours stay Okabe–Ito (colour-blind safe, :mod:`analyze_experiment.report.plots.style`).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.lazy import mpl, plt  # `show` uses common_prefix and draws nothing
from analyze_experiment.report.plots.plan import plan_figures
from analyze_experiment.report.plots.specs import NoData
from analyze_experiment.report.plots.style import RC

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Style:
    """Canvas and type of one output style."""

    width: float
    """Inches."""
    height: float
    font_size: float
    """Points, for labels and tick labels; titles are 1.15× larger."""
    line_width: float


STYLES: dict[str, Style] = {
    "paper": Style(width=3.5, height=2.6, font_size=8, line_width=1.0),
    "paper-wide": Style(width=7.0, height=3.2, font_size=9, line_width=1.2),
    "talk": Style(width=13.33, height=7.5, font_size=18, line_width=2.5),
}
"""The styles ``plot --style`` accepts."""

KINDS: dict[str, str] = {
    "loss": "training loss per step, one line per run",
    "validation": "validation loss beside training loss",
    "lr": "learning-rate schedule",
    "throughput": "tokens per second per GPU",
    "gpu": "GPU memory (and utilisation when monitored)",
    "final": "the metric per run with its confidence interval",
    "heatmap": "the metric over two swept variables",
    "samples": "per-sample outcomes against the best run",
    "pareto": "the metric against training cost",
    "effects": "main effect of each swept variable",
}
"""Figure kinds, named as the report's figure files are (``plots/<kind>[_<target>].png``)."""

FORMATS = (".pdf", ".png", ".svg")

_PER_TARGET = {"final", "heatmap", "samples", "pareto", "effects"}


class PlotRequestError(ValueError):
    """A request that names no figure of this experiment (an unknown run, task or metric)."""


def _rc(style: Style) -> dict[str, object]:
    """The report's rcParams with this style's type, and fonts embedded in PDF and SVG."""
    rc = dict(RC)
    rc.update({
        "font.size": style.font_size,
        "axes.labelsize": style.font_size,
        "axes.titlesize": style.font_size * 1.15,
        "xtick.labelsize": style.font_size * 0.9,
        "ytick.labelsize": style.font_size * 0.9,
        "legend.fontsize": style.font_size * 0.85,
        "lines.linewidth": style.line_width,
        "pdf.fonttype": 42,  # TrueType, embedded: journals reject Type 3 fonts
        "ps.fonttype": 42,
        "svg.fonttype": "path",  # text as outlines: the SVG looks the same without the font
        "savefig.bbox": "standard",  # the page is the style's size, not the drawing's bounding box
    })
    return rc


def _keep_runs(df: pd.DataFrame, runs: set[str], column: str = "run") -> pd.DataFrame:
    if df is None or df.empty or column not in df.columns:
        return df
    return df[df[column].astype(str).isin(runs)].reset_index(drop=True)


def restrict(experiment: Experiment, analysis: Analysis, runs: Iterable[str]) -> tuple[Experiment, Analysis]:
    """Copies showing only ``runs``; the statistics are those of the whole sweep.

    Intervals, effects and the best run were computed over every run (the report's numbers);
    this only leaves other runs out of the drawing, so a slide with three runs shows the same
    intervals the report gives for them.
    """
    keep = {str(r) for r in runs}
    exp = dataclasses.replace(
        experiment,
        train_steps=_keep_runs(experiment.train_steps, keep),
        gpu=_keep_runs(experiment.gpu, keep),
        eval_samples=_keep_runs(experiment.eval_samples, keep),
    )
    a = dataclasses.replace(analysis, intervals=_keep_runs(analysis.intervals, keep),
                            pareto=_keep_runs(analysis.pareto, keep))
    return exp, a


def known_runs(experiment: Experiment, analysis: Analysis) -> list[str]:
    """Every run with training steps or an evaluation (the names ``--runs`` accepts)."""
    names: list[str] = []
    for df in (experiment.train_steps, analysis.intervals):
        if df is not None and not df.empty and "run" in df.columns:
            names += [str(r) for r in df["run"].dropna().unique()]
    return sorted(set(names))


def common_prefix(names: list[str]) -> str:
    """The prefix every run name shares, cut after its last ``_``/``-``/``/`` (``""`` if none).

    Sweeps name runs ``<model>_<settings>``; on a 3.5 in page the model name repeated on every
    bar leaves no room for the bars, and the caption can say it once.

    >>> common_prefix(["Llama-1B_rank4", "Llama-1B_rank16", "Llama-1B_base"])
    'Llama-1B_'
    >>> common_prefix(["a", "b"])
    ''
    """
    if len(names) < 2:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    cut = max(p.rfind(c) for c in "_-/")
    return p[: cut + 1] if cut >= 0 else ""


def _shorten(fig: Figure, prefix: str) -> bool:
    """Drop ``prefix`` from tick labels and legend entries; True when any text had it."""
    if not prefix:
        return False
    hit = False
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels()
            if any(t.get_text().startswith(prefix) for t in labels):
                hit = True
                axis.set_ticks(axis.get_ticklocs(), [t.get_text().removeprefix(prefix) for t in labels])
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                hit = hit or t.get_text().startswith(prefix)
                t.set_text(t.get_text().removeprefix(prefix))
    return hit


def _wrap(text: str, width_in: float, font_size: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``font_size`` points
    (an average glyph is about 0.55 em wide)."""
    chars = max(12, int(width_in * 72 / (font_size * 0.55)))
    return textwrap.fill(text, chars) if len(text) > chars else text


def _target(analysis: Analysis, task: str | None, metric: str | None, scorer: str | None = None) -> sel.Target:
    """The figure target ``task``/``metric``/``scorer`` name; among several, the report's own
    (its primary metric: :func:`.story.lead_keys`), else the first."""
    from analyze_experiment.report.story import lead_keys

    found = [t for t in sel.targets(analysis)
             if (task is None or t.task == task) and (metric is None or t.metric == metric)
             and (scorer is None or t.scorer == scorer)]
    lead = lead_keys(analysis)
    found.sort(key=lambda t: (t.task, t.scorer, t.metric) not in lead)  # stable: the first lead target
    if not found and metric is not None and len(analysis.intervals):
        iv = analysis.intervals  # a secondary metric: not a report figure, but drawable
        iv = iv[(iv["metric"].astype(str) == metric) & ((iv["task"].astype(str) == task) if task else True)
                & ((iv["scorer"].astype(str) == scorer) if scorer else True)]
        if len(iv):
            t0 = iv.iloc[0]
            found = [sel.Target(str(t0["task"]), str(t0["scorer"]), metric, sel.safe_stem(f"{t0['task']}_{metric}"),
                                str(t0["task"]))]
    if not found:
        have = sorted({f"{t.task}/{t.scorer}/{t.metric}" for t in sel.targets(analysis)})
        raise PlotRequestError(f"no evaluated metric matches task={task or 'any'} scorer={scorer or 'any'} "
                               f"metric={metric or 'any'}; this experiment has: {', '.join(have) or 'no evaluations'}")
    return found[0]


def _with_target(analysis: Analysis, t: sel.Target) -> Analysis:
    """``analysis`` whose figure targets are exactly ``t`` (a secondary metric included)."""
    best = [b for b in analysis.best if (b.task, b.scorer, b.metric) == (t.task, t.scorer, t.metric)]
    iv = analysis.intervals
    if len(iv):
        iv = iv[(iv["task"].astype(str) == t.task) & (iv["scorer"].astype(str) == t.scorer)
                & (iv["metric"].astype(str) == t.metric)]
    return dataclasses.replace(analysis, best=best, intervals=iv.reset_index(drop=True))


def draw(experiment: Experiment, analysis: Analysis, kind: str, *, task: str | None = None,
         metric: str | None = None, runs: Iterable[str] | None = None, style: str = "paper",
         scorer: str | None = None) -> Figure:
    """The report's ``kind`` figure, drawn in ``style`` (the caller saves and closes it).

    Raises:
        PlotRequestError: unknown kind, style, run, task or metric (the message lists the
            valid ones), or a figure this experiment has no data for.
    """
    if kind not in KINDS:
        raise PlotRequestError(f"unknown figure kind {kind!r}; one of: {', '.join(KINDS)}")
    if style not in STYLES:
        raise PlotRequestError(f"unknown style {style!r}; one of: {', '.join(STYLES)}")
    if runs is not None:
        runs = list(runs)
        unknown = sorted(set(runs) - set(known_runs(experiment, analysis)))
        if unknown:
            raise PlotRequestError(f"--runs names runs this experiment does not have: {', '.join(unknown)}; "
                                   f"known runs: {', '.join(known_runs(experiment, analysis))}")
        experiment, analysis = restrict(experiment, analysis, runs)
    name = kind
    if kind in _PER_TARGET:
        t = _target(analysis, task, metric, scorer)
        analysis = _with_target(analysis, t)
        name = f"{kind}_{sel.targets(analysis)[0].slug}" if sel.targets(analysis) else kind
    st = STYLES[style]
    with mpl.rc_context(_rc(st)):
        plans = {spec.name: spec for spec in plan_figures(experiment, analysis)}
        if name not in plans:
            raise PlotRequestError(f"this experiment has no {kind} figure (nothing to draw it from)")
        try:
            fig = plans[name].draw()
        except NoData as exc:
            raise PlotRequestError(f"no {kind} figure: {exc}") from None
        prefix = common_prefix(known_runs(experiment, analysis))
        if _shorten(fig, prefix):
            fig.supxlabel(f"run names start with {prefix}", fontsize=st.font_size * 0.75, color="#555555")
        fig.set_size_inches(st.width, st.height)
        fig.set_layout_engine("constrained")  # exact page size: labels and legends fitted inside it
        for ax in fig.axes:  # the report's figures fix some sizes in points; follow the style instead
            for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
                text.set_fontsize(st.font_size * (1.15 if text is ax.title else 1.0))
            ax.title.set_text(_wrap(ax.title.get_text(), st.width * ax.get_position().width, st.font_size * 1.15))
            ax.tick_params(labelsize=st.font_size * 0.9)
            leg = ax.get_legend()
            if leg is not None:
                for text in leg.get_texts():
                    text.set_fontsize(st.font_size * 0.85)
        if fig._suptitle is not None:
            fig._suptitle.set_fontsize(st.font_size * 1.2)
            fig._suptitle.set_text(_wrap(fig._suptitle.get_text(), st.width, st.font_size * 1.2))
    return fig


def save(fig: Figure, out: Path, style: str = "paper") -> Path:
    """Write ``fig`` to ``out`` (format from the suffix: PDF, PNG at 300 dpi, or SVG) and close it.

    The page is exactly the style's size (no tight bounding box): a one-column figure must be
    3.5 in wide to sit in the column without rescaling its type."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        plt.close(fig)
        raise PlotRequestError(f"--out must end in one of {', '.join(FORMATS)} (got {out.name!r})")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"pdf": {"Creator": "analyze-experiment", "Producer": None, "CreationDate": None},
            "svg": {"Date": None}, "png": {"Software": None}}[suffix[1:]]
    try:
        with mpl.rc_context(_rc(STYLES.get(style, STYLES["paper"]))):
            fig.savefig(out, dpi=300, metadata=meta)
    finally:
        plt.close(fig)
    return out
