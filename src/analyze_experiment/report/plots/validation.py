"""The validation-loss figure: each run's validation curve drawn beside its training loss.

Static (matplotlib) and interactive (plotly.js JSON, :mod:`.plotly_json`) versions of the same picture: the training loss
faint, the validation loss as markers joined by a line, one colour per run, an open marker on
each run's best validation and a cross on the runs flagged as overfitting
(:mod:`analyze_experiment.ingest.validation`). Only runs that validated are drawn.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyze_experiment.ingest import validation as val
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.lazy import plt
from analyze_experiment.report.plots.plotly_json import PlotlyFigure, figure, values
from analyze_experiment.report.plots.style import CONTROL_COLOR

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAIN_ALPHA = 0.35


def validation_frames(steps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training loss of the runs that validated, their validation curves with an ``overfit`` column)."""
    if not len(steps) or val.VAL_COLUMN not in steps.columns:
        return sel.series_frame(steps, "loss").iloc[0:0], pd.DataFrame(columns=[*val.CURVE_COLUMNS, "overfit"])
    curves = []
    for _run, g in steps.groupby("run", sort=False):
        c = val.validation_curve(g)
        c = c[np.isfinite(c["val_loss"].astype(float))]
        if len(c):
            c = c.assign(overfit=bool(val.overfitting(c)))
            curves.append(c)
    if not curves:
        return sel.series_frame(steps, "loss").iloc[0:0], pd.DataFrame(columns=[*val.CURVE_COLUMNS, "overfit"])
    curve = pd.concat(curves, ignore_index=True)
    loss = sel.series_frame(steps, "loss")
    return loss[loss["run"].isin(set(curve["run"]))], curve


def plot_validation(loss: pd.DataFrame, curve: pd.DataFrame, *, colors: dict[str, str],
                    title: str = "Validation and training loss", encoding: sel.Encoding | None = None) -> Figure:
    """Training loss (faint) and validation loss (markers) per run against the global step.

    Beyond :data:`.static.MAX_LEGEND_RUNS` runs with an ``encoding``: :func:`plot_many_validations`.

    Raises:
        ValueError: no run validated (the caller turns it into a skipped figure).
    """
    if not len(curve):
        raise ValueError("no run logged a validation loss")
    from analyze_experiment.report.plots import static

    if encoding is not None and curve["run"].nunique() > static.MAX_LEGEND_RUNS:
        return plot_many_validations(curve, encoding=encoding, title=title)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run, g in curve.groupby("run", sort=False):
        color = colors.get(str(run), CONTROL_COLOR)
        t = loss[loss["run"] == run]
        ax.plot(t["step"], t["loss"], color=color, alpha=TRAIN_ALPHA, linewidth=0.9, label="_nolegend_",
                gid="train")
        flagged = bool(g["overfit"].iloc[0])
        ax.plot(g["step"], g["val_loss"], color=color, marker="o", markersize=4, linewidth=1.8,
                label=f"{run}{' (overfitting)' if flagged else ''}", gid="validation")
        best = g.loc[g["val_loss"].astype(float).idxmin()]
        ax.plot([best["step"]], [best["val_loss"]], marker="o", markersize=10, markerfacecolor="none",
                markeredgecolor=color, linestyle="none", label="_nolegend_", gid="best")
    ax.plot([], [], color="#777777", alpha=TRAIN_ALPHA, label="training loss (faint)")
    ax.plot([], [], color="#777777", marker="o", label="validation loss")
    ax.set_xlabel("Global optimizer step")
    ax.set_ylabel("Loss (per token)")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title="run")
    return fig


MAX_NAMED_OVERFIT = 5
"""Overfitting runs named in the legend of a many-run figure (the rest counted)."""


