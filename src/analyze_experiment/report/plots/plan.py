"""Which figures the report shows, each as a :class:`~.specs.FigureSpec`.

Planning prepares every figure's data once (:mod:`._select` holds the preparation steps) and
decides what has nothing to show; drawing is the builders' job (:mod:`.static`,
:mod:`.samples`, :mod:`.validation`, :mod:`.scorer_plots`). One parameter can be followed
from here to the function that draws it without leaving these two places.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots import samples as smp
from analyze_experiment.report.plots import static
from analyze_experiment.report.plots.specs import FigureSpec
from analyze_experiment.report.plots.style import run_colors
from analyze_experiment.report.plots.validation import plot_validation_frames, validation_frames

STEP_SERIES = (
    ("lr", "lr", "Learning-rate schedule", "Learning rate"),
    ("tokens_per_second_per_gpu", "throughput", "Training throughput", "Tokens/s per GPU"),
)


def plan_figures(experiment: Experiment, analysis: Analysis) -> list[FigureSpec]:
    """Every figure the report can show, in report order; ``skip`` set where there is no data."""
    controls = sel.control_runs(experiment)
    runs = sel.all_runs(experiment)
    colors = run_colors(runs, controls)
    specs = _training_specs(experiment, colors, sel.sweep_encoding(experiment, runs, controls, sel.best_run(analysis)))
    for t in sel.targets(analysis):
        enc = sel.sweep_encoding(experiment, runs, controls, _target_best(analysis, t))
        specs += _target_specs(experiment, analysis, t, colors, controls, enc)
    from analyze_experiment.report.plots.scorer_plots import plan_risk_figures

    specs += plan_risk_figures(analysis, colors)
    return _element_ids(specs)


def _element_ids(specs: list[FigureSpec]) -> list[FigureSpec]:
    """The agreement matrices' HTML ids: ``agreement-matrix``, then ``agreement-matrix-2``, …"""
    out, n = [], 0
    for s in specs:
        if s.builder is smp.plot_sample_agreement and s.skip is None:
            n += 1
            s = replace(s, element_id=smp.ELEMENT_ID if n == 1 else f"{smp.ELEMENT_ID}-{n}")
        out.append(s)
    return out


def _target_best(analysis: Analysis, t: sel.Target) -> str | None:
    """The run the report names best for target ``t``."""
    found = [b.run for b in analysis.best if (b.task, b.scorer, b.metric) == (t.task, t.scorer, t.metric)]
    return str(found[0]) if found else None


def _training_specs(experiment: Experiment, colors: dict[str, str], enc: sel.Encoding | None) -> list[FigureSpec]:
    steps = experiment.train_steps
    trained = [str(r) for r in steps["run"].dropna().unique()] if len(steps) else []
    groups = sel.curve_groups(experiment, sel.all_runs(experiment), static.MAX_PANELS)
    common = {"colors": colors, "boundaries": sel.epoch_boundaries(steps), "groups": groups,
              "events": sel.run_events(experiment), "encoding": enc}
    loss = sel.series_frame(steps, "loss")
    span = sel.smoothing_span(int(loss.groupby("run").size().max())) if len(loss) else 0
    marks = ("dotted lines mark epoch boundaries; a cross marks a run's first non-finite loss, a bar a run "
             "stopped by the time limit.")
    if enc is not None and static.uses_encoding(trained):
        caption = (f"Exponential moving average of each run's loss (span {span} steps), coloured by {enc.hue}"
                   + (f", one panel per {enc.facet}" if enc.facet else "") + "; the report's best run is outlined "
                   f"and named, controls are grey and dashed; {marks} Every run on its own: report.html.")
    else:
        caption = f"Raw loss (faint) and its exponential moving average (bold, span {span} steps); {marks}"
    specs = [FigureSpec(
        "loss", "Training loss", "training", static.plot_step_series, loss,
        {**common, "y": "loss", "ylabel": "Training loss (per token)", "title": "Training loss", "smoothed": True},
        caption=caption, interactive="loss", skip=None if len(loss) else "no loss values")]
    vloss, vcurve = validation_frames(steps)
    if len(vcurve):  # only a sweep that validated has this figure (no "skipped" note otherwise)
        specs.append(FigureSpec(
            "validation", "Validation and training loss", "training", plot_validation_frames, (vloss, vcurve),
            {"colors": colors, "encoding": enc},
            caption=("Validation loss at each validation, coloured by " + enc.hue + "; a cross marks a run flagged "
                     "as overfitting (named in the legend; rule in docs/training.md); the report's best run is "
                     "outlined and named. Every run with its training loss: report.html."
                     if enc is not None and vcurve["run"].nunique() > static.MAX_LEGEND_RUNS else
                     "Validation loss at each validation (markers; open circle: the run's best) beside the training "
                     "loss (faint); runs flagged as overfitting say so in the legend (rule in docs/training.md)."),
            interactive="validation"))
    for col, name, title, ylabel in STEP_SERIES:
        frame = sel.series_frame(steps, col)
        specs.append(FigureSpec(name, title, "training", static.plot_step_series, frame,
                                {**common, "y": col, "ylabel": ylabel, "title": title}, interactive=name,
                                skip=None if len(frame) else f"no {col} values"))
    gpu = sel.gpu_frame(experiment.gpu)
    if len(gpu):
        specs.append(FigureSpec("gpu", "GPU memory and utilisation", "training", static.plot_gpu, gpu,
                                {"colors": colors, "encoding": enc}, interactive="gpu",
                                caption="From the GPU monitor samples; memory is the maximum over a node's GPUs."))
    else:
        mem = sel.series_frame(steps, "peak_memory_active")
        specs.append(FigureSpec(
            "gpu", "Peak GPU memory", "training", static.plot_step_series, mem,
            {**common, "y": "peak_memory_active", "ylabel": "Peak active memory (GiB)", "title": "Peak GPU memory"},
            caption="Peak active memory logged by torchtune (no GPU monitor samples).", interactive="gpu",
            skip=None if len(mem) else "no peak_memory_active values"))
    return specs


