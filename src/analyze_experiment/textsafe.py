"""Untrusted names made visible: control and formatting characters shown as escapes.

Run directory names, task and scorer names and sample text come from the disk and from
logs. Two kinds of character in them mislead a reader without any markup: line breaks
(``\\n``, ``\\r``, U+2028, U+0085) split a table row or a terminal line, and Unicode
formatting characters — the bidirectional overrides U+202A–U+202E and isolates
U+2066–U+2069 above all — make ``rank8_evil`` display as something else (issue 12). Every
renderer (markdown, HTML, terminal) passes the text through :func:`visible`, which turns each
such character into a backslash escape a reader can see, and leaves everything else as it is.
"""

from __future__ import annotations

import unicodedata

_KEEP = {"\t"}
_NAMED = {"\n": "\\n", "\r": "\\r"}
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _escape_char(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: object) -> str:
    """``text`` with every control, line-separator and formatting character as an escape.

    >>> visible("rank8\\u202eevil\\nrow")
    'rank8\\\\u202eevil\\\\nrow'
    >>> visible("Llama-3.2-1B_rank8 café")
    'Llama-3.2-1B_rank8 café'
    """
    s = str(text)
    if s.isprintable() and "\u00ad" not in s:  # fast path: nothing to escape
        return s
    return "".join(
        _escape_char(c) if c not in _KEEP and unicodedata.category(c) in _HIDDEN_CATEGORIES else c for c in s
    )
