"""One process-pool helper: every parallel site goes through ``executor.map_ordered``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyze_experiment import executor
from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources.torchtune import reader

SRC = Path(executor.__file__).parent
FIX = Path(__file__).parent / "fixtures" / "torchtune"
POOLS = re.compile(r"ProcessPoolExecutor|ThreadPoolExecutor|multiprocessing\.Pool|\bPool\(|get_context\(")


def test_no_module_but_the_executor_starts_a_pool() -> None:
    starters = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if POOLS.search(p.read_text()))
    assert starters == ["executor.py"]


def test_map_ordered_keeps_the_order_and_reports_each_result() -> None:
    ticks: list[int] = []
    out = executor.map_ordered(executor.LOCAL, abs, [-3, 1, -2, 5], 2, on_result=lambda: ticks.append(1))
    assert out == [3, 1, 2, 5]
    assert len(ticks) == 4


def test_a_large_slurm_file_is_read_through_map_ordered(monkeypatch) -> None:
    calls: list[int] = []

    def recorded(spec, fn, items, workers, **kw):
        calls.append(len(items))
        return executor.map_ordered(spec, fn, items, workers, **kw)

    name = FIX / "local_v0.6.1_lora_cpu_slurm_completed.out"
    seq = tt.read_slurm_output(name, workers=1)
    monkeypatch.setattr(reader, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(reader, "map_ordered", recorded)
    par = tt.read_slurm_output(name, workers=3)
    assert calls == [3]
    assert par.bar_step.tolist() == seq.bar_step.tolist() == list(range(1, 17))
    assert par.bar_loss.tolist() == seq.bar_loss.tolist()


@pytest.mark.slow
def test_runs_read_in_worker_processes_equal_runs_read_here(example, monkeypatch) -> None:
    import pandas as pd

    from analyze_experiment.ingest import load as load_module

    root = example("mid2026", 40)
    here = load_module.load(root, now=4e9)
    monkeypatch.setattr(load_module, "PARALLEL_TRAINING_BYTES", -1)
    calls: list[int] = []

    def recorded(spec, fn, items, workers, **kw):
        calls.append(len(items))
        return executor.map_ordered(spec, fn, items, workers, **kw)

    monkeypatch.setattr(load_module, "map_ordered", recorded)
    ticks: list[tuple[int, int]] = []
    pooled = load_module.load(root, now=4e9, progress=lambda stage, done, total: ticks.append((done, total))
                              if stage == "training logs" else None)
    assert calls and calls[0] == len(here.runs) - int((here.runs["type"] != "fine-tuned").sum())
    assert [d for d, _ in ticks] == list(range(1, calls[0] + 1))
    for name, df in here.tables().items():
        pd.testing.assert_frame_equal(df, pooled.tables()[name], check_exact=True, obj=name)
    assert [w.message for w in here.diagnostics.warnings] == [w.message for w in pooled.diagnostics.warnings]
