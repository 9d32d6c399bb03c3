"""Static figures (matplotlib/seaborn) for the report, saved as PNG and SVG.

Each ``plot_*`` function takes a tidy frame plus column names, draws a new figure and
returns it, so tests can inspect lines, bars and annotations instead of pixels. Nothing here
computes a statistic: intervals, effects and Pareto flags come from
:class:`~analyze_experiment.analysis.Analysis`. :func:`render_plots` decides which figures
have data, writes them, and records every skipped figure in the diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (the library may run on a cluster node)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analyze_experiment.analysis import Analysis
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Experiment
from analyze_experiment.progress import Progress, silent
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.style import CONTROL_COLOR, DPI, plot_style, run_colors
from analyze_experiment.report.plots.validation import plot_validation, validation_frames

MAX_OVERLAY = 8
"""Above this many runs the loss curves become one small panel per run."""

RAW_ALPHA = 0.25
BOUNDARY_STYLE = {"color": "#555555", "linestyle": ":", "linewidth": 1.0}


class NoData(Exception):
    """A figure has nothing to show; the message says why (it goes to Data Quality)."""


@dataclass
class PlotInfo:
    """One written figure, as the report builder needs it."""

    name: str
    """File stem: ``plots/<name>.png`` (and ``.svg`` with ``--svg``)."""
    title: str
    section: str
    """``training`` | ``evaluation`` | ``statistics``."""
    caption: str | None = None
    interactive: str | None = None
    """Key into :func:`analyze_experiment.report.plots.interactive.interactive_figures`."""


def _legend_outside(ax: plt.Axes, **kw: object) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def _color(colors: dict[str, str], run: str) -> str:
    return colors.get(str(run), CONTROL_COLOR)


# --- training ------------------------------------------------------------------------------


CURVE_BUCKETS = 350
"""Min-max buckets per drawn curve (≤ 1,400 points): a 9-inch, 150-dpi figure is 1,350 pixels wide."""

MAX_PANELS = 16
"""Small multiples per figure: more runs share panels (grouped by configuration or by a swept
parameter's level); the interactive chart of report.html shows every run on its own."""


def _draw_run_curve(ax: plt.Axes, g: pd.DataFrame, x: str, y: str, color: str, label: str | None,
                    smoothed: bool, rasterized: bool = False) -> None:
    xs = g[x].to_numpy(dtype=float)
    ys = g[y].to_numpy(dtype=float)
    rx, ry = sel.minmax_downsample(xs, ys, CURVE_BUCKETS)
    ax.plot(rx, ry, color=color, alpha=RAW_ALPHA if smoothed else 0.9, linewidth=0.8,
            label="_nolegend_" if smoothed else label, gid="raw", rasterized=rasterized)
    if smoothed:  # smoothed over every step, then thinned for drawing
        sx, sy = sel.minmax_downsample(xs, sel.smooth(g[y]).to_numpy(dtype=float), CURVE_BUCKETS)
        ax.plot(sx, sy, color=color, linewidth=2.0, label=label, gid="smoothed", rasterized=rasterized)


def _draw_boundaries(ax: plt.Axes, steps: list[float], label: bool) -> None:
    """Dotted epoch boundaries as one collection in axes-height coordinates: unlike one
    ``axvline`` each, they never rescale shared axes (which cost ∝ panels²)."""
    xs = sorted(set(steps))
    if not xs:
        return
    ax.vlines(xs, 0, 1, transform=ax.get_xaxis_transform(), label="epoch boundary" if label else "_nolegend_",
              gid="epoch_boundary", colors=BOUNDARY_STYLE["color"], linestyles=BOUNDARY_STYLE["linestyle"],
              linewidths=BOUNDARY_STYLE["linewidth"])


def plot_step_series(
    data: pd.DataFrame,
    *,
    y: str,
    ylabel: str,
    title: str,
    colors: dict[str, str],
    x: str = "step",
    hue: str = "run",
    smoothed: bool = False,
    boundaries: dict[str, list[float]] | None = None,
    max_overlay: int = MAX_OVERLAY,
    groups: dict[str, str] | None = None,
    max_panels: int = MAX_PANELS,
) -> Figure:
    """Lines of ``y`` against the global step, one colour per run.

    With ``smoothed`` each run is drawn twice: the raw values faint and an exponential moving
    average bold (the raw line shows the noise, the bold one the trend). Epoch boundaries are
    dotted vertical lines. Curves are thinned to what the figure's width can show
    (:func:`_select.minmax_downsample`: spikes survive). More than ``max_overlay`` runs give
    small multiples with shared axes and rasterised lines, at most ``max_panels`` of them:
    runs share a panel by ``groups`` (run -> label, e.g. a configuration whose seeds overlay),
    else one panel per run while that fits.
    """
    if not len(data):
        raise NoData(f"no {y} values")
    runs = list(dict.fromkeys(data[hue].astype(str)))
    boundaries = boundaries or {}
    by_run = dict(tuple(data.groupby(data[hue].astype(str), sort=False)))
    if len(runs) <= max_overlay:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for run in runs:
            _draw_run_curve(ax, by_run[run], x, y, _color(colors, run), run, smoothed)
        _draw_boundaries(ax, [s for r in runs for s in boundaries.get(r, [])], label=True)
        ax.set_xlabel("Global optimizer step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        _legend_outside(ax, title="run")
        return fig
    if len(runs) <= max_panels:
        panels = {run: [run] for run in runs}
    else:
        groups = groups or {}
        size = math.ceil(len(runs) / max_panels)
        fallback = {r: f"runs {i // size * size + 1}–{min(len(runs), (i // size + 1) * size)}"
                    for i, r in enumerate(runs)}
        panels = {}
        for run in runs:
            panels.setdefault(groups.get(run) or fallback[run], []).append(run)
        if len(panels) > max_panels:  # groups that do not fit: consecutive blocks instead
            panels = {}
            for run in runs:
                panels.setdefault(fallback[run], []).append(run)
    ncols = 4
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, members) in zip(axes.flat, panels.items(), strict=False):
        for run in members:
            _draw_run_curve(ax, by_run[run], x, y, _color(colors, run), run, smoothed, rasterized=True)
        _draw_boundaries(ax, [s for r in members for s in boundaries.get(r, [])], label=False)
        ax.set_title(name, fontsize=9)
        if len(members) > 1:
            ax.legend(fontsize=5, loc="best", frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        fig.delaxes(ax)
    fig.supxlabel("Global optimizer step")
    fig.supylabel(ylabel)
    fig.suptitle(title + (f" ({len(runs)} runs in {len(panels)} panels)" if len(panels) < len(runs) else ""))
    fig.tight_layout()
    return fig


def plot_gpu(data: pd.DataFrame, *, colors: dict[str, str]) -> Figure:
    """GPU memory (max over a node's GPUs) and utilisation (mean) against elapsed minutes.

    ``data`` is :func:`_select.gpu_frame` output. Only panels with values are drawn.
    """
    panels = [(c, lab) for c, lab in (("memory_gib", "GPU memory used (GiB, max over GPUs)"),
                                      ("utilization_pct", "GPU utilisation (%, mean over GPUs)"))
              if c in data.columns and pd.to_numeric(data[c], errors="coerce").notna().any()]
    if not panels:
        raise NoData("no GPU memory or utilisation samples")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (col, label) in zip(axes[:, 0], panels, strict=True):
        for run, g in data.groupby("run", sort=False):
            g = g[g[col].notna()]
            if len(g):
                ax.plot(g["minutes"], g[col], color=_color(colors, str(run)), linewidth=1.2, label=str(run))
        ax.set_ylabel(label)
    axes[0, 0].set_title("GPU memory and utilisation over time")
    axes[-1, 0].set_xlabel("Time since the run's first sample (min)")
    _legend_outside(axes[0, 0], title="run")
    return fig


# --- evaluation ----------------------------------------------------------------------------


def plot_final_metric(
    data: pd.DataFrame,
    *,
    colors: dict[str, str],
    controls: list[str],
    metric_label: str,
    title: str,
    label: str = "label",
    value: str = "value",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    references: Sequence[tuple[str, float]] = (),
) -> Figure:
    """Horizontal bars of the metric per candidate, best on top, with CI error bars.

    ``references`` (name, value) are drawn as dashed vertical lines, named in the legend.

    Control/baseline runs are grey, hatched and suffixed ``(control)`` so they read as
    reference points. A missing CI gives no error bar (never a zero-width one pretending
    certainty).
    """
    df = data[pd.to_numeric(data[value], errors="coerce").notna()].copy()
    if not len(df):
        raise NoData("no metric values")
    sign = -1.0 if "direction" in df.columns and (df["direction"] == "lower").any() else 1.0
    df = df.assign(_s=sign * df[value].astype(float)).sort_values("_s", ascending=True, kind="stable")  # best on top
    v = df[value].astype(float).to_numpy()
    lo = pd.to_numeric(df[ci_low], errors="coerce").to_numpy(dtype=float)
    hi = pd.to_numeric(df[ci_high], errors="coerce").to_numpy(dtype=float)
    err = np.vstack([np.where(np.isnan(lo), 0, v - lo), np.where(np.isnan(hi), 0, hi - v)])
    is_ctl = df["run"].astype(str).isin(controls).to_numpy()
    names = [f"{n} (control)" if c else str(n) for n, c in zip(df[label], is_ctl, strict=True)]
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * len(df) + 1.2)))
    y = np.arange(len(df))
    bars = ax.barh(y, v, color=[_color(colors, r) for r in df["run"].astype(str)], edgecolor="black",
                   linewidth=0.5)
    for b, c in zip(bars, is_ctl, strict=True):
        if c:
            b.set_hatch("//")
    has_ci = ~(np.isnan(lo) | np.isnan(hi))
    if has_ci.any():
        ax.errorbar(v[has_ci], y[has_ci], xerr=np.maximum(err[:, has_ci], 0.0), fmt="none", ecolor="black", capsize=3,
                    linewidth=1)
    right = np.nanmax(np.where(np.isnan(hi), v, hi))
    for yi, vi, hi_i in zip(y, v, hi, strict=True):
        ax.annotate(f"{vi:.3f}", (hi_i if not np.isnan(hi_i) else vi, yi), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8, gid="value")
    ax.set_yticks(y, names)
    ref_values = [float(rv) for _, rv in references]
    right = max([float(right), *ref_values])
    ax.set_xlim(min(0.0, float(np.nanmin(v)), *ref_values), float(right) * 1.12 if right > 0 else 1.0)
    ax.set_xlabel(metric_label)
    ax.set_title(title)
    handles = []
    if is_ctl.any():
        handles.append(Patch(facecolor=CONTROL_COLOR, hatch="//", edgecolor="black", label="control"))
    handles += _reference_lines(ax, references, vertical=True)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


