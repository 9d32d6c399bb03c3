"""``report.html``: the same :class:`ReportDoc` as ``report.md``, as one self-contained page.

Jinja2 with autoescaping renders every string of the document as text, so a run called
``<script>alert(1)</script>`` is shown, never run; before escaping, every string passes
through :func:`analyze_experiment.textsafe.visible` (Jinja's ``finalize``), so line breaks and
bidi overrides (U+202E) in a name are shown as escapes, never obeyed. The only markup inserted unescaped is
generated here: the table rows (:func:`_rows_html`, each value escaped as ``{{ … }}`` escapes
it), the charts' JSON (their labels are escaped by
:mod:`analyze_experiment.report.plots.interactive`, the JSON by :func:`_json_for_script`) and plotly.js itself,
embedded inline from the installed package. A Content-Security-Policy forbids any
network request, so a page opened offline or on an air-gapped cluster behaves the same.
"""

from __future__ import annotations

import base64
import gzip
import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from analyze_experiment.report.cells import cell_text, human_header
from analyze_experiment.report.doc import (
    Bullets,
    Code,
    Figure,
    KeyValues,
    LinkedBullets,
    MetricChoice,
    Paragraph,
    ReportDoc,
    Section,
    Table,
)
from analyze_experiment.report.markdown import _is_numeric, _link_target, column_values
from analyze_experiment.report.plots.plotly_json import TEMPLATE_FILE, FigureLike, from_typed_array, to_json
from analyze_experiment.textsafe import visible

TEMPLATES = Path(__file__).parent / "templates"

CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")
"""Inline scripts/styles and data: images only: the page cannot reach any network address.
(``unsafe-eval``: plotly.js compiles some functions at run time.)"""

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


@dataclass
class RowView:
    """One table row: its highlight flags, and what the filters match it on."""

    flags: tuple[str, ...] = ()
    run: str | None = None
    task: str | None = None
    scorer: str | None = None
    metric: str | None = None


@dataclass
class TableView:
    """A table ready for the template: its cells column by column (a column's texts and, for a
    linked column, each cell's relative link), its rows' attributes."""

    id: str
    caption: str | None
    headers: list[str]
    numeric: list[bool]
    columns: list[list[str]]
    links: list[list[str | None] | None]
    rows: list[RowView]

    @property
    def body(self) -> Markup:
        """The ``<tbody>`` rows (:func:`_rows_html`)."""
        return _rows_html(self)


@dataclass
class FigureView:
    """A figure: an interactive chart (its JSON, drawn by the page's script), or an image."""

    id: str
    title: str
    caption: str | None
    chart: Markup | None = None
    img_src: str | None = None
    height: int = 450
    task: str | None = None
    scorer: str | None = None
    metric: str | None = None


