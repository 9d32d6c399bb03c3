"""Interactive (plotly.js) versions of the report figures, for ``report.html``.

Same data and colours as :mod:`analyze_experiment.report.plots.static`; hovering shows the values,
clicking a legend entry hides or shows a run. Keys match ``PlotInfo.interactive``. The figures are
plotly.js JSON built as plain dicts (:mod:`.plotly_json`): plotly's graph objects validated every
property at a cost larger than the rest of the HTML report, and the page only needs the JSON.

Plotly interprets a small HTML subset in every label (``<b>``, ``<br>``, ``<a href>``), and
run and task names come from logs, so every label passes through :func:`_text`, which
escapes it into entities plotly shows literally.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.plotly_json import FONT, PlotlyFigure, figure, subplots, values
from analyze_experiment.report.plots.plotly_json import title as heading
from analyze_experiment.report.plots.scorer_plots import risk_interactive
from analyze_experiment.report.plots.specs import NoData
from analyze_experiment.report.plots.style import CONTROL_COLOR, run_colors
from analyze_experiment.report.plots.validation import validation_figure
from analyze_experiment.textsafe import visible

LAYOUT = {"font": FONT, "legend": {"title": {"text": "run"}}, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}}
"""Layout every chart shares (the page applies plotly's ``plotly_white`` template to all of them)."""


MAX_POINTS = 2000
"""Per run and series, at most this many points go into the page (every k-th step beyond):
long runs would otherwise make report.html tens of megabytes. The PNGs keep every step."""


def _text(s: object) -> str:
    """Escape a label so plotly renders it as text, never as markup."""
    return html.escape(visible(s), quote=True)


def _step_figure(data: pd.DataFrame, y: str, ylabel: str, title_text: str, colors: dict[str, str],
                 boundaries: dict[str, list[float]], smoothed: bool) -> PlotlyFigure:
    """One line per run (raw faint and smoothed bold when ``smoothed``), each thinned to
    :data:`MAX_POINTS`. The columns are turned into arrays and smoothed once for all runs
    (:func:`_select.smooth_by`), then sliced per run: a hundred runs' pandas groups and
    windows cost more than the rest of the chart."""
    fig = figure()
    codes, names = pd.factorize(data["run"], sort=False)  # groupby("run", sort=False) order, no NaN group
    steps, ys = _column_slicer(data["step"]), _column_slicer(data[y])
    trend = sel.smooth_by(data[y], data["run"]) if smoothed else None
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes[codes >= 0], minlength=len(names)))
    first = int(np.count_nonzero(codes < 0))
    for k, run in enumerate(names):
        rows = order[first + (ends[k - 1] if k else 0):first + ends[k]]
        name, color = _text(run), colors.get(str(run), CONTROL_COLOR)
        rows = rows[::max(1, math.ceil(len(rows) / MAX_POINTS))]
        fig.add_trace({"type": "scatter", "x": steps(rows), "y": ys(rows), "mode": "lines", "name": name,
                       "legendgroup": name, "line": {"color": color, "width": 1 if smoothed else 1.5},
                       "opacity": 0.3 if smoothed else 1.0, "showlegend": not smoothed,
                       "hovertemplate": f"{name}<br>step %{{x}}<br>{ylabel} %{{y:.4g}}<extra></extra>"})
        if trend is not None:
            fig.add_trace({"type": "scatter", "x": steps(rows), "y": trend[rows], "mode": "lines",
                           "name": name, "legendgroup": name, "line": {"color": color, "width": 2.5},
                           "hovertemplate": f"{name} (smoothed)<br>step %{{x}}<br>{ylabel} %{{y:.4g}}"
                                            "<extra></extra>"})
    for s in sorted({s for v in boundaries.values() for s in v}):
        fig.add_vline(s, {"dash": "dot", "color": "#555555", "width": 1})
    fig.layout.update(title=heading(title_text), xaxis={"title": heading("Global optimizer step")},
                      yaxis={"title": heading(ylabel)}, **LAYOUT)
    return fig


def _column_slicer(col: pd.Series) -> Callable[[np.ndarray], np.ndarray]:
    """Rows of ``col`` (by position) as :func:`.plotly_json.values` gives them for that slice:
    the column converted once when that is the same array (no missing values, which turn a
    nullable integer slice into floats only where the slice holds one), else slice by slice."""
    if col.hasnans:
        return lambda rows: values(col.iloc[rows])
    arr = values(col)
    return lambda rows: arr[rows]