_REF_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)))


def _reference_lines(ax: plt.Axes, references: Sequence[tuple[str, float]], *, vertical: bool) -> list:
    """Dashed lines at reference numbers (black: they are not runs); their legend handles."""
    handles = []
    for i, (name, value) in enumerate(references):
        style = _REF_STYLES[i % len(_REF_STYLES)]
        line = (ax.axvline if vertical else ax.axhline)(float(value), color="black", linestyle=style,
                                                        linewidth=1.2, label=f"{name} ({float(value):.3g})",
                                                        gid="reference")
        handles.append(line)
    return handles


def plot_heatmap(
    data: pd.DataFrame,
    *,
    x: str,
    y: str,
    facets: list[str],
    metric_label: str,
    title: str,
    value: str = "value",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
) -> Figure:
    """The metric over two swept variables, each cell annotated ``value`` and ``±half-width``.

    One panel per combination of ``facets`` (the other varying variables, and the checkpoint
    epoch when several were evaluated), all on one colour scale so panels compare.
    """
    df = data[pd.to_numeric(data[value], errors="coerce").notna() & data[x].notna() & data[y].notna()].copy()
    if not len(df):
        raise NoData("no metric values with both swept variables known")
    df[value] = df[value].astype(float)
    df["_half"] = (pd.to_numeric(df[ci_high], errors="coerce") - pd.to_numeric(df[ci_low], errors="coerce")) / 2
    xs, ys = sel.sort_levels(df[x].tolist()), sel.sort_levels(df[y].tolist())
    groups = [((), df)] if not facets else list(df.groupby(facets, sort=True, dropna=False))
    vmin, vmax = float(df[value].min()), float(df[value].max())
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * len(xs) * ncols + 2.5, 1.0 * len(ys) * nrows + 1.8),
                             squeeze=False)
    image = None
    for k, (ax, (key, g)) in enumerate(zip(axes.flat, groups, strict=False)):
        grid = np.full((len(ys), len(xs)), np.nan)
        half = np.full_like(grid, np.nan)
        for _, r in g.iterrows():
            i, j = ys.index(r[y]), xs.index(r[x])
            grid[i, j], half[i, j] = r[value], r["_half"]
        image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if np.isnan(grid[i, j]):
                    continue
                txt = f"{grid[i, j]:.3f}" + ("" if np.isnan(half[i, j]) else f"\n±{half[i, j]:.3f}")
                shade = (grid[i, j] - vmin) / (vmax - vmin)
                ax.text(j, i, txt, ha="center", va="center", fontsize=8, gid="cell",
                        color="black" if shade > 0.6 else "white")
        ax.set_xticks(range(len(xs)), [sel.level_text(v) for v in xs])
        ax.set_yticks(range(len(ys)), [sel.level_text(v) for v in ys])
        ax.set_xlabel(x)
        if k % ncols == 0:
            ax.set_ylabel(y)
        ax.grid(False)
        if facets:
            keys = key if isinstance(key, tuple) else (key,)
            ax.set_title(", ".join(f"{f}={sel.level_text(k)}" for f, k in zip(facets, keys, strict=True)),
                         fontsize=9)
    for ax in list(axes.flat)[len(groups):]:
        fig.delaxes(ax)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label=metric_label, shrink=0.9)
    fig.suptitle(title)
    return fig


