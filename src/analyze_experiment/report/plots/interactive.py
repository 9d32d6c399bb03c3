"""Interactive (plotly) versions of the report figures, for ``report.html``.

Same data and colours as :mod:`analyze_experiment.report.plots.static`; hovering shows the values,
clicking a legend entry hides or shows a run. Keys match ``PlotInfo.interactive``.

Plotly interprets a small HTML subset in every label (``<b>``, ``<br>``, ``<a href>``), and
run and task names come from logs, so every label passes through :func:`_text`, which
escapes it into entities plotly shows literally.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.scorer_plots import risk_interactive
from analyze_experiment.report.plots.specs import NoData
from analyze_experiment.report.plots.style import CONTROL_COLOR, run_colors
from analyze_experiment.report.plots.validation import validation_figure
from analyze_experiment.textsafe import visible

LAYOUT = {"template": "plotly_white", "font": {"family": "DejaVu Sans, Arial, sans-serif", "size": 12},
          "legend": {"title": {"text": "run"}}, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}}


MAX_POINTS = 2000
"""Per run and series, at most this many points go into the page (every k-th step beyond):
long runs would otherwise make report.html tens of megabytes. The PNGs keep every step."""


def _text(s: object) -> str:
    """Escape a label so plotly renders it as text, never as markup."""
    return html.escape(visible(s), quote=True)


def _step_figure(data: pd.DataFrame, y: str, ylabel: str, title: str, colors: dict[str, str],
                 boundaries: dict[str, list[float]], smoothed: bool) -> go.Figure:
    fig = go.Figure()
    for run, g in data.groupby("run", sort=False):
        name, color = _text(run), colors.get(str(run), CONTROL_COLOR)
        trend = sel.smooth(g[y])
        stride = max(1, math.ceil(len(g) / MAX_POINTS))
        g, trend = g.iloc[::stride], trend.iloc[::stride]
        fig.add_trace(go.Scatter(x=g["step"], y=g[y], mode="lines", name=name, legendgroup=name,
                                 line={"color": color, "width": 1 if smoothed else 1.5},
                                 opacity=0.3 if smoothed else 1.0, showlegend=not smoothed,
                                 hovertemplate=f"{name}<br>step %{{x}}<br>{ylabel} %{{y:.4g}}<extra></extra>"))
        if smoothed:
            fig.add_trace(go.Scatter(x=g["step"], y=trend, mode="lines", name=name, legendgroup=name,
                                     line={"color": color, "width": 2.5},
                                     hovertemplate=f"{name} (smoothed)<br>step %{{x}}<br>{ylabel} %{{y:.4g}}"
                                                   "<extra></extra>"))
    for s in sorted({s for v in boundaries.values() for s in v}):
        fig.add_vline(x=s, line={"dash": "dot", "color": "#555555", "width": 1})
    fig.update_layout(title=title, xaxis_title="Global optimizer step", yaxis_title=ylabel, **LAYOUT)
    return fig


def _gpu_figure(data: pd.DataFrame, colors: dict[str, str]) -> go.Figure | None:
    panels = [(c, lab) for c, lab in (("memory_gib", "Memory used (GiB, max over GPUs)"),
                                      ("utilization_pct", "Utilisation (%, mean over GPUs)"))
              if pd.to_numeric(data[c], errors="coerce").notna().any()]
    if not panels:
        return None
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for i, (col, label) in enumerate(panels, start=1):
        for run, g in data.groupby("run", sort=False):
            name = _text(run)
            fig.add_trace(go.Scatter(x=g["minutes"], y=g[col], mode="lines", name=name, legendgroup=name,
                                     showlegend=i == 1, line={"color": colors.get(str(run), CONTROL_COLOR)},
                                     hovertemplate=f"{name}<br>%{{x:.1f}} min<br>%{{y:.1f}}<extra></extra>"),
                          row=i, col=1)
        fig.update_yaxes(title_text=label, row=i, col=1)
    fig.update_xaxes(title_text="Time since the run's first sample (min)", row=len(panels), col=1)
    fig.update_layout(title="GPU memory and utilisation over time", **LAYOUT)
    return fig


def _bars_figure(iv: pd.DataFrame, title: str, metric_label: str, colors: dict[str, str],
                 controls: list[str]) -> go.Figure:
    sign = -1.0 if "direction" in iv.columns and (iv["direction"] == "lower").any() else 1.0
    df = iv.assign(_s=sign * iv["value"].astype(float)).sort_values("_s", ascending=True, kind="stable")
    fig = go.Figure()
    for _, r in df.iterrows():
        ctl = str(r["run"]) in controls
        name = _text(f"{r['label']} (control)" if ctl else r["label"])
        lo, hi = pd.to_numeric(r["ci_low"], errors="coerce"), pd.to_numeric(r["ci_high"], errors="coerce")
        has_ci = pd.notna(lo) and pd.notna(hi)
        fig.add_trace(go.Bar(
            x=[float(r["value"])], y=[name], orientation="h", name=name,
            marker={"color": colors.get(str(r["run"]), CONTROL_COLOR), "pattern": {"shape": "/" if ctl else ""}},
            error_x={"type": "data", "symmetric": False, "array": [float(hi - r["value"]) if has_ci else 0],
                     "arrayminus": [float(r["value"] - lo) if has_ci else 0], "visible": bool(has_ci)},
            hovertemplate=(f"{name}<br>%{{x:.3f}}"
                           + (f"<br>CI [{lo:.3f}, {hi:.3f}]" if has_ci else "")
                           + f"<br>n = {r['n']}<extra></extra>"),
        ))
    fig.update_layout(title=_text(title), barmode="overlay", xaxis_title=_text(metric_label), showlegend=True,
                      height=max(300, 40 * len(df) + 150),
                      **{**LAYOUT, "legend": {"title": {"text": "run"}, "traceorder": "reversed"}})
    return fig


def _heatmap_figure(hm: pd.DataFrame, axes: tuple[str, str, list[str]], metric_label: str, title: str) -> go.Figure:
    x, y, facets = axes
    df = hm[pd.to_numeric(hm["value"], errors="coerce").notna() & hm[x].notna() & hm[y].notna()].copy()
    df["_half"] = (pd.to_numeric(df["ci_high"], errors="coerce") - pd.to_numeric(df["ci_low"], errors="coerce")) / 2
    xs, ys = sel.sort_levels(df[x].tolist()), sel.sort_levels(df[y].tolist())
    groups = [((), df)] if not facets else list(df.groupby(facets, sort=True, dropna=False))
    titles = []
    for key, _ in groups:
        keys = key if isinstance(key, tuple) else (key,)
        titles.append(_text(", ".join(f"{f}={sel.level_text(k)}" for f, k in zip(facets, keys, strict=True))))
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=titles or None, shared_yaxes=True)
    zmin, zmax = float(df["value"].min()), float(df["value"].max())
    for i, (_, g) in enumerate(groups, start=1):
        z = np.full((len(ys), len(xs)), np.nan)
        text = np.full(z.shape, "", dtype=object)
        for _, r in g.iterrows():
            a, b = ys.index(r[y]), xs.index(r[x])
            z[a, b] = float(r["value"])
            text[a, b] = f"{r['value']:.3f}" + ("" if pd.isna(r["_half"]) else f"<br>±{r['_half']:.3f}")
        fig.add_trace(go.Heatmap(z=z, x=[sel.level_text(v) for v in xs], y=[sel.level_text(v) for v in ys],
                                 text=text, texttemplate="%{text}", colorscale="Viridis", zmin=zmin, zmax=zmax,
                                 showscale=i == len(groups), colorbar={"title": {"text": _text(metric_label)}},
                                 hovertemplate=f"{_text(x)}=%{{x}}<br>{_text(y)}=%{{y}}<br>%{{text}}<extra></extra>"),
                      row=1, col=i)
        fig.update_xaxes(title_text=_text(x), type="category", row=1, col=i)
    fig.update_yaxes(title_text=_text(y), type="category", row=1, col=1)
    fig.update_layout(title=_text(title), **{k: v for k, v in LAYOUT.items() if k != "legend"})
    return fig


def _pareto_figure(pa: pd.DataFrame, cost: str, cost_label: str, metric_label: str, title: str,
                   colors: dict[str, str]) -> go.Figure:
    fig = go.Figure()
    for _, r in pa.iterrows():
        name = _text(r["label"])
        fig.add_trace(go.Scatter(x=[float(r[cost])], y=[float(r["value"])], mode="markers", name=name,
                                 marker={"color": colors.get(str(r["run"]), CONTROL_COLOR), "size": 11,
                                         "line": {"color": "black", "width": 0.5}},
                                 hovertemplate=f"{name}<br>{_text(cost_label)} %{{x:.3g}}<br>"
                                               f"{_text(metric_label)} %{{y:.3f}}<extra></extra>"))
    front = pa[pa["pareto"].fillna(False).astype(bool)].sort_values(cost)
    if len(front):
        fig.add_trace(go.Scatter(x=front[cost].astype(float), y=front["value"].astype(float), mode="lines",
                                 line={"shape": "hv", "dash": "dash", "color": "black"}, name="Pareto front",
                                 hoverinfo="skip"))
    fig.update_layout(title=_text(title), xaxis_title=_text(cost_label), yaxis_title=_text(metric_label), **LAYOUT)
    return fig


def _effects_figure(ef: pd.DataFrame, metric_label: str, title: str) -> go.Figure:
    variables = list(dict.fromkeys(ef["variable"]))
    fig = make_subplots(rows=1, cols=len(variables), shared_yaxes=True,
                        subplot_titles=[_text(v) for v in variables])
    for i, var in enumerate(variables, start=1):
        g = ef[ef["variable"] == var]
        levels = sel.sort_levels(g["level"].tolist())
        g = g.set_index(g["level"]).loc[levels]
        m = g["mean"].astype(float)
        fig.add_trace(go.Scatter(
            x=[sel.level_text(v) for v in levels], y=m, mode="lines+markers", name=_text(var), showlegend=False,
            line={"color": "#0072B2"},
            error_y={"type": "data", "symmetric": False,
                     "array": (pd.to_numeric(g["ci_high"], errors="coerce") - m).fillna(0).tolist(),
                     "arrayminus": (m - pd.to_numeric(g["ci_low"], errors="coerce")).fillna(0).tolist()},
            hovertemplate=f"{_text(var)}=%{{x}}<br>mean %{{y:.3f}}<extra></extra>"), row=1, col=i)
        fig.update_xaxes(title_text=_text(var), type="category", row=1, col=i)
    fig.update_yaxes(title_text=_text(metric_label), row=1, col=1)
    fig.update_layout(title=_text(title), **LAYOUT)
    return fig


def _add_references(fig: go.Figure, refs: list[tuple[str, float]], *, vertical: bool) -> None:
    """Reference numbers as dashed black lines, named beside the line (static figures: legend)."""
    for name, value in refs:
        label = _text(f"{name} ({value:.3g})")
        if vertical:
            fig.add_vline(x=value, line_dash="dash", line_color="black", annotation_text=label,
                          annotation_position="top")
        else:
            fig.add_hline(y=value, line_dash="dash", line_color="black", annotation_text=label,
                          annotation_position="top left")


def _step_spec(data: pd.DataFrame, *, y: str, ylabel: str, title: str, colors: dict[str, str],
               boundaries: dict[str, list[float]] | None = None, smoothed: bool = False,
               events: pd.DataFrame | None = None, **_: object) -> go.Figure:
    fig = _step_figure(data, y, ylabel, title, colors, boundaries or {}, smoothed)
    if events is not None and len(events) and y == "loss":
        for kind, g in events.groupby("kind", sort=True):
            label = sel.EVENT_STATUSES.get(str(kind), str(kind))
            fig.add_trace(go.Scatter(
                x=g["step"], y=g["value"], mode="markers", name=_text(label),
                marker={"symbol": "x" if kind == "diverged" else "line-ns-open", "size": 13, "line": {"width": 2},
                        "color": [colors.get(str(r), CONTROL_COLOR) for r in g["run"]]},
                customdata=[_text(r) for r in g["run"]],
                hovertemplate=f"%{{customdata}}<br>{_text(label)} at step %{{x}}<extra></extra>"))
    return fig


def _final_spec(data: pd.DataFrame, *, colors: dict[str, str], controls: list[str], title: str,
                metric_label: str, references: list[tuple[str, float]], floor: float = 0.0, **_: object) -> go.Figure:
    fig = _bars_figure(data, title, metric_label, colors, controls)
    if floor:
        fig.update_xaxes(range=[floor, float(pd.to_numeric(data["ci_high"], errors="coerce").fillna(data["value"]).max())
                                * 1.05])
    _add_references(fig, references, vertical=True)
    return fig


def _effects_spec(data: pd.DataFrame, *, metric_label: str, title: str, references: list[tuple[str, float]],
                  **_: object) -> go.Figure:
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


def _validation(data: tuple[pd.DataFrame, pd.DataFrame], colors: dict[str, str]) -> go.Figure | None:
    fig = validation_figure(data[0], data[1], colors, _text)
    if fig is not None:
        fig.update_layout(**LAYOUT)
    return fig


def interactive_figures(experiment: Experiment, analysis: Analysis, specs: list | None = None) -> dict[str, go.Figure]:
    """Plotly figures keyed like ``PlotInfo.interactive``; figures without data are left out.

    Drawn from the same figure specs as the PNGs (:func:`.plan.plan_figures`: pass ``specs``
    when they are planned already), so both show the same prepared data."""
    from analyze_experiment.report.plots.plan import plan_figures

    specs = plan_figures(experiment, analysis) if specs is None else specs
    adapters = _adapters()
    out: dict[str, go.Figure] = {}
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
