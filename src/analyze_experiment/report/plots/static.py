"""Static figures (matplotlib) for the report, saved as PNG (and SVG with ``--svg``).

Each ``plot_*`` function takes a tidy frame (``data``) plus options, draws a new figure and
returns it, so tests can inspect lines, bars and annotations instead of pixels; single-panel
pictures are drawn by a seaborn-style function taking ``data=`` and ``ax=`` and returning the
Axes (:func:`final_metric_bars`, :func:`step_lines`, :func:`pareto_scatter`). Nothing here
computes a statistic: intervals, effects and Pareto flags come from
:class:`~analyze_experiment.analysis.Analysis`; which figures exist, with what data, is
decided by :mod:`.plan`, and :func:`render_plots` draws them (:mod:`.specs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Experiment
from analyze_experiment.progress import Progress, silent
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.lazy import plt  # pyplot (Agg) on first use: the parent only plans
from analyze_experiment.report.plots.specs import NoData, PlotInfo, save_figure, start_plots
from analyze_experiment.report.plots.style import CONTROL_COLOR, MAX_LEVEL_LEGEND, level_palette

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["NoData", "PlotInfo", "render_plots", "save_figure"]

MAX_OVERLAY = 8
"""Above this many runs the loss curves become one small panel per run."""

RAW_ALPHA = 0.25
BOUNDARY_STYLE = {"color": "#555555", "linestyle": ":", "linewidth": 1.0}


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


EVENT_MARKERS = {"diverged": {"marker": "X", "markersize": 10}, "timeout": {"marker": "|", "markersize": 16,
                                                                              "markeredgewidth": 2.5}}
"""How a run's early end is marked at its last drawn point: a cross where the loss stopped being
finite, a bar where the time limit stopped it."""


def step_lines(data: pd.DataFrame, *, y: str, colors: dict[str, str], ax: plt.Axes | None = None, x: str = "step",
               hue: str = "run", smoothed: bool = False, boundaries: dict[str, list[float]] | None = None,
               events: pd.DataFrame | None = None, legend: bool = True, rasterized: bool = False) -> plt.Axes:
    """One line of ``y`` against ``x`` per ``hue`` value on one Axes (returned).

    With ``smoothed`` each run is drawn twice: the raw values faint and an exponential moving
    average bold. ``boundaries`` (run -> steps) are dotted epoch lines; ``events``
    (:func:`_select.run_events`) mark where a run diverged or hit the time limit, so a run
    whose curve stops early says why instead of ending as an unexplained stub. ``legend``
    False leaves the boundary and marker entries out of the legend (small multiples).
    """
    ax = ax if ax is not None else plt.gca()
    boundaries = boundaries or {}
    runs = list(dict.fromkeys(data[hue].astype(str)))
    for run, g in data.groupby(data[hue].astype(str), sort=False):
        _draw_run_curve(ax, g, x, y, _color(colors, run), run, smoothed, rasterized)
    _draw_boundaries(ax, [s for r in runs for s in boundaries.get(r, [])], label=legend)
    if events is not None and len(events) and y == "loss":
        _draw_events(ax, events[events["run"].astype(str).isin(runs)], colors, legend)
    return ax


def _draw_events(ax: plt.Axes, events: pd.DataFrame, colors: dict[str, str], legend: bool) -> None:
    for kind, g in events.groupby("kind", sort=True):
        style = EVENT_MARKERS.get(str(kind), EVENT_MARKERS["diverged"])
        ys = g["value"].astype(float)
        if ys.isna().all():  # diverged before the first finite step: mark at the bottom of the axes
            ys = pd.Series([ax.get_ylim()[0]] * len(g), index=g.index)
        for (_, r), yv in zip(g.iterrows(), ys.fillna(ax.get_ylim()[0]), strict=True):
            ax.plot([float(r["step"])], [float(yv)], linestyle="none", color=_color(colors, str(r["run"])),
                    markeredgecolor="black", gid=f"event_{kind}", label="_nolegend_", zorder=5, **style)
        if legend:
            ax.plot([], [], linestyle="none", color="#777777", markeredgecolor="black",
                    label=sel.EVENT_STATUSES.get(str(kind), str(kind)), **style)


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
    events: pd.DataFrame | None = None,
    max_overlay: int = MAX_OVERLAY,
    groups: dict[str, str] | None = None,
    max_panels: int = MAX_PANELS,
    encoding: sel.Encoding | None = None,
) -> Figure:
    """Lines of ``y`` against the global step, one colour per run (:func:`step_lines`).

    Curves are thinned to what the figure's width can show (:func:`_select.minmax_downsample`:
    spikes survive). More than ``max_overlay`` runs give small multiples with shared axes and
    rasterised lines, at most ``max_panels`` of them: runs share a panel by ``groups`` (run ->
    label, e.g. a configuration whose seeds overlay), else one panel per run while that fits.
    Beyond :data:`MAX_LEGEND_RUNS` runs, when the sweep has an ``encoding``, the runs are
    coloured by a swept variable instead (:func:`plot_encoded_series`).
    """
    if not len(data):
        raise NoData(f"no {y} values")
    runs = list(dict.fromkeys(data[hue].astype(str)))
    kw = {"y": y, "x": x, "hue": hue, "colors": colors, "smoothed": smoothed, "boundaries": boundaries,
          "events": events}
    if len(runs) <= max_overlay:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        step_lines(data, ax=ax, **kw)
        ax.set_xlabel("Global optimizer step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        _legend_outside(ax, title="run")
        return fig
    if encoding is not None and uses_encoding(runs, max_overlay):
        return plot_encoded_series(data, encoding=encoding, ylabel=ylabel, title=title, **kw)
    panels = _panels(runs, groups or {}, max_panels)
    ncols = 4
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, members) in zip(axes.flat, panels.items(), strict=False):
        step_lines(data[data[hue].astype(str).isin(members)], ax=ax, legend=False, rasterized=True, **kw)
        ax.set_title(name, fontsize=9)
        if 1 < len(members) <= MAX_LEGEND_RUNS:  # the runs sharing the panel (not boundaries, markers)
            ax.legend(fontsize=5, loc="best", frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        fig.delaxes(ax)
    fig.supxlabel("Global optimizer step")
    fig.supylabel(ylabel)
    fig.suptitle(title + (f" ({len(runs)} runs in {len(panels)} panels)" if len(panels) < len(runs) else ""))
    return fig

MAX_LEGEND_RUNS = 10
"""Most runs a panel or a scatter names one by one in its legend: beyond this a legend squeezes
the axes to a strip, so runs are coloured by a swept variable instead (:class:`_select.Encoding`)."""

ENCODED_BUCKETS = 150
"""Min-max buckets per curve in a many-run panel (about 5 inches at 150 dpi: 750 pixels)."""

BEST_LABEL_GID = "best_label"
CONTROL_STYLE = {"color": CONTROL_COLOR, "linestyle": "--", "linewidth": 1.6}


def encoding_colors(encoding: sel.Encoding) -> dict[str, str]:
    """Run -> colour of its level of the encoding's swept variable; controls grey."""
    palette, _, _ = level_palette(encoding.order, encoding.numeric, encoding.log)
    colors = {run: palette[level] for run, level in encoding.levels.items() if level in palette}
    colors.update({c: CONTROL_COLOR for c in encoding.controls})
    return colors


