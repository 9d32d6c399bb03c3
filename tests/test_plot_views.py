"""Figures that say something: per-sample agreement and flips, discrete score distributions,
divergence and time-limit markers, complete-grid heatmaps, rubric axes, readable labels, and
the same PNGs whether drawn in worker processes or in this one."""

from __future__ import annotations

import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from analyze_experiment.analysis import Best
from analyze_experiment.conclude import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Options
from analyze_experiment.ingest.load import load
from analyze_experiment.report.flipped import flipped_table
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots import samples as smp
from analyze_experiment.report.plots import static
from analyze_experiment.report.plots.plan import plan_figures
from analyze_experiment.report.plots.specs import start_plots
from analyze_experiment.report.plots.style import plot_style
from figure_checks import hidden_ticklabels
from plotly_views import validated, validated_figures
from report_fixtures import CONTROL, METRIC, SCORER, STEPS_PER_EPOCH, TASK, make_analysis, make_experiment


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _specs(exp, an):
    return {s.name: s for s in plan_figures(exp, an)}


def _with_answers(exp):
    s = exp.eval_samples
    exp.eval_samples = s.assign(answer=[f"ans {r} {i}" for r, i in zip(s["run"], s["sample_id"], strict=True)],
                                target=[f"T{i}" for i in s["sample_id"]])
    return exp


# --- per-sample view -----------------------------------------------------------------------


def test_agreement_matrix_hover_names_sample_target_and_answer():
    exp = _with_answers(make_experiment())
    an = make_analysis(exp)
    spec = _specs(exp, an)[f"samples_{TASK}"]
    assert spec.builder is smp.plot_sample_agreement and spec.element_id == "agreement-matrix"
    hm = validated_figures(exp, an)[f"samples_{TASK}"].data[0]
    best = f"{an.best[0].run} @ epoch {int(an.best[0].epoch)}"
    assert hm.y[0] == f"{best} (best)"
    # every column is a sample some candidate scored differently from the best: recomputed here
    s = exp.eval_samples
    s = s.assign(label=[f"{r} @ epoch {int(e)}" if r != CONTROL else r for r, e in zip(s["run"], s["epoch"].fillna(0),
                                                                                       strict=True)])
    wide = s.pivot_table(index="sample_id", columns="label", values="score")
    differs = wide.ne(wide[best], axis=0).any(axis=1)
    assert sorted(hm.x) == sorted(wide.index[differs])
    row = hm.y.index(next(y for y in hm.y if y.startswith(CONTROL)))
    col = 0
    sid = hm.x[col]
    hover = hm.customdata[row][col]
    expected = "correct" if wide.loc[sid, CONTROL] == 1 else "wrong"
    assert hover == f"sample {sid}<br>target: T{sid}<br>answer: ans {CONTROL} {sid}<br>{expected}"
    assert hm.z[row][col] == wide.loc[sid, CONTROL]


def test_flipped_samples_are_those_where_best_and_runner_up_disagree():
    exp = _with_answers(make_experiment())
    an = make_analysis(exp)
    t = sel.targets(an)[0]
    table = flipped_table(exp, an, t)
    iv = sel.target_intervals(an, t)
    order = iv.sort_values("value", ascending=False, kind="stable")
    (b_run, b_ep), (r_run, r_ep) = order[["run", "epoch"]].iloc[0], order[["run", "epoch"]].iloc[1]
    s = exp.eval_samples
    a = s[(s["run"] == b_run) & (s["epoch"] == b_ep)].set_index("sample_id")["score"]
    b = s[(s["run"] == r_run) & (s["epoch"] == r_ep)].set_index("sample_id")["score"]
    flips = sorted(a.index[a != b.reindex(a.index)])
    assert len(flips) > 0
    df = table.df
    assert list(df["sample"]) == flips[: len(df)]
    gained = int(((a == 1) & (b == 0)).sum())
    assert f"{gained} right only for the best" in table.caption
    first = flips[0]
    assert df.iloc[0, 2] == f"ans {b_run} {first}" and df.iloc[0, 3] == f"ans {r_run} {first}"
    assert df.iloc[0, 4] == ("best" if a[first] == 1 else "runner-up")


