"""Progress: the library reports each file read and figure drawn; the CLI's bar draws it."""

from __future__ import annotations

import time

from analyze_experiment import analyze, load
from analyze_experiment.cli import _Bar
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.report.plots.static import render_plots


def test_load_and_render_report_every_unit_of_work(example, tmp_path):
    calls: list[tuple[str, int, int]] = []
    exp = load(example("mid2026", 40), progress=lambda *c: calls.append(c))
    by_stage: dict[str, list[tuple[int, int]]] = {}
    for stage, done, total in calls:
        by_stage.setdefault(stage, []).append((done, total))
    n_train = int((exp.runs["type"] == "fine-tuned").sum())
    n_logs = len(exp.eval_logs)
    assert by_stage["training logs"] == [(i, n_train) for i in range(1, n_train + 1)]
    assert by_stage["evaluation logs"] == [(i, n_logs) for i in range(1, n_logs + 1)]
    drawn: list[tuple[str, int, int]] = []
    infos = render_plots(exp, analyze(exp), tmp_path, Diagnostics(), progress=lambda *c: drawn.append(c))
    total = drawn[-1][2]
    assert drawn[-1] == ("figures", total, total) and [d for _, d, _ in drawn] == list(range(total + 1))
    assert len(infos) <= total


def test_bar_stays_hidden_for_quick_runs_and_draws_stages_after():
    quick = _Bar(enabled=True)
    quick("figures", 1, 3)
    assert quick.bar is None  # under PROGRESS_AFTER_S nothing is drawn
    slow = _Bar(enabled=True)
    slow.start = time.perf_counter() - 10
    slow("evaluation logs", 2, 9)
    slow("evaluation logs", 9, 9)
    slow("figures", 1, 14)
    task = slow.bar.tasks[slow.tasks["evaluation logs"][0]]
    assert (task.completed, task.total) == (9, 9) and task.fields["rate"].endswith("/s")
    assert set(slow.tasks) == {"evaluation logs", "figures"}
    slow.close()
    slow.close()  # twice is fine
    assert slow.bar is None
    off = _Bar(enabled=False)
    off.start -= 10
    off("figures", 1, 2)
    assert off.bar is None
