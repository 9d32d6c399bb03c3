"""report.html's charts are plotly.js JSON built without plotly (report/plots/plotly_json.py).

plotly itself is the oracle here: every chart of the demo's report.html must load into
``plotly.graph_objects.Figure`` with plotly's validation on, the subplot grids must equal what
``make_subplots`` lays out, the reference lines what ``add_vline``/``add_hline`` draw, the JSON
what plotly's own encoder writes, and the page's template plotly's ``plotly_white``. And the
report command must never import plotly (its import and validation were the cost removed).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

from analyze_experiment.report.plots import plotly_json as pj
from plotly_views import decode, validated

_SCRIPT = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.S)


def _payloads(page: str) -> tuple[dict[str, dict], list[dict]]:
    scripts = {k: json.loads(v) for k, v in _SCRIPT.findall(page)}
    templates = scripts.pop("plotly-templates")
    return {k: v for k, v in scripts.items() if isinstance(v, dict) and "data" in v and "layout" in v}, templates


def test_every_chart_of_the_demo_validates_against_plotlys_schema(analysed):
    page = (analysed("mid2026", 200, 0).out / "report.html").read_text(encoding="utf-8")
    charts, templates = _payloads(page)
    assert {"fig-loss-data", "fig-lr-data", "fig-throughput-data", "fig-gpu-data", "agreement-matrix-data"} <= set(
        charts)
    assert {k.split("_", 1)[0] for k in charts} >= {"fig-final", "fig-heatmap", "fig-pareto", "fig-effects"}
    assert len(templates) == 1  # plotly_white, once for the page
    assert json.loads(pj.TEMPLATE_FILE.read_text(encoding="utf-8")) == templates[0]
    types = set()
    for key, chart in charts.items():
        assert "template" not in chart["layout"], key  # never per figure
        fig = validated({"data": chart["data"], "layout": {**chart["layout"], "template": templates[chart["template"]]}})
        assert len(fig.data) == len(chart["data"]) == len(chart["runs"]) > 0, key
        assert fig.layout.title.text, key
        types |= {t.type for t in fig.data}
    assert types == {"scatter", "bar", "heatmap"}
    gpu = validated(decode(charts["fig-gpu-data"]))  # two panels sharing the time axis, one legend entry per run
    assert gpu.layout.xaxis.matches == "x2" and gpu.layout.xaxis.showticklabels is False
    assert sum(bool(t.showlegend) for t in gpu.data) == len(gpu.data) // 2


def test_the_template_asset_is_plotlys_plotly_white():
    """``make vendor-plotly`` refreshes it; this fails while it differs from the installed plotly's."""
    ours = json.loads(pj.TEMPLATE_FILE.read_text(encoding="utf-8"))
    assert ours == json.loads(pio.json.to_json_plotly(pio.templates["plotly_white"]))


def _layout(fig: go.Figure) -> dict:
    d = json.loads(pio.json.to_json_plotly(fig))["layout"]
    d.pop("template", None)
    return d


@pytest.mark.parametrize(("rows", "cols", "kw"), [
    (1, 1, {}),
    (2, 1, {"shared_xaxes": True, "vertical_spacing": 0.08}),
    (3, 1, {"shared_xaxes": True}),
    (1, 2, {"shared_yaxes": True, "subplot_titles": ["epoch=0", "epoch=1"]}),
    (1, 3, {"shared_yaxes": True, "subplot_titles": ["lora_rank", "", "epoch"]}),
    (1, 7, {"shared_yaxes": True, "subplot_titles": [f"v{i}" for i in range(7)]}),
    (2, 3, {"shared_xaxes": True, "shared_yaxes": True, "horizontal_spacing": 0.05}),
    (1, 1, {"subplot_titles": [""]}),
])
def test_subplot_grids_equal_make_subplots(rows, cols, kw):
    ours = pj.subplots(rows, cols, **kw)
    theirs = make_subplots(rows=rows, cols=cols, **kw)
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            ours.add_trace({"type": "scatter", "x": [1, 2], "y": [r, c]}, row=r, col=c)
            theirs.add_trace(go.Scatter(x=[1, 2], y=[r, c]), row=r, col=c)
    ours.add_hline(0.5, {"color": "black", "dash": "dash"}, annotation="ref (0.5)")
    theirs.add_hline(y=0.5, line_dash="dash", line_color="black", annotation_text="ref (0.5)",
                     annotation_position="top left")
    ours.update_axis("y", row=1, col=1, title="accuracy")
    theirs.update_yaxes(title_text="accuracy", row=1, col=1)
    assert json.loads(pj.to_json(ours.layout)) == _layout(theirs)
    assert [(t["xaxis"], t["yaxis"]) for t in ours.data] == [(t.xaxis, t.yaxis) for t in theirs.data]


