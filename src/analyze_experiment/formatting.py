"""Numbers as the report writes them, in sentences and in tables alike (one formatter).

Two families of helpers share one set of conventions: the sentence helpers (``fmt_*``, percent
and percentage points for accuracies, "95% CI a to b") and the table helpers (:func:`num`,
:func:`ci`, :func:`pvalue`, …). A value reads the same in both:

- a missing value is always ``—`` (:data:`MISSING`);
- a p-value is :func:`pvalue` everywhere: ``< 0.001`` or two significant digits (``0.034``,
  ``0.62``, ``1``); a sentence adds only the label — ``p = 0.034``, ``p < 0.001``
  (:func:`fmt_p` returns the part after the ``p``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pandas import NA

MISSING = "—"
"""How every unknown value reads, in a sentence or a table cell."""


def fmt_value(metric: str, v: float | None) -> str:
    """85.0% for accuracies, 3 significant digits otherwise; ``—`` for unknown."""
    if is_missing(v):
        return MISSING
    return f"{v * 100:.1f}%" if metric == "accuracy" else f"{v:.3g}"


def fmt_diff(metric: str, d: float | None) -> str:
    """Signed difference: percentage points for accuracies."""
    if is_missing(d):
        return MISSING
    return f"{d * 100:+.1f} pp" if metric == "accuracy" else f"{d:+.3g}"


def fmt_ci(metric: str, lo: float | None, hi: float | None, conf: float, diff: bool = False,
           unadjusted: bool = False) -> str:
    """"95% CI a to b" in the metric's unit (pp for accuracy differences).

    ``unadjusted`` says so ("unadjusted 95% CI") where the interval is not corrected for
    multiplicity but the p-value beside it is (Holm), so a reader does not take an interval
    that excludes 0 for a significant result.
    """
    head = f"{'unadjusted ' if unadjusted else ''}{conf:.0%} CI"
    if is_missing(lo) or is_missing(hi):
        return f"{head} {MISSING}"
    if metric == "accuracy":
        unit = " pp" if diff else "%"
        return f"{head} {lo * 100:.1f} to {hi * 100:.1f}{unit}"
    return f"{head} {lo:.3g} to {hi:.3g}"


def fmt_p(p: float | None) -> str:
    """What follows "p" in a sentence: ``= 0.62``, ``< 0.001`` — :func:`pvalue` with its sign.

    >>> fmt_p(0.0342), fmt_p(0.0004), fmt_p(None)
    ('= 0.034', '< 0.001', '= —')
    """
    text = pvalue(p)
    return text if text.startswith("<") else f"= {text}"


def fmt_level(v: Any) -> str:
    """A variable level as written in a sweep: 16 (not 16.0), 1e-05, "cosine"."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e9 else f"{f:g}"
    return str(v)


GPU_UNITS = (("GPU-hours", 1.0), ("GPU-minutes", 1 / 60), ("GPU-seconds", 1 / 3600))
"""Units for GPU time, largest first, with their size in hours."""


def gpu_unit(hours: list[float | None] | float | None) -> tuple[str, float]:
    """The unit for a set of GPU times that belong together (one sentence, one list).

    Chosen by the largest known value: hours from 1 GPU-hour, minutes from 1 GPU-minute,
    else seconds, so a short CPU demo reads "1.5 GPU-seconds", not "0.000417 GPU-hours",
    and every value of one sentence is in the same unit.
    """
    vals = hours if isinstance(hours, list) else [hours]
    known = [abs(float(h)) for h in vals if h is not None and not math.isnan(float(h))]
    top = max(known, default=1.0)
    for name, size in GPU_UNITS:
        if top >= size:
            return name, size
    return GPU_UNITS[-1]


def fmt_hours(h: float | None, unit: tuple[str, float] | None = None) -> str:
    """GPU time to 3 significant digits (whole numbers from 100) in ``unit`` (default: chosen
    from ``h`` itself)."""
    name, size = unit or gpu_unit(h)
    if is_missing(h):
        return MISSING
    v = h / size
    return f"{v:,.0f} {name}" if abs(v) >= 100 else f"{v:.3g} {name}"


def fmt_usd(x: float | None) -> str:
    """Dollars: cents above $1, 3 significant digits below."""
    if is_missing(x):
        return MISSING
    return f"${x:,.2f}" if x >= 1 else f"${x:.3g}"


# --- table cells ---------------------------------------------------------------------------------


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
        return MISSING
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
        return MISSING
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def ci(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``0.853 [0.801, 0.894]``; the interval is omitted when unknown."""
    if is_missing(value):
        return MISSING
    if is_missing(low) or is_missing(high):
        return num(value, digits)
    return f"{num(value, digits)} [{num(low, digits)}, {num(high, digits)}]"


def pp(x: Any, digits: int = 1) -> str:
    """A difference of proportions in percentage points: ``+4.2 pp``."""
    if is_missing(x):
        return MISSING
    return f"{float(x) * 100:+.{digits}f} pp"


def pvalue(p: Any) -> str:
    """A p-value without its label: ``< 0.001``, else two significant digits (``0.034``, ``0.62``,
    ``1``); ``—`` when unknown. Tables show it as is; sentences put ``p`` before it (:func:`fmt_p`).

    >>> pvalue(0.0004), pvalue(0.0342), pvalue(0.62), pvalue(1.0), pvalue(float("nan"))
    ('< 0.001', '0.034', '0.62', '1', '—')
    """
    if is_missing(p):
        return MISSING
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2g}"


def seconds(s: Any) -> str:
    """Duration as ``1h 02m``, ``3m 20s`` or ``12.3 s``."""
    if is_missing(s):
        return MISSING
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
        return MISSING
    return str(int(e))


def value(x: Any) -> str:
    """A parameter value as the design wrote it (1e-05 stays scientific)."""
    if is_missing(x):
        return MISSING
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


MAX_LISTED_LEVELS = 8
"""Most levels of a variable the report lists one by one; a 250-level learning-rate sweep
otherwise fills the report's opening lines with numbers."""


def levels(values: Any, max_listed: int = MAX_LISTED_LEVELS) -> str:
    """A variable's levels as the report's header lists them: each one up to ``max_listed``,
    else how many and the smallest and largest (``250 values from 1e-05 to 0.003``; the first
    and last as written when they are not all numbers).

    >>> levels([1, 2])
    '1, 2'
    >>> levels([1e-5 * 1.5**i for i in range(10)][::-1])
    '10 values from 1e-05 to 0.000384434'
    """
    vals = list(values)
    if len(vals) <= max_listed:
        return ", ".join(value(v) for v in vals)
    try:
        lo, hi = min(vals, key=float), max(vals, key=float)
    except (TypeError, ValueError):
        lo, hi = vals[0], vals[-1]
    return f"{len(vals)} values from {value(lo)} to {value(hi)}"
