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
from analyze_experiment.report.plots.style import CONTROL_COLOR, run_colors
from analyze_experiment.report.plots.validation import validation_figure, validation_frames
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


def _bars_figure(iv: pd.DataFrame, t: sel.Target, colors: dict[str, str], controls: list[str],
                 confidence: float) -> go.Figure:
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
            hovertemplate=(f"{name}<br>{_text(t.metric)} %{{x:.3f}}"
                           + (f"<br>{confidence:.0%} CI [{lo:.3f}, {hi:.3f}]" if has_ci else "")
                           + f"<br>n = {r['n']}<extra></extra>"),
        ))
    fig.update_layout(title=_text(f"{t.metric} per run — {t.label}"), barmode="overlay",
                      xaxis_title=_text(f"{t.metric} ({confidence:.0%} CI)"), showlegend=True,
                      height=max(300, 40 * len(df) + 150),
                      **{**LAYOUT, "legend": {"title": {"text": "run"}, "traceorder": "reversed"}})
    return fig


def _heatmap_figure(hm: pd.DataFrame, axes: tuple[str, str, list[str]], t: sel.Target) -> go.Figure:
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
                                 showscale=i == len(groups), colorbar={"title": {"text": _text(t.metric)}},
                                 hovertemplate=f"{_text(x)}=%{{x}}<br>{_text(y)}=%{{y}}<br>%{{text}}<extra></extra>"),
                      row=1, col=i)
        fig.update_xaxes(title_text=_text(x), type="category", row=1, col=i)
    fig.update_yaxes(title_text=_text(y), type="category", row=1, col=1)
    fig.update_layout(title=_text(t.label), **{k: v for k, v in LAYOUT.items() if k != "legend"})
    return fig


def _pareto_figure(pa: pd.DataFrame, t: sel.Target, cost: str, cost_label: str, colors: dict[str, str]) -> go.Figure:
    fig = go.Figure()
    for _, r in pa.iterrows():
        name = _text(r["label"])
        fig.add_trace(go.Scatter(x=[float(r[cost])], y=[float(r["value"])], mode="markers", name=name,
                                 marker={"color": colors.get(str(r["run"]), CONTROL_COLOR), "size": 11,
                                         "line": {"color": "black", "width": 0.5}},
                                 hovertemplate=f"{name}<br>{_text(cost_label)} %{{x:.3g}}<br>"
                                               f"{_text(t.metric)} %{{y:.3f}}<extra></extra>"))
    front = pa[pa["pareto"].fillna(False).astype(bool)].sort_values(cost)
    if len(front):
        fig.add_trace(go.Scatter(x=front[cost].astype(float), y=front["value"].astype(float), mode="lines",
                                 line={"shape": "hv", "dash": "dash", "color": "black"}, name="Pareto front",
                                 hoverinfo="skip"))
    fig.update_layout(title=_text(f"{t.metric} vs training cost — {t.label}"), xaxis_title=_text(cost_label),
                      yaxis_title=_text(t.metric), **LAYOUT)
    return fig


def _effects_figure(ef: pd.DataFrame, t: sel.Target) -> go.Figure:
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
    fig.update_yaxes(title_text=_text(t.metric), row=1, col=1)
    fig.update_layout(title=_text(f"Main effects on {t.metric} — {t.label}"), **LAYOUT)
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


def interactive_figures(experiment: Experiment, analysis: Analysis) -> dict[str, go.Figure]:
    """Plotly figures keyed like ``PlotInfo.interactive``; figures without data are left out."""
    controls = sel.control_runs(experiment)
    colors = run_colors(sel.all_runs(experiment), controls)
    steps = experiment.train_steps
    bounds = sel.epoch_boundaries(steps)
    out: dict[str, go.Figure] = {}
    for key, col, title, ylabel, smoothed in (
        ("loss", "loss", "Training loss", "loss", True),
        ("lr", "lr", "Learning-rate schedule", "learning rate", False),
        ("throughput", "tokens_per_second_per_gpu", "Training throughput", "tokens/s per GPU", False),
    ):
        f = sel.series_frame(steps, col)
        if len(f):
            out[key] = _step_figure(f, col, ylabel, title, colors, bounds, smoothed)
    vloss, vcurve = validation_frames(steps)
    vfig = validation_figure(vloss, vcurve, colors, _text)
    if vfig is not None:
        vfig.update_layout(**LAYOUT)
        out["validation"] = vfig
    gpu = sel.gpu_frame(experiment.gpu)
    if len(gpu):
        fig = _gpu_figure(gpu, colors)
        if fig is not None:
            out["gpu"] = fig
    else:
        mem = sel.series_frame(steps, "peak_memory_active")
        if len(mem):
            out["gpu"] = _step_figure(mem, "peak_memory_active", "peak active memory (GiB)", "Peak GPU memory",
                                      colors, bounds, False)
    for t in sel.targets(analysis):
        iv = sel.target_intervals(analysis, t)
        if not len(iv):
            continue
        refs = sel.target_references(analysis, t)
        out[f"final_{t.slug}"] = _bars_figure(iv, t, colors, controls, analysis.confidence)
        _add_references(out[f"final_{t.slug}"], refs, vertical=True)
        hm = sel.pool_seeds(experiment, sel.with_params(experiment, iv[~iv["run"].astype(str).isin(controls)]),
                            analysis.confidence)
        axes = sel.heatmap_axes(experiment, hm)
        if axes is not None:
            out[f"heatmap_{t.slug}"] = _heatmap_figure(hm, axes, t)
        pa = analysis.pareto
        if len(pa):
            pa = pa[(pa["task"] == t.task) & (pa["scorer"] == t.scorer) & (pa["metric"] == t.metric)]
            use_usd = pd.to_numeric(pa["cost_usd"], errors="coerce").notna().any()
            cost, label = ("cost_usd", "Training cost (USD)") if use_usd else ("gpu_hours", "Training cost (GPU-hours)")
            pa = pa[pd.to_numeric(pa[cost], errors="coerce").notna() & pd.to_numeric(pa["value"], errors="coerce").notna()]
            pa = pa.merge(iv[["run", "epoch", "label"]], on=["run", "epoch"], how="left")
            pa["label"] = pa["label"].fillna(pa["run"].astype(str))
            if len(pa):
                out[f"pareto_{t.slug}"] = _pareto_figure(pa, t, cost, label, colors)
        ef = analysis.effects
        if len(ef):
            ef = ef[(ef["task"] == t.task) & (ef["scorer"] == t.scorer) & (ef["metric"] == t.metric)]
            ef = ef[pd.to_numeric(ef["mean"], errors="coerce").notna()]
            if len(ef):
                out[f"effects_{t.slug}"] = _effects_figure(ef, t)
                _add_references(out[f"effects_{t.slug}"], refs, vertical=False)
    out.update(risk_interactive(analysis, colors))
    return out
