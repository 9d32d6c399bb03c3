"""ROC curves and reliability diagrams of risk scorers, one line per candidate.

The points come from :attr:`Analysis.risk_curves` (computed by stats/scorer_kinds.py) and
the AUC shown in the legend from :attr:`Analysis.risk`; nothing is recomputed here. Static
figures follow :mod:`.static` (``plot_*`` returns a Figure, :func:`plan_risk_figures` gives
figure specs); :func:`risk_interactive` gives the plotly.js versions for report.html (:mod:`.plotly_json`).
"""

from __future__ import annotations

import html
import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.report.plots._select import safe_stem
from analyze_experiment.report.plots.lazy import plt
from analyze_experiment.report.plots.plotly_json import FONT, PlotlyFigure, figure, values
from analyze_experiment.report.plots.specs import FigureSpec, NoData
from analyze_experiment.report.plots.style import CONTROL_COLOR
from analyze_experiment.tables import at_epoch, by_epoch
from analyze_experiment.textsafe import visible

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SECTION = "risk"
"""``PlotInfo.section``: the report shows these figures in its Risk Scorers block."""

DIAGONAL = {"color": "#999999", "linestyle": "--", "linewidth": 1.0}
STYLES = ["-", (0, (6, 2)), (0, (1, 1.5)), "-.", (0, (3, 1, 1, 1, 1, 1))]
"""Line styles cycled over candidates, so curves that coincide (same ranking) stay visible."""


def _label(run: Any, epoch: Any) -> str:
    return str(run) if epoch is None or pd.isna(epoch) else f"{run} (epoch {int(float(epoch))})"


def risk_targets(analysis: Analysis) -> list[tuple[str, str, str]]:
    """(task, scorer, file-name slug) of every risk scorer with curves."""
    c = getattr(analysis, "risk_curves", None)
    if c is None or not len(c):
        return []
    pairs = sorted({(str(t), str(s)) for t, s in zip(c["task"], c["scorer"], strict=True)})
    return [(t, s, safe_stem(f"{t}_{s}")) for t, s in pairs]


def _candidates(analysis: Analysis, task: str, scorer: str, curve: str) -> list[tuple[str, pd.DataFrame, str]]:
    """(legend label, points, run) per candidate, with its AUC or ECE in the label."""
    return [(name, g, run) for name, g, run, _ in _scored_candidates(analysis, task, scorer, curve)]


def _scored_candidates(analysis: Analysis, task: str, scorer: str,
                       curve: str) -> list[tuple[str, pd.DataFrame, str, float]]:
    """:func:`_candidates` with each candidate's AUC (ROC) or risk calibration error
    (reliability) as a number (NaN when unknown)."""
    c = analysis.risk_curves
    c = c[(c["task"] == task) & (c["scorer"] == scorer) & (c["curve"] == curve)]
    r = analysis.risk
    out = []
    for (run, ep), g in by_epoch(c, ["run", "epoch"]):
        epoch = None if pd.isna(ep) else ep
        row = r[(r["task"] == task) & (r["scorer"] == scorer) & (r["run"] == run) & at_epoch(r["epoch"], epoch)]
        name, value = _label(run, epoch), math.nan
        if len(row):
            x = row.iloc[0]
            value = float(x["auc"] if curve == "roc" else x["risk_calibration_error"])
            name += f" (AUC {x['auc']:.3f})" if curve == "roc" else f" (risk cal. error {x['risk_calibration_error']:.3f})"
        out.append((name, g, str(run), value))
    return out


MAX_NAMED = 5
"""Candidates named in a ROC or reliability legend when there are more than
:data:`MANY_CANDIDATES`: the best by AUC (lowest calibration error), and every control."""

MANY_CANDIDATES = 10
OTHER_STYLE = {"color": "#BBBBBB", "linewidth": 0.8, "alpha": 0.7}


def _named_and_rest(cands: list[tuple[str, pd.DataFrame, str, float]], colors: dict[str, str], *,
                    higher_better: bool) -> tuple[list[tuple[str, pd.DataFrame, str, float]], list]:
    """(candidates drawn in colour and named, the rest drawn grey and unnamed): all are named up
    to :data:`MANY_CANDIDATES`; beyond, the :data:`MAX_NAMED` best and the controls (grey in
    ``colors``) — a legend of every candidate covered the curves it explains."""
    if len(cands) <= MANY_CANDIDATES:
        return cands, []
    ranked = sorted(cands, key=lambda c: (math.isnan(c[3]), -c[3] if higher_better else c[3]))
    ctl = [c for c in cands if colors.get(c[2], CONTROL_COLOR) == CONTROL_COLOR]
    named_ids = {id(c) for c in [c for c in ranked if c not in ctl][:MAX_NAMED] + ctl}
    return [c for c in ranked if id(c) in named_ids], [c for c in cands if id(c) not in named_ids]


def _draw_rest(ax: plt.Axes, rest: list, marker: str | None = None) -> None:
    """The unnamed candidates: thin grey rasterised lines behind the named ones, counted once
    in the legend."""
    for _, g, _, _ in rest:
        ax.plot(g["x"], g["y"], marker=marker, markersize=2, rasterized=True, label="_nolegend_", gid="other",
                zorder=1, **OTHER_STYLE)
    if rest:
        ax.plot([], [], label=f"{len(rest)} other candidates", **OTHER_STYLE)