def _gpu_figure(data: pd.DataFrame, colors: dict[str, str]) -> PlotlyFigure | None:
    panels = [(c, lab) for c, lab in (("memory_gib", "Memory used (GiB, max over GPUs)"),
                                      ("utilization_pct", "Utilisation (%, mean over GPUs)"))
              if pd.to_numeric(data[c], errors="coerce").notna().any()]
    if not panels:
        return None
    fig = subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for i, (col, label) in enumerate(panels, start=1):
        for run, g in data.groupby("run", sort=False):
            name = _text(run)
            fig.add_trace({"type": "scatter", "x": values(g["minutes"]), "y": values(g[col]), "mode": "lines",
                           "name": name, "legendgroup": name, "showlegend": i == 1,
                           "line": {"color": colors.get(str(run), CONTROL_COLOR)},
                           "hovertemplate": f"{name}<br>%{{x:.1f}} min<br>%{{y:.1f}}<extra></extra>"},
                          row=i, col=1)
        fig.update_axis("y", row=i, col=1, title=label)
    fig.update_axis("x", row=len(panels), col=1, title="Time since the run's first sample (min)")
    fig.layout.update(title=heading("GPU memory and utilisation over time"), **LAYOUT)
    return fig


def _bars_figure(iv: pd.DataFrame, title_text: str, metric_label: str, colors: dict[str, str],
                 controls: list[str]) -> PlotlyFigure:
    sign = -1.0 if "direction" in iv.columns and (iv["direction"] == "lower").any() else 1.0
    df = iv.assign(_s=sign * iv["value"].astype(float)).sort_values("_s", ascending=True, kind="stable")
    fig = figure()
    for _, r in df.iterrows():
        ctl = str(r["run"]) in controls
        name = _text(f"{r['label']} (control)" if ctl else r["label"])
        lo, hi = pd.to_numeric(r["ci_low"], errors="coerce"), pd.to_numeric(r["ci_high"], errors="coerce")
        has_ci = pd.notna(lo) and pd.notna(hi)
        fig.add_trace({
            "type": "bar", "x": [float(r["value"])], "y": [name], "orientation": "h", "name": name,
            "marker": {"color": colors.get(str(r["run"]), CONTROL_COLOR), "pattern": {"shape": "/" if ctl else ""}},
            "error_x": {"type": "data", "symmetric": False, "array": [float(hi - r["value"]) if has_ci else 0],
                        "arrayminus": [float(r["value"] - lo) if has_ci else 0], "visible": bool(has_ci)},
            "hovertemplate": (f"{name}<br>%{{x:.3f}}"
                              + (f"<br>CI [{lo:.3f}, {hi:.3f}]" if has_ci else "")
                              + f"<br>n = {r['n']}<extra></extra>"),
        })
    fig.layout.update(title=heading(_text(title_text)), barmode="overlay", xaxis={"title": heading(_text(metric_label))},
                      showlegend=True, height=max(300, 40 * len(df) + 150),
                      **{**LAYOUT, "legend": {"title": {"text": "run"}, "traceorder": "reversed"}})
    return fig


def _heatmap_figure(hm: pd.DataFrame, axes: tuple[str, str, list[str]], metric_label: str,
                    title_text: str) -> PlotlyFigure:
    x, y, facets = axes
    df = hm[pd.to_numeric(hm["value"], errors="coerce").notna() & hm[x].notna() & hm[y].notna()].copy()
    df["_half"] = (pd.to_numeric(df["ci_high"], errors="coerce") - pd.to_numeric(df["ci_low"], errors="coerce")) / 2
    xs, ys = sel.sort_levels(df[x].tolist()), sel.sort_levels(df[y].tolist())
    groups = [((), df)] if not facets else list(df.groupby(facets, sort=True, dropna=False))
    titles = []
    for key, _ in groups:
        keys = key if isinstance(key, tuple) else (key,)
        titles.append(_text(", ".join(f"{f}={sel.level_text(k)}" for f, k in zip(facets, keys, strict=True))))
    fig = subplots(rows=1, cols=len(groups), subplot_titles=titles, shared_yaxes=True)
    zmin, zmax = float(df["value"].min()), float(df["value"].max())
    for i, (_, g) in enumerate(groups, start=1):
        z = np.full((len(ys), len(xs)), np.nan)
        text = [["" for _ in xs] for _ in ys]
        for _, r in g.iterrows():
            a, b = ys.index(r[y]), xs.index(r[x])
            z[a, b] = float(r["value"])
            text[a][b] = f"{r['value']:.3f}" + ("" if pd.isna(r["_half"]) else f"<br>±{r['_half']:.3f}")
        fig.add_trace({"type": "heatmap", "z": z, "x": [sel.level_text(v) for v in xs],
                       "y": [sel.level_text(v) for v in ys], "text": text, "texttemplate": "%{text}",
                       "colorscale": VIRIDIS, "zmin": zmin, "zmax": zmax, "showscale": i == len(groups),
                       "colorbar": {"title": {"text": _text(metric_label)}},
                       "hovertemplate": f"{_text(x)}=%{{x}}<br>{_text(y)}=%{{y}}<br>%{{text}}<extra></extra>"},
                      row=1, col=i)
        fig.update_axis("x", row=1, col=i, title=_text(x), type="category")
    fig.update_axis("y", row=1, col=1, title=_text(y), type="category")
    fig.layout.update(title=heading(_text(title_text)), **{k: v for k, v in LAYOUT.items() if k != "legend"})
    return fig


