"""Every report figure drawn from the generated sweep, checked on the figure objects."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex
from PIL import Image

from analyze_experiment.analysis import Analysis
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, Experiment
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots import static
from analyze_experiment.report.plots.interactive import interactive_figures
from analyze_experiment.report.plots.plan import plan_figures
from analyze_experiment.report.plots.style import CONTROL_COLOR, OKABE_ITO, plot_style, run_colors
from plotly_views import validated_figures
from report_fixtures import CONTROL, EVIL, N_SAMPLES, STEPS_PER_EPOCH, make_analysis, make_experiment, wald


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sweep():
    exp = make_experiment()
    return exp, make_analysis(exp)


def _draw(name: str, exp: Experiment, an: Analysis):
    plans = {spec.name: spec for spec in plan_figures(exp, an)}
    with plot_style():
        return plans[name].draw()


def test_run_colors_stable_and_grey_controls():
    runs = ["a", "b", "ctl", "c"]
    colors = run_colors(runs, controls=["ctl"])
    assert colors == {"a": OKABE_ITO[0], "b": OKABE_ITO[1], "ctl": CONTROL_COLOR, "c": OKABE_ITO[2]}
    many = run_colors([f"r{i}" for i in range(12)])
    assert len(set(many.values())) == 12
    assert [many[f"r{i}"] for i in range(8)] == OKABE_ITO


def test_plot_style_restores_rcparams():
    before = plt.rcParams["savefig.dpi"]
    with plot_style():
        assert plt.rcParams["savefig.dpi"] == 150
    assert plt.rcParams["savefig.dpi"] == before


def test_loss_overlay_raw_smoothed_and_epoch_boundary(sweep):
    exp, an = sweep
    fig = _draw("loss", exp, an)
    ax = fig.axes[0]
    raw = [ln for ln in ax.lines if ln.get_gid() == "raw"]
    smooth = [ln for ln in ax.lines if ln.get_gid() == "smoothed"]
    bounds = [c for c in ax.collections if c.get_gid() == "epoch_boundary"]  # one vlines collection
    assert len(raw) == len(smooth) == 4
    assert all(ln.get_alpha() == static.RAW_ALPHA for ln in raw)
    assert all(ln.get_linewidth() > r.get_linewidth() for ln, r in zip(smooth, raw, strict=True))
    assert len(bounds) == 1
    assert [seg[0][0] for seg in bounds[0].get_segments()] == [STEPS_PER_EPOCH]  # shared boundary drawn once
    labels = ax.get_legend().get_texts()
    assert sorted(t.get_text() for t in labels) == sorted(
        ["epoch boundary", "rank16_lr0.0001", "rank16_lr1e-05", "rank8_lr0.0001", "rank8_lr1e-05"])
    # The smoothed line is an EMA of the raw losses of that run, and the raw line is the data.
    run = "rank8_lr1e-05"
    losses = exp.train_steps.loc[exp.train_steps["run"] == run, "loss"].astype(float)
    line = next(ln for ln in raw if to_hex(ln.get_color()) == run_colors(sel.all_runs(exp), [CONTROL])[run].lower())
    np.testing.assert_allclose(line.get_ydata(), losses.to_numpy())
    expected = losses.ewm(span=4).mean().to_numpy()  # span = max(2, 80 // 20)
    sm_line = next(ln for ln in smooth if ln.get_color() == line.get_color())
    np.testing.assert_allclose(sm_line.get_ydata(), expected)
    assert ax.get_xlabel() == "Global optimizer step"
    assert "loss" in ax.get_ylabel().lower()


def test_many_runs_share_at_most_sixteen_panels_by_configuration():
    """40 runs = 10 configurations × 4 seeds: one panel per configuration, its seeds overlaid."""
    runs = [f"c{c}_s{s}" for c in range(10) for s in range(4)]
    rows = [{"run": r, "epoch": 0, "step": st, "loss": 1.0 / st} for r in runs for st in range(1, 6)]
    groups = {r: f"config = {r.split('_')[0]}" for r in runs}
    fig = static.plot_step_series(pd.DataFrame(rows), y="loss", ylabel="loss", title="t", colors=run_colors(runs),
                                  smoothed=False, groups=groups)
    assert [ax.get_title() for ax in fig.axes] == [f"config = c{c}" for c in range(10)]
    assert all(len(ax.lines) == 4 and all(ln.get_rasterized() for ln in ax.lines) for ax in fig.axes)
    assert fig._suptitle.get_text() == "t (40 runs in 10 panels)"
    many = [f"r{i:03d}" for i in range(100)]  # no groups: consecutive blocks, never more than 16 panels
    rows = [{"run": r, "epoch": 0, "step": st, "loss": 1.0 / st} for r in many for st in range(1, 4)]
    fig = static.plot_step_series(pd.DataFrame(rows), y="loss", ylabel="loss", title="t", colors=run_colors(many))
    assert len(fig.axes) <= static.MAX_PANELS and sum(len(ax.lines) for ax in fig.axes) == 100
    assert fig.axes[0].get_title() == "runs 1–7"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000), st.integers(1, 50))
def test_minmax_downsample_keeps_ends_and_extremes(ys, buckets):
    y = np.asarray(ys)
    x = np.arange(len(y), dtype=float)
    rx, ry = sel.minmax_downsample(x, y, buckets)
    assert len(rx) <= max(len(y), 4 * buckets)
    assert np.all(np.diff(rx) > 0)  # a subset, in x order
    assert rx[0] == x[0] and rx[-1] == x[-1]
    assert ry.max() == y.max() and ry.min() == y.min()  # a spike is never thinned away
    np.testing.assert_array_equal(ry, y[rx.astype(int)])


def test_loss_small_multiples_above_eight_runs():
    rows = [{"run": f"r{i}", "epoch": 0, "step": s, "loss": 1.0 / s} for i in range(10) for s in range(1, 6)]
    fig = static.plot_step_series(pd.DataFrame(rows), y="loss", ylabel="loss", title="t",
                                  colors=run_colors([f"r{i}" for i in range(10)]), smoothed=True)
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes] == [f"r{i}" for i in range(10)]
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_lr_and_throughput_one_line_per_run(sweep):
    exp, an = sweep
    for name, col in (("lr", "lr"), ("throughput", "tokens_per_second_per_gpu")):
        ax = _draw(name, exp, an).axes[0]
        data = [ln for ln in ax.lines if ln.get_gid() == "raw"]
        assert len(data) == 4
        total = sum(len(ln.get_ydata()) for ln in data)
        assert total == len(exp.train_steps)
        assert max(max(ln.get_ydata()) for ln in data) == pytest.approx(exp.train_steps[col].max())


def test_gpu_panels_memory_is_max_over_gpus(sweep):
    exp, an = sweep
    fig = _draw("gpu", exp, an)
    assert len(fig.axes) == 2
    mem_ax, util_ax = fig.axes
    assert len(mem_ax.lines) == len(util_ax.lines) == 4
    mem = next(ln for ln in mem_ax.lines if ln.get_label() == "rank8_lr1e-05")
    util = next(ln for ln in util_ax.lines if ln.get_label() == "rank8_lr1e-05")
    assert mem.get_ydata()[0] == pytest.approx((20480 + 512) / 1024)  # run 0: GPU 1 holds the max
    assert util.get_ydata()[0] == pytest.approx(90.5)  # mean of 90 and 91
    assert "GiB" in mem_ax.get_ylabel() and "%" in util_ax.get_ylabel()
    assert mem.get_xdata()[-1] == pytest.approx(9.0)


def test_final_metric_bars_sorted_with_ci_and_control(sweep):
    exp, an = sweep
    fig = _draw("final_arc_easy", exp, an)
    ax = fig.axes[0]
    bars = ax.patches[: len(an.intervals)]
    widths = [b.get_width() for b in bars]
    assert len(bars) == 9
    assert widths == sorted(an.intervals["value"])  # bottom to top: best on top
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert f"{CONTROL} (control)" in labels
    ctl_bar = bars[labels.index(f"{CONTROL} (control)")]
    assert ctl_bar.get_hatch() == "//"
    assert to_hex(ctl_bar.get_facecolor()) == CONTROL_COLOR.lower()
    texts = [t.get_text() for t in ax.texts if t.get_gid() == "value"]
    assert texts == [f"{v:.3f}" for v in sorted(an.intervals["value"])]
    # Error bar of the top bar spans exactly its CI.
    top = an.intervals.sort_values("value", kind="stable").iloc[-1]
    segs = ax.collections[0].get_segments()
    assert segs[-1][0][0] == pytest.approx(top["ci_low"]) and segs[-1][1][0] == pytest.approx(top["ci_high"])


def test_colours_consistent_across_figures(sweep):
    exp, an = sweep
    colors = run_colors(sel.all_runs(exp), sel.control_runs(exp))
    loss_ax = _draw("loss", exp, an).axes[0]
    loss_colors = {t.get_text(): to_hex(h.get_color()) for t, h in
                   zip(loss_ax.get_legend().get_texts(), loss_ax.get_legend().legend_handles, strict=True)
                   if t.get_text() != "epoch boundary"}
    bar_ax = _draw("final_arc_easy", exp, an).axes[0]
    labels = [t.get_text() for t in bar_ax.get_yticklabels()]
    for run, color in loss_colors.items():
        assert color == colors[run].lower()
        bar = bar_ax.patches[labels.index(f"{run} @ epoch 1")]
        assert to_hex(bar.get_facecolor()) == color
    figs = validated_figures(exp, an)
    lr_colors = {tr.name: tr.line.color for tr in figs["lr"].data}
    assert lr_colors == {r: colors[r] for r in loss_colors}


def test_heatmap_annotated_values_and_half_widths_faceted_by_epoch(sweep):
    exp, an = sweep
    fig = _draw("heatmap_arc_easy", exp, an)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["epoch=0", "epoch=1"]
    ax = panels[1]
    assert ax.get_xlabel() == "learning_rate" and panels[0].get_ylabel() == "lora_rank"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-05", "0.0001"]
    iv = an.intervals
    row = iv[(iv["run"] == "rank16_lr0.0001") & (iv["epoch"] == 1)].iloc[0]
    _, lo, hi = wald(row["value"], N_SAMPLES)
    cell = next(t for t in ax.texts if t.get_position() == (1, 1))  # x=lr 1e-4, y=rank 16
    assert cell.get_text() == f"{row['value']:.3f}\n±{(hi - lo) / 2:.3f}"
    assert len([t for t in ax.texts if t.get_gid() == "cell"]) == 4


def test_sample_agreement_counts_flips(sweep):
    exp, an = sweep
    fig = _draw("samples_arc_easy", exp, an)
    ax = fig.axes[0]
    best = an.best[0]
    s = exp.eval_samples
    ref = s[(s["run"] == best.run) & (s["epoch"] == best.epoch)].set_index("sample_id")["score"]
    ctl = s[s["run"] == CONTROL].set_index("sample_id")["score"]
    gained, lost = int(((ctl == 1) & (ref == 0)).sum()), int(((ctl == 0) & (ref == 1)).sum())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == f"{best.run} @ epoch 1 (best)"
    assert f"{CONTROL}  +{gained}/−{lost}" in labels
    image = ax.images[0].get_array()
    assert image.shape[0] == 9
    flipped_any = {c for c in ref.index for r, g in s.groupby(["run", "epoch"], dropna=False)
                   if g.set_index("sample_id")["score"].get(c) != ref[c]}
    assert image.shape[1] == len(flipped_any)


def test_score_distribution_for_non_binary_scores(sweep):
    _exp, an = sweep
    exp2 = make_experiment()
    exp2.eval_samples = exp2.eval_samples.assign(score=exp2.eval_samples["score"] * 0.5 + 0.25)
    fig = _draw("samples_arc_easy", exp2, an)
    ax = fig.axes[0]
    assert len(ax.patches) == 9  # one box per candidate
    assert "score" in ax.get_xlabel()


def test_pareto_front_line(sweep):
    exp, an = sweep
    ax = _draw("pareto_arc_easy", exp, an).axes[0]
    front = next(ln for ln in ax.lines if ln.get_gid() == "pareto_front")
    expected = an.pareto[an.pareto["pareto"]].sort_values("gpu_hours")
    np.testing.assert_allclose(front.get_xdata(), expected["gpu_hours"].astype(float))
    np.testing.assert_allclose(front.get_ydata(), expected["value"].astype(float))
    assert len(ax.collections) == 8  # the control has no training cost
    assert ax.get_xlabel() == "Training cost (GPU-hours)"


def test_main_effects_one_panel_per_variable(sweep):
    exp, an = sweep
    fig = _draw("effects_arc_easy", exp, an)
    assert [ax.get_xlabel() for ax in fig.axes] == ["lora_rank", "learning_rate"]
    lr_line = fig.axes[1].lines[0]
    eff = an.effects[an.effects["variable"] == "learning_rate"].sort_values("level")
    np.testing.assert_allclose(lr_line.get_ydata(), eff["mean"])
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["1e-05", "0.0001"]


def test_render_plots_writes_png_150dpi_and_svg_on_request(sweep, tmp_path):
    exp, an = sweep
    diag = Diagnostics()
    png_only = tmp_path / "png"
    static.render_plots(exp, an, png_only, diag)
    assert list(png_only.glob("*.svg")) == [] and len(list(png_only.glob("*.png"))) == 9
    infos = static.render_plots(exp, an, tmp_path, diag, svg=True)
    names = [i.name for i in infos]
    assert names == ["loss", "lr", "throughput", "gpu", "final_arc_easy", "heatmap_arc_easy", "samples_arc_easy",
                     "pareto_arc_easy", "effects_arc_easy"]
    assert {i.section for i in infos} == {"training", "evaluation", "statistics"}
    for n in names:
        assert (tmp_path / f"{n}.svg").read_text().lstrip().startswith("<?xml")
        with Image.open(tmp_path / f"{n}.png") as im:
            assert round(im.info["dpi"][0]) >= 150
    assert diag.warnings == []
    assert plt.get_fignums() == []  # every figure closed after saving
    keys = set(interactive_figures(exp, an))
    assert {i.interactive for i in infos if i.interactive} == keys


def test_plots_without_data_are_skipped_with_reason(tmp_path):
    exp = Experiment(root=tmp_path, layout="unknown", design=Design(name="empty"), has_design_doc=False)
    diag = Diagnostics()
    assert static.render_plots(exp, Analysis(), tmp_path / "plots", diag) == []
    assert not (tmp_path / "plots").exists() or not list((tmp_path / "plots").iterdir())
    msgs = [w.message for w in diag.warnings]
    assert msgs == ["loss plot skipped: no loss values", "lr plot skipped: no lr values",
                    "throughput plot skipped: no tokens_per_second_per_gpu values",
                    "gpu plot skipped: no peak_memory_active values"]
    assert all(w.severity == "info" and w.stage == "plots" for w in diag.warnings)
    assert interactive_figures(exp, Analysis()) == {}


def test_one_varying_variable_skips_heatmap_and_no_cost_skips_pareto():
    exp = make_experiment(with_gpu=False)
    exp.param_names = ["lora_rank"]
    an = make_analysis(exp)
    an.pareto = an.pareto.assign(gpu_hours=math.nan)
    plans = {spec.name: (spec.info, spec.draw) for spec in plan_figures(exp, an)}
    with pytest.raises(static.NoData, match="fewer than two swept variables vary"):
        plans["heatmap_arc_easy"][1]()
    with pytest.raises(static.NoData, match="no candidate has both a metric value and a gpu_hours"):
        plans["pareto_arc_easy"][1]()
    info, draw = plans["gpu"]  # no GPU monitor: torchtune's peak memory per step instead
    assert info.title == "Peak GPU memory"
    ax = draw().axes[0]
    assert sorted(max(ln.get_ydata()) for ln in ax.lines if ln.get_gid() == "raw") == [10.0, 11.0, 12.0, 13.0]
    assert "heatmap_arc_easy" not in interactive_figures(exp, an)


def test_interactive_escapes_names_and_toggles_runs():
    exp = make_experiment(evil=True)
    an = make_analysis(exp)
    figs = validated_figures(exp, an)
    assert set(figs) == {"loss", "lr", "throughput", "gpu", "final_arc_easy", "heatmap_arc_easy",
                         "samples_arc_easy", "pareto_arc_easy", "effects_arc_easy"}
    assert EVIL not in figs["samples_arc_easy"].to_html(full_html=False, include_plotlyjs=False)
    loss = figs["loss"]
    assert len(loss.data) == 8
    evil = [tr for tr in loss.data if "script" in tr.name]
    assert {tr.name for tr in evil} == {"&lt;script&gt;alert(1)&lt;/script&gt;"}
    assert len({tr.legendgroup for tr in evil}) == 1  # one legend click hides raw + smoothed
    html = figs["final_arc_easy"].to_html(full_html=False, include_plotlyjs=False)
    assert EVIL not in html
    bars = figs["final_arc_easy"].data
    assert [b.x[0] for b in bars] == sorted(an.intervals["value"])
    top = an.intervals.sort_values("value", kind="stable").iloc[-1]
    assert bars[-1].error_x.array[0] == pytest.approx(top["ci_high"] - top["value"])


def test_targets_unique_slugs_and_names_for_two_scorers():
    from analyze_experiment.analysis import Best

    def best(task, scorer):
        return Best(task, scorer, "accuracy", "r", None, 0.5, None, None, False, "")

    an = Analysis(best=[best("cap/x<y>", "match"), best("cap/x<y>", "includes"), best("other", "match")])
    ts = sel.targets(an)
    assert [t.slug for t in ts] == ["cap-x-y-_match_accuracy", "cap-x-y-_includes_accuracy", "other"]
    assert [t.name for t in ts] == ["cap/x<y> (match)", "cap/x<y> (includes)", "other"]


def test_interactive_long_runs_are_thinned_but_smoothed_on_every_step():
    from analyze_experiment.report.plots.interactive import MAX_POINTS

    n = 5000
    steps = pd.DataFrame({"run": "r", "epoch": 0, "step": np.arange(1, n + 1), "loss": np.linspace(2, 1, n) % 1.3})
    exp = Experiment(root=".", layout="unknown", design=Design(name="x"), has_design_doc=False, train_steps=steps)
    raw, trend = validated_figures(exp, Analysis())["loss"].data
    assert len(raw.x) == len(trend.x) == math.ceil(n / 3) <= MAX_POINTS
    assert list(raw.x[:3]) == [1, 4, 7]
    full = sel.smooth(steps["loss"])
    np.testing.assert_allclose(trend.y, full.iloc[::3].to_numpy())


def test_heatmap_facets_by_third_variable_and_diverged_steps_are_dropped():
    rows = [{"run": f"r{a}{b}{c}", "epoch": 0, "a": a, "b": b, "c": c, "value": 0.1 * a + 0.01 * b + c,
             "ci_low": math.nan, "ci_high": math.nan} for a in (1, 2) for b in (1, 2, 3) for c in (0, 1)]
    fig = static.plot_heatmap(pd.DataFrame(rows), x="b", y="a", facets=["c"], metric_label="m", title="t")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["c=0", "c=1"]
    assert [t.get_text() for t in panels[1].texts if t.get_position() == (2, 1)] == ["1.230"]  # no CI: no ±
    steps = pd.DataFrame({"run": "r", "epoch": 0, "step": [1, 2, 3, 4], "loss": [1.0, math.inf, math.nan, 0.5]})
    assert sel.series_frame(steps, "loss")["step"].tolist() == [1, 4]
