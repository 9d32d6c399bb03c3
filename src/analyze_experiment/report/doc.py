"""The report as a small document model, rendered twice (markdown and HTML).

Building the content once and rendering it twice is what keeps ``report.md`` and
``report.html`` saying the same thing. Text in these blocks is *plain text* (it may come
from logs and design documents and is untrusted): each renderer escapes it for its own
format. Only :class:`Markdown` blocks carry pre-formatted markup, and the builder puts
only its own text there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


@dataclass
class Paragraph:
    """Plain text (escaped by the renderer)."""

    text: str


@dataclass
class Bullets:
    """A bulleted list of plain-text items."""

    items: list[str]


@dataclass
class Code:
    """Preformatted text shown as is (a YAML skeleton); escaped by each renderer."""

    text: str
    language: str = ""
    name: str | None = None
    """The file the same text is written to, when there is one (named under the block)."""


@dataclass
class LinkedBullets:
    """Bulleted plain-text items made of pieces, each optionally linked to where its numbers are.

    A piece is ``(text, target)``: ``target`` is a :attr:`Table.name` or a :attr:`Section.anchor`
    of the same report (None: not linked); each renderer turns it into its own anchor (the
    markdown heading that holds the table, the HTML table's id). The bottom line uses it.
    """

    items: list[list[tuple[str, str | None]]]


@dataclass
class KeyValues:
    """A definition list: label -> plain-text value (the report header)."""

    items: list[tuple[str, str]]


@dataclass
class Table:
    """A table; cells are already formatted strings (plain text)."""

    df: pd.DataFrame
    caption: str | None = None
    name: str | None = None
    """Stable identifier (used as the HTML element id and the CSV name)."""
    links: dict[str, str] = field(default_factory=dict)
    """Column name -> column of ``df`` holding a relative path each cell links to
    (e.g. ``{"log": "log_path"}``); the path column itself is not shown."""


@dataclass
class Figure:
    """A plot: ``name`` is the file stem under ``plots/`` (``plots/<name>.png``/``.svg``)."""

    name: str
    title: str
    caption: str | None = None
    interactive: str | None = None
    """Key of an interactive (plotly) version of the same figure, for the HTML report."""
    element_id: str | None = None
    """Id of the figure's element in report.html when it must be findable by name (the
    per-sample agreement matrix is ``agreement-matrix``); else one is derived from ``name``."""


@dataclass
class Section:
    """A report section; ``level`` 2 = ``##``."""

    title: str
    blocks: list[Paragraph | Bullets | LinkedBullets | Code | KeyValues | Table | Figure | Section] = field(
        default_factory=list)
    level: int = 2
    anchor: str | None = None
    appendix: bool = False
    """Part of the appendix (tables, figures and tests behind the story), after the findings: the
    renderers mark where it starts."""


@dataclass
class ReportDoc:
    """The whole report."""

    title: str
    header: KeyValues
    sections: list[Section]
    footer: str | None = None


class PlotLike(Protocol):
    """What the report needs to know of a rendered plot (``plots.static.PlotInfo`` is one)."""

    name: str
    title: str
    section: str
    caption: str | None
    interactive: str | None