VIRIDIS = [[0.0, "#440154"], [0.1111111111111111, "#482878"], [0.2222222222222222, "#3e4989"],
           [0.3333333333333333, "#31688e"], [0.4444444444444444, "#26828e"], [0.5555555555555556, "#1f9e89"],
           [0.6666666666666666, "#35b779"], [0.7777777777777778, "#6ece58"], [0.8888888888888888, "#b5de2b"],
           [1.0, "#fde725"]]
"""plotly's "Viridis", spelled out as plotly.py expands the name, so the colours are exactly
those plotly.py pages had (plotly.js would resolve the name from its own tables)."""


def _pareto_figure(pa: pd.DataFrame, cost: str, cost_label: str, metric_label: str, title_text: str,
                   colors: dict[str, str]) -> PlotlyFigure:
    fig = figure()
    for _, r in pa.iterrows():
        name = _text(r["label"])
        fig.add_trace({"type": "scatter", "x": [float(r[cost])], "y": [float(r["value"])], "mode": "markers",
                       "name": name, "marker": {"color": colors.get(str(r["run"]), CONTROL_COLOR), "size": 11,
                                                "line": {"color": "black", "width": 0.5}},
                       "hovertemplate": f"{name}<br>{_text(cost_label)} %{{x:.3g}}<br>"
                                        f"{_text(metric_label)} %{{y:.3f}}<extra></extra>"})
    front = pa[pa["pareto"].fillna(False).astype(bool)].sort_values(cost)
    if len(front):
        fig.add_trace({"type": "scatter", "x": values(front[cost].astype(float)),
                       "y": values(front["value"].astype(float)), "mode": "lines",
                       "line": {"shape": "hv", "dash": "dash", "color": "black"}, "name": "Pareto front",
                       "hoverinfo": "skip"})
    fig.layout.update(title=heading(_text(title_text)), xaxis={"title": heading(_text(cost_label))},
                      yaxis={"title": heading(_text(metric_label))}, **LAYOUT)
    return fig


def _effects_figure(ef: pd.DataFrame, metric_label: str, title_text: str) -> PlotlyFigure:
    variables = list(dict.fromkeys(ef["variable"]))
    fig = subplots(rows=1, cols=len(variables), shared_yaxes=True, subplot_titles=[_text(v) for v in variables])
    for i, var in enumerate(variables, start=1):
        g = ef[ef["variable"] == var]
        levels = sel.sort_levels(g["level"].tolist())
        g = g.set_index(g["level"]).loc[levels]
        m = g["mean"].astype(float)
        fig.add_trace({
            "type": "scatter", "x": [sel.level_text(v) for v in levels], "y": values(m), "mode": "lines+markers",
            "name": _text(var), "showlegend": False, "line": {"color": "#0072B2"},
            "error_y": {"type": "data", "symmetric": False,
                        "array": (pd.to_numeric(g["ci_high"], errors="coerce") - m).fillna(0).tolist(),
                        "arrayminus": (m - pd.to_numeric(g["ci_low"], errors="coerce")).fillna(0).tolist()},
            "hovertemplate": f"{_text(var)}=%{{x}}<br>mean %{{y:.3f}}<extra></extra>"}, row=1, col=i)
        fig.update_axis("x", row=1, col=i, title=_text(var), type="category")
    fig.update_axis("y", row=1, col=1, title=_text(metric_label))
    fig.layout.update(title=heading(_text(title_text)), **LAYOUT)
    return fig


REFERENCE_LINE = {"color": "black", "dash": "dash"}


def _add_references(fig: PlotlyFigure, refs: list[tuple[str, float]], *, vertical: bool) -> None:
    """Reference numbers as dashed black lines, named beside the line (static figures: legend)."""
    for name, value in refs:
        label = _text(f"{name} ({value:.3g})")
        if vertical:
            fig.add_vline(value, REFERENCE_LINE, annotation=label)
        else:
            fig.add_hline(value, REFERENCE_LINE, annotation=label)


