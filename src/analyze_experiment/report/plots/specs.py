"""Figures as data, and the driver that draws them in worker processes.

A :class:`FigureSpec` is everything needed to draw one report figure: the prepared data, the
module-level function that draws it and that function's options. Because a spec holds no
closure it can be pickled, so :func:`start_plots` hands the specs to worker processes
(:func:`analyze_experiment.executor.pool`) and the report goes on with its other work while
they draw. Whether a figure has anything to show is decided while planning (``skip``), so
the list of figures the report shows is known before a single one is drawn.

Output is the same whichever process draws a figure: Agg renders deterministically and the
PNG carries no time stamp or software tag.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.output import READ_ONLY_ERRNOS, WRITE_ERRNOS
from analyze_experiment.progress import Progress, silent

WORKERS_ENV = "ANALYZE_EXPERIMENT_PLOT_WORKERS"
"""Environment variable fixing the number of drawing processes (``1``: draw in this process,
the plain single-process render the benchmark compares against)."""

MAX_WORKERS = 4
"""More processes than this cost more in start-up and memory than they save on a report's
dozen figures."""

LATE_PARALLEL_FIGURES = 6
"""Fewest figures left to draw for which processes are started once the figures are planned
(a re-run reusing the others from the cache). Forking the report process then, and each
process's first figure loading the fonts, cost 0.35–0.6 s more CPU at 100 runs than drawing
the 5 figures one changed log redraws there in this process (docs/performance.md, "A re-run
redraws few figures in its own process"); below this the report's own process draws them. An explicit :data:`WORKERS_ENV` is obeyed as it is."""


class NoData(Exception):
    """A figure has nothing to show; the message says why (it goes to Data Quality)."""


@dataclass
class PlotInfo:
    """One written figure, as the report builder needs it."""

    name: str
    """File stem: ``plots/<name>.png`` (and ``.svg`` with ``--svg``)."""
    title: str
    section: str
    """``training`` | ``evaluation`` | ``statistics`` | ``risk``."""
    caption: str | None = None
    interactive: str | None = None
    """Key into :func:`analyze_experiment.report.plots.interactive.interactive_figures`."""
    element_id: str | None = None
    """Id the HTML report gives the figure's container (the agreement matrix: ``agreement-matrix``)."""


@dataclass(frozen=True)
class FigureSpec:
    """One report figure as data: ``builder(data, **options)`` returns a matplotlib Figure.

    ``builder`` must be a module-level function (specs travel to worker processes);
    ``skip`` says why there is nothing to draw when planning already knows it.
    """

    name: str
    title: str
    section: str
    builder: Callable[..., Any] | None
    data: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)
    caption: str | None = None
    interactive: str | None = None
    skip: str | None = None
    element_id: str | None = None

    @property
    def info(self) -> PlotInfo:
        return PlotInfo(self.name, self.title, self.section, self.caption, self.interactive, self.element_id)

    def draw(self) -> Any:
        """The matplotlib Figure (raises :class:`NoData` when there is nothing to show)."""
        if self.skip is not None:
            raise NoData(self.skip)
        if self.builder is None:
            raise NoData("no static version of this figure")
        return self.builder(self.data, **self.options)


def save_figure(fig: Any, plots_dir: Path, name: str, svg: bool = False) -> None:
    """Write ``<name>.png`` (150 dpi), and ``<name>.svg`` when asked, and close the figure.

    The figure is written at its own size, laid out once by constrained layout
    (:func:`lay_out`), and then drawn once per file. Saved the plain way, a figure with a
    layout engine — or with ``bbox_inches="tight"`` — is drawn twice: a measuring pass
    before the real one. Where constrained layout gives up (the axes collapse, e.g. beside a
    legend taller than the figure) the figure is written with the tight bounding box instead,
    which grows the canvas to the drawing: two draws, for that figure only.

    The PNG holds the pixels Agg drew, encoded by :func:`png_bytes` (zlib level 1, one
    filter for every row): Pillow's encoder, which picks a filter row by row, spent a fifth
    of a figure's CPU time on it for files about the same size. SVG is on request
    (``--svg``): the report shows the PNG, and the SVG copies cost about a tenth of a
    report's CPU time on the bundled example (docs/performance.md)."""
    import matplotlib.pyplot as plt

    from analyze_experiment.report.plots.style import DPI

    plots_dir.mkdir(parents=True, exist_ok=True)
    try:
        with measured_once():
            box = {} if lay_out(fig) else {"bbox_inches": "tight"}
            raw = io.BytesIO()
            fig.savefig(raw, format="rgba", dpi=DPI, **box)
        drawn = fig.canvas.renderer  # the renderer that drew those pixels (the tight box's size too)
        width, height = int(drawn.width), int(drawn.height)
        pixels = np.frombuffer(raw.getbuffer(), dtype=np.uint8).reshape(height, width, 4)
        (plots_dir / f"{name}.png").write_bytes(png_bytes(pixels, DPI))
        if svg:
            fig.savefig(plots_dir / f"{name}.svg", metadata={"Date": None}, **box)
    finally:
        plt.close(fig)