def plot_sample_agreement(data: pd.DataFrame, *, best: str, title: str, order: list[str] | None = None) -> Figure:
    """Binary per-sample scores of every candidate on the samples where any disagrees with ``best``.

    Rows are candidates (best on top), columns the flipped samples; the row label counts
    ``+gained/−lost`` samples relative to the best. Blue = correct, orange = wrong,
    white = not scored.
    """
    mat = data.pivot_table(index="label", columns="sample_id", values="score", aggfunc="mean")
    if best not in mat.index:
        raise NoData(f"no per-sample scores for the best candidate {best}")
    rows = [best] + [r for r in (order or sorted(mat.index)) if r != best and r in mat.index]
    mat = mat.loc[rows]
    ref = mat.loc[best]
    flipped = [c for c in mat.columns if ((mat[c] != ref[c]) & mat[c].notna() & pd.notna(ref[c])).any()]
    if len(rows) < 2:
        raise NoData("only one candidate has per-sample scores")
    if not flipped:
        raise NoData(f"no sample changed outcome between {best} and the other runs")
    m = mat[sorted(flipped, key=lambda c: (-(mat[c] != ref[c]).sum(), str(c)))]
    ylabels = []
    for r in rows:
        if r == best:
            ylabels.append(f"{r} (best)")
            continue
        gained = int(((m.loc[r] == 1) & (ref[m.columns] == 0)).sum())
        lost = int(((m.loc[r] == 0) & (ref[m.columns] == 1)).sum())
        ylabels.append(f"{r}  +{gained}/−{lost}")
    fig, ax = plt.subplots(figsize=(min(16, 2.5 + 0.12 * m.shape[1]), 1.2 + 0.4 * len(rows)))
    cmap = ListedColormap(["#E69F00", "#0072B2"]).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(m.to_numpy(dtype=float)), cmap=cmap, vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(rows)), ylabels)
    if m.shape[1] <= 40:
        ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_xlabel(f"Sample ({m.shape[1]} of {mat.shape[1]} changed outcome vs the best)")
    ax.grid(False)
    ax.set_title(title)
    ax.legend(handles=[Patch(color="#0072B2", label="correct"), Patch(color="#E69F00", label="wrong")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_score_distribution(data: pd.DataFrame, *, colors: dict[str, str], title: str, metric_label: str,
                            order: list[str] | None = None) -> Figure:
    """Box plot of per-sample scores per candidate (for non-binary scorers)."""
    if not len(data):
        raise NoData("no per-sample scores")
    labels = order or list(dict.fromkeys(data["label"]))
    labels = [lab for lab in labels if lab in set(data["label"])]
    run_of = dict(zip(data["label"], data["run"].astype(str), strict=False))
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * len(labels) + 1.2)))
    box = ax.boxplot([data.loc[data["label"] == lab, "score"].astype(float) for lab in labels],
                     orientation="horizontal", patch_artist=True, tick_labels=labels)
    for patch, lab in zip(box["boxes"], labels, strict=True):
        patch.set_facecolor(_color(colors, run_of[lab]))
        patch.set_alpha(0.7)
    ax.set_xlabel(metric_label)
    ax.set_title(title)
    return fig