def _step_spec(data: pd.DataFrame, *, y: str, ylabel: str, title: str, colors: dict[str, str],
               boundaries: dict[str, list[float]] | None = None, smoothed: bool = False,
               events: pd.DataFrame | None = None, **_: object) -> PlotlyFigure:
    fig = _step_figure(data, y, ylabel, title, colors, boundaries or {}, smoothed)
    if events is not None and len(events) and y == "loss":
        for kind, g in events.groupby("kind", sort=True):
            label = sel.EVENT_STATUSES.get(str(kind), str(kind))
            fig.add_trace({
                "type": "scatter", "x": values(g["step"]), "y": values(g["value"]), "mode": "markers",
                "name": _text(label),
                "marker": {"symbol": "x" if kind == "diverged" else "line-ns-open", "size": 13, "line": {"width": 2},
                           "color": [colors.get(str(r), CONTROL_COLOR) for r in g["run"]]},
                "customdata": [_text(r) for r in g["run"]],
                "hovertemplate": f"%{{customdata}}<br>{_text(label)} at step %{{x}}<extra></extra>"})
    return fig


def _final_spec(data: pd.DataFrame, *, colors: dict[str, str], controls: list[str], title: str,
                metric_label: str, references: list[tuple[str, float]], floor: float = 0.0,
                **_: object) -> PlotlyFigure:
    fig = _bars_figure(data, title, metric_label, colors, controls)
    if floor:
        fig.update_axis("x", range=[floor, float(pd.to_numeric(data["ci_high"], errors="coerce")
                                                 .fillna(data["value"]).max()) * 1.05])
    _add_references(fig, references, vertical=True)
    return fig


def _effects_spec(data: pd.DataFrame, *, metric_label: str, title: str, references: list[tuple[str, float]],
                  **_: object) -> PlotlyFigure:
    ef = data[pd.to_numeric(data["mean"], errors="coerce").notna()]
    fig = _effects_figure(ef, metric_label, title)
    _add_references(fig, references, vertical=False)
    return fig


def _adapters() -> dict[object, object]:
    from analyze_experiment.report.plots import samples, static
    from analyze_experiment.report.plots.validation import plot_validation_frames

    return {
        static.plot_step_series: _step_spec,
        static.plot_gpu: lambda d, colors, **_: _gpu_figure(d, colors),
        static.plot_final_metric: _final_spec,
        static.plot_heatmap: lambda d, x, y, facets, metric_label, title, **_: _heatmap_figure(
            d, (x, y, facets), metric_label, title),
        static.plot_pareto: lambda d, colors, cost, cost_label, metric_label, title, **_: _pareto_figure(
            d[pd.to_numeric(d[cost], errors="coerce").notna() & pd.to_numeric(d["value"], errors="coerce").notna()],
            cost, cost_label, metric_label, title, colors),
        static.plot_main_effects: _effects_spec,
        plot_validation_frames: lambda d, colors, **_: _validation(d, colors),
        samples.plot_sample_agreement: samples.agreement_figure,
        samples.plot_score_proportions: samples.proportions_figure,
    }


def _validation(data: tuple[pd.DataFrame, pd.DataFrame], colors: dict[str, str]) -> PlotlyFigure | None:
    fig = validation_figure(data[0], data[1], colors, _text)
    if fig is not None:
        fig.layout.update(LAYOUT)
    return fig


def interactive_figures(experiment: Experiment, analysis: Analysis,
                        specs: list | None = None) -> dict[str, PlotlyFigure]:
    """plotly.js figures keyed like ``PlotInfo.interactive``; figures without data are left out.

    Drawn from the same figure specs as the PNGs (:func:`.plan.plan_figures`: pass ``specs``
    when they are planned already), so both show the same prepared data."""
    from analyze_experiment.report.plots.plan import plan_figures

    specs = plan_figures(experiment, analysis) if specs is None else specs
    adapters = _adapters()
    out: dict[str, PlotlyFigure] = {}
    for spec in specs:
        fn = adapters.get(spec.builder)
        if spec.skip is not None or spec.interactive is None or fn is None:
            continue
        try:
            fig = fn(spec.data, **spec.options)  # type: ignore[operator]
        except NoData:
            continue
        if fig is not None:
            out[spec.interactive] = fig
    out.update(risk_interactive(analysis, run_colors(sel.all_runs(experiment), sel.control_runs(experiment))))
    return out
