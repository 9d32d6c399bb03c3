"""The validation-loss figure: each run's validation curve drawn beside its training loss.

Static (matplotlib) and interactive (plotly.js JSON, :mod:`.plotly_json`) versions of the same picture: the training loss
faint, the validation loss as markers joined by a line, one colour per run, an open marker on
each run's best validation and a cross on the runs flagged as overfitting
(:mod:`analyze_experiment.ingest.validation`). Only runs that validated are drawn.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analyze_experiment.ingest import validation as val
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.plotly_json import PlotlyFigure, figure, values
from analyze_experiment.report.plots.style import CONTROL_COLOR

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
                    title: str = "Validation and training loss") -> Figure:
    """Training loss (faint) and validation loss (markers) per run against the global step.

    Raises:
        ValueError: no run validated (the caller turns it into a skipped figure).
    """
    if not len(curve):
        raise ValueError("no run logged a validation loss")
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


def plot_validation_frames(data: tuple[pd.DataFrame, pd.DataFrame], *, colors: dict[str, str]) -> Figure:
    """:func:`plot_validation` over :func:`validation_frames` output (a figure spec's data)."""
    loss, curve = data
    return plot_validation(loss, curve, colors=colors)


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
