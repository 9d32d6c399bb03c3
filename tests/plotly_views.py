"""The report's interactive figures seen through plotly's own graph objects (tests only).

The library builds plotly.js JSON as plain dicts and never imports plotly
(:mod:`analyze_experiment.report.plots.plotly_json`). Building ``plotly.graph_objects.Figure``
from that JSON validates every key and value against plotly's schema — a misspelt key or a
wrong value raises ``ValueError`` — and gives the tests attribute access (``tr.line.color``).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from analyze_experiment.report.plots.interactive import interactive_figures
from analyze_experiment.report.plots.plotly_json import from_typed_array


def decode(obj: Any) -> Any:
    """``obj`` with every base64 typed array (``{"dtype", "bdata"}``) decoded into a numpy array,
    so plotly validates the numbers themselves (lengths, finite values), not an opaque dict."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            return from_typed_array(obj)
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def validated(fig: Any) -> go.Figure:
    """``fig`` (anything with ``to_plotly_json``, or plotly.js's ``{"data", "layout"}`` dict) as a
    plotly figure, with plotly's validation on."""
    d = fig if isinstance(fig, dict) else fig.to_plotly_json()
    return go.Figure(decode({"data": d.get("data", []), "layout": d.get("layout", {})}))


def validated_figures(experiment: Any, analysis: Any) -> dict[str, go.Figure]:
    """:func:`interactive_figures`, each validated by plotly."""
    return {k: validated(f) for k, f in interactive_figures(experiment, analysis).items()}