def encoding_key(fig: Figure, axes: list[plt.Axes], encoding: sel.Encoding) -> list:
    """What the colours mean: a colour bar beside ``axes`` for many numeric levels, else legend
    handles (returned) naming each level."""
    from matplotlib.lines import Line2D

    palette, cmap, norm = level_palette(encoding.order, encoding.numeric, encoding.log)
    if cmap is not None and len(encoding.order) > MAX_LEVEL_LEGEND:
        from matplotlib.cm import ScalarMappable

        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=encoding.hue, shrink=0.9,
                           pad=0.02)
        bar.ax.set_gid("hue_colorbar")
        return []
    return [Line2D([], [], color=palette[v], linewidth=2.5, label=f"{encoding.hue} = {sel.level_text(v)}")
            for v in encoding.order]


def label_best(ax: plt.Axes, x: float, y: float, name: str) -> None:
    """The winner's name at the end of its curve (or at its point), where the eye lands."""
    ax.annotate(f"{name} (best)", (x, y), xytext=(-6, 9), textcoords="offset points", ha="right", va="bottom",
                fontsize=8, fontweight="bold", gid=BEST_LABEL_GID, zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def encoded_lines(data: pd.DataFrame, *, y: str, encoding: sel.Encoding, colors: dict[str, str],
                  ax: plt.Axes | None = None, x: str = "step", hue: str = "run", smoothed: bool = False,
                  boundaries: dict[str, list[float]] | None = None, events: pd.DataFrame | None = None) -> plt.Axes:
    """Many runs on one Axes (returned), coloured by their level of ``encoding.hue``, without
    a legend entry each: thin rasterised lines (the drawing cost stays that of one image
    however many points), controls grey and dashed, the best run on top with a dark outline
    and its name. ``smoothed``: only the moving average is drawn (raw losses of dozens of runs
    are noise over noise)."""
    ax = ax if ax is not None else plt.gca()
    boundaries = boundaries or {}
    groups = dict(list(data.groupby(data[hue].astype(str), sort=False)))
    best = encoding.best if encoding.best in groups else None
    for run, g in groups.items():
        if run == best:
            continue
        xs, ys = g[x].to_numpy(dtype=float), (sel.smooth(g[y]) if smoothed else g[y]).to_numpy(dtype=float)
        rx, ry = sel.minmax_downsample(xs, ys, ENCODED_BUCKETS)
        style = CONTROL_STYLE if run in encoding.controls else {"color": _color(colors, run), "linewidth": 1.0,
                                                                "alpha": 0.85}
        ax.plot(rx, ry, rasterized=True, gid="control" if run in encoding.controls else "run",
                label="_nolegend_", **style)
    if best is not None:
        g = groups[best]
        xs, ys = g[x].to_numpy(dtype=float), (sel.smooth(g[y]) if smoothed else g[y]).to_numpy(dtype=float)
        rx, ry = sel.minmax_downsample(xs, ys, CURVE_BUCKETS)
        ax.plot(rx, ry, color="black", linewidth=3.4, rasterized=True, gid="best_outline", label="_nolegend_",
                zorder=4)
        ax.plot(rx, ry, color=_color(colors, best), linewidth=2.0, rasterized=True, gid="best", zorder=4,
                label="_nolegend_")
        finite = np.isfinite(ry)
        if finite.any():
            label_best(ax, float(rx[finite][-1]), float(ry[finite][-1]), best)
    runs = list(groups)
    _draw_boundaries(ax, [s for r in runs for s in boundaries.get(r, [])], label=False)
    if events is not None and len(events) and y == "loss":
        _draw_events(ax, events[events["run"].astype(str).isin(runs)], colors, legend=False)
    return ax


def plot_encoded_series(data: pd.DataFrame, *, y: str, ylabel: str, title: str, encoding: sel.Encoding,
                        colors: dict[str, str] | None = None, x: str = "step", hue: str = "run",
                        smoothed: bool = False, boundaries: dict[str, list[float]] | None = None,
                        events: pd.DataFrame | None = None) -> Figure:
    """Many runs' curves (:func:`encoded_lines`), one panel per level of ``encoding.facet``
    (shared axes; controls drawn in every panel as the reference), one colour key for all."""
    from matplotlib.lines import Line2D

    del colors  # the encoding decides the colours: one per level, not one per run
    run_colors = encoding_colors(encoding)
    names = data[hue].astype(str)
    runs = list(dict.fromkeys(names))
    panels: dict[str, list[str]] = {label: [] for label in encoding.panel_order}
    for run in runs:
        if run not in encoding.controls:
            panels.setdefault(encoding.panels.get(run, "other" if encoding.panels else ""), []).append(run)
    panels = {k: v for k, v in panels.items() if v} or {"": []}
    shown_controls = [c for c in encoding.controls if c in runs]
    n = len(panels)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 4.8 if n == 1 else 2.9 * nrows + 1.3), sharex=True,
                             sharey=True, squeeze=False)
    used = list(axes.flat)[:n]
    for ax, (label, members) in zip(used, panels.items(), strict=True):
        encoded_lines(data[names.isin([*members, *shown_controls])], ax=ax, y=y, x=x, hue=hue, encoding=encoding,
                      colors=run_colors, smoothed=smoothed, boundaries=boundaries, events=events)
        ax.set_title(label, fontsize=10)
    for ax in list(axes.flat)[n:]:
        fig.delaxes(ax)
    handles = encoding_key(fig, used, encoding)
    handles += [Line2D([], [], label=f"{c} (control)", **CONTROL_STYLE) for c in shown_controls]
    if encoding.best is not None and encoding.best in runs:
        handles.append(Line2D([], [], color="black", linewidth=3.0, label=f"{encoding.best}: the report's best"))
    if boundaries and any(boundaries.get(r) for r in runs):
        handles.append(Line2D([], [], label="epoch boundary", **{k: v for k, v in BOUNDARY_STYLE.items()}))
    if events is not None and len(events) and y == "loss":
        for kind in sorted(set(events.loc[events["run"].astype(str).isin(runs), "kind"].astype(str))):
            handles.append(Line2D([], [], linestyle="none", color="#777777", markeredgecolor="black",
                                  label=sel.EVENT_STATUSES.get(kind, kind), **EVENT_MARKERS.get(kind, {})))
    if handles:
        # below the panels: constrained layout stacks an "outside lower" legend under the axes'
        # x labels, while an "outside upper" one would sit on the suptitle
        fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), frameon=False)
    for i, ax in enumerate(used):
        if i + ncols >= n:  # nothing drawn below this panel
            ax.set_xlabel("Global optimizer step")
    fig.supylabel(ylabel)
    what = "moving average, " if smoothed else ""
    fig.suptitle(f"{title} ({len(runs)} runs; {what}colour: {encoding.hue})")
    return fig