def test_reference_and_boundary_lines_equal_plotlys():
    ours, theirs = pj.figure(), go.Figure()
    ours.add_vline(0.71, {"color": "black", "dash": "dash"}, annotation="paper (0.71)")
    theirs.add_vline(x=0.71, line_dash="dash", line_color="black", annotation_text="paper (0.71)",
                     annotation_position="top")
    ours.add_vline(120, {"dash": "dot", "color": "#555555", "width": 1})
    theirs.add_vline(x=120, line={"dash": "dot", "color": "#555555", "width": 1})
    ours.update_axis("x", range=[0.2, 1.05])
    theirs.update_xaxes(range=[0.2, 1.05])
    assert json.loads(pj.to_json(ours.layout)) == _layout(theirs)


def test_json_equals_plotlys_encoding():
    """Typed arrays (64-bit integers narrowed), NaN in lists as null, 2-D arrays with a shape,
    strings and object arrays as lists: what plotly's encoder writes for the same traces."""
    steps = pd.Series([1, 2, 300], dtype="int64")
    traces = [
        {"type": "scatter", "x": pj.values(steps), "y": np.array([0.5, np.nan, 2.0]), "name": "a<b",
         "customdata": [0.1, float("nan"), 0.3], "mode": "lines"},
        {"type": "heatmap", "z": np.array([[1.0, np.nan], [0.25, 0.5]]), "x": ["1e-05", "0.0001"], "y": ["4", "16"],
         "text": [["0.585<br>±0.068", ""], ["x", "y"]], "zmin": 0, "zmax": 1},
        {"type": "bar", "x": pj.values(pd.Series([0.2, 0.8])), "y": ["r1", "r2"], "orientation": "h",
         "error_x": {"type": "data", "array": [0.1, 0.0], "visible": True}},
        {"type": "scatter", "x": np.array([70_000, 2**31 + 5], dtype=np.int64), "y": np.array([1, 2], dtype=np.int64)},
    ]
    ours = json.loads(pj.to_json({"data": traces, "layout": {"xaxis": {"range": np.array([0.0, 1.0])}}}))
    theirs = json.loads(pio.json.to_json_plotly(go.Figure({"data": traces, "layout": {"xaxis": {"range": [0.0, 1.0]}}})))
    theirs["layout"].pop("template")
    assert ours == theirs


def test_nullable_columns_become_floats_with_nan():
    v = pj.values(pd.Series([1, None, 3], dtype="Int64"))
    assert v.dtype == np.float64 and np.isnan(v[1]) and v[2] == 3.0
    assert pj.to_json(pj.values(pd.Series(["a", None]))) == '["a",null]'
    assert pj.to_json(pd.Series([1, None, 3], dtype="Int64")) == pj.to_json(np.array([1.0, np.nan, 3.0]))


def test_the_report_command_never_imports_plotly(example_copy, tmp_path):
    """The whole report (both formats, every chart) in a fresh interpreter: plotly stays unloaded."""
    code = ("import json, sys\nfrom analyze_experiment.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    status = e.code\nelse:\n    status = 0\n"
            "print(json.dumps({'status': status, 'plotly': sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('plotly', '_plotly_utils'))}))")
    out = tmp_path / "analysis"
    # a copy: the report writes analyze-experiment.log beside the inputs, and the session's
    # example must stay as built for the tests that compare inputs with it
    done = subprocess.run([sys.executable, "-c", code, str(example_copy("mid2026", 40)), "--no-cache", "-q", "--out",
                           str(out)], capture_output=True, text=True, timeout=600, check=False)
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts == {"status": 0, "plotly": []}, done.stderr[-2000:]
    page = (out / "report.html").read_text(encoding="utf-8")
    charts, _ = _payloads(page)
    assert len(charts) >= 8 and "Plotly.newPlot" in page  # the charts are there, drawn by plotly.js
