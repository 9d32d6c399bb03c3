"""One BLAS thread while the statistics run.

Why: the statistics' matrix products are small (the winner's-curse bootstrap multiplies
250 × items by items × candidates, McNemar's discordant counts are candidates × items by
items × candidates). Multithreaded OpenBLAS splits each into blocks and its threads spin while
they wait for one another: on a machine that runs other work, that busy waiting cost 0.3–0.4 s
of CPU in the analysis of a 100-run sweep (a third of it) and bought no wall time. The block
each thread computes is a whole sum over the shared dimension, so one thread gives the same
floats to the last bit (tests/test_stats_fast_paths.py checks a report's statistics both ways).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL, BLIS) to one thread inside the block; restored on exit."""
    from threadpoolctl import threadpool_limits  # a few ms: only the analysis needs it

    with threadpool_limits(limits=1, user_api="blas"):
        yield