def uses_encoding(runs: list[str], max_overlay: int = MAX_OVERLAY) -> bool:
    """Whether :func:`plot_step_series` colours ``runs`` by a swept variable (given an encoding):
    more than ``max_overlay`` runs and more than :data:`MAX_LEGEND_RUNS` — beyond that, small
    multiples of a few named runs each would be a dozen stamp-sized panels."""
    return len(runs) > max(max_overlay, MAX_LEGEND_RUNS)


def _panels(runs: list[str], groups: dict[str, str], max_panels: int) -> dict[str, list[str]]:
    """Panel label -> runs: one run each while that fits, else by ``groups``, else consecutive blocks."""
    if len(runs) <= max_panels:
        return {run: [run] for run in runs}
    size = math.ceil(len(runs) / max_panels)
    fallback = {r: f"runs {i // size * size + 1}–{min(len(runs), (i // size + 1) * size)}" for i, r in enumerate(runs)}
    panels: dict[str, list[str]] = {}
    for run in runs:
        panels.setdefault(groups.get(run) or fallback[run], []).append(run)
    if len(panels) > max_panels:  # groups that do not fit: consecutive blocks instead
        panels = {}
        for run in runs:
            panels.setdefault(fallback[run], []).append(run)
    return panels


GPU_PANELS = (("memory_gib", "Memory (GiB)", "GPU memory used (maximum over a node's GPUs)"),
              ("utilization_pct", "Utilisation (%)", "GPU utilisation (mean over a node's GPUs)"))
"""(column, short y label, panel title): the long wording sits in the title, where it has the
figure's width; as a y label it was taller than its panel and ran into the next one."""