def png_bytes(rgba: np.ndarray, dpi: float) -> bytes:
    """A PNG file of an 8-bit RGBA image (height × width × 4) at ``dpi``.

    Every row uses PNG's "Up" filter (the difference from the row above: plots are mostly
    flat colour and vertical edges, so the differences are mostly zero) and the data is
    deflated at level 1. The chunks are those Pillow writes for matplotlib: IHDR, pHYs (the
    resolution, in pixels per metre), IDAT, IEND — no time stamp, no software tag."""
    height, width, _ = rgba.shape
    flat = rgba.reshape(height, width * 4)
    rows = np.empty((height, 1 + width * 4), dtype=np.uint8)
    rows[:, 0] = 2  # filter type "Up"; the first row's "above" is zeros, so it is stored as it is
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # modulo 256, as the filter is defined
    per_metre = int(dpi / 0.0254 + 0.5)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),  # 8-bit RGBA, not interlaced
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
        _chunk(b"IEND", b""),
    ])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


MEASURED_ONCE_MATPLOTLIB = "3.11.2"
"""The matplotlib release :func:`measured_once` was checked on pixel for pixel
(tests/test_figure_saving.py; a test keeps it equal to the version pyproject.toml pins)."""


@contextmanager
def measured_once() -> Iterator[None]:
    """Inside the block, an axis works out its ticks, and a text its layout, once for as long
    as what they depend on is unchanged, rather than every time an extent is asked for.

    Laying out and drawing a figure, matplotlib (3.11, pinned) recomputes an axis's tick
    positions and labels (locator, formatter, a label per tick) for each spine, each shared
    sibling, the title's position and both passes of the constrained layout — about eleven
    times per axis — and lays out every text (lines, font metrics, rotation) each time its
    extent is needed: together a sixth of the figures' CPU time on the bundled example. The
    results depend only on what the keys below hold (ticks: view interval, axis size in
    pixels, scale, locators, formatters, which ticks are shown; text: string, font,
    rotation, alignment, spacing, dpi), so while those are the same the previous result is
    returned: the figure drawn is the one the uncached calls draw, pixel for pixel. These are
    private methods, so only the matplotlib release the pixel-for-pixel tests ran on
    (:data:`MEASURED_ONCE_MATPLOTLIB`, the version pyproject.toml pins) is touched; any other
    is left alone and draws as it always does."""
    import matplotlib
    from matplotlib.axis import Axis
    from matplotlib.text import Text

    ticks, layout = getattr(Axis, "_update_ticks", None), getattr(Text, "_get_layout", None)
    if ticks is None or layout is None or matplotlib.__version__ != MEASURED_ONCE_MATPLOTLIB:
        yield
        return

    def update_ticks(axis: Any) -> list:
        key = (tuple(axis.get_view_interval()), tuple(axis.axes.bbox.size), axis.get_scale(),
               id(axis.major.locator), id(axis.major.formatter), id(axis.minor.locator), id(axis.minor.formatter),
               axis._tick_group_visible(axis._major_tick_kw), axis._tick_group_visible(axis._minor_tick_kw))
        known = axis.__dict__.get("_ticks_once")
        if known is None or known[0] != key:
            known = (key, ticks(axis))
            axis._ticks_once = known
        return list(known[1])

    def get_layout(text: Any, renderer: Any) -> Any:
        if text.get_wrap() or text.get_usetex():  # wrapping depends on the position; TeX is not used
            return layout(text, renderer)
        key = (text.get_text(), hash(text._fontproperties), text.get_rotation(), text.get_rotation_mode(),
               text.get_horizontalalignment(), text.get_verticalalignment(), text._multialignment,
               text._linespacing, text.get_parse_math(), text.get_figure(root=True).dpi, id(renderer))
        known = text.__dict__.get("_layout_once")
        if known is None or known[0] != key:
            known = (key, layout(text, renderer))
            text._layout_once = known
        return known[1]

    Axis._update_ticks, Text._get_layout = update_ticks, get_layout
    try:
        yield
    finally:
        Axis._update_ticks, Text._get_layout = ticks, layout


