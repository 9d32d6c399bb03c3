"""The drawing processes start before the statistics on a first report, and report.md and
report.html are built while the figures are drawn: the documents are those the plain order
(figures first, then the documents) writes, byte for byte, and a figure that fails after the
early build is left out and named in Data Quality exactly as before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench.sweep import flip_one_sample

from analyze_experiment import write as write_mod
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.report.plots import specs as specs_mod
from analyze_experiment.report.plots import static
from analyze_experiment.write import write_report

N = 30
NOW = 2_000_000_000.0


def broken_gpu(*args, **kwargs):
    """A GPU figure that cannot be drawn (module level: it travels to the worker processes)."""
    raise RuntimeError("no GPU axes today")


@pytest.fixture
def early_built(monkeypatch) -> list[bool]:
    """Whether each report's documents were built early (True) or after the figures (False)."""
    seen: list[bool] = []
    real = write_mod._documents_before_figures

    def spy(*args, **kwargs):
        early = real(*args, **kwargs)
        seen.append(early is not None)
        return early

    monkeypatch.setattr(write_mod, "_documents_before_figures", spy)
    return seen


STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
"""The report's "Produced by … on <minute>" time: two reports may straddle a minute."""


def _write(root: Path, out: Path, cache: Cache | None = None) -> dict[str, bytes]:
    write_report(load(root, now=NOW, cache=cache), out, cache=cache)
    return {name: STAMP.sub(b"<time>", (out / name).read_bytes()) for name in ("report.md", "report.html")}


def _plain_order(monkeypatch) -> None:
    """Documents built only after the figures, as before."""
    monkeypatch.setattr(write_mod, "_documents_before_figures", lambda *a, **k: None)


@pytest.mark.slow
def test_documents_built_while_drawing_are_those_built_after(example_copy, tmp_path, monkeypatch, early_built):
    root = example_copy("mid2026", N)
    early = _write(root, tmp_path / "early")
    assert early_built == [True], "the documents were not built while the figures were drawn"
    _plain_order(monkeypatch)
    assert _write(root, tmp_path / "plain") == early
    assert b"plots/gpu.png" in early["report.md"]


@pytest.mark.slow
def test_a_figure_that_fails_after_the_early_build_is_left_out_and_named(example_copy, tmp_path, monkeypatch,
                                                                        early_built):
    root = example_copy("mid2026", N)
    monkeypatch.setattr(static, "plot_gpu", broken_gpu)
    early = _write(root, tmp_path / "early")
    assert early_built == [True]  # built early, then found wrong: the gpu figure is missing
    md = early["report.md"].decode()
    assert "plots/gpu.png" not in md
    assert "gpu plot skipped: could not draw it (RuntimeError: no GPU axes today)" in md
    assert not (tmp_path / "early" / "plots" / "gpu.png").exists()
    assert (tmp_path / "early" / "plots" / "loss.png").is_file()
    _plain_order(monkeypatch)
    assert _write(root, tmp_path / "plain") == early


@pytest.mark.slow
def test_drawing_processes_start_before_the_statistics_only_when_every_figure_is_drawn(
        example_copy, tmp_path, monkeypatch):
    monkeypatch.setenv(specs_mod.WORKERS_ENV, "2")
    started: list[int] = []
    real = specs_mod.drawing_pool

    def spy(workers=None):
        started.append(1)
        return real(workers)

    monkeypatch.setattr(specs_mod, "drawing_pool", spy)
    root = example_copy("mid2026", N)
    cache = Cache(tmp_path / "cache")
    write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache)
    assert started == [1]  # a first report: nothing to reuse, the processes start at once
    flip_one_sample(sorted(root.rglob("*.eval"))[0])
    again = write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache)
    assert not again.unchanged
    assert started == [1]  # the cache holds the figures: processes start only for what is drawn
    write_report(load(root, now=NOW), tmp_path / "c")
    assert started == [1, 1]  # --no-cache draws every figure
    monkeypatch.setenv(specs_mod.WORKERS_ENV, "1")
    write_report(load(root, now=NOW), tmp_path / "d")
    assert started == [1, 1, 1]
    assert _files(tmp_path / "d") == _files(tmp_path / "c")  # one process or several: the same report


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: STAMP.sub(b"<time>", p.read_bytes())
            for p in [out / "report.md", out / "report.html", *sorted((out / "plots").iterdir())]}


@pytest.mark.slow
def test_a_re_run_draws_the_few_changed_figures_in_its_own_process(example_copy, tmp_path, monkeypatch):
    from analyze_experiment import executor

    monkeypatch.delenv(specs_mod.WORKERS_ENV, raising=False)
    monkeypatch.setattr(specs_mod.os, "cpu_count", lambda: 2)
    started: list[str] = []
    real_pool, real_fork = executor.pool, executor.fork_pool
    monkeypatch.setattr(executor, "pool", lambda *a, **k: started.append("pool") or real_pool(*a, **k))
    monkeypatch.setattr(executor, "fork_pool", lambda *a, **k: started.append("fork") or real_fork(*a, **k))
    root = example_copy("mid2026", N)
    cache = Cache(tmp_path / "cache")
    write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache)
    assert "fork" in started  # a first report: every figure drawn by processes started early
    started.clear()
    flip_one_sample(sorted(root.rglob("*.eval"))[0])
    again = write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache)
    assert not again.unchanged
    assert started == []  # one metric's few figures: drawn here, no process started
    monkeypatch.setenv(specs_mod.WORKERS_ENV, "2")
    flip_one_sample(sorted(root.rglob("*.eval"))[0])
    write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache)
    assert started == ["pool"]  # asked for two processes: two processes
