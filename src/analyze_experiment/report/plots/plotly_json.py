"""Plotly figure JSON as plain dicts and lists, built without importing plotly.

Why not ``plotly.graph_objects``: report.html only needs the JSON that plotly.js draws, and the
graph objects validate every property on every assignment (deep copies, the 7 KB template
re-initialised for each of the dozens of figure and layout objects a report makes). On the
demo that was more CPU than everything else report.html does, plus the import of plotly
itself. Here a trace is a dict with a ``"type"``, a figure is :class:`PlotlyFigure`, and
:func:`subplots` lays out axes exactly as ``plotly.subplots.make_subplots`` does (domains,
shared axes through ``matches``, subplot titles as annotations), so the page looks the same.

What keeps the keys right without the validation: ``tests/test_plotly_json.py`` builds
``plotly.graph_objects.Figure`` from every figure of the demo with plotly's validation on, so
a misspelt key or a wrong value fails there rather than silently in the browser.

The template (``plotly_white``) is not part of any figure: report.html stores it once for the
whole page (:data:`TEMPLATE_FILE`, a copy of plotly's own, checked against it by the tests).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

Trace = dict[str, Any]
"""One plotly.js trace: ``{"type": "scatter", "x": …, "y": …, …}``."""

TEMPLATE_FILE = Path(__file__).resolve().parent.parent / "assets" / "plotly_white.json"
"""plotly's ``plotly_white`` template as JSON (``make vendor-plotly`` refreshes it)."""

FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 12}
"""The report's chart font, the static PNGs' family first."""


class FigureLike(Protocol):
    """Anything report.html can draw: this module's figures, or a ``plotly.graph_objects.Figure``
    a caller built itself (both give plotly.js's ``{"data", "layout"}``)."""

    def to_plotly_json(self) -> dict[str, Any]: ...


@dataclass
class PlotlyFigure:
    """Traces and a layout; ``grid`` is (rows, cols) when made by :func:`subplots`, else None
    (one plot, whose axes are plotly's default ``xaxis``/``yaxis``)."""

    data: list[Trace] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    grid: tuple[int, int] | None = None

    def to_plotly_json(self) -> dict[str, Any]:
        """The figure as plotly.js takes it (the same shape as ``go.Figure.to_plotly_json``)."""
        return {"data": self.data, "layout": self.layout}

    def _cell(self, row: int | None, col: int | None) -> int:
        """Subplot number (1-based, row-major from the top left, as make_subplots numbers them)."""
        if self.grid is None or row is None or col is None:
            return 1
        rows, cols = self.grid
        if not (1 <= row <= rows and 1 <= col <= cols):
            raise ValueError(f"no subplot at row {row}, col {col} of a {rows} x {cols} grid")
        return (row - 1) * cols + col

    def add_trace(self, trace: Trace, row: int | None = None, col: int | None = None) -> Trace:
        """Append ``trace``; in a subplot grid, on the axes of (row, col)."""
        if self.grid is not None:
            k = self._cell(row or 1, col or 1)
            trace = {**trace, "xaxis": _ref("x", k), "yaxis": _ref("y", k)}
        self.data.append(trace)
        return trace

    def axis(self, letter: str, row: int | None = None, col: int | None = None) -> dict[str, Any]:
        """The layout dict of an axis (``letter`` "x" or "y"), created when missing."""
        return self.layout.setdefault(_axis_key(letter, self._cell(row, col)), {})

    def update_axis(self, letter: str, row: int | None = None, col: int | None = None, *,
                    title: str | None = None, **props: Any) -> None:
        """Set properties of one axis; ``title`` becomes ``{"text": title}``."""
        ax = self.axis(letter, row, col)
        if title is not None:
            ax["title"] = {"text": title}
        ax.update(props)

    def _cells(self) -> list[int]:
        return [1] if self.grid is None else list(range(1, self.grid[0] * self.grid[1] + 1))

    def add_vline(self, x: float, line: dict[str, Any], annotation: str | None = None) -> None:
        """A vertical line across every subplot (what ``go.Figure.add_vline`` makes), its
        optional label centred above its top end."""
        for k in self._cells():
            xr, yr = _ref("x", k), _ref("y", k)
            self._append("shapes", {"type": "line", "x0": x, "x1": x, "xref": xr, "y0": 0, "y1": 1,
                                    "yref": f"{yr} domain", "line": line})
            if annotation is not None:
                self._append("annotations", {"text": annotation, "showarrow": False, "x": x, "xref": xr,
                                             "xanchor": "center", "y": 1, "yref": f"{yr} domain",
                                             "yanchor": "bottom"})

    def add_hline(self, y: float, line: dict[str, Any], annotation: str | None = None) -> None:
        """A horizontal line across every subplot (``go.Figure.add_hline``), its optional label
        above its left end."""
        for k in self._cells():
            xr, yr = _ref("x", k), _ref("y", k)
            self._append("shapes", {"type": "line", "x0": 0, "x1": 1, "xref": f"{xr} domain", "y0": y, "y1": y,
                                    "yref": yr, "line": line})
            if annotation is not None:
                self._append("annotations", {"text": annotation, "showarrow": False, "x": 0,
                                             "xref": f"{xr} domain", "xanchor": "left", "y": y, "yref": yr,
                                             "yanchor": "bottom"})

    def _append(self, key: str, item: dict[str, Any]) -> None:
        self.layout.setdefault(key, []).append(item)


def _ref(letter: str, k: int) -> str:
    return letter if k == 1 else f"{letter}{k}"


def _axis_key(letter: str, k: int) -> str:
    return f"{letter}axis" if k == 1 else f"{letter}axis{k}"


def figure(*traces: Trace) -> PlotlyFigure:
    """A single-plot figure holding ``traces``."""
    return PlotlyFigure(data=list(traces))


