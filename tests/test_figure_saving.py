"""How figures are written: the PNG holds exactly the pixels matplotlib draws, however the
saving is sped up (ticks and text layouts computed once, our own PNG encoder, the collector
kept off the report's objects), and the shared per-run preparation gives what the per-run
one gives."""

from __future__ import annotations

import gc
import io
import math
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.plan import plan_figures
from analyze_experiment.report.plots.specs import FigureSpec, draw_and_save, lay_out, png_bytes, save_figure
from analyze_experiment.report.plots.style import DPI, plot_style
from report_fixtures import make_analysis, make_experiment


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sweep():
    exp = make_experiment()
    return exp, make_analysis(exp)


def _reference_pixels(fig) -> np.ndarray:
    """The figure laid out as save_figure lays it out, then written by matplotlib's own PNG
    writer with none of save_figure's shortcuts."""
    assert lay_out(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return np.asarray(Image.open(buf))


def _saved_pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGBA" and round(im.info["dpi"][0]) == DPI
        return np.asarray(im)


def test_every_report_figure_is_written_pixel_for_pixel_as_matplotlib_draws_it(sweep, tmp_path):
    exp, an = sweep
    specs = [s for s in plan_figures(exp, an) if s.skip is None and s.builder is not None]
    assert {s.name.split("_")[0] for s in specs} >= {"loss", "gpu", "final", "heatmap", "samples", "pareto", "effects"}
    for spec in specs:
        assert draw_and_save(spec, tmp_path, False) == ("ok", ""), spec.name
        with plot_style():
            expected = _reference_pixels(spec.draw())
        got = _saved_pixels(tmp_path / f"{spec.name}.png")
        assert got.shape == expected.shape and (got == expected).all(), spec.name


def _busy_figure():
    """Shared axes, a log axis, a colour bar, rotated labels, a legend outside and texts: the
    decorations whose extents the layout asks for many times."""
    fig, axes = plt.subplots(2, 2, figsize=(8, 5), sharex=True, sharey="row")
    x = np.linspace(1, 1000, 200)
    for i, ax in enumerate(axes.flat):
        ax.plot(x, np.sqrt(x) * (i + 1), label=f"series {i}")
        ax.set_title(f"panel {i}")
        ax.text(10, 5 * (i + 1), f"note {i}\nsecond line", fontsize=8)
    axes[0, 0].set_xscale("log")
    image = axes[1, 1].imshow(np.arange(12.0).reshape(3, 4), extent=(1, 1000, 0, 60), aspect="auto")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="level")
    axes[1, 0].set_xticks([1, 10, 100, 1000], ["one", "ten", "hundred", "thousand"], rotation=90)
    axes[0, 1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("busy")
    return fig


def _shrinking_figure():
    """A legend beside a small figure: the layout narrows the axes from 200-step ticks to
    1000-step ones, so ticks computed before the layout are not the ones drawn."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(1001), np.sqrt(np.arange(1001)), label="a rather long series name that takes room")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@pytest.mark.parametrize("make", [_busy_figure, _shrinking_figure])
def test_a_figure_whose_decorations_move_is_written_as_matplotlib_draws_it(make, tmp_path):
    with plot_style():
        save_figure(make(), tmp_path, "fig")
        expected = _reference_pixels(make())
    got = _saved_pixels(tmp_path / "fig.png")
    assert got.shape == expected.shape and (got == expected).all()


def test_png_bytes_decode_to_the_same_pixels():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)  # row differences wrap around 256
    rgba[10:20] = 255  # and flat runs
    with Image.open(io.BytesIO(png_bytes(rgba, 150))) as im:
        assert im.mode == "RGBA" and im.size == (53, 37)
        assert round(im.info["dpi"][0]) == 150
        assert (np.asarray(im) == rgba).all()


def _records_freeze_count(data, counts):
    counts.append(gc.get_freeze_count())
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def test_drawing_keeps_the_collector_off_older_objects_and_restores_it(tmp_path):
    counts: list[int] = []
    spec = FigureSpec("tiny", "Tiny", "training", _records_freeze_count, None, {"counts": counts})
    gc.unfreeze()
    assert draw_and_save(spec, tmp_path, False) == ("ok", "")
    assert counts[-1] > 0  # the objects made before the figure were frozen while it was drawn
    assert gc.get_freeze_count() == 0  # and handed back to the collector afterwards
    gc.freeze()  # a worker forked from a frozen parent
    try:
        before = gc.get_freeze_count()
        assert draw_and_save(spec, tmp_path, False) == ("ok", "")
        assert gc.get_freeze_count() > before // 2  # its frozen objects stay frozen (less any freed meanwhile)
    finally:
        gc.unfreeze()


def test_smoothing_every_run_at_once_equals_smoothing_each_run():
    rng = np.random.default_rng(7)
    runs = np.repeat(["short", "long", "mid"], [30, 900, 300])
    loss = pd.Series(rng.normal(2.0, 0.3, len(runs)))
    loss[[3, 500, 501]] = np.nan
    loss[[40, 1000]] = [math.inf, -math.inf]
    keys = pd.Series(runs).astype(object)
    keys[7] = None  # a row without a run is left out, as a groupby leaves it
    order = rng.permutation(len(runs))  # rows of different runs interleaved
    loss, keys = loss.iloc[order].reset_index(drop=True), keys.iloc[order].reset_index(drop=True)
    got = sel.smooth_by(loss, keys)
    expected = np.full(len(loss), np.nan)
    for _, g in loss.groupby(keys, sort=False):
        expected[g.index] = sel.smooth(g).to_numpy()
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[keys.isna().to_numpy()]).all()
    assert len({sel.smoothing_span(n) for n in (29, 898, 299)}) == 3  # three spans, three grouped passes


def test_per_sample_data_averages_repeated_sample_epochs_and_keeps_single_rows(sweep):
    exp, an = sweep
    t = sel.targets(an)[0]
    iv = sel.target_intervals(an, t)
    ids = exp.eval_samples["sample_id"].astype(str)
    samples = exp.eval_samples.assign(answer=("answer " + ids).astype("str"), target=("target " + ids).astype("str"))
    once = sel.reduced_samples(replace(exp, eval_samples=samples), t, iv)  # one row per candidate × sample
    rows = samples[(samples["task"] == t.task) & (samples["scorer"] == t.scorer)]
    assert len(once) == len(rows) and once["answer"].str.startswith("answer ").all()
    first = rows[rows["epoch"].notna()].iloc[0]
    repeat = first.to_frame().T.astype(samples.dtypes.to_dict())
    repeat["score"] = 1.0 - float(first["score"])  # a second inspect epoch of that sample, scored the other way
    repeat["answer"] = "second answer"
    twice = sel.reduced_samples(replace(exp, eval_samples=pd.concat([samples, repeat], ignore_index=True)), t, iv)
    key = ((twice["run"] == str(first["run"])) & (twice["sample_id"] == str(first["sample_id"]))
           & (twice["epoch"] == float(first["epoch"])))
    assert len(twice) == len(once)
    assert twice.loc[key, "score"].tolist() == [0.5]
    assert twice.loc[key, "answer"].tolist() == [first["answer"]]  # the first epoch's answer
    assert twice.loc[~key].reset_index(drop=True).equals(once.loc[~key].reset_index(drop=True))


def test_the_tick_and_text_shortcut_runs_on_the_pinned_matplotlib_only(monkeypatch):
    import re
    from pathlib import Path

    import matplotlib
    from matplotlib.axis import Axis

    from analyze_experiment.report.plots.specs import MEASURED_ONCE_MATPLOTLIB, measured_once

    pin = re.search(r'"matplotlib==([^"]+)"', (Path(__file__).parents[1] / "pyproject.toml").read_text()).group(1)
    assert MEASURED_ONCE_MATPLOTLIB == pin == matplotlib.__version__  # the pixel tests above ran with it on
    plain = Axis._update_ticks
    with measured_once():
        assert Axis._update_ticks is not plain
    assert Axis._update_ticks is plain
    monkeypatch.setattr(matplotlib, "__version__", "3.12.0")
    with measured_once():
        assert Axis._update_ticks is plain  # another release: its private methods are left alone
