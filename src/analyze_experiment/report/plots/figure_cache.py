"""Figures reused from the incremental cache when what they are drawn from has not changed.

Drawing is most of a rebuilt report's CPU time on a large sweep, and a changed evaluation
log touches only the figures of its metric: the training curves, GPU memory and the other
metrics' figures come out the same. A figure is data (:class:`.specs.FigureSpec`), so its
PNG is a function of :func:`figure_key`: the builder, the package's source and version, the
matplotlib and Pillow versions, the style, the DPI, the SVG flag and the spec's data and options. A hit
copies the stored files into the plots folder instead of drawing them.

Entries are those of :class:`analyze_experiment.ingest.cache.Cache` (one per figure name,
checked by digest and key); an entry that cannot be read or copied is discarded with an info
note and the figure is drawn.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.ingest.cache import Cache

KIND = "figure"
"""The cache entries' kind (their sub-folder)."""


@lru_cache(maxsize=1)
def _drawing_digest() -> str:
    """Digest of the whole package's source and version: the drawing functions call helpers
    outside ``report/plots`` (text escaping, tables, the statistics they label), so an edit
    anywhere in the package, or another release, never reuses a PNG drawn by other code."""
    from analyze_experiment import __version__

    package = Path(__file__).resolve().parents[2]
    h = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    """Add a stable serialisation of ``value`` to the hash ``h`` (type-tagged, so two different
    values never feed the same bytes)."""
    if isinstance(value, pd.DataFrame):
        h.update(b"D" + repr((list(map(str, value.columns)), [str(d) for d in value.dtypes], value.shape)).encode())
        _feed_rows(h, value)
    elif isinstance(value, pd.Series):
        h.update(b"S" + repr((str(value.name), str(value.dtype), len(value))).encode())
        _feed_rows(h, value)
    elif isinstance(value, np.ndarray):
        h.update(b"A" + repr((str(value.dtype), value.shape)).encode())
        h.update(value.tobytes() if value.dtype != object else pickle.dumps(value.tolist(), protocol=5))
    elif isinstance(value, dict):
        h.update(b"M%d" % len(value))
        for k in sorted(value, key=repr):
            _feed(h, k)
            _feed(h, value[k])
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        h.update(b"L" + type(value).__name__.encode() + b"%d" % len(value))
        for item in items:
            _feed(h, item)
    elif is_dataclass(value) and not isinstance(value, type):
        h.update(b"C" + type(value).__qualname__.encode())
        for f in fields(value):
            _feed(h, f.name)
            _feed(h, getattr(value, f.name))
    elif value is None or isinstance(value, (str, bytes, bool, int, float, np.generic)):
        h.update(b"V" + type(value).__name__.encode() + repr(value).encode() + b"\0")
    else:
        h.update(b"P" + pickle.dumps(value, protocol=5))


def _feed_rows(h: Any, value: pd.DataFrame | pd.Series) -> None:
    try:
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists): the rows' values instead
        h.update(pickle.dumps(value.index.tolist(), protocol=5))
        h.update(pickle.dumps(value.to_numpy().tolist(), protocol=5))


def figure_key(spec: Any, svg: bool) -> str | None:
    """What a spec's files are a function of; None when its data cannot be serialised (drawn)."""
    import matplotlib
    import PIL

    from analyze_experiment.report.plots.style import DPI, RC

    h = hashlib.sha256()
    builder = spec.builder
    try:
        _feed(h, (f"{builder.__module__}.{builder.__qualname__}", _drawing_digest(), matplotlib.__version__, PIL.__version__,
                  RC, DPI, bool(svg), spec.name))
        _feed(h, spec.data)
        _feed(h, dict(spec.options))
    except Exception:  # an odd value: no key, the figure is drawn as without a cache
        return None
    return h.hexdigest()


def reuse(cache: Cache, spec: Any, key: str, plots_dir: Path, svg: bool) -> tuple[bool, str | None]:
    """Copy the stored files of ``spec`` into ``plots_dir``: ``(True, None)`` on a hit,
    ``(False, None)`` on a miss, ``(False, reason)`` when the entry was unusable (discarded)."""
    before = len(cache.discarded)
    found, value, _ = cache.get_group(KIND, spec.name, [], extra=key)
    discarded = cache.discarded.pop()[1] if len(cache.discarded) > before else None
    if not found:
        return False, discarded
    try:
        png, svg_bytes = value["png"], value.get("svg")
        if not isinstance(png, bytes) or not png.startswith(b"\x89PNG") or (svg and not isinstance(svg_bytes, bytes)):
            raise ValueError("not a PNG")
        plots_dir.mkdir(parents=True, exist_ok=True)
        (plots_dir / f"{spec.name}.png").write_bytes(png)
        if svg:
            (plots_dir / f"{spec.name}.svg").write_bytes(svg_bytes)
    except Exception as exc:  # never trusted over a fresh drawing
        for suffix in (".png", ".svg"):
            (plots_dir / f"{spec.name}{suffix}").unlink(missing_ok=True)
        cache.drop_group(KIND, spec.name)
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, None


def store(cache: Cache, spec: Any, key: str, plots_dir: Path, svg: bool) -> None:
    """Keep the files just drawn for ``spec`` (a file that cannot be read is simply not kept)."""
    try:
        png = (plots_dir / f"{spec.name}.png").read_bytes()
        svg_bytes = (plots_dir / f"{spec.name}.svg").read_bytes() if svg else None
    except OSError:
        return
    cache.put_group(KIND, spec.name, [], {"png": png, "svg": svg_bytes}, extra=key)


def has_figures(cache: Cache) -> bool:
    """Whether ``cache`` holds any figure: a re-run after a change, which reuses most of them."""
    try:
        return any((cache.folder / KIND).iterdir())
    except OSError:
        return False