def plot_gpu(data: pd.DataFrame, *, colors: dict[str, str], encoding: sel.Encoding | None = None) -> Figure:
    """GPU memory (max over a node's GPUs) and utilisation (mean) against elapsed minutes.

    ``data`` is :func:`_select.gpu_frame` output. Only panels with values are drawn. Beyond
    :data:`MAX_LEGEND_RUNS` runs with an ``encoding``, the lines are coloured by the swept
    variable's level and rasterised, the best run drawn on top and named in the legend, and
    the legend names levels instead of runs (a legend of a hundred runs squeezes the panels).
    """
    from matplotlib.lines import Line2D

    panels = [p for p in GPU_PANELS if p[0] in data.columns and pd.to_numeric(data[p[0]], errors="coerce").notna().any()]
    if not panels:
        raise NoData("no GPU memory or utilisation samples")
    runs = list(dict.fromkeys(data["run"].astype(str)))
    many = encoding is not None and len(runs) > MAX_LEGEND_RUNS
    if many:
        colors = {**colors, **encoding_colors(encoding)}
    best = encoding.best if many and encoding.best in runs else None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (col, label, title) in zip(axes[:, 0], panels, strict=True):
        for run, g in data.groupby("run", sort=False):
            g = g[g[col].notna()]
            if not len(g):
                continue
            if not many:
                ax.plot(g["minutes"], g[col], color=_color(colors, str(run)), linewidth=1.2, label=str(run))
            elif str(run) == best:
                ax.plot(g["minutes"], g[col], color="black", linewidth=3.2, rasterized=True, zorder=4, gid="best_outline")
                ax.plot(g["minutes"], g[col], color=_color(colors, best), linewidth=1.8, rasterized=True, zorder=4,
                        gid="best")
            else:
                ax.plot(g["minutes"], g[col], color=_color(colors, str(run)), linewidth=0.8, alpha=0.8,
                        rasterized=True, gid="run")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)  # memory and utilisation start at 0: a flat line near the top is full use
    fig.suptitle("GPU memory and utilisation over time" + (f" ({len(runs)} runs; colour: {encoding.hue})"
                                                           if many and encoding is not None else ""))
    axes[-1, 0].set_xlabel("Time since the run's first sample (min)")
    if many and encoding is not None:
        handles = encoding_key(fig, list(axes[:, 0]), encoding)
        handles += [Line2D([], [], color=CONTROL_COLOR, linewidth=1.2, label=f"{c} (control)")
                    for c in encoding.controls if c in runs]
        if best is not None:
            handles.append(Line2D([], [], color="black", linewidth=3.0, label=f"{best}: the report's best"))
        if handles:
            axes[0, 0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        _legend_outside(axes[0, 0], title="run")
    return fig


# --- evaluation ----------------------------------------------------------------------------


def final_metric_bars(data: pd.DataFrame, *, colors: dict[str, str], controls: Sequence[str] = (),
                      ax: plt.Axes | None = None, label: str = "label", value: str = "value",
                      ci_low: str = "ci_low", ci_high: str = "ci_high", floor: float = 0.0) -> plt.Axes:
    """Horizontal bars of ``value`` per row of ``data``, best on top, with CI error bars (returns the Axes).

    Bars start at ``floor``, where the metric's scale starts (1 on a 1–5 rubric: a bar from 0
    would spend a fifth of its length on scores nobody can get). Control runs are grey,
    hatched and suffixed ``(control)``. A missing CI gives no error bar (never a zero-width one
    pretending certainty).
    """
    ax = ax if ax is not None else plt.gca()
    df = data[pd.to_numeric(data[value], errors="coerce").notna()]
    sign = -1.0 if "direction" in df.columns and (df["direction"] == "lower").any() else 1.0
    df = df.assign(_s=sign * df[value].astype(float)).sort_values("_s", ascending=True, kind="stable")  # best on top
    v = df[value].astype(float).to_numpy()
    lo = pd.to_numeric(df[ci_low], errors="coerce").to_numpy(dtype=float)
    hi = pd.to_numeric(df[ci_high], errors="coerce").to_numpy(dtype=float)
    is_ctl = df["run"].astype(str).isin(list(controls)).to_numpy()
    y = np.arange(len(df))
    bars = ax.barh(y, v - floor, left=floor, color=[_color(colors, r) for r in df["run"].astype(str)],
                   edgecolor="black", linewidth=0.5)
    for b, c in zip(bars, is_ctl, strict=True):
        if c:
            b.set_hatch("//")
    has_ci = ~(np.isnan(lo) | np.isnan(hi))
    if has_ci.any():
        err = np.vstack([v - lo, hi - v])[:, has_ci]
        ax.errorbar(v[has_ci], y[has_ci], xerr=np.maximum(err, 0.0), fmt="none", ecolor="black", capsize=3,
                    linewidth=1)
    from matplotlib.transforms import ScaledTranslation

    beside = ax.transData + ScaledTranslation(4 / 72, 0, ax.figure.dpi_scale_trans)  # 4 points right of the bar
    for yi, vi, hi_i in zip(y, v, hi, strict=True):  # plain texts: an annotation adds a position check per draw
        ax.text(hi_i if not np.isnan(hi_i) else vi, yi, f"{vi:.3f}", transform=beside, va="center", fontsize=8,
                gid="value")
    ax.set_yticks(y, [f"{n} (control)" if c else str(n) for n, c in zip(df[label], is_ctl, strict=True)])
    return ax


def plot_final_metric(
    data: pd.DataFrame,
    *,
    colors: dict[str, str],
    controls: list[str],
    metric_label: str,
    title: str,
    references: Sequence[tuple[str, float]] = (),
    floor: float = 0.0,
    max_rows: int | None = None,
    encoding: sel.Encoding | None = None,
    **columns: str,
) -> Figure:
    """:func:`final_metric_bars` in a figure sized to the candidates, with the reference
    numbers (name, value) as dashed vertical lines named in the legend.

    A sweep of a hundred runs would make a bar chart thousands of pixels tall that nobody
    reads to the bottom: beyond ``max_rows`` candidates only the best ``max_rows`` and the
    controls are drawn (:func:`top_rows`; the caption says where the rest are), and beyond
    :data:`MAX_LEGEND_RUNS` the bars are coloured by the ``encoding``'s swept variable."""
    from matplotlib.patches import Patch

    value, ci_high = columns.get("value", "value"), columns.get("ci_high", "ci_high")
    df = data[pd.to_numeric(data[value], errors="coerce").notna()]
    if not len(df):
        raise NoData("no metric values")
    n_all = len(df)
    if max_rows is not None and len(df) > max_rows:
        df = top_rows(df, max_rows, controls, value)
    if encoding is not None and n_all > MAX_LEGEND_RUNS:
        colors = {**colors, **encoding_colors(encoding)}
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.3 * len(df) + 1.4) if n_all > MAX_LEGEND_RUNS
                                    else max(2.5, 0.45 * len(df) + 1.2)))
    final_metric_bars(df, colors=colors, controls=controls, ax=ax, floor=floor, **columns)
    v = df[value].astype(float).to_numpy()
    hi = pd.to_numeric(df[ci_high], errors="coerce").to_numpy(dtype=float)
    ref_values = [float(rv) for _, rv in references]
    right = max([float(np.nanmax(np.where(np.isnan(hi), v, hi))), *ref_values])
    left = min(floor, float(np.nanmin(v)), *ref_values)
    ax.set_xlim(left, left + (right - left) * 1.12 if right > left else left + 1.0)
    shown = int((~df["run"].astype(str).isin(controls)).sum())
    n_cand = int((~data.loc[pd.to_numeric(data[value], errors="coerce").notna(), "run"].astype(str)
                  .isin(controls)).sum())
    ax.set_xlabel(metric_label if len(df) == n_all else
                  f"{metric_label}\nthe best {shown} of {n_cand} candidates and the controls; all in tables/intervals.csv")
    ax.set_title(title)
    handles = []
    if df["run"].astype(str).isin(controls).any():
        handles.append(Patch(facecolor=CONTROL_COLOR, hatch="//", edgecolor="black", label="control"))
    handles += _reference_lines(ax, references, vertical=True)
    if encoding is not None and n_all > MAX_LEGEND_RUNS:
        handles = encoding_key(fig, [ax], encoding) + handles
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def top_rows(data: pd.DataFrame, n: int, controls: Sequence[str], value: str = "value") -> pd.DataFrame:
    """The ``n`` best rows of ``data`` (by ``direction``: lower is better where it says so) and
    every control row, in their original order."""
    ctl = data["run"].astype(str).isin(list(controls))
    sign = -1.0 if "direction" in data.columns and (data["direction"] == "lower").any() else 1.0
    best = (sign * data.loc[~ctl, value].astype(float)).sort_values(ascending=False, kind="stable").index[:n]
    return data[ctl | data.index.isin(best)]