def _rubric(exp, levels=(1.0, 2.0, 3.0, 4.0, 5.0)):
    """The fixture's samples rescored on a rubric: each candidate's scores drawn from its own
    distribution over ``levels`` (fixed seed), so the shares are known exactly."""
    rng = np.random.default_rng(3)
    s = exp.eval_samples.copy()
    s["score"] = rng.choice(levels, size=len(s))
    exp.eval_samples = s
    return exp


def test_discrete_scores_drawn_as_stacked_proportions_not_boxes():
    exp = _rubric(make_experiment())
    an = make_analysis(exp)
    spec = _specs(exp, an)[f"samples_{TASK}"]
    assert spec.builder is smp.plot_score_proportions and spec.options["levels"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    with plot_style():
        fig = spec.draw()
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_gid() == "level"]
    assert not [c for c in ax.get_children() if type(c).__name__ == "PathPatch"]  # no box plot
    labels = [t.get_text() for t in ax.get_yticklabels()]
    s = spec.data
    for i, lab in enumerate(labels):
        row = [b for b in bars if abs(b.get_y() + b.get_height() / 2 - i) < 1e-9]
        assert sum(b.get_width() for b in row) == pytest.approx(1.0)
        shares = s.loc[s["label"] == lab, "score"].value_counts(normalize=True)
        assert [b.get_width() for b in row] == pytest.approx([shares.get(v, 0.0) for v in spec.options["levels"]])
    assert labels[-1] == spec.options["order"][0]  # best on top


def test_half_point_scores_are_discrete_levels():
    assert sel.discrete_levels(pd.Series([0, 0.5, 1, 0.5])) == [0.0, 0.5, 1.0]
    assert sel.discrete_levels(pd.Series(np.linspace(0, 1, 50))) is None


def test_rubric_bars_start_where_the_scale_starts():
    exp = _rubric(make_experiment())
    an = make_analysis(exp)
    an.intervals = an.intervals.assign(metric="mean", value=an.intervals["value"] * 4 + 1,
                                       ci_low=an.intervals["ci_low"] * 4 + 1, ci_high=an.intervals["ci_high"] * 4 + 1)
    an.best = [Best(TASK, SCORER, "mean", b.run, b.epoch, b.value * 4 + 1, None, None, False, "") for b in an.best]
    spec = _specs(exp, an)[f"final_{TASK}"]
    assert spec.options["floor"] == 1.0
    with plot_style():
        ax = spec.draw().axes[0]
    assert ax.get_xlim()[0] == 1.0
    assert {round(b.get_x(), 9) for b in ax.patches} == {1.0}
    accuracy = _specs(make_experiment(), make_analysis(make_experiment()))[f"final_{TASK}"]
    assert accuracy.options["floor"] == 0.0  # a share starts at 0


# --- training curves -----------------------------------------------------------------------


def _stopped(status: str, at: int):
    exp = make_experiment()
    run = exp.runs["run"].iloc[0]
    steps = exp.train_steps
    late = (steps["run"] == run) & (steps["step"] >= at)
    if status == "diverged":
        exp.train_steps = steps.assign(loss=steps["loss"].where(~late, math.nan))
    else:
        exp.train_steps = steps[~late].reset_index(drop=True)
    exp.runs.loc[exp.runs["run"] == run, ["status", "first_nonfinite_step", "steps"]] = (
        [status, at, at] if status == "diverged" else [status, None, at - 1])
    return exp, run


@pytest.mark.parametrize(("status", "label"), [("diverged", "loss not finite"), ("timeout", "time limit")])
def test_early_end_is_marked_on_the_loss_curve(status, label):
    exp, run = _stopped(status, 50)
    with plot_style():
        ax = _specs(exp, make_analysis(exp))["loss"].draw().axes[0]
    marks = [ln for ln in ax.lines if ln.get_gid() == f"event_{status}"]
    assert len(marks) == 1
    finite = exp.train_steps[(exp.train_steps["run"] == run) & exp.train_steps["loss"].notna()]
    expected_x = 50 if status == "diverged" else 49
    assert list(marks[0].get_xdata()) == [expected_x]
    assert marks[0].get_ydata()[0] == pytest.approx(finite["loss"].iloc[-1])  # where the curve stops
    assert label in [t.get_text() for t in ax.get_legend().get_texts()]
    fig = validated_figures(exp, make_analysis(exp))["loss"]
    assert [list(tr.x) for tr in fig.data if tr.name == label] == [[expected_x]]


