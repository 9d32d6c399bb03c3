"""``report.html``: the same :class:`ReportDoc` as ``report.md``, as one self-contained page.

Jinja2 with autoescaping renders every string of the document as text, so a run called
``<script>alert(1)</script>`` is shown, never run; before escaping, every string passes
through :func:`analyze_experiment.textsafe.visible` (Jinja's ``finalize``), so line breaks and
bidi overrides (U+202E) in a name are shown as escapes, never obeyed. The only markup inserted unescaped is
generated here: plotly's chart divs (their labels are escaped by
:mod:`analyze_experiment.report.plots.interactive`, their JSON by plotly) and plotly.js itself,
embedded inline from the installed package. A Content-Security-Policy forbids any
network request, so a page opened offline or on an air-gapped cluster behaves the same.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from analyze_experiment.report.doc import (
    Bullets,
    Code,
    Figure,
    KeyValues,
    LinkedBullets,
    Paragraph,
    ReportDoc,
    Section,
    Table,
)
from analyze_experiment.report.markdown import _is_numeric, _link_target
from analyze_experiment.textsafe import visible

TEMPLATES = Path(__file__).parent / "templates"

CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")
"""Inline scripts/styles and data: images only: the page cannot reach any network address.
(``unsafe-eval``: plotly.js compiles some functions at run time.)"""

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


@dataclass
class Cell:
    """One table cell: text and an optional relative link."""

    text: str
    href: str | None = None


@dataclass
class TableView:
    """A table ready for the template."""

    id: str
    caption: str | None
    headers: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]


@dataclass
class FigureView:
    """A figure: an interactive chart, or an image (data URI or relative path)."""

    id: str
    title: str
    caption: str | None
    chart: Markup | None = None
    img_src: str | None = None


@dataclass
class SectionView:
    """A section with its blocks as (kind, payload) pairs."""

    id: str
    title: str
    level: int
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    subsections: list[SectionView] = field(default_factory=list)
    appendix: bool = False


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` output: plain strings made visible; generated markup (charts,
    plotly.js) passes untouched."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


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


@lru_cache(maxsize=1)
def _plotlyjs() -> Markup:
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs())


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


def _table_view(t: Table, ids: _Ids) -> TableView:
    hidden = set(t.links.values()) - set(t.links)
    cols = [c for c in t.df.columns if c not in hidden]
    def text(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else str(v)
    rows = []
    for i in range(len(t.df)):
        row = []
        for c in cols:
            href = None
            if c in t.links and t.links[c] in t.df.columns:
                href = _link_target(text(t.df[t.links[c]].iloc[i]))
            row.append(Cell(text(t.df[c].iloc[i]), href))
        rows.append(row)
    numeric = [_is_numeric([text(v) for v in t.df[c]]) for c in cols]
    return TableView(ids(f"table-{t.name or 'table'}"), t.caption, [str(c) for c in cols], numeric, rows)


def _figure_view(f: Figure, figures: dict[str, go.Figure], plots_dir: Path | None, ids: _Ids) -> FigureView:
    fid = ids(f.element_id or f"fig-{f.name}")
    view = FigureView(fid, f.title, f.caption)
    fig = figures.get(f.interactive) if f.interactive else None
    if fig is not None:
        view.chart = Markup(pio.to_html(fig, full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG,
                                        div_id=f"{fid}-chart", default_width="100%"))
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


def _section_view(s: Section, figures: dict[str, go.Figure], plots_dir: Path | None, ids: _Ids,
                  tables: set[str] | None = None) -> SectionView:
    view = SectionView(ids(s.anchor or s.title), s.title, max(2, min(6, s.level)), appendix=s.appendix)
    for b in s.blocks:
        if isinstance(b, Section):
            sub = _section_view(b, figures, plots_dir, ids, tables)
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
            view.blocks.append(("figure", _figure_view(b, figures, plots_dir, ids)))
        else:
            raise TypeError(f"unknown report block {type(b).__name__}")
    return view


def render_html(doc: ReportDoc, figures: dict[str, go.Figure] | None = None, plots_dir: Path | None = None) -> str:
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
    ids("contents")
    tables = _table_names(doc.sections)
    sections = [v for v in (_section_view(s, figures, plots_dir, ids, tables) for s in doc.sections)
                if v.blocks or v.subsections]
    has_chart = any(f.interactive in figures for f in _all_figures(doc.sections) if f.interactive)
    return _env().get_template("report.html.j2").render(
        title=doc.title, header=list(doc.header.items), sections=sections, footer=doc.footer, csp=CSP,
        plotlyjs=_plotlyjs() if has_chart else None,
    )


def _all_figures(sections: list[Section]) -> list[Figure]:
    out: list[Figure] = []
    for s in sections:
        for b in s.blocks:
            if isinstance(b, Figure):
                out.append(b)
            elif isinstance(b, Section):
                out.extend(_all_figures([b]))
    return out