def plot_many_validations(curve: pd.DataFrame, *, encoding: sel.Encoding,
                          title: str = "Validation and training loss") -> Figure:
    """Validation curves of many runs on one Axes without a legend entry per run: coloured by
    their level of ``encoding.hue`` (a colour bar or a legend of levels), rasterised, the
    training loss left out (dozens of faint curves under the markers hide them), runs flagged
    as overfitting marked with a cross at their last validation and named (the first
    :data:`MAX_NAMED_OVERFIT`), the report's best run outlined and named."""
    from matplotlib.lines import Line2D

    from analyze_experiment.report.plots import static

    colors = static.encoding_colors(encoding)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    flagged: list[str] = []
    for run, g in curve.groupby(curve["run"].astype(str), sort=False):
        color = colors.get(run, CONTROL_COLOR)
        is_best = run == encoding.best
        if is_best:
            ax.plot(g["step"], g["val_loss"], color="black", linewidth=3.4, rasterized=True, zorder=4,
                    gid="best_outline")
        ax.plot(g["step"], g["val_loss"], color=color, marker="o", markersize=2.5, linewidth=2.0 if is_best else 1.0,
                alpha=1.0 if is_best else 0.85, rasterized=True, zorder=4 if is_best else 2,
                gid="best" if is_best else "validation")
        if bool(g["overfit"].iloc[0]):
            flagged.append(run)
            ax.plot([g["step"].iloc[-1]], [g["val_loss"].iloc[-1]], marker="X", markersize=8, color=color,
                    markeredgecolor="black", linestyle="none", zorder=5, gid="overfit")
        if is_best:
            static.label_best(ax, float(g["step"].iloc[-1]), float(g["val_loss"].iloc[-1]), run)
    handles = static.encoding_key(fig, [ax], encoding)
    if flagged:
        names = ", ".join(flagged[:MAX_NAMED_OVERFIT]) + (f" and {len(flagged) - MAX_NAMED_OVERFIT} more"
                                                           if len(flagged) > MAX_NAMED_OVERFIT else "")
        handles.append(Line2D([], [], marker="X", color="#BBBBBB", markeredgecolor="black", linestyle="none",
                              label=f"overfitting: {names}"))
    if encoding.best is not None and encoding.best in set(curve["run"].astype(str)):
        handles.append(Line2D([], [], color="black", linewidth=3.0, label=f"{encoding.best}: the report's best"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), frameon=False)
    ax.set_xlabel("Global optimizer step")
    ax.set_ylabel("Validation loss (per token)")
    del title  # the training loss is not drawn here: the title says so
    ax.set_title(f"Validation loss ({curve['run'].nunique()} runs; colour: {encoding.hue})")
    return fig


def plot_validation_frames(data: tuple[pd.DataFrame, pd.DataFrame], *, colors: dict[str, str],
                           encoding: sel.Encoding | None = None) -> Figure:
    """:func:`plot_validation` over :func:`validation_frames` output (a figure spec's data)."""
    loss, curve = data
    return plot_validation(loss, curve, colors=colors, encoding=encoding)


def validation_figure(loss: pd.DataFrame, curve: pd.DataFrame, colors: dict[str, str],
                      text: object = str) -> PlotlyFigure | None:
    """The interactive version; None when no run validated. ``text`` escapes labels."""
    if not len(curve):
        return None
    fig = figure()
    for run, g in curve.groupby("run", sort=False):
        name = text(run)  # type: ignore[operator]
        color = colors.get(str(run), CONTROL_COLOR)
        t = loss[loss["run"] == run]
        fig.add_trace({"type": "scatter", "x": values(t["step"]), "y": values(t["loss"]), "mode": "lines",
                       "name": f"{name} training", "legendgroup": name, "line": {"color": color, "width": 1},
                       "opacity": 0.35,
                       "hovertemplate": f"{name}<br>step %{{x}}<br>training loss %{{y:.4g}}<extra></extra>"})
        flag = " (overfitting)" if bool(g["overfit"].iloc[0]) else ""
        gap = [v - tl if math.isfinite(tl) else math.nan for v, tl in zip(g["val_loss"], g["train_loss"], strict=True)]
        fig.add_trace({"type": "scatter", "x": values(g["step"]), "y": values(g["val_loss"]),
                       "mode": "lines+markers", "name": f"{name} validation{flag}", "legendgroup": name,
                       "line": {"color": color, "width": 2.5}, "customdata": gap,
                       "hovertemplate": f"{name}<br>step %{{x}}<br>validation loss %{{y:.4f}}"
                                        "<br>gap to training %{customdata:.4f}<extra></extra>"})
    fig.layout.update(title={"text": "Validation and training loss"},
                      xaxis={"title": {"text": "Global optimizer step"}}, yaxis={"title": {"text": "loss (per token)"}})
    return fig