def test_completed_runs_have_no_markers():
    exp = make_experiment()
    with plot_style():
        ax = _specs(exp, make_analysis(exp))["loss"].draw().axes[0]
    assert not [ln for ln in ax.lines if str(ln.get_gid()).startswith("event_")]


# --- heatmaps ------------------------------------------------------------------------------


def test_heatmap_panels_are_complete_grids():
    exp = make_experiment()
    an = make_analysis(exp)
    # one configuration was not evaluated after epoch 0: that epoch's panel would have a hole
    dropped = exp.runs["run"].iloc[0]
    an.intervals = an.intervals[~((an.intervals["run"] == dropped) & (an.intervals["epoch"] == 0))]
    spec = _specs(exp, an)[f"heatmap_{TASK}"]
    assert spec.skip is None and "Epoch 0 left out" in spec.caption
    assert set(pd.to_numeric(spec.data["epoch"])) == {1.0}
    with plot_style():
        fig = spec.draw()
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 1 and not np.isnan(images[0].get_array().filled(np.nan)).any()
    # no epoch evaluated for all: each configuration's last checkpoint, one complete panel
    an.intervals = an.intervals[~((an.intervals["run"] == exp.runs["run"].iloc[1]) & (an.intervals["epoch"] == 1))]
    spec = _specs(exp, an)[f"heatmap_{TASK}"]
    assert spec.options["facets"] == [] and "last evaluated checkpoint" in spec.caption
    assert len(spec.data) == 4
    # a configuration never evaluated: no complete grid, no heatmap
    an.intervals = an.intervals[an.intervals["run"] != dropped]
    spec = _specs(exp, an)[f"heatmap_{TASK}"]
    assert spec.skip.startswith("no complete")


# --- labels and parallel drawing -----------------------------------------------------------


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of drawn, non-empty texts whose boxes intersect by more than a pixel each way."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = hidden_ticklabels(fig)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
            if ba.width > 0 and bb.width > 0 and ba.overlaps(bb)
            and min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 1 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 1]


def test_no_two_labels_overlap_on_any_demo_figure(example):
    exp = load(example())
    an = analyze(exp, Options())
    specs = [s for s in plan_figures(exp, an) if s.skip is None]
    assert {"loss", "gpu", "lr", "throughput"} <= {s.name for s in specs}
    drawn = 0
    with plot_style():
        for spec in specs:
            fig = spec.draw()
            assert _overlaps(fig) == [], spec.name
            drawn += 1
            plt.close(fig)
    assert drawn == len(specs)


def test_gpu_axis_labels_fit_their_panels():
    exp = make_experiment()
    with plot_style():
        fig = _specs(exp, make_analysis(exp))["gpu"].draw()
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.yaxis.label.get_window_extent(r).height <= ax.get_window_extent(r).height
    assert _overlaps(fig) == []


def test_worker_processes_write_the_same_pngs_as_one_process(tmp_path):
    exp = make_experiment()
    an = make_analysis(exp)
    specs = plan_figures(exp, an)
    one = start_plots(specs, tmp_path / "one", Diagnostics(), workers=1).result()
    diag = Diagnostics()
    two = start_plots(specs, tmp_path / "two", diag, workers=2).result()
    assert [i.name for i in one] == [i.name for i in two] and len(one) == 9
    for info in one:
        assert (tmp_path / "one" / f"{info.name}.png").read_bytes() == (tmp_path / "two" / f"{info.name}.png").read_bytes()
    assert diag.warnings == []


