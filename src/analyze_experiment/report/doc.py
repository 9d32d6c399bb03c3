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
    row_flags: list[tuple[str, ...]] = field(default_factory=list)
    """Per row (empty: none), what makes the row stand out: ``best``, ``failed``,
    ``significant``, ``baseline``. The HTML report highlights flagged rows; set by
    :func:`analyze_experiment.report.dashboard.annotate` from the Analysis, never from cell text."""
    row_runs: list[str | None] = field(default_factory=list)
    """Per row (empty: none), the run the row is about, so the HTML report's parameter filter
    can hide it."""


@dataclass
class Figure:
    """A plot: ``name`` is the file stem under ``plots/`` (``plots/<name>.png``/``.svg``)."""

    name: str
    title: str
    caption: str | None = None
    interactive: str | None = None
    """Key of an interactive (plotly) version of the same figure, for the HTML report."""
    task: str | None = None
    scorer: str | None = None
    metric: str | None = None
    """The task, scorer and metric the figure shows, when it shows one (the HTML report's
    metric switch hides figures of the metrics not chosen)."""
    element_id: str | None = None
    """Id of the figure's element in report.html when it must be findable by name (the
    per-sample agreement matrix is ``agreement-matrix``); else one is derived from ``name``."""
    markdown: str | None = None
    """report.md's line in place of the image (``""``: nothing), for a figure it leaves to
    report.html (a metric other than the primary one: :mod:`analyze_experiment.report.figure_scope`)."""


@dataclass
class Section:
    """A report section; ``level`` 2 = ``##``."""

    title: str
    blocks: list[Paragraph | Bullets | LinkedBullets | Code | KeyValues | Table | Figure | Section] = field(
        default_factory=list)
    level: int = 2
    anchor: str | None = None
    appendix: bool = False
    """Reference material (detailed statistics, file lists): folded away in the HTML report."""
    after_story: bool = False
    """Part of the appendix — the tables, figures and tests behind the story, after Next Steps:
    the renderers mark where it starts (``appendix`` above says what the HTML folds away)."""


@dataclass
class ReportDoc:
    """The whole report."""

    title: str
    header: KeyValues
    sections: list[Section]
    footer: str | None = None
    run_params: dict[str, dict[str, str]] = field(default_factory=dict)
    """Run -> parameter -> formatted level, for the HTML report's filter by parameter."""
    metric_choices: list[MetricChoice] = field(default_factory=list)
    """The task × scorer × metric combinations a reader can switch between (HTML report)."""


@dataclass(frozen=True)
class MetricChoice:
    """One option of the metric switch: ``primary`` marks the metric the claims are made on."""

    task: str
    scorer: str
    metric: str
    primary: bool = False


class PlotLike(Protocol):
    """What the report needs to know of a rendered plot (``plots.static.PlotInfo`` is one)."""

    name: str
    title: str
    section: str
    caption: str | None
    interactive: str | None