MAX_BARS = 30
"""Most candidates a bar chart draws (the best ones; controls always): 30 bars fill a screen."""


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


MANY_LEVELS = 30
"""Levels of one variable beyond which a figure stops giving each level its own labelled slot:
a 250-level learning-rate sweep made the heatmap 37,770 px tall and the main-effects panel
8,190 px wide, and the drawing worker's memory grew with the canvas (issue 16)."""

MAX_LEVEL_TICKS = 25
"""Most level labels one axis of a dense figure shows (every k-th level, like MaxNLocator)."""

DENSE_MAX_IN = 12.0
"""Largest side, in inches, of a figure whose size would otherwise grow with its levels."""


def thinned_ticks(n: int, max_ticks: int = MAX_LEVEL_TICKS) -> list[int]:
    """Indices of the levels to label on an axis of ``n`` levels: all up to :data:`MANY_LEVELS`
    (figures of that many levels grow to give each label room), else ``max_ticks`` evenly
    spaced ones from the first to the last, so a bounded axis names both ends of the range
    without overlapping labels.

    >>> thinned_ticks(4)
    [0, 1, 2, 3]
    >>> t = thinned_ticks(250)
    >>> len(t), t[0], t[-1]
    (25, 0, 249)
    """
    if n <= MANY_LEVELS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_ticks - 1)) for i in range(max_ticks)})


