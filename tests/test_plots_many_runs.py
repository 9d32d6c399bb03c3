"""Figures that stay readable at dozens of runs, and figures that fit their own canvas.

A 48-run sweep (learning rate × LoRA rank, plus a control) is built as tidy tables: the loss
curves, the Pareto scatter and the bar chart must tell the runs apart by the swept variables
(no legend entry per run squeezing the axes), name the report's best run and the control, and
keep every line rasterised. The bundled example's figures, laid out as they are saved, must
keep every text inside the canvas.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text

from analyze_experiment import tables
from analyze_experiment.analysis import Analysis, Best
from analyze_experiment.conclude import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, Experiment, Options, RunSpec
from analyze_experiment.ingest.load import load
from analyze_experiment.report.plots import static
from analyze_experiment.report.plots.plan import plan_figures
from analyze_experiment.report.plots.specs import lay_out, save_figure
from analyze_experiment.report.plots.style import CONTROL_COLOR, level_palette, plot_style
from figure_checks import hidden_ticklabels

LRS = [1e-5 * 1.6**i for i in range(12)]
RANKS = [8, 16, 32, 64]
CONTROL = "base"
TASK, SCORER, METRIC = "qa", "match", "accuracy"
STEPS = 60


def _name(i: int) -> str:
    return f"r{i:03d}"


def _accuracy(lr_index: int, rank: int) -> float:
    """Peaks at the 8th learning rate; rank helps a little: the best is r (7, 64)."""
    return 0.9 - 0.012 * (lr_index - 7) ** 2 + 0.005 * RANKS.index(rank)


@pytest.fixture(scope="module")
def many() -> tuple[Experiment, Analysis]:
    """48 fine-tuned runs (12 learning rates × 4 ranks) and a control, as tidy tables."""
    grid = [(i, lr, rank) for i, (lr, rank) in enumerate((lr, rank) for lr in LRS for rank in RANKS)]
    runs, steps, iv, pareto, gpu = [], [], [], [], []
    t0 = pd.Timestamp("2026-01-10T10:00:00Z")
    for i, lr, rank in grid:
        name, li = _name(i), LRS.index(lr)
        gpu += [{"run": name, "time": t0 + pd.Timedelta(minutes=m), "gpu": 0, "utilization_pct": 80.0 + li,
                 "memory_used_mib": 1024.0 * (8 + rank / 8), "memory_total_mib": 81920.0, "power_w": 300.0}
                for m in range(10)]
        runs.append({"run": name, "type": "fine-tuned", "in_design": True, "on_disk": True, "run_dir": name,
                     "status": "completed", "steps": STEPS, "gpu_hours": 0.1 + 0.01 * RANKS.index(rank) + 0.001 * li,
                     "learning_rate": lr, "lora_rank": rank})
        steps += [{"run": name, "epoch": (s - 1) // (STEPS // 2), "step": s,
                   "loss": 2.0 * math.exp(-s * lr * 2000 / STEPS) + 0.3, "lr": lr,
                   "tokens_per_second_per_gpu": 1000.0 + rank} for s in range(1, STEPS + 1)]
    runs.append({"run": CONTROL, "type": "control", "in_design": True, "on_disk": True, "run_dir": CONTROL})
    for i, lr, rank in grid:
        v = _accuracy(LRS.index(lr), rank)
        iv.append({"run": _name(i), "epoch": 1, "value": v, "ci_low": v - 0.03, "ci_high": v + 0.03})
        pareto.append({"run": _name(i), "epoch": 1, "value": v, "gpu_hours": runs[i]["gpu_hours"], "cost_usd": None})
    iv.append({"run": CONTROL, "epoch": None, "value": 0.5, "ci_low": 0.45, "ci_high": 0.55})
    pareto.append({"run": CONTROL, "epoch": None, "value": 0.5, "gpu_hours": 0.0, "cost_usd": None})
    ivf = pd.DataFrame(iv).assign(task=TASK, scorer=SCORER, metric=METRIC, n=200, stderr=0.015)
    pa = pd.DataFrame(pareto).assign(task=TASK, scorer=SCORER, metric=METRIC)
    pa = pa.sort_values(["gpu_hours", "value"], ascending=[True, False])
    pa["pareto"] = pa["value"] > pa["value"].cummax().shift(fill_value=-1.0)
    top = ivf.sort_values("value", ascending=False).iloc[0]
    design = Design(name="many", source="experiment_summary.yaml", variables={"learning_rate": LRS, "lora_rank": RANKS},
                    runs=[RunSpec(r["run"], params={"learning_rate": r["learning_rate"], "lora_rank": r["lora_rank"]})
                          for r in runs[:-1]] + [RunSpec(CONTROL, type="control")], tasks=[TASK], scorers=[SCORER])
    exp = Experiment(root=Path("."), layout="mid2026", design=design, has_design_doc=True,
                     runs=tables.frame(tables.RUNS, runs), train_steps=tables.frame(tables.TRAIN_STEPS, steps),
                     gpu=tables.frame(tables.GPU, gpu),
                     diagnostics=Diagnostics(), param_names=["learning_rate", "lora_rank"])
    best = Best(task=TASK, scorer=SCORER, metric=METRIC, run=str(top["run"]), epoch=1.0, value=float(top["value"]),
                ci_low=float(top["ci_low"]), ci_high=float(top["ci_high"]), clear_winner=True, reason="")
    return exp, Analysis(confidence=0.95, intervals=ivf, best=[best], pareto=pa.reset_index(drop=True))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _draw(name: str, exp: Experiment, an: Analysis):
    spec = {s.name: s for s in plan_figures(exp, an)}[name]
    with plot_style():
        fig = spec.draw()
        assert lay_out(fig)  # constrained layout fits it: the figure is saved at its own size
        fig.canvas.draw()
    return spec, fig


def _level(exp: Experiment, run: str, col: str) -> float:
    return float(exp.runs.set_index("run").at[run, col])


def _legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _data_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.get_gid() != "hue_colorbar" and ax.get_label() != "<colorbar>"]


def test_loss_of_48_runs_is_coloured_by_learning_rate_in_one_panel_per_rank(many):
    exp, an = many
    spec, fig = _draw("loss", exp, an)
    panels = _data_axes(fig)
    assert [ax.get_title() for ax in panels] == [f"lora_rank = {r}" for r in RANKS]
    # no legend entry per run: the legend names the best run and the epoch boundary only
    texts = _legend_texts(fig)
    assert len(texts) <= 4 and not [t for t in texts if t.startswith("r0") and "best" not in t]
    # the axes keep their size (a 12-entry legend per panel squeezed them to a strip before)
    height = fig.get_size_inches()[1] * fig.dpi
    assert sum(ax.get_window_extent().height for ax in panels[::2]) >= 0.7 * height
    assert all(ax.get_window_extent().height >= 0.3 * height for ax in panels)
    # colour = learning rate: one colour per level, the same in every panel, from the sequential map
    palette, _, _ = level_palette(LRS, numeric=True, log=True)
    for ax in panels:
        lines = [ln for ln in ax.lines if ln.get_gid() in ("run", "best")]
        assert len(lines) == len(LRS)  # one run per learning rate in each rank's panel
        assert all(ln.get_rasterized() for ln in ax.lines if ln.get_gid() in ("run", "best", "best_outline"))
        assert {to_hex(ln.get_color()) for ln in lines} == {palette[lr] for lr in LRS}
    assert fig.axes[-1].get_gid() == "hue_colorbar" and fig.axes[-1].get_ylabel() == "learning_rate"
    # the best run is outlined and named in its rank's panel
    best = an.best[0].run
    rank = _level(exp, best, "lora_rank")
    labels = [(ax.get_title(), t.get_text()) for ax in panels for t in ax.texts if t.get_gid() == "best_label"]
    assert labels == [(f"lora_rank = {rank:g}", f"{best} (best)")]
    assert "moving average" in spec.caption and "coloured by learning_rate" in spec.caption


def test_run_colour_is_its_learning_rate(many):
    """The same learning rate has the same colour at every rank; different rates differ."""
    exp, an = many
    _, fig = _draw("lr", exp, an)
    colour_of: dict[float, set[str]] = {}
    for ax in _data_axes(fig):
        for ln in ax.lines:
            if ln.get_gid() in ("run", "best"):
                colour_of.setdefault(round(float(ln.get_ydata()[0]), 12), set()).add(to_hex(ln.get_color()))
    assert len(colour_of) == len(LRS) and all(len(c) == 1 for c in colour_of.values())
    assert len({next(iter(c)) for c in colour_of.values()}) == len(LRS)


def test_gpu_panels_of_48_runs_name_levels_not_runs(many):
    exp, an = many
    _, fig = _draw("gpu", exp, an)
    panels = _data_axes(fig)
    assert [ax.get_ylabel() for ax in panels] == ["Memory (GiB)", "Utilisation (%)"]
    texts = _legend_texts(fig)
    assert texts == [f"{an.best[0].run}: the report's best"]  # learning rates: a colour bar, not 12 entries
    assert fig.axes[-1].get_gid() == "hue_colorbar"
    palette, _, _ = level_palette(LRS, numeric=True, log=True)
    lines = [ln for ln in panels[1].lines if ln.get_gid() in ("run", "best")]
    assert len(lines) == 48 and all(ln.get_rasterized() for ln in lines)
    # utilisation was made 80 + the learning-rate index: each line's colour is its rate's
    assert all(to_hex(ln.get_color()) == palette[LRS[int(ln.get_ydata()[0]) - 80]] for ln in lines)
    height = fig.get_size_inches()[1] * fig.dpi
    assert all(ax.get_window_extent().height >= 0.3 * height for ax in panels)


def test_pareto_of_49_candidates_names_only_the_front_and_the_best(many):
    exp, an = many
    spec, fig = _draw(f"pareto_{TASK}", exp, an)
    ax = _data_axes(fig)[0]
    texts = _legend_texts(fig)
    assert len(texts) <= 8 and "base (control)" in texts
    assert not [t for t in texts if t.startswith("r0")]
    best = an.best[0].run
    front = an.pareto[an.pareto["pareto"]]
    named = sorted(t.get_text() for t in ax.texts if t.get_gid() == "front_label")
    assert named == sorted(str(r) for r in front["run"] if r != best)
    assert [t.get_text() for t in ax.texts if t.get_gid() == "best_label"] == [f"{best} (best)"]
    boxes = [t.get_window_extent() for t in ax.texts if t.get_gid() in ("front_label", "best_label")]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]  # names stay apart
    star = next(c for c in ax.collections if c.get_gid() == "best")
    assert tuple(star.get_offsets()[0]) == pytest.approx(
        (float(an.pareto.set_index("run").at[best, "gpu_hours"]), an.best[0].value))
    ctl = next(c for c in ax.collections if c.get_gid() == "control")
    assert to_hex(ctl.get_facecolor()[0]) == CONTROL_COLOR.lower()
    # colours follow the learning rate: every candidate's colour is its level's
    palette, _, _ = level_palette(LRS, numeric=True, log=True)
    got = {to_hex(c) for coll in ax.collections if coll.get_gid() == "candidates" for c in coll.get_facecolors()}
    assert got == {palette[lr] for lr in LRS}
    height, width = (fig.get_size_inches() * fig.dpi)[::-1]
    assert ax.get_window_extent().height >= 0.4 * height and ax.get_window_extent().width >= 0.4 * width
    assert "only the front's candidates" in spec.caption


def test_bar_chart_of_49_candidates_draws_the_best_30_and_the_control(many):
    exp, an = many
    spec, fig = _draw(f"final_{TASK}", exp, an)
    ax = _data_axes(fig)[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == static.MAX_BARS + 1 and ticks[0] == f"{CONTROL} (control)"
    best30 = an.intervals[an.intervals["run"] != CONTROL].nlargest(static.MAX_BARS, "value")["run"]
    assert set(ticks[1:]) == set(best30) and ticks[-1] == an.best[0].run  # best on top
    assert "18 more in tables/intervals.csv" in spec.caption
    assert "the best 30 of 48 candidates" in ax.get_xlabel()
    assert fig.get_size_inches()[1] * fig.dpi < 2000  # was 0.45 in per bar: a 3,300-pixel-tall image


def test_eight_runs_keep_a_legend_per_run():
    """Few runs stay as they were: one named line per run, no colour bar."""
    runs = [f"x{i}" for i in range(8)]
    data = pd.DataFrame([{"run": r, "step": s, "loss": 1.0 / s} for r in runs for s in range(1, 6)])
    with plot_style():
        fig = static.plot_step_series(data, y="loss", ylabel="loss", title="t", colors={})
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == runs
    assert len(fig.axes) == 1


# --- the bundled example: every text inside its canvas ---------------------------------------


def test_every_demo_figure_keeps_its_text_inside_the_canvas(example, tmp_path):
    exp = load(example())
    an = analyze(exp, Options())
    specs = [s for s in plan_figures(exp, an) if s.skip is None]
    assert len(specs) >= 10
    with plot_style():
        for spec in specs:
            fig = spec.draw()
            size = tuple(fig.get_size_inches())
            assert lay_out(fig), spec.name  # no figure needs the tight-box fallback
            fig.canvas.draw()
            r = fig.canvas.get_renderer()
            w, h = fig.canvas.get_width_height()
            hidden = hidden_ticklabels(fig)
            for t in fig.findobj(Text):
                if t.get_visible() and t.get_text().strip() and id(t) not in hidden:
                    box = t.get_window_extent(r)
                    assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= w + 1 and box.y1 <= h + 1, (
                        spec.name, t.get_text())
            assert tuple(fig.get_size_inches()) == size
            plt.close(fig)
        save_figure(next(s for s in specs if s.name == "loss").draw(), tmp_path, "loss")
    from PIL import Image

    assert Image.open(tmp_path / "loss.png").size == (1350, 675)  # its own 9 × 4.5 in at 150 dpi, not grown


def test_a_figure_constrained_layout_cannot_fit_falls_back_to_the_tight_box(tmp_path):
    from PIL import Image

    with plot_style():
        fig, ax = plt.subplots(figsize=(3, 2))
        for i in range(60):
            ax.plot([0, 1], [i, i], label=f"a long legend entry number {i}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save_figure(fig, tmp_path, "huge")
    _, height = Image.open(tmp_path / "huge.png").size
    assert height > 2 * 150  # grown to the legend instead of a collapsed, clipped figure


@pytest.mark.parametrize("scores", ["levels", "continuous"])
def test_score_distributions_of_49_candidates_draw_the_best_30_and_the_control(many, scores):
    """1–5 rubric scores (stacked shares) or continuous scores (boxes): 30 rows and the control."""
    exp, an = many
    labels = list(an.intervals["run"].astype(str))
    rows = []
    for k, run in enumerate(labels):
        for i in range(10):
            score = float(1 + (i + k) % 5) if scores == "levels" else 0.01 * ((i * 7 + k) % 100)
            rows.append({"run": run, "task": TASK, "epoch": 1.0 if run != CONTROL else None, "sample_id": f"s{i}",
                         "sample_epoch": 1, "scorer": SCORER, "score": score})
    exp2 = Experiment(**{**exp.__dict__, "eval_samples": tables.frame(tables.EVAL_SAMPLES, rows)})
    spec, fig = _draw(f"samples_{TASK}", exp2, an)
    ax = _data_axes(fig)[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    best30 = an.intervals[an.intervals["run"] != CONTROL].nlargest(30, "value")["run"]
    assert len(ticks) == 31 and set(ticks) == {*best30, CONTROL}
    assert ticks[-1] == an.best[0].run  # best on top
    assert "… 18 more in report.html" in spec.caption


def test_validation_of_48_runs_is_coloured_by_learning_rate_and_names_the_overfitting(many):
    exp, an = many
    steps = exp.train_steps.copy()
    lr_of = exp.runs.set_index("run")["learning_rate"]
    every = steps["step"] % 10 == 0
    # validation falls with the training loss, except for the two largest learning rates: it rises
    # again after step 20 (overfitting by the rule in docs/training.md)
    high = steps["run"].map(lr_of) >= LRS[-2]
    val = steps["loss"] + 0.1 + (high & (steps["step"] > 20)) * (steps["step"] - 20) * 0.05
    steps["val_loss"] = val.where(every)
    exp2 = Experiment(**{**exp.__dict__, "train_steps": steps})
    spec, fig = _draw("validation", exp2, an)
    ax = _data_axes(fig)[0]
    curves = [ln for ln in ax.lines if ln.get_gid() in ("validation", "best")]
    assert len(curves) == 48 and all(ln.get_rasterized() for ln in curves)
    palette, _, _ = level_palette(LRS, numeric=True, log=True)
    assert {to_hex(ln.get_color()) for ln in curves} == {palette[lr] for lr in LRS}
    overfit = sorted(exp.runs.loc[exp.runs["learning_rate"] >= LRS[-2], "run"])
    assert len([ln for ln in ax.lines if ln.get_gid() == "overfit"]) == len(overfit) == 8
    texts = _legend_texts(fig)
    assert texts[-2] == f"overfitting: {', '.join(overfit[:5])} and 3 more"
    assert texts[-1] == f"{an.best[0].run}: the report's best" and len(texts) == 2
    assert [t.get_text() for t in ax.texts if t.get_gid() == "best_label"] == [f"{an.best[0].run} (best)"]
    assert "coloured by learning_rate" in spec.caption


def test_roc_and_reliability_of_20_candidates_name_the_best_five_and_the_control():
    """AUC rises with the run's index, calibration error falls with it: the named ones are the
    last five and the control; the other 15 are grey, unnamed and counted once."""
    from analyze_experiment.report.plots.scorer_plots import plot_reliability, plot_roc
    from analyze_experiment.report.plots.style import run_colors

    runs = [f"c{i:02d}" for i in range(20)] + [CONTROL]
    curves, risk = [], []
    for i, run in enumerate(runs):
        auc = 0.5 + 0.02 * i if run != CONTROL else 0.55
        for curve in ("roc", "reliability"):
            curves += [{"task": TASK, "scorer": "risk", "run": run, "epoch": None, "curve": curve, "x": x,
                        "y": min(1.0, x + (auc - 0.5)), "n": 10} for x in (0.0, 0.5, 1.0)]
        risk.append({"task": TASK, "scorer": "risk", "run": run, "epoch": None, "auc": auc,
                     "risk_calibration_error": 1.0 - auc})
    an = Analysis(confidence=0.95, risk_curves=pd.DataFrame(curves), risk=pd.DataFrame(risk))
    colors = run_colors(runs, [CONTROL])
    expected = [f"c{i:02d}" for i in range(19, 14, -1)] + [CONTROL]
    for draw in (plot_roc, plot_reliability):
        with plot_style():
            ax = draw(an, TASK, "risk", colors=colors).axes[0]
        named = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [n.split(" ")[0] for n in named[2:]] == expected, draw.__name__  # best first, then the control
        assert named[1] == "15 other candidates"
        others = [ln for ln in ax.lines if ln.get_gid() == "other"]
        assert len(others) == 15 and all(ln.get_rasterized() for ln in others)
