"""The command line freezes the loaded experiment (the collector's full passes skip it for the
rest of the command) and lets the previous one be collected when ``--watch`` loads again."""

from __future__ import annotations

import gc
import weakref

from analyze_experiment import cli


class _Node:
    """A reference cycle's member (weak-referenceable)."""

    def __init__(self) -> None:
        self.me = self


def test_the_loaded_experiment_is_frozen_and_released_at_the_next_load(example, monkeypatch):
    monkeypatch.setitem(cli._PROCESS, "owned", True)  # as the console command
    root = example("mid2026", 20)
    gc.collect()
    gc.unfreeze()
    try:
        cycle = _Node()
        alive = weakref.ref(cycle)
        exp = cli._load(root, quiet=True)
        assert exp.analysable
        assert gc.get_freeze_count() > 1000  # the experiment's objects (and the cycle) are frozen
        del cycle, exp
        gc.collect()
        assert alive() is not None  # frozen garbage is never collected ...
        cli._load(root, quiet=True)
        gc.collect()
        assert alive() is None  # ... until the next load unfreezes it (--watch)
    finally:
        gc.unfreeze()


def test_the_console_command_freezes_everything_before_the_process_ends():
    import subprocess
    import sys

    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['analyze-experiment', '--version']\n"
            "from analyze_experiment.cli import main\n"
            "main()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "analyze-experiment" in out and "frozen at exit: True" in out


def test_main_called_with_arguments_leaves_the_collector_alone(capsys):
    import pytest

    gc.unfreeze()
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert gc.get_freeze_count() == 0  # a caller's process (a test, a notebook) keeps collecting


def test_loading_from_python_leaves_the_collector_alone(example):
    gc.unfreeze()
    exp = cli._load(example("mid2026", 20), quiet=True)
    assert exp.analysable
    assert gc.get_freeze_count() == 0  # a test or a notebook calling the CLI keeps collecting