@dataclass
class SectionView:
    """A section with its blocks as (kind, payload) pairs."""

    id: str
    title: str
    level: int
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    subsections: list[SectionView] = field(default_factory=list)
    appendix: bool = False
    after_story: bool = False


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` output: plain strings made visible; generated markup (charts,
    plotly.js) passes untouched."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def _out(value: Any) -> str:
    """What ``{{ value }}`` writes in the templates: made visible (:func:`_finalize`), then
    escaped; returned as a plain ``str`` (``"<td>" + Markup(...)`` would escape the tag)."""
    return str(escape(_finalize(value)))


def _rows_html(table: TableView) -> Markup:
    """A table's rows as ``_table.html.j2`` once wrote them with a Jinja loop per row and cell
    (a 100-run report has 20,000 cells; the loop cost more than the rest of the page): the
    same markup, every value through :func:`_out` as ``{{ … }}`` passes it (row flags joined
    first, as the ``join`` filter does with plain strings). Built column by column."""
    columns = []
    for texts, links, numeric in zip(table.columns, table.links, table.numeric, strict=True):
        cls = ' class="num"' if numeric else ""
        if links is None:
            columns.append([f"<td{cls}>{_out(x)}</td>" for x in texts])
        else:
            columns.append([f'<td{cls}><a href="{_out(h)}">{_out(x)}</a></td>' if h else f"<td{cls}>{_out(x)}</td>"
                            for x, h in zip(texts, links, strict=True)])
    first_class = ' class="num"' if table.numeric and table.numeric[0] else ""
    lines = []
    per_row = list(zip(*columns, strict=True)) if columns else [()] * len(table.rows)
    for row, cells in zip(table.rows, per_row, strict=True):
        attrs = ""
        if row.flags:
            attrs += f' class="{_out(" ".join(map(str, row.flags)))}"'
        if row.run is not None:
            attrs += f' data-run="{_out(row.run)}"'
        if row.task is not None:
            attrs += f' data-task="{_out(row.task)}" data-scorer="{_out(row.scorer)}"'
            if row.metric is not None:
                attrs += f' data-metric="{_out(row.metric)}"'
        if row.flags and cells:  # the first cell carries the flags as a label
            cut = 3 + len(first_class)  # after "<td" and its class
            label = f' data-label="{_out(" · ".join(map(str, row.flags)))}"'
            cells = (cells[0][:cut] + label + cells[0][cut:], *cells[1:])
        lines.append(f"<tr{attrs}>{''.join(cells)}</tr>\n")
    return Markup("".join(lines))


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


ASSETS = Path(__file__).parent / "assets"
PLOTLY_BUNDLE = ASSETS / "plotly-cartesian.min.js"
"""plotly.js's *cartesian* partial bundle from the npm registry (``plotly.js-cartesian-dist-min``,
the version the installed plotly package expects; licence beside it): scatter, bar, heatmap,
box, histogram, violin and pie, a third of the full bundle's 4.8 MB. The report draws only
those."""

DISPLAY_POINTS = 300
"""A line with more points than this is thinned for the page: the lowest and highest value of
each of ``DISPLAY_POINTS / 2`` equal slices of it, in step order, so spikes survive (a stride
would skip them). The PNGs and tables keep every step."""

FIGURE_POINTS = 20_000
"""At most this many points per chart: with many runs each line gets fewer (never under
:data:`MIN_LINE_POINTS`), since a hundred overlaid lines cannot show more on a screen anyway."""

MIN_LINE_POINTS = 60


@lru_cache(maxsize=1)
def _bundle() -> tuple[str, frozenset[str]]:
    """The vendored bundle's text and the trace types it registers ("" if the package data
    is missing, e.g. a source tree copied without it)."""
    if not PLOTLY_BUNDLE.is_file():
        return "", frozenset()
    text = PLOTLY_BUNDLE.read_text(encoding="utf-8")
    return text, frozenset(re.findall(r'moduleType:"trace",name:"(\w+)"', text))


def bundle_trace_types() -> frozenset[str]:
    """The trace types the vendored plotly.js bundle can draw."""
    return _bundle()[1]


@lru_cache(maxsize=2)
def _plotlyjs(full: bool = False) -> Markup:
    """plotly.js, gzip-compressed and base64-encoded (1.5 MB -> 0.66 MB): the vendored partial
    bundle, or the full one that ships with plotly when a figure needs a trace type the partial
    one lacks (or the package data is missing), so the page always draws. The page unpacks it
    with the browser's own ``DecompressionStream`` (no network, no library)."""
    text, _types = _bundle()
    if not text or full:
        from plotly.offline import get_plotlyjs

        text = get_plotlyjs()
    packed = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)  # mtime 0: same bytes every run
    return Markup(base64.b64encode(packed).decode("ascii"))


def unpack_plotlyjs(page: str) -> str:
    """The plotly.js a rendered page embeds, as text (for tests and audits)."""
    m = re.search(r'<script type="application/octet-stream" id="plotly-js"[^>]*>([^<]*)</script>', page)
    return gzip.decompress(base64.b64decode(m.group(1))).decode("utf-8") if m else ""


class _Ids:
    """Unique, HTML-safe element ids derived from untrusted names."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, base: str) -> str:
        b = re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-") or "x"
        i, out = 2, b
        while out in self.seen:
            out, i = f"{b}-{i}", i + 1
        self.seen.add(out)
        return out


_NOTE = re.compile(r" \(.*\)$")


def _texts(col: pd.Series | pd.DataFrame) -> list[str]:
    """Each cell's text, from the value ``col.iloc[i]`` holds, read in one pass."""
    return [cell_text(v) for v in column_values(col)]


def _numeric(col: pd.Series | pd.DataFrame, texts: list[str]) -> bool:
    """Whether a column is right-aligned, judged on the texts of the values iterating the
    column gives (Python numbers for a NumPy column): those are ``texts`` unless the column
    holds NumPy floats, whose text may differ from the Python float's (``float32``), or is
    a frame (a shared name), whose iteration gives its column names."""
    if isinstance(col, pd.DataFrame) or (isinstance(col.dtype, np.dtype) and col.dtype.kind in "fc"):
        texts = [cell_text(v) for v in col]
    return _is_numeric(texts)


def _table_view(t: Table, ids: _Ids) -> TableView:
    df = t.df
    hidden = set(t.links.values()) - set(t.links)
    cols = [c for c in df.columns if c not in hidden]
    texts: dict[object, list[str]] = {}

    def column(c: object) -> list[str]:
        if c not in texts:
            texts[c] = _texts(df[c])
        return texts[c]

    shown = [column(c) for c in cols]
    links = [[_link_target(x) for x in column(t.links[c])] if c in t.links and t.links[c] in df.columns else None
             for c in cols]
    n = len(df)
    rows = [RowView(t.row_flags[i] if i < len(t.row_flags) else (), t.row_runs[i] if i < len(t.row_runs) else None)
            for i in range(n)]
    if "task" in df.columns and "scorer" in df.columns:
        tasks, scorers = column("task"), column("scorer")
        metrics = [_NOTE.sub("", m) for m in column("metric")] if "metric" in df.columns else None
        for i, row in enumerate(rows):  # "accuracy (higher is better)" -> accuracy
            row.task, row.scorer = tasks[i], scorers[i]
            if metrics is not None:
                row.metric = metrics[i]
    numeric = [_numeric(df[c], column(c)) for c in cols]
    return TableView(ids(f"table-{t.name or 'table'}"), t.caption, [human_header(c) for c in cols], numeric, shown,
                     links, rows)


def _thin(x: np.ndarray, y: np.ndarray, points: int = DISPLAY_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` points of a line: each slice's lowest and highest value, in order.

    Non-finite values (a diverged run) are kept where they are, so the line still breaks there.
    """
    n = len(y)
    if n <= points:
        return x, y
    k = points // 2  # slices as np.array_split cuts them: the first n % k one longer
    short, extra = divmod(n, k)
    sizes = np.full(k, short)
    sizes[:extra] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    offsets = np.arange(short + (1 if extra else 0))
    inside = offsets < sizes[:, None]
    seg = y[np.minimum(starts[:, None] + offsets, n - 1)]  # one row per slice, padded at the end
    finite = np.isfinite(seg) & inside
    bad = ~np.isfinite(seg) & inside
    good = finite.any(axis=1)
    low = np.argmin(np.where(finite, seg, np.inf), axis=1)  # first lowest, as argmin over the finite ones
    high = np.argmax(np.where(finite, seg, -np.inf), axis=1)
    first_bad = np.argmax(bad, axis=1)
    picks = np.concatenate((starts[good] + low[good], starts[good] + high[good],
                            starts[bad.any(axis=1)] + first_bad[bad.any(axis=1)]))
    keep = np.unique(picks).astype(int)
    return x[keep], y[keep]


def _display_figure(fig: FigureLike) -> dict[str, Any]:
    """``fig``'s JSON (a new dict; the figure is left alone) with long numeric lines thinned
    (:data:`DISPLAY_POINTS`) and stored as 32-bit floats: what a screen can show, at a fraction
    of the page's size."""
    d = fig.to_plotly_json()
    data = [dict(tr) for tr in d.get("data", [])]
    lines = [tr for tr in data if tr.get("type", "scatter") == "scatter"]
    n_lines = sum(1 for tr in lines if tr.get("y") is not None and len(from_typed_array(tr["y"])) > 1)
    per_line = max(MIN_LINE_POINTS, min(DISPLAY_POINTS, FIGURE_POINTS // max(1, n_lines)))
    for tr in lines:
        if "markers" in str(tr.get("mode") or "lines") or tr.get("x") is None or tr.get("y") is None:
            continue
        try:
            x = np.asarray(from_typed_array(tr["x"]), dtype=float)
            y = np.asarray(from_typed_array(tr["y"]), dtype=float)
        except (TypeError, ValueError):
            continue  # categorical axis: nothing to thin
        if len(x) != len(y) or len(y) <= per_line:
            continue
        x, y = _thin(x, y, per_line)
        xs = x.astype(np.int32) if np.all(np.isfinite(x)) and np.all(x == np.round(x)) and np.abs(x).max() < 2**31 \
            else x.astype(np.float32)
        tr.update(x=xs, y=y.astype(np.float32))
    return {"data": data, "layout": dict(d.get("layout") or {})}


def _json_for_script(obj: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left to
    end the element or start a comment."""
    text = to_json(obj)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@lru_cache(maxsize=1)
def _default_template() -> str:
    """``plotly_white``, the template of every chart the report makes (stored once per page)."""
    return TEMPLATE_FILE.read_text(encoding="utf-8").strip()


class _Charts:
    """Each figure's data and layout as JSON; plotly's template (7 KB of styling) stored once
    for all figures that share it: a figure's own ``layout.template``, else ``plotly_white``."""

    def __init__(self, runs: set[str]) -> None:
        self.templates: list[str] = []
        self.runs = runs
        self.types: set[str] = set()

    def payload(self, fig: FigureLike) -> tuple[Markup, int]:
        d = _display_figure(fig)
        self.types |= {str(t.get("type") or "scatter") for t in d.get("data", [])}
        layout = d["layout"]
        template = to_json(layout.pop("template")) if "template" in layout else _default_template()
        if template not in self.templates:
            self.templates.append(template)
        trace_runs = [html.unescape(str(t.get("legendgroup") or t.get("name") or "")) for t in d.get("data", [])]
        body = {"data": d.get("data", []), "layout": layout, "template": self.templates.index(template),
                "runs": [r if r in self.runs else None for r in trace_runs]}
        height = layout.get("height")
        return _json_for_script(body), int(height) if isinstance(height, (int, float)) and height > 0 else 450

    def templates_json(self) -> Markup:
        text = "[" + ",".join(self.templates) + "]"
        return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _figure_view(f: Figure, figures: dict[str, FigureLike], plots_dir: Path | None, ids: _Ids,
                 charts: _Charts) -> FigureView:
    fid = ids(f.element_id or f"fig-{f.name}")
    view = FigureView(fid, f.title, f.caption, task=f.task, scorer=f.scorer, metric=f.metric)
    fig = figures.get(f.interactive) if f.interactive else None
    if fig is not None:
        view.chart, view.height = charts.payload(fig)
        return view
    png = plots_dir / f"{f.name}.png" if plots_dir is not None else None
    if png is not None and png.is_file():
        view.img_src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    else:
        view.img_src = _link_target(f"plots/{f.name}.png")
    return view


def _target_id(target: str, tables: set[str]) -> str:
    """The element id a link target gets (a table's ``table-<name>``, a section's anchor), as
    :class:`_Ids` makes it (first use: no suffix)."""
    base = f"table-{target}" if target in tables else target
    return re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-") or "x"


def _table_names(sections: list[Section]) -> set[str]:
    out: set[str] = set()
    for s in sections:
        for b in s.blocks:
            if isinstance(b, Table) and b.name:
                out.add(b.name)
            elif isinstance(b, Section):
                out |= _table_names([b])
    return out


def _section_view(s: Section, figures: dict[str, FigureLike], plots_dir: Path | None, ids: _Ids,
                  charts: _Charts, tables: set[str] | None = None) -> SectionView:
    view = SectionView(ids(s.anchor or s.title), s.title, max(2, min(6, s.level)), appendix=s.appendix,
                       after_story=s.after_story)
    for b in s.blocks:
        if isinstance(b, Section):
            sub = _section_view(b, figures, plots_dir, ids, charts, tables)
            if sub.blocks or sub.subsections:
                view.blocks.append(("section", sub))
                view.subsections.append(sub)
        elif isinstance(b, Paragraph):
            view.blocks.append(("paragraph", b.text))
        elif isinstance(b, Bullets):
            view.blocks.append(("bullets", list(b.items)))
        elif isinstance(b, LinkedBullets):
            view.blocks.append(("linked", [[(text, None if target is None else _target_id(target, tables or set()))
                                            for text, target in item] for item in b.items]))
        elif isinstance(b, KeyValues):
            view.blocks.append(("keyvalues", list(b.items)))
        elif isinstance(b, Code):
            view.blocks.append(("code", b))
        elif isinstance(b, Table):
            view.blocks.append(("table", _table_view(b, ids)))
        elif isinstance(b, Figure):
            view.blocks.append(("figure", _figure_view(b, figures, plots_dir, ids, charts)))
        else:
            raise TypeError(f"unknown report block {type(b).__name__}")
    return view


def _switches(doc: ReportDoc) -> list[dict[str, Any]]:
    """One metric switch per task that has several task × scorer × metric choices; the
    primary one selected."""
    by_task: dict[str, list[MetricChoice]] = {}
    for c in doc.metric_choices:
        by_task.setdefault(c.task, []).append(c)
    out = []
    for task, choices in by_task.items():
        if len(choices) < 2:
            continue
        chosen = next((c for c in choices if c.primary), choices[0])
        out.append({"task": task, "choices": choices, "selected": choices.index(chosen)})
    return out


def _filters(doc: ReportDoc) -> list[dict[str, Any]]:
    """One select per parameter with at least two levels among the runs."""
    levels: dict[str, list[str]] = {}
    for params in doc.run_params.values():
        for k, v in params.items():
            levels.setdefault(k, [])
            if v not in levels[k]:
                levels[k].append(v)
    return [{"param": k, "label": human_header(k), "id": f"filter-{i}", "levels": sorted(v, key=_level_key)}
            for i, (k, v) in enumerate(levels.items()) if len(v) > 1]


def _level_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def render_html(doc: ReportDoc, figures: dict[str, FigureLike] | None = None, plots_dir: Path | None = None) -> str:
    """The report as one self-contained HTML page.

    Args:
        doc: the report content (plain, untrusted text).
        figures: interactive charts by key; a Figure block whose ``interactive`` key is here
            is drawn with plotly, otherwise its PNG is shown.
        plots_dir: folder holding ``<name>.png``; PNGs found there are embedded as data URIs
            (else the page links ``plots/<name>.png`` relative to itself).

    Returns:
        The HTML text.
    """
    figures = figures or {}
    ids = _Ids()
    for reserved in ("contents", "plotly-templates", "run-params", "run-count"):
        ids(reserved)
    charts = _Charts(set(doc.run_params))
    tables = _table_names(doc.sections)
    sections = [v for v in (_section_view(s, figures, plots_dir, ids, charts, tables) for s in doc.sections)
                if v.blocks or v.subsections]
    return _env().get_template("report.html.j2").render(
        title=doc.title, header=list(doc.header.items), sections=sections, footer=doc.footer, csp=CSP,
        plotlyjs=_plotlyjs(not charts.types <= bundle_trace_types()) if charts.templates else None, templates=charts.templates_json(),
        config=_json_for_script(PLOTLY_CONFIG), switches=_switches(doc), filters=_filters(doc),
        run_params=_json_for_script(doc.run_params), n_runs=len(doc.run_params),
    )
