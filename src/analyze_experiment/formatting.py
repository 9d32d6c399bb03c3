"""Numbers as the report writes them (percent and percentage points for accuracies)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def fmt_value(metric: str, v: float | None) -> str:
    """85.0% for accuracies, 3 significant digits otherwise; "n/a" for unknown."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v * 100:.1f}%" if metric == "accuracy" else f"{v:.3g}"


def fmt_diff(metric: str, d: float | None) -> str:
    """Signed difference: percentage points for accuracies."""
    if d is None or math.isnan(d):
        return "n/a"
    return f"{d * 100:+.1f} pp" if metric == "accuracy" else f"{d:+.3g}"


def fmt_ci(metric: str, lo: float | None, hi: float | None, conf: float, diff: bool = False,
           unadjusted: bool = False) -> str:
    """"95% CI a to b" in the metric's unit (pp for accuracy differences).

    ``unadjusted`` says so ("unadjusted 95% CI") where the interval is not corrected for
    multiplicity but the p-value beside it is (Holm), so a reader does not take an interval
    that excludes 0 for a significant result.
    """
    head = f"{'unadjusted ' if unadjusted else ''}{conf:.0%} CI"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{head} n/a"
    if metric == "accuracy":
        unit = " pp" if diff else "%"
        return f"{head} {lo * 100:.1f} to {hi * 100:.1f}{unit}"
    return f"{head} {lo:.3g} to {hi:.3g}"


def fmt_p(p: float | None) -> str:
    """"= 0.62" (2 significant digits), or "< 0.001"; follows "p" in a sentence."""
    if p is None or math.isnan(p):
        return "= n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


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
    if h is None or math.isnan(h):
        return f"n/a {name}"
    v = h / size
    return f"{v:,.0f} {name}" if abs(v) >= 100 else f"{v:.3g} {name}"


def fmt_usd(x: float | None) -> str:
    """Dollars: cents above $1, 3 significant digits below."""
    if x is None or math.isnan(x):
        return "n/a"
    return f"${x:,.2f}" if x >= 1 else f"${x:.3g}"
