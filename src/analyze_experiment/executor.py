"""Where input files are parsed: local worker processes, or a Dask cluster.

Reading is the only part of a report that grows with the sweep *and* parallelises file by
file (training outputs, evaluation logs). Every reader hands its work to one
:class:`Executor`, so the same code runs in this process, in local worker processes, or on a
Dask cluster — for example dask-jobqueue's ``SLURMCluster`` on the cluster that trained the
runs (docs/performance.md, "Reading on a cluster"):

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=4, memory="16GB", walltime="00:30:00"); cluster.scale(jobs=4)
    # analyze-experiment EXP --executor dask --scheduler <cluster.scheduler_address>

Results are gathered in submission order and merged by the caller exactly as the local path
merges them, so the tables — and the report — are the same byte for byte whichever executor
read the files. A worker sees the files at the same paths as this process (a shared file
system), as on any cluster that ran the sweep.

This is the one process-pool helper: every parallel site — the runs' training output
(``ingest/load``), the evaluation logs (``ingest/evals``), the byte ranges of one large SLURM
file (``sources/torchtune/reader``) — calls :func:`map_ordered` (or :func:`pool` for an
executor of its own; the figures' drawing processes, kept across the report's steps, use
:func:`fork_pool`), and a test keeps any other module from starting processes. The API is
stable for any new site (figures, say)::

    from analyze_experiment.executor import LOCAL, map_ordered
    results = map_ordered(LOCAL, functools.partial(work, shared_arg), items, workers,
                          on_result=tick)   # fn must be picklable: a module-level function

``map_ordered(spec, fn, items, workers, chunksize=1, on_result=None) -> list`` returns
``[fn(x) for x in items]`` in the order of ``items``; a pool that cannot start raises
``OSError``/``BrokenProcessPool`` for the caller to fall back to reading in-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as _CF
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ExecutorError(RuntimeError):
    """The requested executor cannot be used (Dask missing, scheduler unreachable)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor to use: ``local`` (default) or ``dask`` at ``scheduler``."""

    kind: str = "local"
    scheduler: str | None = None
    """Dask scheduler address (``tcp://host:8786``); None: a Dask ``LocalCluster`` is started."""

    @property
    def distributed(self) -> bool:
        return self.kind == "dask"


LOCAL = ExecutorSpec()


def _client(spec: ExecutorSpec) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ExecutorError("--executor dask needs Dask: pip install 'analyze-experiment[dask]'") from None
    try:
        if spec.scheduler:
            return Client(spec.scheduler, timeout="20s", set_as_default=False)
        return Client(processes=True, n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1,
                      dashboard_address=None, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ExecutorError(f"cannot reach the Dask scheduler {spec.scheduler}: {err}") from None


@contextmanager
def pool(spec: ExecutorSpec, workers: int, initializer: Callable[[], None] | None = None) -> Iterator[_CF]:
    """A ``concurrent.futures`` executor: ``workers`` local processes, or a Dask client's executor.

    ``initializer`` runs once in each local process as it starts (imports a worker needs, made
    while the caller is busy elsewhere). For Dask the client is closed on exit (the cluster
    itself is left running: it is the user's).
    """
    if not spec.distributed:
        with ProcessPoolExecutor(max_workers=max(1, workers), initializer=initializer) as ex:
            yield ex
        return
    client = _client(spec)
    try:
        with client.get_executor(pure=False) as ex:
            yield ex
    finally:
        client.close()


def fork_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
              ) -> ProcessPoolExecutor:
    """Local processes forked from this one (they inherit its imports), for a caller that
    keeps them across several steps and shuts them down itself; ``initializer(*initargs)``
    runs in each as it starts. Under fork the processes start at the first task submitted.
    Only where the fork start method exists (callers check it)."""
    import multiprocessing

    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("fork"),
                               initializer=initializer, initargs=initargs)


def map_ordered(spec: ExecutorSpec, fn: Callable[..., T], items: Iterable[Any], workers: int,
                chunksize: int = 1, on_result: Callable[[], None] | None = None) -> list[T]:
    """``[fn(x) for x in items]`` on the executor, results in the order of ``items``;
    ``on_result()`` after each result arrives (progress)."""
    items = list(items)
    out: list[T] = []
    with pool(spec, workers) as ex:
        results = (f.result() for f in [ex.submit(fn, x) for x in items]) if spec.distributed else \
            ex.map(fn, items, chunksize=chunksize)
        for r in results:
            out.append(r)
            if on_result is not None:
                on_result()
    return out
