"""The drawing processes started before the statistics: a first process imports what drawing
needs and forks those that draw; results come back figure by figure, in order; a process that
dies is an error the report sees, and closing leaves no process behind."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import matplotlib
import pytest

from analyze_experiment.report.plots.specs import DrawingProcesses, FigureSpec

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork start method")


def pid_figure(folder: str, **options):
    """A small figure that records which process drew it and that process's parent."""
    import sys

    Path(folder, f"{os.getpid()}-{options['n']}.pid").write_text(
        f"{os.getppid()} {'matplotlib.pyplot' in sys.modules}")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1))
    fig.add_subplot().plot([0, options["n"]])
    return fig


def dying_figure(folder: str, **options):
    os._exit(3)


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_figures_drawn_by_processes_forked_after_the_imports_come_back_in_order(tmp_path):
    matplotlib.use("Agg")
    procs = DrawingProcesses(2)
    try:
        specs = [FigureSpec(f"fig{n}", "t", "training", pid_figure, str(tmp_path), {"n": n}) for n in range(6)]
        handles = procs.draw([(s, tmp_path / "plots", False, None) for s in specs])
        assert [h.result() for h in handles] == [("ok", "")] * 6
    finally:
        procs.close()
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [f"fig{n}.png" for n in range(6)]
    records = {p.name: p.read_text().split() for p in tmp_path.glob("*.pid")}
    assert len(records) == 6
    parents = {parent for parent, _ in records.values()}
    assert len(parents) == 1 and parents != {str(os.getpid())}  # forked by the first drawing process
    assert all(imported == "True" for _, imported in records.values())  # pyplot came with the fork
    drawers = {int(name.split("-")[0]) for name in records}
    assert all(_gone(pid) for pid in drawers | {int(p) for p in parents})  # nothing left running


def test_a_drawing_process_that_dies_is_an_error_and_leaves_nothing_behind(tmp_path):
    procs = DrawingProcesses(2)
    try:
        spec = FigureSpec("dies", "t", "training", dying_figure, str(tmp_path), {})
        (handle,) = procs.draw([(spec, tmp_path, False, None)])
        with pytest.raises(BrokenProcessPool):
            handle.result()
    finally:
        procs.close()
    assert not list(tmp_path.glob("*.png"))
    assert multiprocessing.active_children() == []
