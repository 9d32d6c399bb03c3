"""``python -m bench.single_process ARGS``: the command line with every reader in this process.

The reference path of the sweep benchmark (bench/sweep.py): the report as it was made
before the incremental cache and the worker processes. Process pools are replaced by an
executor that runs each task in the calling process, the evaluation reader's pool size is
set to 1 and the training reader never splits a file; then the same ``main`` runs. Pass
``--no-cache`` for the no-cache part.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any


class InProcess(Executor):
    """A ``concurrent.futures`` executor that runs each task at submission, in this process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as a pool does
            fut.set_exception(exc)
        return fut


def single_process() -> None:
    """Point every process pool of the package at :class:`InProcess`."""
    import analyze_experiment.executor as executor
    import analyze_experiment.ingest.evals as evals
    import analyze_experiment.ingest.load as load
    import analyze_experiment.sources.torchtune as torchtune

    @contextmanager
    def pool(spec: Any, workers: int) -> Iterator[Executor]:
        yield InProcess()

    executor.pool = pool
    load.pool = pool
    evals.DEFAULT_WORKERS = 1
    load.PARALLEL_TRAINING_BYTES = float("inf")
    torchtune.PARALLEL_MIN_BYTES = float("inf")


def main() -> None:
    single_process()
    from analyze_experiment.cli import main as cli

    sys.argv[0] = "analyze-experiment"
    cli()


if __name__ == "__main__":
    main()