COLLAPSED = "constrained_layout not applied"
"""Start of matplotlib's warning when constrained layout cannot fit a figure's decorations."""


def lay_out(fig: Any) -> bool:
    """Apply the figure's constrained layout now and detach the engine; False when it could
    not fit the figure (the caller then saves it with the tight bounding box, as before).

    Detaching matters for cost: ``savefig`` on a figure that still has a layout engine draws
    it once without output just to run the engine, then again for the file; laid out here,
    the layout reads text extents only (no lines, no pixels) and the figure is drawn once.
    A figure without a constrained engine (drawn outside :func:`.style.plot_style`) is left
    as it is and saved with the tight box, as before."""
    import matplotlib as mpl
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    engine = fig.get_layout_engine()
    if not isinstance(engine, ConstrainedLayoutEngine):
        return False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.execute(fig)
    fitted = not any(str(w.message).startswith(COLLAPSED) for w in caught)
    with mpl.rc_context({"figure.constrained_layout.use": False, "figure.autolayout": False}):
        # positions stay where the layout put them; when it gave up, where the figure was
        # created, and the tight bounding box grows the canvas around the text
        fig.set_layout_engine(None if fitted else "none")
    return fitted


def draw_and_save(spec: FigureSpec, plots_dir: Path, svg: bool,
                  store: tuple[Cache, str] | None = None) -> tuple[str, str]:
    """Draw one spec and write its files: ``("ok", "")``, ``("nodata", why)``, ``("error", what)``
    or ``("oserror", "errno\tmessage")`` when the disk refused the file (full, read-only).
    ``store``: the cache and the figure's key, to keep the files drawn (:mod:`.figure_cache`).

    Runs in a worker process; never raises, so one odd figure cannot cost the others."""
    with _collector_skips_older_objects():
        return _draw_and_save(spec, plots_dir, svg, store)


@contextmanager
def _collector_skips_older_objects() -> Iterator[None]:
    """Inside the block the garbage collector walks only the objects made in it (the figure's).

    Drawn in the report's own process (one drawing process), a figure's thousands of new
    objects set off full collections that walk everything the report holds — at 100 runs a
    tenth of the figures' CPU time, for no garbage: the figure's cycles are young. Freezing
    what exists beforehand (:func:`gc.freeze`) leaves it out of those walks until the figure
    is saved. A worker forked from a frozen parent (:class:`PlotJob`) has a frozen generation
    already and is left as it is: unfreezing there would hand the parent's objects back to
    the collector, whose walks would copy their pages into the worker."""
    mine = gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def _draw_and_save(spec: FigureSpec, plots_dir: Path, svg: bool,
                   store: tuple[Cache, str] | None) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window (the library may run on a cluster node)
    import matplotlib.pyplot as plt

    from analyze_experiment.report.plots.style import plot_style

    with plot_style():
        try:
            fig = spec.draw()
        except NoData as exc:
            return "nodata", str(exc)
        except Exception as exc:  # a drawing bug on odd data must not stop the report
            plt.close("all")
            return "error", f"{type(exc).__name__}: {exc}"
        try:
            save_figure(fig, plots_dir, spec.name, svg=svg)
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS or exc.errno in READ_ONLY_ERRNOS:
                # the disk, not the figure, failed: the whole report is abandoned (output.py),
                # so the error goes back to the parent rather than becoming a missing figure
                return "oserror", f"{exc.errno}\t{exc.strerror or exc}"
            return "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one odd figure: the report says which figure is missing
            return "error", f"{type(exc).__name__}: {exc}"
    if store is not None:
        from analyze_experiment.report.plots.figure_cache import store as keep

        keep(store[0], spec, store[1], plots_dir, svg)
    return "ok", ""


