"""Shared fixtures: the bundled example experiment, built once per session in each layout.

The example is real input: captured torchtune output and evaluation logs written by
inspect-ai itself. Tests that write into an experiment (the CLI writes ``analysis/``)
work on a private copy (``example_copy``), so xdist workers never disturb each other.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from analyze_experiment import demo

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: each worker builds its own examples
    fcntl = None  # type: ignore[assignment]


def _session_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        base = base.parent  # the session's directory, common to all workers
    return base


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``example(layout, n_samples=40, seed=1)`` -> a built example (read it, never write it)."""
    base = _session_base(tmp_path_factory)

    def make(layout: str = "mid2026", n_samples: int = 40, seed: int = 1) -> Path:
        dest = base / f"demo-example-{layout}-{n_samples}-{seed}"
        with (base / f"{dest.name}.lock").open("w") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            if not demo.is_example(dest):
                demo.build_example(dest, layout=layout, n_samples=n_samples, seed=seed)
        return dest

    return make


@pytest.fixture
def example_copy(example, tmp_path) -> Callable[..., Path]:
    """``example_copy(layout, ...)`` -> a private, writable copy of a built example."""

    def make(layout: str = "mid2026", n_samples: int = 40, seed: int = 1) -> Path:
        src = example(layout, n_samples, seed)
        dest = tmp_path / f"{layout}-experiment"
        shutil.copytree(src, dest, symlinks=True)
        return dest

    return make


# --- the fixtures are inputs: no test may write into them ----------------------------------------
_FIXTURES = Path(__file__).parent / "fixtures"


def _fixture_files() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(_FIXTURES)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in _FIXTURES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        session.config._fixture_files = _fixture_files()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test created, changed or deleted a file under tests/fixtures (the tool
    must treat inputs as read-only; a test that runs it on a fixture in place breaks that)."""
    before = getattr(session.config, "_fixture_files", None)
    if before is None:
        return
    after = _fixture_files()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"tests/fixtures was modified by the test run: {', '.join(changed[:10])}", red=True)


# --- which tests are slow -------------------------------------------------------------------------
# End-to-end tests (the CLI or the whole pipeline on a built example), browser tests and statistical
# simulations are marked ``slow``: ``pytest -m "not slow"`` is then the quick unit subset (used while
# landing a change, together with tests/test_golden.py, which runs the whole pipeline once), and
# ``make test`` runs everything.
_SLOW_FILES = frozenset({
    "test_attempts.py", "test_cache.py", "test_calibration.py", "test_catalog.py", "test_cli_e2e.py",
    "test_compare.py", "test_demo.py", "test_design_types.py", "test_eval_faults.py", "test_executor.py",
    "test_export.py", "test_export_wandb.py", "test_golden.py", "test_html_browser.py",
    "test_metric_directions.py", "test_output_faults.py", "test_pipeline.py", "test_planned_found.py",
    "test_plot_command.py", "test_plots.py", "test_progress.py", "test_proportion_intervals.py",
    "test_references.py", "test_retrospective.py", "test_run_health.py", "test_safety.py",
    "test_scorer_kinds_cli.py", "test_seed_configs.py", "test_show.py", "test_stats_simulation.py",
    "test_unread_frames.py", "test_unreadable.py", "test_untrusted.py",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in _SLOW_FILES:
            item.add_marker(pytest.mark.slow)