def plot_pareto(data: pd.DataFrame, *, colors: dict[str, str], cost: str, cost_label: str, metric_label: str,
                title: str, value: str = "value", label: str = "label") -> Figure:
    """Metric against training cost per candidate; the Pareto-optimal ones joined by a step line."""
    df = data[pd.to_numeric(data[value], errors="coerce").notna()
              & pd.to_numeric(data[cost], errors="coerce").notna()].copy()
    if not len(df):
        raise NoData(f"no candidate has both a metric value and a {cost}")
    fig, ax = plt.subplots(figsize=(8, 5))
    for _, r in df.iterrows():
        ax.scatter(float(r[cost]), float(r[value]), color=_color(colors, str(r["run"])), s=50,
                   edgecolor="black", linewidth=0.5, zorder=3, label=str(r[label]))
        ax.annotate(str(r[label]), (float(r[cost]), float(r[value])), xytext=(5, 4), textcoords="offset points",
                    fontsize=7)
    front = df[df["pareto"].fillna(False).astype(bool)].sort_values(cost)
    if len(front):
        ax.plot(front[cost].astype(float), front[value].astype(float), drawstyle="steps-post", color="black",
                linewidth=1.2, linestyle="--", label="Pareto front", gid="pareto_front")
    ax.set_xlabel(cost_label)
    ax.set_ylabel(metric_label)
    ax.set_title(title)
    _legend_outside(ax)
    return fig