def plot_workers(n_figures: int) -> int:
    """Drawing processes for ``n_figures``: :data:`WORKERS_ENV` if set, else one per core up to
    :data:`MAX_WORKERS`; 1 means this process."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env.isdigit() and int(env) >= 1:
        return min(int(env), max(1, n_figures))
    return max(1, min(n_figures, os.cpu_count() or 1, MAX_WORKERS))


class PlotJob:
    """Figures being drawn; :meth:`result` waits for them and records what was skipped.

    Started by :func:`start_plots`; the caller does other work meanwhile. ``result`` must be
    called once (it shuts the worker processes down)."""

    def __init__(self, specs: Sequence[FigureSpec], plots_dir: Path, diag: Diagnostics, svg: bool,
                 progress: Progress, workers: int, shown: Collection[str] = (), cache: Cache | None = None,
                 pool: Executor | DrawingProcesses | None = None, min_parallel: int = 2) -> None:
        self.diag = diag
        self.plots_dir = plots_dir
        self.progress = progress
        self.specs = list(specs)
        self._pool = None
        self._own_pool = False
        self._futures: list[Future | tuple[str, str]] = []
        reused, keys = self._reuse(cache, plots_dir, svg, shown)
        drawn = [s for s in self.specs if s.skip is None and s.interactive not in shown and s.name not in reused]
        if pool is not None and drawn:  # started before the statistics (:func:`drawing_pool`)
            self._pool = pool
        elif workers > 1 and len(drawn) >= max(2, min_parallel):
            self._own_pool = True
            from analyze_experiment.executor import LOCAL, pool

            _import_pyplot_before_fork()
            self._ctx = pool(LOCAL, min(workers, len(drawn)))
            self._pool = self._ctx.__enter__()
        batch: list[tuple[int, tuple[Any, ...]]] = []
        # forked workers inherit the tables as frozen: their collector never walks (and so
        # never copies) the parent's pages
        with _collector_skips_older_objects():
            for s in self.specs:
                store = (cache, keys[s.name]) if cache is not None and s.name in keys else None
                if s.skip is not None:
                    self._futures.append(("nodata", s.skip))
                elif s.interactive in shown or s.name in reused:  # the page draws it (no PNG), or it was reused
                    self._futures.append(("ok", ""))
                elif isinstance(self._pool, DrawingProcesses):
                    batch.append((len(self._futures), (s, plots_dir, svg, store)))
                    self._futures.append(("ok", ""))  # replaced below by the batch's handle
                elif self._pool is not None:
                    self._futures.append(self._pool.submit(draw_and_save, s, plots_dir, svg, store))
                else:
                    self._futures.append(_Deferred(s, plots_dir, svg, store))  # type: ignore[arg-type]
            if batch:
                for (i, _), handle in zip(batch, self._pool.draw([job for _, job in batch]), strict=True):  # type: ignore[union-attr]
                    self._futures[i] = handle  # type: ignore[call-overload]

    def _reuse(self, cache: Cache | None, plots_dir: Path, svg: bool, shown: Collection[str]
               ) -> tuple[set[str], dict[str, str]]:
        """Copy the figures whose key the cache holds (:mod:`.figure_cache`); returns the names
        reused and the key of every figure to draw (to store its files once drawn)."""
        if cache is None:
            return set(), {}
        from analyze_experiment.report.plots.figure_cache import figure_key, reuse

        reused: set[str] = set()
        keys: dict[str, str] = {}
        for s in self.specs:
            if s.skip is not None or s.builder is None or s.interactive in shown:
                continue
            key = figure_key(s, svg)
            if key is None:
                continue
            hit, problem = reuse(cache, s, key, plots_dir, svg)
            if problem is not None:
                self.diag.warn(None, f"cached copy of the {s.name} plot was unusable ({problem}): discarded, the "
                               "figure was drawn again", severity="info", stage="cache")
            if hit:
                reused.add(s.name)
            else:
                keys[s.name] = key
        self.diag.act("CACHE", "Figures", result=f"{len(reused)} figures from the cache, {len(keys)} drawn")
        return reused, keys

    def planned(self) -> list[PlotInfo]:
        """The figures :meth:`result` returns when every one is drawn (none fails)."""
        return [s.info for s in self.specs if s.skip is None]

    def result(self) -> list[PlotInfo]:
        """The figures written, in report order."""
        written: list[PlotInfo] = []
        total = len(self.specs)
        try:
            for i, (spec, fut) in enumerate(zip(self.specs, self._futures, strict=True)):
                self.progress("figures", i, total)
                status, message = fut.result() if isinstance(fut, (Future, _Deferred, _Drawn)) else fut
                if status == "oserror":
                    code, text = message.split("\t", 1)
                    raise OSError(int(code), text, str(png_path(spec, self.plots_dir)))
                if status == "nodata":
                    self.diag.warn(None, f"{spec.name} plot skipped: {message}", severity="info", stage="plots")
                elif status == "error":
                    self.diag.warn(None, f"{spec.name} plot skipped: could not draw it ({message})",
                                   severity="warning", stage="plots")
                else:
                    written.append(spec.info)
            self.progress("figures", total, total)
        finally:
            if self._own_pool:
                self._ctx.__exit__(None, None, None)
            self._pool = None
        return written


def _import_pyplot_before_fork() -> None:
    """Import pyplot here, once, when the workers are forked from this process: each worker
    otherwise imports it itself (~0.45 s CPU each). On the bundled example with two workers
    this saves ~0.25 s CPU of ~4.9 (docs/performance.md). Under spawn or forkserver the
    workers start from scratch, so the import here would be pure cost: skipped."""
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=False) == "fork":
        from analyze_experiment.report.plots.lazy import plt

        plt.Figure  # noqa: B018 -- reading an attribute imports pyplot (Agg)


def _ready_to_draw() -> None:
    """A drawing process's start: the imports every figure needs (pyplot, the builders'
    modules), made while the process that started it is still computing the statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    from analyze_experiment.report.plots import samples, scorer_plots, static, validation  # noqa: F401


