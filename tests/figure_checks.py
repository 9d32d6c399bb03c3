"""Checks on drawn matplotlib figures shared by the plot tests."""

from __future__ import annotations


def hidden_ticklabels(fig) -> set[int]:
    """Ids of the tick labels matplotlib keeps but does not draw: their tick lies outside the view.

    Text checks (overlap, inside the canvas) skip them: they are never on the PNG."""
    out = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * (hi - lo) <= tick.get_loc() <= hi + 1e-9 * (hi - lo):
                    out |= {id(tick.label1), id(tick.label2)}
    return out
