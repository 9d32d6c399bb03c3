"""The command line as the tests call it: in-process through click's runner (a subprocess only
where the process itself is under test), with the checks every CLI test wants."""

from __future__ import annotations

import click
from click.testing import CliRunner, Result

from analyze_experiment.cli import analyze


def invoke(*args: object, command: click.Command = analyze) -> Result:
    """Run ``command`` with ``args`` (paths become text) and fail the test on a traceback or on any
    exception but the command's own exit: a crash must never pass for an exit status."""
    res = CliRunner().invoke(command, [str(a) for a in args])
    assert "Traceback" not in res.output + res.stderr, res.output + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def cli(*args: object) -> tuple[int, str, str]:
    """``analyze-experiment ARGS`` -> (exit status, stdout, stderr), checked as :func:`invoke` does."""
    res = invoke(*args)
    return res.exit_code, res.stdout, res.stderr
