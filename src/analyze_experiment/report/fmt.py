"""Number formatting shared by the report tables (one place decides how a value reads)."""

from __future__ import annotations

import math
from typing import Any

from pandas import NA


def is_missing(x: Any) -> bool:
    """True for None/NaN/NA (anything the report shows as an em dash)."""
    if x is None or x is NA:
        return True
    try:
        return bool(x != x) or (isinstance(x, float) and math.isinf(x))
    except (TypeError, ValueError):
        return False


def num(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``—`` when unknown.

    >>> num(0.123456), num(None), num(12)
    ('0.123', '—', '12')
    """
    if is_missing(x):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int) or (isinstance(x, float) and float(x).is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if f != 0 and abs(f) < 10 ** (-digits):
        return f"{f:.2e}"
    return f"{f:.{digits}f}"


def integer(x: Any) -> str:
    """An integer count; ``—`` when unknown."""
    if is_missing(x):
        return "—"
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def ci(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``0.853 [0.801, 0.894]``; the interval is omitted when unknown."""
    if is_missing(value):
        return "—"
    if is_missing(low) or is_missing(high):
        return num(value, digits)
    return f"{num(value, digits)} [{num(low, digits)}, {num(high, digits)}]"


def pp(x: Any, digits: int = 1) -> str:
    """A difference of proportions in percentage points: ``+4.2 pp``."""
    if is_missing(x):
        return "—"
    return f"{float(x) * 100:+.{digits}f} pp"


def pvalue(p: Any) -> str:
    """``p < 0.001`` style formatting without the ``p``: ``<0.001``, ``0.034``, ``0.62``."""
    if is_missing(p):
        return "—"
    p = float(p)
    if p < 0.001:
        return "<0.001"
    if p < 0.01:
        return f"{p:.3f}"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.3f}"


def seconds(s: Any) -> str:
    """Duration as ``1h 02m``, ``3m 20s`` or ``12.3 s``."""
    if is_missing(s):
        return "—"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def epoch(e: Any) -> str:
    """0-based checkpoint epoch, or ``base`` for a model that was not trained here."""
    if is_missing(e):
        return "—"
    return str(int(e))


def value(x: Any) -> str:
    """A parameter value as the design wrote it (1e-05 stays scientific)."""
    if is_missing(x):
        return "—"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)