def heatmap_panel(data: pd.DataFrame, *, x: str, y: str, xs: list[object], ys: list[object], vmin: float,
                  vmax: float, ax: plt.Axes | None = None, value: str = "value", half: str = "_half") -> plt.Axes:
    """One panel of the sweep heatmap (returns the Axes): ``value`` over the ``xs`` × ``ys``
    levels, each cell annotated with the value and ``±`` its ``half`` (CI half-width).

    Beyond :data:`MANY_LEVELS` levels on an axis the cells stay one per level but carry no
    text (thousands of labels in cells a few pixels high are ink, not numbers) and each axis
    labels at most :data:`MAX_LEVEL_TICKS` levels."""
    ax = ax if ax is not None else plt.gca()
    grid = np.full((len(ys), len(xs)), np.nan)
    halves = np.full_like(grid, np.nan)
    xi = {v: j for j, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for xv, yv, val, hv in zip(data[x], data[y], data[value], data[half], strict=True):
        grid[yi[yv], xi[xv]], halves[yi[yv], xi[xv]] = val, hv
    ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
    dense = max(len(xs), len(ys)) > MANY_LEVELS
    if not dense:
        for i, j in zip(*np.nonzero(~np.isnan(grid)), strict=True):
            txt = f"{grid[i, j]:.3f}" + ("" if np.isnan(halves[i, j]) else f"\n±{halves[i, j]:.3f}")
            shade = (grid[i, j] - vmin) / (vmax - vmin)
            ax.text(j, i, txt, ha="center", va="center", fontsize=8, gid="cell",
                    color="black" if shade > 0.6 else "white")
    xt, yt = thinned_ticks(len(xs)), thinned_ticks(len(ys))
    ax.set_xticks(xt, [sel.level_text(xs[j]) for j in xt], rotation=90 if len(xs) > MANY_LEVELS else 0,
                  fontsize=8 if dense else None)
    ax.set_yticks(yt, [sel.level_text(ys[i]) for i in yt], fontsize=8 if dense else None)
    ax.set_xlabel(x)
    ax.grid(False)
    return ax


def plot_heatmap(data: pd.DataFrame, *, x: str, y: str, facets: list[str], metric_label: str, title: str,
                 value: str = "value", ci_low: str = "ci_low", ci_high: str = "ci_high") -> Figure:
    """The metric over two swept variables (:func:`heatmap_panel`), one panel per combination of
    ``facets`` (the other varying variables, and the checkpoint epoch when several were
    evaluated), all on one colour scale so panels compare."""
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
    width, height = 1.4 * len(xs) * ncols + 2.5, 1.0 * len(ys) * nrows + 1.8
    if max(len(xs), len(ys)) > MANY_LEVELS:  # one row per level would grow the canvas without bound
        width, height = min(width, DENSE_MAX_IN), min(height, DENSE_MAX_IN)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for k, (ax, (key, g)) in enumerate(zip(axes.flat, groups, strict=False)):
        heatmap_panel(g, x=x, y=y, xs=xs, ys=ys, vmin=vmin, vmax=vmax, ax=ax, value=value)
        if k % ncols == 0:
            ax.set_ylabel(y)
        if facets:
            keys = key if isinstance(key, tuple) else (key,)
            ax.set_title(", ".join(f"{f}={sel.level_text(k)}" for f, k in zip(facets, keys, strict=True)),
                         fontsize=9)
    for ax in list(axes.flat)[len(groups):]:
        fig.delaxes(ax)
    fig.colorbar(axes.flat[0].images[0], ax=axes.ravel().tolist(), label=metric_label, shrink=0.9)
    fig.suptitle(title)
    return fig


PARETO_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
"""One marker shape per candidate (cycled), so two checkpoints of one run — same colour —
stay apart in the legend. Names go in the legend, not beside the points, where they piled up
on candidates of similar cost."""


def pareto_scatter(data: pd.DataFrame, *, colors: dict[str, str], cost: str, ax: plt.Axes | None = None,
                   value: str = "value", label: str = "label") -> plt.Axes:
    """One point per candidate (metric against cost), the Pareto-optimal ones joined by a dashed
    step line (returns the Axes)."""
    ax = ax if ax is not None else plt.gca()
    for i, (_, r) in enumerate(data.iterrows()):
        ax.scatter(float(r[cost]), float(r[value]), color=_color(colors, str(r["run"])), s=55,
                   marker=PARETO_MARKERS[i % len(PARETO_MARKERS)], edgecolor="black", linewidth=0.5, zorder=3,
                   label=str(r[label]))
    front = data[data["pareto"].fillna(False).astype(bool)].sort_values(cost)
    if len(front):
        ax.plot(front[cost].astype(float), front[value].astype(float), drawstyle="steps-post", color="black",
                linewidth=1.2, linestyle="--", label="Pareto front", gid="pareto_front")
    return ax


def plot_pareto(data: pd.DataFrame, *, colors: dict[str, str], cost: str, cost_label: str, metric_label: str,
                title: str, value: str = "value", label: str = "label", encoding: sel.Encoding | None = None,
                best: str | None = None) -> Figure:
    """:func:`pareto_scatter` with axis labels and the legend beside the plot; beyond
    :data:`MAX_LEGEND_RUNS` candidates and with an ``encoding``, :func:`pareto_levels` instead
    (``best``: the winner's candidate label, named there)."""
    df = data[pd.to_numeric(data[value], errors="coerce").notna()
              & pd.to_numeric(data[cost], errors="coerce").notna()].copy()
    if not len(df):
        raise NoData(f"no candidate has both a metric value and a {cost}")
    fig, ax = plt.subplots(figsize=(8, 5))
    many = encoding is not None and len(df) > MAX_LEGEND_RUNS
    if many:
        handles = pareto_levels(df, encoding=encoding, cost=cost, ax=ax, value=value, label=label, best=best)
    else:
        pareto_scatter(df, colors=colors, cost=cost, ax=ax, value=value, label=label)
    ax.set_xlabel(cost_label)
    ax.set_ylabel(metric_label)
    ax.set_title(title)
    if many:
        handles = encoding_key(fig, [ax], encoding) + handles
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        _legend_outside(ax)
    return fig


LABEL_OFFSETS = ((5, 4), (5, -11), (-5, 4), (-5, -11), (5, 14), (5, -21))
"""Where a front point's name may go, in points from it: right above first, then the other
corners, then further out."""


def top_point(df: pd.DataFrame, label: str, best: str | None) -> tuple[float, float] | None:
    """(cost, value) of the candidate named ``best`` (its label box is reserved first)."""
    rows = df[df[label].astype(str) == best] if best is not None else df.iloc[0:0]
    return (float(rows["_x"].iloc[0]), float(rows["_y"].iloc[0])) if len(rows) else None


def _label_offsets(ax: plt.Axes, points: pd.DataFrame, label: str,
                   best: tuple[float, float] | None = None) -> list[tuple[int, int]]:
    """An offset per point for its 7-pt name, the first of :data:`LABEL_OFFSETS` whose box
    (estimated: 0.6 em a character) overlaps no name placed before; the best's name (drawn
    above-left of its star) is placed first. Positions are measured at the axes' current size,
    so neighbouring names on a dense front stay apart rather than printing over each other."""
    ax.autoscale_view()
    to_pt = ax.transData + ax.figure.dpi_scale_trans.inverted()
    placed: list[tuple[float, float, float, float]] = []

    def box(x: float, y: float, dx: float, dy: float, width: float, right: bool) -> tuple[float, float, float, float]:
        px, py = to_pt.transform((x, y)) * 72
        x0 = px + dx if right else px + dx - width
        return x0, py + dy, x0 + width, py + dy + 8

    if best is not None:
        placed.append(box(best[0], best[1], -6, 9, 70, right=False))
    out = []
    for _, r in points.iterrows():
        width = 0.6 * 7 * len(str(r[label]))
        choice = LABEL_OFFSETS[0]
        for dx, dy in LABEL_OFFSETS:
            b = box(float(r["_x"]), float(r["_y"]), dx, dy, width, right=dx > 0)
            if not any(b[0] < p[2] and p[0] < b[2] and b[1] < p[3] and p[1] < b[3] for p in placed):
                choice = (dx, dy)
                break
        placed.append(box(float(r["_x"]), float(r["_y"]), choice[0], choice[1], width, right=choice[0] > 0))
        out.append((choice[0] if choice[0] > 0 else choice[0] - int(width), choice[1]))
    return out


FACET_MARKERS = ("o", "s", "^", "D", "v", "P")
"""Marker shape per level of the facet variable in a many-candidate scatter (at most
:data:`_select.MAX_FACETS` levels)."""


def pareto_levels(data: pd.DataFrame, *, encoding: sel.Encoding, cost: str, ax: plt.Axes | None = None,
                  value: str = "value", label: str = "label", best: str | None = None) -> list:
    """Many candidates against cost without a legend entry each (returns the legend handles).

    Colour is the level of ``encoding.hue``, shape the level of ``encoding.facet``; the
    controls are grey squares named in the legend; only the Pareto-optimal candidates — the
    ones a reader would pick from — are named beside their points, and the report's best is
    a large star with its name. Everything else is in the interactive chart and the tables."""
    from matplotlib.lines import Line2D

    ax = ax if ax is not None else plt.gca()
    colors = encoding_colors(encoding)
    df = data.assign(_run=data["run"].astype(str), _x=data[cost].astype(float), _y=data[value].astype(float))
    is_ctl = df["_run"].isin(encoding.controls)
    facet_of = {r: encoding.panels.get(r, "") for r in df["_run"]}
    shapes = {p: FACET_MARKERS[i % len(FACET_MARKERS)] for i, p in enumerate(encoding.panel_order)}
    handles: list = []
    for panel, g in df[~is_ctl].groupby(df.loc[~is_ctl, "_run"].map(facet_of), sort=False):
        marker = shapes.get(str(panel), "o")
        ax.scatter(g["_x"], g["_y"], c=[_color(colors, r) for r in g["_run"]], marker=marker, s=32,
                   edgecolor="#333333", linewidth=0.3, zorder=3, gid="candidates", label="_nolegend_")
    if encoding.facet:
        handles += [Line2D([], [], linestyle="none", marker=shapes[p], color="#BBBBBB", markeredgecolor="#333333",
                           label=p) for p in encoding.panel_order if p in set(facet_of.values())]
    if is_ctl.any():
        c = df[is_ctl]
        ax.scatter(c["_x"], c["_y"], color=CONTROL_COLOR, marker="s", s=55, edgecolor="black", linewidth=0.6,
                   zorder=4, gid="control")
        handles.append(Line2D([], [], linestyle="none", marker="s", color=CONTROL_COLOR, markeredgecolor="black",
                              label=", ".join(sorted(set(c[label].astype(str)))) + " (control)"))
    front = df[df["pareto"].fillna(False).astype(bool)].sort_values("_x")
    if len(front):
        ax.plot(front["_x"], front["_y"], drawstyle="steps-post", color="black", linewidth=1.2, linestyle="--",
                gid="pareto_front", zorder=2)
        handles.append(Line2D([], [], color="black", linewidth=1.2, linestyle="--", label="Pareto front (named)"))
        named = front[front[label].astype(str) != best]
        for (_, r), offset in zip(named.iterrows(), _label_offsets(ax, named, label, best=top_point(df, label, best)),
                                  strict=True):
            ax.annotate(str(r[label]), (r["_x"], r["_y"]), xytext=offset, textcoords="offset points",
                        fontsize=7, gid="front_label", zorder=5)
    top = df[df[label].astype(str) == best] if best is not None else df.iloc[0:0]
    if len(top):
        r = top.iloc[0]
        ax.scatter([r["_x"]], [r["_y"]], color=_color(colors, str(r["_run"])), marker="*", s=260, edgecolor="black",
                   linewidth=1.0, zorder=6, gid="best")
        label_best(ax, float(r["_x"]), float(r["_y"]), str(r[label]))
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=13, color="white",
                              markeredgecolor="black", label="the report's best"))
    return handles


