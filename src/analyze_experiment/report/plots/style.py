"""Colours and matplotlib settings shared by every figure.

One run keeps one colour in every plot (static and interactive), so a reader who learns
"rank16_lr1e-4 is orange" in the loss curves finds it orange in the bar chart too. The
palette is Okabe-Ito, chosen because it stays distinguishable under the common forms of
colour blindness; beyond eight runs it is extended with evenly spaced HUSL hues.

Nothing here imports matplotlib or seaborn at import time: the report's parent process asks
for the colours of every run while planning the figures, and the drawing happens elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from analyze_experiment.report.plots.husl import husl_hex

OKABE_ITO = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
]
"""Okabe & Ito (2008) colour-blind-safe qualitative palette."""

CONTROL_COLOR = "#7F7F7F"
"""Grey for control/baseline runs: they are reference points, not contenders."""

DPI = 150
"""Resolution of saved PNGs (the spec asks for at least 150 dpi)."""

RC = {
    "figure.dpi": DPI,  # the layout measures text with the renderer the PNG is drawn with (cached metrics)
    "savefig.dpi": DPI,
    "figure.constrained_layout.use": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "font.family": "DejaVu Sans",
    "svg.fonttype": "none",
    "svg.hashsalt": "analyze-experiment",
}
"""rcParams applied while drawing; ``svg.hashsalt`` keeps SVG ids stable between runs.

Constrained layout fits titles, labels, colourbars and legends placed outside the axes into
the figure's own size while it is drawn. The alternative, ``savefig(bbox_inches="tight")``,
grows the canvas to the drawing instead but has to draw every figure twice (once to measure,
once to write): half of the figures' CPU time on the bundled example (docs/performance.md).
A figure constrained layout cannot fit falls back to the tight box (:func:`.specs.save_figure`)."""


def run_colors(runs: list[str], controls: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Map every run to a hex colour, stable for a given run list.

    Colours are assigned in the order of ``runs`` (pass the full run list once and reuse the
    mapping for every figure). Runs in ``controls`` are grey.

    >>> run_colors(["a", "b", "ctl"], controls=["ctl"])
    {'a': '#0072B2', 'b': '#E69F00', 'ctl': '#7F7F7F'}
    """
    ordered = list(dict.fromkeys(str(r) for r in runs))
    contenders = [r for r in ordered if r not in set(controls)]
    if len(contenders) <= len(OKABE_ITO):
        palette = OKABE_ITO[: len(contenders)]
    else:
        palette = OKABE_ITO + husl_hex(len(contenders) - len(OKABE_ITO))  # = seaborn's "husl" palette
    colors = dict(zip(contenders, palette, strict=True))
    for r in ordered:
        colors.setdefault(r, CONTROL_COLOR)
    return colors


MAX_LEVEL_LEGEND = 6
"""Numeric levels up to this many get a legend entry each; more get a colour bar."""


def level_palette(order: Sequence[object], numeric: bool, log: bool) -> tuple[dict[object, str], Any, Any]:
    """Colour per level of a swept variable, and the (colour map, norm) a colour bar needs.

    Numeric levels get a sequential map (viridis without its palest yellow, which vanishes on
    white), log-spaced when ``log`` (learning rates: 1e-5 … 3e-3 spread evenly); other levels
    get the Okabe-Ito colours (the colour map and norm are then None).

    >>> level_palette(["a", "b"], numeric=False, log=False)[0]
    {'a': '#0072B2', 'b': '#E69F00'}
    """
    if not numeric:
        names = list(order)
        palette = OKABE_ITO if len(names) <= len(OKABE_ITO) else husl_hex(len(names))  # = seaborn's "husl"
        return {v: palette[i % len(palette)] for i, v in enumerate(names)}, None, None
    import matplotlib as mpl
    from matplotlib.colors import ListedColormap, LogNorm, Normalize, to_hex

    vals = [float(v) for v in order]  # type: ignore[arg-type]
    lo, hi = min(vals), max(vals)
    norm = LogNorm(lo, hi) if log else Normalize(lo, hi if hi > lo else lo + 1.0)
    cmap = ListedColormap(mpl.colormaps["viridis"](np.linspace(0.0, 0.88, 256)), name="viridis_trunc")
    return {v: to_hex(cmap(norm(float(v)))) for v in order}, cmap, norm  # type: ignore[arg-type]


@contextmanager
def plot_style() -> Iterator[None]:
    """Apply the report's rcParams inside the block and restore the caller's afterwards."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        yield
