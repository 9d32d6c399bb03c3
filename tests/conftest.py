"""Shared fixtures: the bundled example experiment, built once per session in each layout, and
its report, made once per session by the real command line.

The example is real input: captured torchtune output and evaluation logs written by
inspect-ai itself. Tests that write into an experiment (the CLI writes ``analysis/``)
work on a private copy (``example_copy``), so xdist workers never disturb each other.
A whole report costs seconds of CPU (mostly its figures); tests that only read the report of
the unchanged example share one (``analysed``) instead of each making their own.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyze_experiment import demo

# Figures are drawn in this process in the tests (the CLI's default is worker processes): with
# two xdist workers each forking drawing processes, the suite paid about 0.5 s of CPU per report
# for no gain. tests/test_plot_views.py checks the worker processes write the same bytes.
os.environ.setdefault("ANALYZE_EXPERIMENT_PLOT_WORKERS", "1")

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: each worker builds its own examples
    fcntl = None  # type: ignore[assignment]


def _session_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        base = base.parent  # the session's directory, common to all workers
    return base


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (shared by every xdist worker of the session)."""
    with path.open("w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``example(layout, n_samples=40, seed=1)`` -> a built example (read it, never write it)."""
    base = _session_base(tmp_path_factory)

    def make(layout: str = "mid2026", n_samples: int = 40, seed: int = 1) -> Path:
        dest = base / f"demo-example-{layout}-{n_samples}-{seed}"
        with _locked(base / f"{dest.name}.lock"):
            if not demo.is_example(dest):
                demo.build_example(dest, layout=layout, n_samples=n_samples, seed=seed)
                (base / f"{dest.name}{_MANIFEST}").write_text(json.dumps(_tree_files(dest)))
        return dest

    return make


@dataclass(frozen=True)
class Analysed:
    """A built example and the report the real CLI made of it (``analyze-experiment ROOT``)."""

    root: Path
    """The experiment; its report is in ``root / "analysis"``. Read it, never write it."""
    pristine: Path
    """The example it is a copy of, as built: what the inputs must still equal."""
    exit_code: int
    stdout: str
    """The terminal summary."""
    stderr: str
    json: str
    """stdout of a second run, ``--json --quiet`` on the unchanged experiment: summary.json."""

    @property
    def out(self) -> Path:
        return self.root / "analysis"


@pytest.fixture(scope="session")
def analysed(example, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Analysed]:
    """``analysed(layout, n_samples=40, seed=1)`` -> the example's report, made once per session.

    The first run is the plain command a user types (terminal summary, both report formats, the
    cache); the second asks for ``--json`` and, nothing having changed, prints the summary of the
    report just written (tests/test_cache.py shows that equals a fresh run's)."""
    from click.testing import CliRunner

    from analyze_experiment.cli import analyze

    base = _session_base(tmp_path_factory)

    def make(layout: str = "mid2026", n_samples: int = 40, seed: int = 1) -> Analysed:
        pristine = example(layout, n_samples, seed)
        dest = base / f"analysed-{layout}-{n_samples}-{seed}"
        record = dest / "cli.json"
        with _locked(base / f"{dest.name}.lock"):
            if not record.is_file():
                shutil.rmtree(dest, ignore_errors=True)
                root = dest / "experiment"
                shutil.copytree(pristine, root, symlinks=True)
                first = CliRunner().invoke(analyze, [str(root)], catch_exceptions=False)
                again = CliRunner().invoke(analyze, [str(root), "--json", "--quiet"], catch_exceptions=False)
                data = {"exit_code": first.exit_code, "stdout": first.stdout, "stderr": first.stderr,
                        "json": again.stdout if again.exit_code == 0 else ""}
                tmp = record.with_suffix(".tmp")
                tmp.write_text(json.dumps(data), encoding="utf-8")
                tmp.replace(record)
        data = json.loads(record.read_text(encoding="utf-8"))
        return Analysed(root=dest / "experiment", pristine=pristine, **data)

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
_MANIFEST = ".manifest.json"
"""Beside each built example: its files as built, checked when the session ends."""


def _tree_files(root: Path) -> dict[str, list[int]]:
    return {str(p.relative_to(root)): [p.stat().st_size, p.stat().st_mtime_ns]
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _fixture_files() -> dict[str, list[int]]:
    return _tree_files(_FIXTURES)


def _changed_examples(base: Path) -> list[str]:
    """Files of the session's built examples that a test created, changed or deleted: they are
    shared read-only inputs (a report run on one in place writes analyze-experiment.log beside
    its inputs, and later tests comparing inputs with it then fail depending on test order)."""
    changed = []
    for manifest in base.glob(f"demo-example-*{_MANIFEST}"):
        root = base / manifest.name.removesuffix(_MANIFEST)
        before, after = json.loads(manifest.read_text()), _tree_files(root)
        changed += [f"{root.name}/{k}" for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return changed


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        session.config._fixture_files = _fixture_files()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test created, changed or deleted a file under tests/fixtures or in a
    built example (the tool must treat inputs as read-only; a test that runs it on a shared
    input in place breaks that)."""
    before = getattr(session.config, "_fixture_files", None)
    if before is None:
        return
    after = _fixture_files()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    examples = _changed_examples(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    for what, files in (("tests/fixtures", changed), ("a shared built example (use example_copy)", examples)):
        if files:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if tr is not None:
                tr.write_line(f"{what} was modified by the test run: {', '.join(files[:10])}", red=True)


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
    "test_unread_frames.py", "test_unreadable.py", "test_untrusted.py", "test_validation_e2e.py",
})
_SLOW_TESTS = frozenset({  # single slow tests in otherwise quick files (2-6 s of CPU each)
    "test_discover.py::test_ten_thousand_files_and_the_file_budget",
    "test_fuzz_fast.py::test_corpus_is_deterministic_and_covers_every_kind",
    "test_fuzz_fast.py::test_every_mutant_loads_and_unreadable_files_are_named",
    "test_fuzz_fast.py::test_whole_cli_over_the_fullest_experiment",
    "test_plot_views.py::test_html_only_report_draws_no_png_it_does_not_show",
    "test_plot_views.py::test_no_two_labels_overlap_on_any_demo_figure",
    "test_plot_views.py::test_worker_processes_write_the_same_pngs_as_one_process",
    "test_stats_blocked.py::test_blocked_anova_on_0_1_scores_holds_its_level_under_no_effect",
    "test_stats_robustness.py::test_analyze_never_raises_on_odd_tables",
    "test_story.py::test_the_example_report_tells_its_story_first",
    "test_tables_dtypes.py::test_real_logs_give_integer_epochs_and_the_base_model_is_kept",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in _SLOW_FILES or f"{item.path.name}::{item.originalname}" in _SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
