"""Figures of a variable with hundreds of levels keep a bounded canvas and readable labels.

A 1,000-run sweep (250 learning rates × 4 LoRA ranks) drew a heatmap 37,770 px tall and a
main-effects panel 8,190 px wide with 250 overlapping labels, and the worker drawing them
peaked at 2.8 GiB (issue 16). Built from tidy tables: the sweep heatmap and main effects of 250
learning rates must stay ≤ 12 in on a side, label ≤ 25 levels without overlap, keep one cell per
level, draw the learning rate on a log axis, and a 4-level variable must draw as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from analyze_experiment import formatting as fmt
from analyze_experiment.report.plots import static
from analyze_experiment.report.plots.lazy import plt
from analyze_experiment.report.plots.specs import lay_out, save_figure
from analyze_experiment.report.plots.style import DPI, plot_style
from figure_checks import hidden_ticklabels

LRS = [1e-5 * (300 ** (i / 249)) for i in range(250)]  # 1e-05 … 0.003, log-spaced
RANKS = [8, 16, 32, 64]
BEST_LR = 120


def _accuracy(li: int, rank: int) -> float:
    """Peaks at learning rate index 120; rank helps a little."""
    return 0.9 - 0.00002 * (li - BEST_LR) ** 2 + 0.005 * RANKS.index(rank)


def _grid(lrs: list[float]) -> pd.DataFrame:
    rows = [{"lr": lr, "rank": r, "value": _accuracy(i, r), "ci_low": _accuracy(i, r) - 0.02,
             "ci_high": _accuracy(i, r) + 0.02} for i, lr in enumerate(lrs) for r in RANKS]
    return pd.DataFrame(rows)


def _effects(lrs: list[float]) -> pd.DataFrame:
    g = _grid(lrs)
    rows = []
    for var in ("lr", "rank"):
        for lv, sub in g.groupby(var, sort=False):
            m = float(sub["value"].mean())
            rows.append({"variable": var, "level": lv, "mean": m, "ci_low": m - 0.02, "ci_high": m + 0.02})
    return pd.DataFrame(rows)


def _visible_labels(fig) -> list[Text]:
    hidden = hidden_ticklabels(fig)
    return [t for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def _assert_no_overlap(fig, labels: list[Text]) -> None:
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "tick labels overlap"


def _saved(fig, tmp_path, name: str) -> tuple[int, int]:
    save_figure(fig, tmp_path, name)
    return Image.open(tmp_path / f"{name}.png").size


def test_heatmap_of_250_learning_rates_is_bounded_and_unannotated(tmp_path):
    df = _grid(LRS)
    with plot_style():
        fig = static.plot_heatmap(df, x="rank", y="lr", facets=[], metric_label="accuracy", title="qa")
        w_in, h_in = fig.get_size_inches()
        assert w_in <= static.DENSE_MAX_IN and h_in <= static.DENSE_MAX_IN
        ax = fig.axes[0]
        assert ax.images[0].get_array().shape == (250, 4)  # one cell per level all the same
        assert not [t for t in ax.texts if t.get_gid() == "cell"]  # no 1,000 cell labels
        assert lay_out(fig)
        fig.canvas.draw()
        ylabels = [t.get_text() for t in ax.get_yticklabels()]
        assert 10 <= len(ylabels) <= 25 and (ylabels[0], ylabels[-1]) == ("1e-05", "0.003")  # both ends named
        _assert_no_overlap(fig, _visible_labels(fig))
        plt.close(fig)
        fig = static.plot_heatmap(df, x="rank", y="lr", facets=[], metric_label="accuracy", title="qa")
        width, height = _saved(fig, tmp_path, "heatmap")  # laid out by save_figure itself
    assert width <= static.DENSE_MAX_IN * DPI and height <= static.DENSE_MAX_IN * DPI  # was 1,215 × 37,770


def test_main_effects_of_250_learning_rates_use_a_log_axis_with_a_band(tmp_path):
    with plot_style():
        fig = static.plot_main_effects(_effects(LRS), metric_label="accuracy", title="effects")
        w_in, h_in = fig.get_size_inches()
        assert w_in <= 2 * static.DENSE_MAX_IN and h_in <= 5
        lr_ax, rank_ax = fig.axes[:2]
        assert lr_ax.get_xscale() == "log" and lr_ax.get_xlabel() == "lr"
        assert len(lr_ax.collections) == 1  # the CI band, not 250 error bars
        xs, ys = lr_ax.lines[0].get_data()
        assert len(xs) == 250 and xs[int(np.argmax(ys))] == pytest.approx(LRS[BEST_LR])  # the peak stays visible
        assert [t.get_text() for t in rank_ax.get_xticklabels()] == ["8", "16", "32", "64"]  # 4 levels as before
        assert lay_out(fig)
        fig.canvas.draw()
        labels = _visible_labels(fig)
        assert len([t for t in labels if t.axes is lr_ax and t in lr_ax.get_xticklabels()]) <= 25
        _assert_no_overlap(fig, labels)
        plt.close(fig)
        fig = static.plot_main_effects(_effects(LRS), metric_label="accuracy", title="effects")
        width, height = _saved(fig, tmp_path, "effects")  # laid out by save_figure itself
    assert width <= 2 * static.DENSE_MAX_IN * DPI and height <= 5 * DPI  # was 8,190 px wide


def test_main_effects_of_250_categorical_levels_label_at_most_25():
    df = pd.DataFrame([{"variable": "prompt", "level": f"p{i:03d}", "mean": 0.5 + 0.001 * i, "ci_low": 0.45,
                        "ci_high": 0.6} for i in range(250)])
    with plot_style():
        fig = static.plot_main_effects(df, metric_label="accuracy", title="effects")
        assert fig.get_size_inches()[0] <= static.DENSE_MAX_IN
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert len(labels) <= 25 and labels[:2] == ["p000", "p010"]
        assert lay_out(fig)
        fig.canvas.draw()
        _assert_no_overlap(fig, _visible_labels(fig))
        plt.close(fig)


def test_four_levels_keep_annotated_cells_and_one_tick_per_level():
    lrs = LRS[::83][:4]
    with plot_style():
        fig = static.plot_heatmap(_grid(lrs), x="rank", y="lr", facets=[], metric_label="accuracy", title="qa")
        ax = fig.axes[0]
        assert len([t for t in ax.texts if t.get_gid() == "cell"]) == 16
        assert tuple(fig.get_size_inches()) == pytest.approx((1.4 * 4 + 2.5, 1.0 * 4 + 1.8))
        assert len(ax.get_yticklabels()) == 4
        plt.close(fig)
        fig = static.plot_main_effects(_effects(lrs), metric_label="accuracy", title="effects")
        assert fig.axes[0].get_xscale() == "linear" and len(fig.axes[0].get_xticklabels()) == 4
        plt.close(fig)


def test_variables_line_counts_many_levels_and_lists_few():
    assert fmt.levels(RANKS) == "8, 16, 32, 64"
    assert fmt.levels(LRS) == "250 values from 1e-05 to 0.003"
    assert fmt.levels([f"p{i}" for i in range(9)]) == "9 values from p0 to p8"