def plot_main_effects(data: pd.DataFrame, *, metric_label: str, title: str, variable: str = "variable",
                      level: str = "level", mean: str = "mean", ci_low: str = "ci_low",
                      ci_high: str = "ci_high", references: Sequence[tuple[str, float]] = ()) -> Figure:
    """Mean metric per level of each hyperparameter with its CI, one panel per variable
    (``references``: dashed horizontal lines on every panel)."""
    df = data[pd.to_numeric(data[mean], errors="coerce").notna()]
    if not len(df):
        raise NoData("no main effects were estimated")
    variables = list(dict.fromkeys(df[variable]))
    fig, axes = plt.subplots(1, len(variables), figsize=(3.6 * len(variables) + 1, 4), sharey=True, squeeze=False)
    for ax, var in zip(axes[0], variables, strict=True):
        g = df[df[variable] == var]
        levels = sel.sort_levels(g[level].tolist())
        g = g.set_index(g[level]).loc[levels]
        m = g[mean].astype(float).to_numpy()
        lo = pd.to_numeric(g[ci_low], errors="coerce").to_numpy(dtype=float)
        hi = pd.to_numeric(g[ci_high], errors="coerce").to_numpy(dtype=float)
        xs = np.arange(len(levels))
        ax.errorbar(xs, m, yerr=np.maximum(np.vstack([np.nan_to_num(m - lo), np.nan_to_num(hi - m)]), 0.0), marker="o",
                    color="#0072B2", capsize=4, linewidth=1.5)
        ax.set_xticks(xs, [sel.level_text(v) for v in levels])
        ax.set_xlabel(str(var))
        ax.set_title(str(var), fontsize=10)
    axes[0, 0].set_ylabel(metric_label)
    handles = []
    for ax in axes[0]:
        handles = _reference_lines(ax, references, vertical=False)
    if handles:
        axes[0, -1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- driver --------------------------------------------------------------------------------


def save_figure(fig: Figure, plots_dir: Path, name: str, svg: bool = False) -> None:
    """Write ``<name>.png`` (150 dpi), and ``<name>.svg`` when asked, and close the figure.

    SVG is on request (``--svg``): the report shows the PNG, and the SVG copies cost about a
    tenth of a report's CPU time on the bundled example (docs/performance.md)."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(plots_dir / f"{name}.png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        if svg:
            fig.savefig(plots_dir / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)


def _metric_label(t: sel.Target, confidence: float) -> str:
    return f"{t.metric} ({t.scorer}; bars: {confidence:.0%} CI)"


def plan_figures(experiment: Experiment, analysis: Analysis) -> list[tuple[PlotInfo, Callable[[], Figure]]]:
    """Every figure the report can show, as (info, draw) pairs; ``draw`` raises :class:`NoData`."""
    colors = run_colors(sel.all_runs(experiment), sel.control_runs(experiment))
    controls = sel.control_runs(experiment)
    steps = experiment.train_steps
    bounds = sel.epoch_boundaries(steps)
    plans: list[tuple[PlotInfo, Callable[[], Figure]]] = []
    groups = sel.curve_groups(experiment, sel.all_runs(experiment), MAX_PANELS)
    loss = sel.series_frame(steps, "loss")
    span = sel.smoothing_span(int(loss.groupby("run").size().max())) if len(loss) else 0
    plans.append((
        PlotInfo("loss", "Training loss", "training",
                 f"Raw loss (faint) and its exponential moving average (bold, span {span} steps); "
                 "dotted lines mark epoch boundaries.", "loss"),
        lambda: plot_step_series(loss, y="loss", ylabel="Training loss (per token)", title="Training loss",
                                 colors=colors, smoothed=True, boundaries=bounds, groups=groups)))
    vloss, vcurve = validation_frames(steps)
    if len(vcurve):  # only a sweep that validated has this figure (no "skipped" note otherwise)
        plans.append((
            PlotInfo("validation", "Validation and training loss", "training",
                     "Validation loss at each validation (markers; open circle: the run's best) beside the training "
                     "loss (faint); runs flagged as overfitting say so in the legend (rule in docs/training.md).",
                     "validation"),
            lambda: plot_validation(vloss, vcurve, colors=colors)))
    for col, name, title, ylabel in (
        ("lr", "lr", "Learning-rate schedule", "Learning rate"),
        ("tokens_per_second_per_gpu", "throughput", "Training throughput", "Tokens/s per GPU"),
    ):
        frame = sel.series_frame(steps, col)
        plans.append((PlotInfo(name, title, "training", None, name),
                      lambda f=frame, c=col, t=title, yl=ylabel: plot_step_series(
                          f, y=c, ylabel=yl, title=t, colors=colors, boundaries=bounds, groups=groups)))
    gpu = sel.gpu_frame(experiment.gpu)
    if len(gpu):
        plans.append((PlotInfo("gpu", "GPU memory and utilisation", "training",
                               "From the GPU monitor samples; memory is the maximum over a node's GPUs.", "gpu"),
                      lambda: plot_gpu(gpu, colors=colors)))
    else:
        mem = sel.series_frame(steps, "peak_memory_active")
        plans.append((PlotInfo("gpu", "Peak GPU memory", "training",
                               "Peak active memory logged by torchtune (no GPU monitor samples).", "gpu"),
                      lambda: plot_step_series(mem, y="peak_memory_active", ylabel="Peak active memory (GiB)",
                                               title="Peak GPU memory", colors=colors, boundaries=bounds,
                                               groups=groups)))
    conf = analysis.confidence
    best = {(b.task, b.scorer, b.metric): b for b in analysis.best}
    for t in sel.targets(analysis):
        iv = sel.target_intervals(analysis, t)
        label = _metric_label(t, conf)
        refs = sel.target_references(analysis, t)
        plans.append((PlotInfo(f"final_{t.slug}", f"{t.metric} per run — {t.name}", "evaluation",
                               f"Sorted; error bars are {conf:.0%} confidence intervals; hatched grey bars "
                               "are control runs.", f"final_{t.slug}"),
                      lambda iv=iv, t=t, label=label, refs=refs: plot_final_metric(
                          iv, colors=colors, controls=controls, metric_label=label,
                          title=f"{t.metric} per run — {t.label}", references=refs)))
        hm = sel.pool_seeds(experiment, sel.with_params(experiment, iv[~iv["run"].astype(str).isin(controls)]),
                            conf)
        axes = sel.heatmap_axes(experiment, hm)
        plans.append((PlotInfo(f"heatmap_{t.slug}", f"{t.metric} over the sweep — {t.name}", "evaluation",
                               f"Cell: {t.metric} and ± half-width of its {conf:.0%} CI.", f"heatmap_{t.slug}"),
                      lambda hm=hm, axes=axes, t=t: _heatmap_or_skip(hm, axes, t)))
        plans.append((PlotInfo(f"samples_{t.slug}", f"Per-sample outcomes — {t.name}", "evaluation", None),
                      lambda iv=iv, t=t: _samples_figure(experiment, iv, t, best.get((t.task, t.scorer, t.metric)),
                                                          colors)))
        pa = analysis.pareto
        if len(pa):
            pa = pa[(pa["task"] == t.task) & (pa["scorer"] == t.scorer) & (pa["metric"] == t.metric)].copy()
        use_usd = len(pa) and pd.to_numeric(pa["cost_usd"], errors="coerce").notna().any()
        cost, cost_label = ("cost_usd", "Training cost (USD)") if use_usd else ("gpu_hours", "Training cost (GPU-hours)")
        if len(pa):
            pa = pa.merge(iv[["run", "epoch", "label"]], on=["run", "epoch"], how="left")
            pa["label"] = pa["label"].fillna(pa["run"].astype(str))
        plans.append((PlotInfo(f"pareto_{t.slug}", f"{t.metric} vs training cost — {t.name}", "evaluation",
                               "Dashed line: candidates no other candidate beats on both metric and cost.",
                               f"pareto_{t.slug}"),
                      lambda pa=pa, t=t, cost=cost, cl=cost_label: _pareto_or_skip(pa, t, cost, cl, colors)))
        ef = analysis.effects
        if len(ef):
            ef = ef[(ef["task"] == t.task) & (ef["scorer"] == t.scorer) & (ef["metric"] == t.metric)]
        plans.append((PlotInfo(f"effects_{t.slug}", f"Main effects — {t.name}", "statistics",
                               f"Mean {t.metric} per level of each hyperparameter, averaged over the other "
                               f"variables, with {conf:.0%} CIs.", f"effects_{t.slug}"),
                      lambda ef=ef, t=t, refs=refs: plot_main_effects(
                          ef, metric_label=t.metric, title=f"Main effects on {t.metric} — {t.label}",
                          references=refs)))
    from analyze_experiment.report.plots.scorer_plots import plan_risk_figures  # imports PlotInfo from here

    plans.extend(plan_risk_figures(analysis, colors))
    return plans


def _heatmap_or_skip(hm: pd.DataFrame, axes: tuple[str, str, list[str]] | None, t: sel.Target) -> Figure:
    if axes is None:
        raise NoData("fewer than two swept variables vary across runs with scores")
    x, y, facets = axes
    return plot_heatmap(hm, x=x, y=y, facets=facets, metric_label=t.metric, title=t.label)


def _pareto_or_skip(pa: pd.DataFrame, t: sel.Target, cost: str, cost_label: str, colors: dict[str, str]) -> Figure:
    if not len(pa):
        raise NoData("no training cost is known for any evaluated run")
    return plot_pareto(pa, colors=colors, cost=cost, cost_label=cost_label, metric_label=t.metric,
                       title=f"{t.metric} vs training cost — {t.label}")


def _samples_figure(experiment: Experiment, iv: pd.DataFrame, t: sel.Target, best: object,
                    colors: dict[str, str]) -> Figure:
    samples = sel.reduced_samples(experiment, t, iv)
    if not len(samples):
        raise NoData("no per-sample scores")
    sign = -1.0 if "direction" in iv.columns and (iv["direction"] == "lower").any() else 1.0
    order = list(iv.assign(_s=sign * iv["value"].astype(float)).sort_values("_s", ascending=False)["label"])
    binary = bool(samples["score"].isin([0.0, 1.0]).all())
    if binary and best is not None:
        counts = iv.groupby("run")["epoch"].nunique(dropna=False)
        best_label = sel.candidate_label(best.run, best.epoch, counts.get(best.run, 1) > 1)  # type: ignore[attr-defined]
        return plot_sample_agreement(samples, best=best_label, order=order,
                                     title=f"Samples that changed outcome vs the best run — {t.label}")
    return plot_score_distribution(samples, colors=colors, order=order, metric_label=f"per-sample {t.scorer} score",
                                   title=f"Per-sample score distribution — {t.label}")


def render_plots(experiment: Experiment, analysis: Analysis, plots_dir: Path, diag: Diagnostics,
                 svg: bool = False, progress: Progress = silent) -> list[PlotInfo]:
    """Draw and save every figure that has data; note each skipped one in ``diag``.

    Returns the written figures in report order. A figure that fails to draw for an
    unexpected reason is also skipped with a warning: one odd table must not cost the
    whole report.
    """
    written: list[PlotInfo] = []
    with plot_style():
        plans = plan_figures(experiment, analysis)
        for i, (info, draw) in enumerate(plans, start=1):
            progress("figures", i - 1, len(plans))
            try:
                fig = draw()
            except NoData as exc:
                diag.warn(None, f"{info.name} plot skipped: {exc}", severity="info", stage="plots")
                continue
            except Exception as exc:  # a drawing bug on odd data must not stop the report
                plt.close("all")
                diag.warn(None, f"{info.name} plot skipped: could not draw it ({type(exc).__name__}: {exc})",
                          severity="warning", stage="plots")
                continue
            save_figure(fig, plots_dir, info.name, svg=svg)
            written.append(info)
        progress("figures", len(plans), len(plans))
    return written