def _target_specs(experiment: Experiment, analysis: Analysis, t: sel.Target, colors: dict[str, str],
                  controls: list[str], enc: sel.Encoding | None = None) -> list[FigureSpec]:
    conf = analysis.confidence
    iv = sel.target_intervals(analysis, t)
    refs = sel.target_references(analysis, t)
    label = f"{t.metric} ({t.scorer}; bars: {conf:.0%} CI)"
    samples = sel.reduced_samples(experiment, t, iv)
    n_ctl = int(iv["run"].astype(str).isin(controls).sum()) if len(iv) else 0
    capped = len(iv) - n_ctl > static.MAX_BARS
    specs = [FigureSpec(
        f"final_{t.slug}", f"{t.metric} per run — {t.name}", "evaluation", static.plot_final_metric, iv,
        {"colors": colors, "controls": controls, "metric_label": label, "references": refs,
         "title": f"{t.metric} per run — {t.label}", "floor": sel.scale_floor(samples, t.metric),
         "max_rows": static.MAX_BARS, "encoding": enc},
        caption=f"Sorted; error bars are {conf:.0%} confidence intervals; hatched grey bars are control runs."
                + (f" The best {static.MAX_BARS} of {len(iv) - n_ctl} candidates are drawn, coloured by "
                   f"{enc.hue if enc else 'run'}; … {len(iv) - n_ctl - static.MAX_BARS} more in "
                   "tables/intervals.csv and report.html." if capped else ""),
        interactive=f"final_{t.slug}", skip=None if len(iv) else "no metric values")]
    specs.append(_heatmap_spec(experiment, analysis, t, iv, controls))
    specs.append(smp.samples_spec(t, iv, samples, analysis, colors, controls))
    specs.append(_pareto_spec(analysis, t, iv, colors, enc))
    ef = analysis.effects
    if len(ef):
        ef = ef[(ef["task"] == t.task) & (ef["scorer"] == t.scorer) & (ef["metric"] == t.metric)]
    has = len(ef) and pd.to_numeric(ef["mean"], errors="coerce").notna().any()
    specs.append(FigureSpec(
        f"effects_{t.slug}", f"Main effects — {t.name}", "statistics", static.plot_main_effects, ef,
        {"metric_label": t.metric, "title": f"Main effects on {t.metric} — {t.label}", "references": refs},
        caption=f"Mean {t.metric} per level of each hyperparameter, averaged over the other variables, with "
                f"{conf:.0%} CIs.", interactive=f"effects_{t.slug}",
        skip=None if has else "no main effects were estimated"))
    return specs


