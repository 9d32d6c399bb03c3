"""``report.md``: the :class:`ReportDoc` as GitHub-flavoured markdown.

Every string in the document is untrusted plain text (run names, task names and sample
text come from logs). :func:`escape` makes it inert: ``<``, ``>`` and ``&`` become entities
so no HTML survives, and markdown punctuation is backslash-escaped so a run called
``*best*`` is not rendered in italics. Line breaks, other control characters and
Unicode formatting characters (the bidi override U+202E …) are shown as backslash escapes
(:func:`analyze_experiment.textsafe.visible`), so a name can neither split a table row or a
paragraph nor display reversed. Table cells additionally escape ``|``, so a cell can never
break its table.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

import numpy as np
import pandas as pd

from analyze_experiment.report.cells import cell_text
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
from analyze_experiment.textsafe import visible

TOC_MIN_SECTIONS = 4
"""A table of contents is added when the report has at least this many top-level sections."""

_SPECIAL = re.compile(r"([\\`*\[\]{}!~])")
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LINE_START = re.compile(r"^(\s*)(?:(\d+)([.)])(?=\s|$)|(#|>|[-+](?=\s|$)|[-=]+(?=\s*$)))", re.MULTILINE)
_NUMERIC = re.compile(r"^[-+−]?(\d[\d,]*\.?\d*|\.\d+)([eE][-+]?\d+)?(\s.*)?$|^[<>]\s?\d")
_MISSING = "—"


_ENTITY_START = re.compile(r"&(?=[A-Za-z0-9#])")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def escape_inline(text: object) -> str:
    """Escape text that stays inside one line (table cells, list items, headings).

    ``<`` is escaped only where CommonMark could read the start of a tag, comment or autolink
    (a letter, ``/``, ``!`` or ``?`` right after it) and ``&`` only where it could start an
    entity, so "p < 0.001" stays readable in the source while ``<script>`` cannot become
    HTML. ``>`` is only special at a line start (a quote), escaped there.
    """
    s = _TAG_START.sub("&lt;", _ENTITY_START.sub("&amp;", visible(text)))
    s = _SPECIAL.sub(r"\\\1", s)
    return _UNDERSCORE.sub(r"\\_", s)


def escape(text: object) -> str:
    """Plain text -> markdown that renders as exactly that text, with no HTML.

    Underscores inside words stay bare (GFM never emphasises them), so ``rank8_lr1e-5``
    reads cleanly in the source too.

    >>> escape("<script>alert(1)</script> *x* a_b _c_")
    '&lt;script>alert(1)&lt;/script> \\\\*x\\\\* a_b \\\\_c\\\\_'
    """
    return _escape_line_starts(escape_inline(text))


def _escape_line_starts(s: str) -> str:
    """Backslash the punctuation that would open a block (heading, list, quote, rule) at a line start.

    Only ASCII punctuation is escaped (``1\\.``, not ``\\1.``): CommonMark shows a backslash
    before anything else literally.
    """
    def repl(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            return f"{m.group(1)}{m.group(2)}\\{m.group(3)}"
        return f"{m.group(1)}\\{m.group(4)}"

    return _LINE_START.sub(repl, s)


_CELL_SPECIAL = re.compile(r"[\\`*\[\]{}!~_&<|]")
"""Every character :func:`escape_cell` may change in printable ASCII text."""


def escape_cell(text: object) -> str:
    """:func:`escape` for a table cell: pipes escaped, line breaks shown as ``\\n``.

    A cell is inline content, so block syntax at its start (``- x``, ``1. x``) needs no
    escape there; list items and headings add it with :func:`escape_item`.
    """
    s = str(text).strip(" ")
    if s.isascii() and s.isprintable() and _CELL_SPECIAL.search(s) is None:
        return s  # most cells (numbers, names): nothing to escape, and tables have thousands
    return escape_inline(s).replace("|", "\\|")


def escape_item(text: object) -> str:
    """One-line text that starts a list item or heading: a cell, plus line-start escapes."""
    return _escape_line_starts(escape_cell(text))


def _link_target(path: str) -> str | None:
    """A relative link target, or None for anything with a scheme (``javascript:``, ``http:``)."""
    p = str(path).strip()
    if not p or p in ("None", "nan", "—") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", p) or p.startswith("//"):
        return None
    # every character but unreserved ones and "/" percent-encoded: a path with a space, a
    # parenthesis, a line break or a bidi control can neither end the link nor split its row
    return quote(p, safe="/._-~")


def _is_numeric(values: list[str]) -> bool:
    vals = [v.strip() for v in values if v.strip() and v.strip() != _MISSING]
    return bool(vals) and all(_NUMERIC.match(v) for v in vals)


def _width(s: str) -> int:
    """Display width: East Asian wide characters count twice, so columns line up in editors."""
    if s.isascii():
        return len(s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, width: int, right: bool, own: int | None = None) -> str:
    """``s`` padded to ``width`` (``own``: its display width when already known)."""
    fill = " " * (width - (_width(s) if own is None else own))
    return fill + s if right else s + fill


def column_values(col: pd.Series | pd.DataFrame) -> list[object]:
    """The values ``col.iloc[i]`` gives, read in one pass rather than one lookup per cell: a
    NumPy scalar from a NumPy column, a Timestamp from a datetime one, the array's own scalar
    (or missing-value marker) from an extension array. (``df[name]`` of a name two columns
    share is a frame: each row's values, as before.)"""
    if isinstance(col, pd.DataFrame):
        return [col.iloc[i] for i in range(len(col))]
    if isinstance(col.dtype, np.dtype) and col.dtype.kind not in "mM":
        return list(col.to_numpy())
    values = col.array
    if isinstance(col.dtype, pd.CategoricalDtype):  # iterating unboxes the categories: index instead
        return [values[i] for i in range(len(values))]
    return list(values)


def markdown_table(df: pd.DataFrame, links: dict[str, str] | None = None) -> str:
    """A pipe table with padded, aligned columns (numbers right-aligned).

    ``links`` maps a shown column to the column holding each cell's relative link target;
    those path columns are not shown.
    """
    links = links or {}
    hidden = set(links.values()) - set(links)
    cols = [c for c in df.columns if c not in hidden]
    raw = {c: [cell_text(v) for v in df[c]] for c in cols}  # a list shows its items, not ['a', 'b']
    cells: dict[str, list[str]] = {}
    for c in cols:
        out = [escape_cell(v) for v in raw[c]]
        if c in links and links[c] in df.columns:
            targets = [_link_target(p) for p in column_values(df[links[c]])]  # type: ignore[arg-type]
            out = [f"[{text}]({target})" if target and text else text for text, target in zip(out, targets, strict=True)]
        cells[c] = out
    heads = {c: escape_cell(c) for c in cols}
    right = {c: _is_numeric(raw[c]) for c in cols}
    widths = {c: [_width(v) for v in cells[c]] for c in cols}
    width = {c: max([3, _width(heads[c]), *widths[c]]) for c in cols}
    lines = ["| " + " | ".join(_pad(heads[c], width[c], right[c]) for c in cols) + " |",
             "| " + " | ".join(("-" * (width[c] - 1) + ":") if right[c] else "-" * width[c] for c in cols) + " |"]
    for i in range(len(df)):
        lines.append("| " + " | ".join(_pad(cells[c][i], width[c], right[c], widths[c][i]) for c in cols) + " |")
    return "\n".join(lines)


def github_slug(title: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading (lower-case, punctuation dropped, spaces -> ``-``)."""
    base = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def _is_empty(section: Section) -> bool:
    return all(isinstance(b, Section) and _is_empty(b) for b in section.blocks)


APPENDIX_NOTE = "Appendix: the tables, figures and tests behind the findings above."
"""The line that opens the appendix (the first section marked ``appendix``)."""


def anchors(sections: list[Section], slugs: dict[str, int]) -> dict[str, str]:
    """Link target (a table name or a section anchor) -> the heading slug that holds it.

    Walks the sections exactly as :func:`_section` assigns slugs, so a link made before its
    target is rendered (the bottom line's) lands on the same heading.
    """
    out: dict[str, str] = {}

    def walk(section: Section) -> None:
        slug = github_slug(section.title, slugs)
        if section.anchor:
            out.setdefault(section.anchor, slug)
        for b in section.blocks:
            if isinstance(b, Section):
                if not _is_empty(b):
                    walk(b)
            elif isinstance(b, Table) and b.name:
                out.setdefault(b.name, slug)

    for s in sections:
        walk(s)
    return out


def _linked_item(pieces: list[tuple[str, str | None]], targets: dict[str, str]) -> str:
    parts = []
    for text, target in pieces:
        core = text.strip(" ")
        lead, trail = text[: len(text) - len(text.lstrip(" "))], text[len(text.rstrip(" ")):]
        t = escape_cell(core)
        parts.append(lead + (f"[{t}](#{targets[target]})" if target in targets and core else t) + trail)
    return _escape_line_starts("".join(parts))


def _block(block: object, plots_prefix: str, targets: dict[str, str] | None = None) -> str:
    if isinstance(block, Paragraph):
        return escape(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {escape_item(item)}" for item in block.items)
    if isinstance(block, LinkedBullets):
        return "\n".join(f"- {_linked_item(item, targets or {})}" for item in block.items)
    if isinstance(block, KeyValues):
        return "\n".join(f"- **{escape_cell(k)}:** {escape_cell(v)}" for k, v in block.items)
    if isinstance(block, Code):
        # a fence longer than any backtick run inside: untrusted text cannot close it
        runs = [len(m) for m in re.findall(r"`+", block.text)]
        fence = "`" * max(3, max(runs, default=0) + 1)
        body = f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
        return body + (f"\n\n*Also written to {escape_cell(block.name)}.*" if block.name else "")
    if isinstance(block, Table):
        parts = [f"**{escape_cell(block.caption)}**\n"] if block.caption else []
        if not len(block.df):
            return "\n".join([*parts, "_(no rows)_"])
        return "\n".join([*parts, markdown_table(block.df, block.links)])
    if isinstance(block, Figure) and block.markdown is not None:
        return f"*{escape_cell(block.markdown)}*"
    if isinstance(block, Figure):
        target = _link_target(f"{plots_prefix}{block.name}.png") or ""
        alt = escape_cell(block.title)
        out = f"![{alt}]({target})"
        return out + (f"\n\n*{escape_cell(block.caption)}*" if block.caption else "")
    raise TypeError(f"unknown report block {type(block).__name__}")


def _section(section: Section, slugs: dict[str, int], plots_prefix: str,
             targets: dict[str, str] | None = None) -> list[str]:
    level = max(1, min(6, section.level))
    github_slug(section.title, slugs)
    out = [f"{'#' * level} {escape_item(section.title)}"]
    for b in section.blocks:
        if isinstance(b, Section):
            if not _is_empty(b):
                out.extend(_section(b, slugs, plots_prefix, targets))
        elif not (isinstance(b, Figure) and b.markdown == ""):
            out.append(_block(b, plots_prefix, targets))
    return out


def render_markdown(doc: ReportDoc, *, plots_prefix: str = "plots/") -> str:
    """The report as markdown: header, table of contents (long reports), sections, footer.

    Empty sections are left out. Images link to ``plots/<name>.png`` relative to the report.
    """
    sections = [s for s in doc.sections if not _is_empty(s)]
    parts = [f"# {escape_item(doc.title)}", _block(doc.header, plots_prefix)]
    slugs: dict[str, int] = {}
    github_slug(doc.title, slugs)
    if len(sections) >= TOC_MIN_SECTIONS:
        preview = dict(slugs)
        toc = ["**Contents**", ""]
        for s in sections:
            toc.append(f"- [{escape_cell(s.title)}](#{github_slug(s.title, preview)})")
            for sub in s.blocks:
                if isinstance(sub, Section) and not _is_empty(sub):
                    toc.append(f"  - [{escape_cell(sub.title)}](#{github_slug(sub.title, preview)})")
        parts.append("\n".join(toc))
    targets = anchors(sections, dict(slugs))
    opened = False
    for s in sections:
        if s.after_story and not opened:
            parts.extend(["---", f"*{escape_cell(APPENDIX_NOTE)}*"])
            opened = True
        parts.extend(_section(s, slugs, plots_prefix, targets))
    if doc.footer:
        parts.extend(["---", escape(doc.footer)])
    return "\n\n".join(parts).rstrip() + "\n"