MANY_TICKS = 8
"""Level labels beyond this many on one axis are drawn upright (they overlap side by side)."""


def _numeric_levels(levels: list[object]) -> np.ndarray | None:
    """The levels as floats when every one is a number, else None."""
    try:
        return np.array([float(v) for v in levels])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _effect_panel_width(levels: list[object]) -> float:
    """Inches of one variable's panel: 0.2 in per level label (25 learning rates need ~5 in),
    bounded beyond :data:`MANY_LEVELS` levels, where the levels no longer get a slot each."""
    n = len(levels)
    if n <= MANY_LEVELS:
        return max(3.6, 0.2 * n)
    return 6.0


def plot_main_effects(data: pd.DataFrame, *, metric_label: str, title: str, variable: str = "variable",
                      level: str = "level", mean: str = "mean", ci_low: str = "ci_low",
                      ci_high: str = "ci_high", references: Sequence[tuple[str, float]] = ()) -> Figure:
    """Mean metric per level of each hyperparameter with its CI, one panel per variable
    (``references``: dashed horizontal lines on every panel).

    A variable with more than :data:`MANY_LEVELS` levels keeps a panel of bounded width: numeric
    levels go on a numeric axis (logarithmic when positive and spanning more than 10×, as the
    learning-rate colour scale) as a line with a CI band, since 250 error bars at 250 categorical
    ticks are unreadable; other levels keep their points but label at most
    :data:`MAX_LEVEL_TICKS` of them."""
    df = data[pd.to_numeric(data[mean], errors="coerce").notna()]
    if not len(df):
        raise NoData("no main effects were estimated")
    variables = list(dict.fromkeys(df[variable]))
    all_levels = {v: sel.sort_levels(df.loc[df[variable] == v, level].tolist()) for v in variables}
    widths = [_effect_panel_width(all_levels[v]) for v in variables]
    fig, axes = plt.subplots(1, len(variables), figsize=(min(sum(widths) + 1, 2 * DENSE_MAX_IN), 4), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, var in zip(axes[0], variables, strict=True):
        g = df[df[variable] == var]
        levels = all_levels[var]
        g = g.set_index(g[level]).loc[levels]
        m = g[mean].astype(float).to_numpy()
        lo = pd.to_numeric(g[ci_low], errors="coerce").to_numpy(dtype=float)
        hi = pd.to_numeric(g[ci_high], errors="coerce").to_numpy(dtype=float)
        nums = _numeric_levels(levels)
        if len(levels) > MANY_LEVELS and nums is not None:
            ax.fill_between(nums, lo, hi, color="#0072B2", alpha=0.2, linewidth=0, label="CI")
            ax.plot(nums, m, color="#0072B2", linewidth=1.5, marker="o", markersize=2)
            if nums.min() > 0 and nums.max() / nums.min() > 10:
                ax.set_xscale("log")
        else:
            xs = np.arange(len(levels))
            ax.errorbar(xs, m, yerr=np.maximum(np.vstack([np.nan_to_num(m - lo), np.nan_to_num(hi - m)]), 0.0),
                        marker="o", color="#0072B2", capsize=4 if len(levels) <= MANY_LEVELS else 0,
                        linewidth=1.5, markersize=None if len(levels) <= MANY_LEVELS else 2)
            many = len(levels) > MANY_TICKS  # side by side they would overlap: stand them up
            shown = thinned_ticks(len(levels))
            ax.set_xticks([xs[i] for i in shown], [sel.level_text(levels[i]) for i in shown],
                          rotation=90 if many else 0, fontsize=8 if many else None)
        ax.set_xlabel(str(var))
        ax.set_title(str(var), fontsize=10)
    axes[0, 0].set_ylabel(metric_label)
    handles = []
    for ax in axes[0]:
        handles = _reference_lines(ax, references, vertical=False)
    if handles:
        axes[0, -1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    return fig


# --- driver --------------------------------------------------------------------------------


def render_plots(experiment: Experiment, analysis: Analysis, plots_dir: Path, diag: Diagnostics,
                 svg: bool = False, progress: Progress = silent, workers: int | None = None) -> list[PlotInfo]:
    """Draw and save every figure that has data (in worker processes); note each skipped one in ``diag``.

    Returns the written figures in report order. A figure that fails to draw for an
    unexpected reason is also skipped with a warning: one odd table must not cost the
    whole report. :func:`.specs.start_plots` is the same without waiting.
    """
    from analyze_experiment.report.plots.plan import plan_figures

    return start_plots(plan_figures(experiment, analysis), plots_dir, diag, svg=svg, progress=progress,
                       workers=workers).result()