def test_a_figure_that_fails_in_a_worker_is_skipped_with_a_warning(tmp_path):
    exp = make_experiment()
    an = make_analysis(exp)
    specs = plan_figures(exp, an)
    broken = [s if s.name != "lr" else type(s)(**{**s.__dict__, "options": {**s.options, "y": "no_such_column"}})
              for s in specs]
    diag = Diagnostics()
    infos = start_plots(broken, tmp_path, diag, workers=2).result()
    assert "lr" not in [i.name for i in infos] and len(infos) == 8
    assert [w.message.split(" (")[0] for w in diag.warnings] == ["lr plot skipped: could not draw it"]
    assert diag.warnings[0].severity == "warning"


def test_static_module_keeps_its_public_names():
    assert static.render_plots and static.NoData and static.PlotInfo and static.save_figure
    assert METRIC == "accuracy" and STEPS_PER_EPOCH == 40


def test_html_only_report_draws_no_png_it_does_not_show(example_copy, analysed):
    """``--format html``: every figure with an interactive chart is drawn by the page, so no PNG
    is written for it; report.md's PNGs come back with both formats (the default). The real CLI."""
    from click.testing import CliRunner

    from analyze_experiment.cli import analyze as analyze_cmd

    root = example_copy()
    res = CliRunner().invoke(analyze_cmd, [str(root), "--format", "html", "-q", "--no-cache"])
    assert res.exit_code == 0, res.output
    out = root / "analysis"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="agreement-matrix"' in page and 'id="fig-loss"' in page and "<img src=\"data:image/png" not in page
    assert list((out / "plots").glob("*.png")) == []
    both = analysed()  # the same example's report in both formats, made once per session
    assert both.exit_code == 0, both.stderr
    pngs = sorted(p.stem for p in (both.out / "plots").glob("*.png"))
    md = (both.out / "report.md").read_text(encoding="utf-8")
    assert pngs and all(f"plots/{n}.png" in md for n in pngs)
    assert {"loss", "gpu"} <= set(pngs) and any(n.startswith("samples_") for n in pngs)


def test_agreement_matrix_is_bounded_and_says_what_it_leaves_out():
    """A 100-run sweep's full matrix made report.html 30 MB: rows and samples are capped, the
    counts of what was left out are in the axis title, and the gained/lost counts still cover
    every flipped sample."""
    from analyze_experiment.report.plots import samples as sm

    rng = np.random.default_rng(3)
    n_cand, n_samp = 30, 400
    labels = [f"r{i:02d}" for i in range(n_cand)]
    scores = (rng.random((n_cand, n_samp)) < np.linspace(0.9, 0.5, n_cand)[:, None]).astype(float)
    data = pd.DataFrame([{"label": lab, "sample_id": j, "score": scores[i, j], "answer": "a", "target": "t"}
                         for i, lab in enumerate(labels) for j in range(n_samp)])
    m, _ = sm.agreement_matrix(data, "r00", labels)
    assert m.shape == (sm.MAX_MATRIX_ROWS, sm.MAX_MATRIX_SAMPLES)
    assert list(m.index) == labels[: sm.MAX_MATRIX_ROWS]
    shown_rows = scores[: sm.MAX_MATRIX_ROWS]
    flipped = int(((shown_rows != shown_rows[0]).any(axis=0)).sum())
    assert m.attrs["flipped"] == flipped and m.attrs["candidates"] == n_cand
    assert m.attrs["gained"]["r01"] == int(((scores[1] == 1) & (scores[0] == 0)).sum())
    assert m.attrs["lost"]["r01"] == int(((scores[1] == 0) & (scores[0] == 1)).sum())
    note = sm.matrix_note(m, n_samp)
    assert f"{flipped} of {n_samp} changed outcome" in note
    assert f"the {sm.MAX_MATRIX_SAMPLES} where most candidates differ are shown" in note
    assert f"top {sm.MAX_MATRIX_ROWS} of {n_cand} candidates" in note
    fig = validated(sm.agreement_figure(data, best="r00", title="t", order=labels))
    assert np.asarray(fig.data[0].z).shape == (sm.MAX_MATRIX_ROWS, sm.MAX_MATRIX_SAMPLES)