def plot_roc(analysis: Analysis, task: str, scorer: str, *, colors: dict[str, str]) -> Figure:
    """Empirical ROC curve of each candidate; the diagonal is a model that cannot rank."""
    cands, rest = _named_and_rest(_scored_candidates(analysis, task, scorer, "roc"), colors, higher_better=True)
    if not cands:
        raise NoData("no candidate has both classes among its readable outputs")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.plot([0, 1], [0, 1], label="chance", gid="diagonal", **DIAGONAL)
    _draw_rest(ax, rest)
    for i, (name, g, run, _) in enumerate(cands):
        ax.plot(g["x"], g["y"], color=colors.get(run, CONTROL_COLOR), linewidth=2.0,
                linestyle=STYLES[i % len(STYLES)], label=name, gid="roc")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(f"ROC curves — {task} / {scorer}")
    ax.legend(loc="lower right")
    return fig


def plot_reliability(analysis: Analysis, task: str, scorer: str, *, colors: dict[str, str]) -> Figure:
    """Share positive against mean predicted risk per bin; the diagonal is perfect calibration."""
    cands, rest = _named_and_rest(_scored_candidates(analysis, task, scorer, "reliability"), colors,
                                  higher_better=False)
    if not cands:
        raise NoData("no readable risk scores")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.plot([0, 1], [0, 1], label="perfect calibration", gid="diagonal", **DIAGONAL)
    _draw_rest(ax, rest, marker="o")
    for i, (name, g, run, _) in enumerate(cands):
        ax.plot(g["x"], g["y"], marker="o", color=colors.get(run, CONTROL_COLOR), linewidth=1.5,
                linestyle=STYLES[i % len(STYLES)], label=name, gid="reliability")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Mean predicted risk (10 equal-width bins)")
    ax.set_ylabel("Observed share positive")
    ax.set_title(f"Reliability — {task} / {scorer}")
    ax.legend(loc="upper left")
    return fig


def _risk_tables(analysis: Analysis, task: str, scorer: str) -> SimpleNamespace:
    """The rows of ``risk_curves`` and ``risk`` for one scorer: what its figures need, small
    enough to send to a drawing process."""
    c, r = analysis.risk_curves, analysis.risk
    return SimpleNamespace(risk_curves=c[(c["task"] == task) & (c["scorer"] == scorer)],
                           risk=r[(r["task"] == task) & (r["scorer"] == scorer)] if len(r) else r)


def plan_risk_figures(analysis: Analysis, colors: dict[str, str]) -> list[FigureSpec]:
    """The ROC and reliability figure of every risk scorer, as specs."""
    specs: list[FigureSpec] = []
    for task, scorer, slug in risk_targets(analysis):
        data = _risk_tables(analysis, task, scorer)
        opts = {"task": task, "scorer": scorer, "colors": colors}
        specs.append(FigureSpec(
            f"roc_{slug}", f"ROC curves — {task} / {scorer}", SECTION, _roc, data, opts,
            caption="One line per candidate over its readable outputs; AUC in the legend (DeLong intervals and "
                    "paired tests in the tables above).", interactive=f"roc_{slug}"))
        specs.append(FigureSpec(
            f"reliability_{slug}", f"Reliability diagram — {task} / {scorer}", SECTION, _reliability, data, opts,
            caption="Per bin of predicted risk (10 equal-width bins; empty bins left out): the mean risk against the "
                    "observed share of positives; on the diagonal a risk means what it says.",
            interactive=f"reliability_{slug}"))
    return specs


def _roc(data: SimpleNamespace, *, task: str, scorer: str, colors: dict[str, str]) -> Figure:
    return plot_roc(data, task, scorer, colors=colors)  # type: ignore[arg-type]


def _reliability(data: SimpleNamespace, *, task: str, scorer: str, colors: dict[str, str]) -> Figure:
    return plot_reliability(data, task, scorer, colors=colors)  # type: ignore[arg-type]


def _text(s: object) -> str:
    return html.escape(visible(s), quote=True)


def risk_interactive(analysis: Analysis, colors: dict[str, str]) -> dict[str, PlotlyFigure]:
    """plotly.js versions of the ROC and reliability figures, keyed like their PlotInfo."""
    out: dict[str, PlotlyFigure] = {}
    layout = {"font": FONT, "legend": {"title": {"text": "run"}}, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}}
    for task, scorer, slug in risk_targets(analysis):
        for curve, xlab, ylab, title in (
                ("roc", "false positive rate", "true positive rate", "ROC curves"),
                ("reliability", "mean predicted risk", "observed share positive", "Reliability")):
            cands = _candidates(analysis, task, scorer, curve)
            if not cands:
                continue
            fig = figure({"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "diagonal",
                          "hoverinfo": "skip", "line": {"color": "#999999", "dash": "dash", "width": 1}})
            for name, g, run in cands:
                fig.add_trace({
                    "type": "scatter", "x": values(g["x"]), "y": values(g["y"]),
                    "mode": "lines" if curve == "roc" else "lines+markers", "name": _text(name),
                    "line": {"color": colors.get(run, CONTROL_COLOR), "width": 2},
                    "hovertemplate": f"{_text(name)}<br>{xlab} %{{x:.3f}}<br>{ylab} %{{y:.3f}}<extra></extra>"})
            fig.layout.update(title={"text": _text(f"{title} — {task} / {scorer}")}, xaxis={"title": {"text": xlab}},
                              yaxis={"title": {"text": ylab}}, **layout)
            out[f"{curve}_{slug}"] = fig
    return out