def _started() -> None:
    """The first task of a :func:`drawing_pool`: submitting it starts the processes."""


class DrawingProcesses:
    """Drawing processes started before the statistics (:func:`drawing_pool`).

    One process is forked first; it imports pyplot and the drawing modules (~0.35 s CPU, on
    an idle core while this process computes the statistics) and only then forks the
    processes that draw, which inherit those imports: they are made once, not once per
    drawing process. Figures go to it as one batch (:meth:`draw`); each result comes back
    through a pipe as soon as its figure is written, so the caller's progress follows the
    drawing figure by figure."""

    def __init__(self, workers: int) -> None:
        from multiprocessing import Pipe

        from analyze_experiment.executor import fork_pool

        self._results, sender = Pipe(duplex=False)
        self._done: dict[int, tuple[str, str]] = {}
        self._batch: Future | None = None
        self._ex = fork_pool(1, _zygote_start, (sender, workers))
        self._ex.submit(_started)  # forks the first process now
        sender.close()  # the first process holds its own copy

    def draw(self, jobs: Sequence[tuple[Any, ...]]) -> list[_Drawn]:
        """Draw ``jobs`` (:func:`draw_and_save`'s arguments); one handle per job, in order."""
        self._batch = self._ex.submit(_zygote_draw, list(jobs))
        return [_Drawn(self, i) for i in range(len(jobs))]

    def wait(self, i: int) -> tuple[str, str]:
        """The result of job ``i`` of the batch, once its figure is written."""
        while i not in self._done:
            if self._results.poll(0.2):
                j, res = self._results.recv()
                self._done[j] = res
            elif self._batch is not None and self._batch.done():
                self._batch.result()  # the drawing process failed: raised here
                while self._results.poll():
                    j, res = self._results.recv()
                    self._done[j] = res
                if i not in self._done:
                    from concurrent.futures.process import BrokenProcessPool

                    raise BrokenProcessPool(f"the drawing processes ended before figure {i + 1} was written")
        return self._done[i]

    def close(self) -> None:
        """Stop the drawing processes (the first one shuts down those it forked)."""
        with suppress(Exception):  # already gone (killed): its own processes end with it
            stop = self._ex.submit(_zygote_stop)
            while not stop.done():  # results nobody waits for (an interrupted report) are
                if self._results.poll(0.05):  # drained, so the first process never blocks sending them
                    self._results.recv()
            stop.result()
        self._ex.shutdown(wait=True)
        self._results.close()


class _Drawn:
    """One figure of a :class:`DrawingProcesses` batch."""

    def __init__(self, owner: DrawingProcesses, i: int) -> None:
        self.owner, self.i = owner, i

    def result(self) -> tuple[str, str]:
        return self.owner.wait(self.i)