def _best_label(analysis: Analysis, t: sel.Target, iv: pd.DataFrame) -> str | None:
    """The candidate label (``run`` or ``run @ epoch N``) of the report's best for target ``t``."""
    found = [b for b in analysis.best if (b.task, b.scorer, b.metric) == (t.task, t.scorer, t.metric)]
    if not found or not len(iv):
        return None
    b = found[0]
    rows = iv[iv["run"].astype(str) == str(b.run)]
    if len(rows) > 1 and b.epoch is not None:
        rows = rows[pd.to_numeric(rows["epoch"], errors="coerce") == float(b.epoch)]
    return str(rows["label"].iloc[0]) if len(rows) else str(b.run)


def _heatmap_spec(experiment: Experiment, analysis: Analysis, t: sel.Target, iv: pd.DataFrame,
                  controls: list[str]) -> FigureSpec:
    conf = analysis.confidence
    hm = sel.pool_seeds(experiment, sel.with_params(experiment, iv[~iv["run"].astype(str).isin(controls)]), conf)
    axes = sel.heatmap_axes(experiment, hm)
    skip, note = None, ""
    if axes is None:
        skip = "fewer than two swept variables vary across runs with scores"
    else:
        hm, axes, note = sel.complete_grid(hm, *axes)
        if not len(hm):
            skip = note
    x, y, facets = axes if axes is not None else ("", "", [])
    return FigureSpec(
        f"heatmap_{t.slug}", f"{t.metric} over the sweep — {t.name}", "evaluation", static.plot_heatmap, hm,
        {"x": x, "y": y, "facets": facets, "metric_label": t.metric, "title": t.label},
        caption=_heatmap_caption(t.metric, conf, hm, x, y) + (f" {note}" if note and not skip else ""),
        interactive=f"heatmap_{t.slug}", skip=skip)


def _pareto_spec(analysis: Analysis, t: sel.Target, iv: pd.DataFrame, colors: dict[str, str],
                 enc: sel.Encoding | None = None) -> FigureSpec:
    pa = analysis.pareto
    if len(pa):
        pa = pa[(pa["task"] == t.task) & (pa["scorer"] == t.scorer) & (pa["metric"] == t.metric)].copy()
    use_usd = len(pa) and pd.to_numeric(pa["cost_usd"], errors="coerce").notna().any()
    cost, cost_label = ("cost_usd", "Training cost (USD)") if use_usd else ("gpu_hours", "Training cost (GPU-hours)")
    skip = None
    if len(pa):
        pa = pa.merge(iv[["run", "epoch", "label"]], on=["run", "epoch"], how="left")
        pa["label"] = pa["label"].fillna(pa["run"].astype(str))
        if not (pd.to_numeric(pa["value"], errors="coerce").notna() & pd.to_numeric(pa[cost], errors="coerce").notna()).any():
            skip = f"no candidate has both a metric value and a {cost}"
    else:
        skip = "no training cost is known for any evaluated run"
    many = enc is not None and len(pa) > static.MAX_LEGEND_RUNS
    return FigureSpec(
        f"pareto_{t.slug}", f"{t.metric} vs training cost — {t.name}", "evaluation", static.plot_pareto, pa,
        {"colors": colors, "cost": cost, "cost_label": cost_label, "metric_label": t.metric,
         "title": f"{t.metric} vs training cost — {t.label}", "encoding": enc, "best": _best_label(analysis, t, iv)},
        caption="Dashed line: candidates no other candidate beats on both metric and cost."
                + (f" Colour: {enc.hue}" + (f", shape: {enc.facet}" if enc.facet else "")
                   + "; only the front's candidates and the report's best (star) are named." if many and enc else ""),
        interactive=f"pareto_{t.slug}", skip=skip)


def _heatmap_caption(metric: str, conf: float, hm: pd.DataFrame, x: str, y: str) -> str:
    """What a heatmap cell shows; beyond :data:`static.MANY_LEVELS` levels on an axis the cells
    carry no numbers (:func:`static.heatmap_panel`), so the caption says where they are."""
    n = max((hm[c].nunique() for c in (x, y) if c and c in hm.columns), default=0)
    if n > static.MANY_LEVELS:
        return (f"Cell colour: {metric} (one cell per level; {n} levels are too many to print in the cells, "
                f"so values and {conf:.0%} CIs are left out here: they are in tables/intervals.csv and "
                "report.html).")
    return f"Cell: {metric} and ± half-width of its {conf:.0%} CI."