def subplots(rows: int = 1, cols: int = 1, *, shared_xaxes: bool = False, shared_yaxes: bool = False,
             vertical_spacing: float | None = None, horizontal_spacing: float | None = None,
             subplot_titles: list[str] | None = None) -> PlotlyFigure:
    """A grid of subplots laid out as ``make_subplots`` does with the same arguments.

    Each cell's axes span an equal share of the figure less the spacing; shared x axes match
    the bottom row's (only that row shows tick labels), shared y axes the first column's (only
    it shows tick labels); non-empty titles sit centred above their cell in 16 px.
    """
    hs = 0.2 / cols if horizontal_spacing is None else horizontal_spacing
    vs = 0.3 / rows if vertical_spacing is None else vertical_spacing
    width = (1.0 - hs * (cols - 1)) / cols
    height = (1.0 - vs * (rows - 1)) / rows
    fig = PlotlyFigure(grid=(rows, cols))
    domains: list[tuple[list[float], list[float]]] = []
    for r in range(rows):  # r = 0 is the top row
        for c in range(cols):
            k = r * cols + c + 1
            x0 = sum([width] * c) + c * hs  # summed, not multiplied: make_subplots' exact floats
            y0 = sum([height] * (rows - 1 - r)) + (rows - 1 - r) * vs
            xd, yd = [x0, x0 + width], [_clamp(y0), _clamp(y0 + height)]
            fig.layout[_axis_key("x", k)] = {"anchor": _ref("y", k), "domain": xd}
            fig.layout[_axis_key("y", k)] = {"anchor": _ref("x", k), "domain": yd}
            domains.append((xd, yd))
    if shared_xaxes:
        for c in range(cols):
            first = _ref("x", (rows - 1) * cols + c + 1)  # the bottom row's axis
            for r in range(rows - 2, -1, -1):
                fig.layout[_axis_key("x", r * cols + c + 1)].update(matches=first, showticklabels=False)
    if shared_yaxes:
        for r in range(rows):
            first = _ref("y", r * cols + 1)
            for c in range(1, cols):
                fig.layout[_axis_key("y", r * cols + c + 1)].update(matches=first, showticklabels=False)
    for text, (xd, yd) in zip(subplot_titles or [], domains, strict=False):
        if text:
            fig._append("annotations", {"font": {"size": 16}, "showarrow": False, "text": text,
                                        "x": sum(xd) / 2.0, "xanchor": "center", "xref": "paper",
                                        "y": yd[1], "yanchor": "bottom", "yref": "paper"})
    return fig


def _clamp(v: float) -> float:
    """Round a domain end that float arithmetic put just outside [0, 1] (as make_subplots does)."""
    return 0.0 if -0.01 < v < 0.0 else 1.0 if 1.0 < v < 1.01 else v


def title(text: str) -> dict[str, str]:
    """A layout or axis title."""
    return {"text": text}


# --- JSON ----------------------------------------------------------------------------------

_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
          "float32": "f4", "float64": "f8"}
"""numpy dtypes plotly.js reads as base64 typed arrays (``{"dtype", "bdata"}``)."""

_PLAIN_KEYS = frozenset({"range"})
"""Keys whose arrays stay JSON lists (plotly.js expects ``range`` as a list)."""


def typed_array(v: np.ndarray) -> Any:
    """A numeric array as plotly.js's base64 typed array (a third of the JSON text per number),
    64-bit integers narrowed to the smallest type that holds them, as plotly.py does; other
    arrays as lists (non-finite floats of a list become null)."""
    if v.dtype == np.int64 and v.size:
        lo, hi = int(v.min()), int(v.max())
        for t in (np.int8, np.int16, np.int32):
            info = np.iinfo(t)
            if info.min <= lo and hi <= info.max:
                v = v.astype(t)
                break
    code = _TYPED.get(str(v.dtype))
    if code is None or v.size == 0:
        return _plain(v.tolist())
    out: dict[str, Any] = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        out["shape"] = ", ".join(str(n) for n in v.shape)
    return out


def from_typed_array(v: Any) -> Any:
    """The numpy array a base64 typed array spec holds (``plotly.graph_objects`` figures give
    their arrays in that form), anything else unchanged."""
    if not (isinstance(v, dict) and "bdata" in v and "dtype" in v):
        return v
    codes = {c: t for t, c in _TYPED.items()}
    arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=codes[v["dtype"]])
    return arr.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else arr


def values(v: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """A column as a numpy array, as a trace holds it: nullable numbers become floats with NaN
    for missing values, anything else an object array."""
    if isinstance(v, (pd.Series, pd.Index)):
        if pd.api.types.is_numeric_dtype(v.dtype) and not pd.api.types.is_bool_dtype(v.dtype):
            arr = v.to_numpy(dtype=float, na_value=np.nan) if v.hasnans else v.to_numpy()
            return arr.astype(np.int64) if arr.dtype.kind in "iu" else arr
        return v.to_numpy(dtype=object)
    return v


def _plain(obj: Any, key: str | None = None) -> Any:
    """``obj`` with numpy and pandas values turned into JSON values (typed arrays where plotly.js
    takes them), NaN and infinities into null (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _plain(v, k) for k, v in obj.items()}
    if isinstance(obj, (pd.Series, pd.Index, np.ndarray)):
        arr = values(obj)
        if key in _PLAIN_KEYS or arr.dtype.kind not in "iuf":
            return [_plain(v) for v in arr.tolist()]
        return typed_array(arr)
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, str):
        return obj
    return str(obj)


def to_json(obj: Any) -> str:
    """Compact JSON of a figure (or any nest of dicts, lists and arrays) for plotly.js."""
    return json.dumps(_plain(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