_ZYGOTE: dict[str, Any] = {}
"""In the first drawing process: the pipe to the report process and the drawing processes it forked."""


def _zygote_start(sender: Any, workers: int) -> None:
    """The first drawing process's start: import what drawing needs, then fork the drawing
    processes (they inherit the imports) and start them at once."""
    from analyze_experiment.executor import fork_pool

    _ready_to_draw()
    _ZYGOTE["send"] = sender
    _ZYGOTE["pool"] = pool = fork_pool(workers)
    pool.submit(_started)  # under fork, the first task starts every process at once


def _zygote_draw(jobs: list[tuple[Any, ...]]) -> None:
    """Draw ``jobs`` in the forked processes, sending ``(index, result)`` as each is written."""
    from concurrent.futures import as_completed

    futures = {_ZYGOTE["pool"].submit(draw_and_save, *job): i for i, job in enumerate(jobs)}
    for fut in as_completed(futures):
        _ZYGOTE["send"].send((futures[fut], fut.result()))


def _zygote_stop() -> None:
    _ZYGOTE["pool"].shutdown(wait=True)


@contextmanager
def drawing_pool(workers: int | None = None) -> Iterator[Executor | DrawingProcesses | None]:
    """Drawing processes started now, for :func:`start_plots` (``pool=``) to use later; None
    when one process draws (one core, or :data:`WORKERS_ENV` is 1).

    A first report draws every figure, and on a small sweep the drawing is the longest part
    after the statistics. Started before the statistics, the drawing processes import pyplot
    and the drawing modules on the otherwise idle cores while this one reads and computes, so
    the first figure is drawn the moment it is planned. Under the fork start method they are
    :class:`DrawingProcesses` (pyplot imported once for all of them); elsewhere a plain pool
    whose processes each import it. A re-run that reuses most figures from the cache starts
    its processes late instead (:class:`PlotJob`), after importing pyplot once here."""
    import multiprocessing

    n = plot_workers(MAX_WORKERS) if workers is None else workers
    if n <= 1:
        yield None
        return
    if multiprocessing.get_start_method(allow_none=False) == "fork":
        with _collector_skips_older_objects():  # forked processes never walk (so never copy) these pages
            procs = DrawingProcesses(n)
        try:
            yield procs
        finally:
            procs.close()
        return
    from analyze_experiment.executor import LOCAL, pool

    with pool(LOCAL, n, initializer=_ready_to_draw) as ex:
        ex.submit(_started)
        yield ex


def png_path(spec: FigureSpec, plots_dir: Path) -> Path:
    """The PNG a spec is written to (named in a disk error)."""
    return plots_dir / f"{spec.name}.png"


class _Deferred:
    """A figure drawn in this process when its result is asked for (single-process render)."""

    def __init__(self, spec: FigureSpec, plots_dir: Path, svg: bool, store: tuple[Cache, str] | None) -> None:
        self.args = (spec, plots_dir, svg, store)

    def result(self) -> tuple[str, str]:
        return draw_and_save(*self.args)


def start_plots(specs: Sequence[FigureSpec], plots_dir: Path, diag: Diagnostics, *, svg: bool = False,
                progress: Progress = silent, workers: int | None = None, shown: Collection[str] = (),
                cache: Cache | None = None, pool: Executor | DrawingProcesses | None = None) -> PlotJob:
    """Start drawing ``specs`` into ``plots_dir`` (worker processes unless ``workers`` is 1).

    ``shown``: interactive keys the report draws itself (report.html without report.md): those
    figures count as written but get no PNG — only the figures the report shows are drawn.
    ``cache``: figures whose data, options and drawing code are unchanged are copied from it
    instead of drawn, and the drawn ones are stored in it (:mod:`.figure_cache`). ``pool``:
    processes already started by :func:`drawing_pool` (left running: their owner closes them)."""
    n = len([s for s in specs if s.skip is None and s.interactive not in shown])
    automatic = workers is None and not os.environ.get(WORKERS_ENV, "").strip()
    return PlotJob(specs, plots_dir, diag, svg, progress, plot_workers(n) if workers is None else workers, shown,
                   cache, pool, min_parallel=LATE_PARALLEL_FIGURES if automatic else 2)
