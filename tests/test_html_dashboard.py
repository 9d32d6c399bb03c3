"""report.html as a dashboard, without a browser: rows flagged from the Analysis, human
headers, lists shown as lists, the metric switch on the statistics' primary metric, the
appendix folded, plotly.js once from the vendored partial bundle, and long curves thinned."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analyze_experiment.analysis import Best
from analyze_experiment.report import html as html_mod
from analyze_experiment.report.build import build_doc
from analyze_experiment.report.cells import cell_text, human_header
from analyze_experiment.report.dashboard import annotate, metric_choices
from analyze_experiment.report.doc import Figure, KeyValues, MetricChoice, ReportDoc, Section, Table
from analyze_experiment.report.html import (
    DISPLAY_POINTS,
    _thin,
    bundle_trace_types,
    render_html,
    unpack_plotlyjs,
)
from analyze_experiment.report.plots.interactive import interactive_figures
from analyze_experiment.report.plots.static import PlotInfo
from report_fixtures import CONTROL, METRIC, SCORER, TASK, make_analysis, make_experiment, run_name

FAILED = run_name(8, 1e-5)


class _Rows(HTMLParser):
    """Every table row: its attributes and its cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict[str, str], list[str]]] = []
        self.table = ""
        self.cell: list[str] | None = None
        self.selects: list[dict[str, str]] = []
        self.options: list[tuple[dict[str, str], str]] = []
        self.details: list[dict[str, str]] = []
        self._opt: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.table = a.get("id", "")
        elif tag == "tr":
            self.rows.append((self.table, a, []))
        elif tag == "td":
            self.cell = []
        elif tag == "select":
            self.selects.append(a)
        elif tag == "option":
            self._opt = a
        elif tag == "details":
            self.details.append(a)

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[-1][2].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self._opt is not None:
            self.options.append((self._opt, data.strip()))
            self._opt = None


@pytest.fixture(scope="module")
def sweep():
    exp = make_experiment()
    analysis = make_analysis(exp)
    analysis.failed_runs = pd.DataFrame({"run": [FAILED], "status": ["diverged"]})
    doc = build_doc(exp, analysis, [])
    page = _Rows()
    page.feed(render_html(doc, {}, None))
    return exp, analysis, doc, page


def _table(doc: ReportDoc, name: str) -> Table:
    def walk(blocks):
        for b in blocks:
            if isinstance(b, Table) and b.name == name:
                return b
            if isinstance(b, Section):
                found = walk(b.blocks)
                if found is not None:
                    return found
        return None

    found = walk(doc.sections)
    assert found is not None, name
    return found


def test_rows_carry_flags_from_the_analysis(sweep):
    _exp, analysis, doc, _page = sweep
    ev = _table(doc, "evaluation")
    best = analysis.best[0]
    flagged = {i: f for i, f in enumerate(ev.row_flags) if "best" in f}
    [(i, _flags)] = flagged.items()  # exactly one row: the best candidate, at its epoch
    assert ev.row_runs[i] == best.run and ev.df["epoch"].iloc[i] == "1" == f"{best.epoch:g}"
    failed_rows = [ev.row_runs[i] for i, f in enumerate(ev.row_flags) if "failed" in f]
    assert failed_rows == [FAILED, FAILED]  # its two epochs; the run cell says so too
    assert all(ev.df["run"].iloc[i].startswith(f"{FAILED} (failed: diverged)")
               for i, f in enumerate(ev.row_flags) if "failed" in f)
    assert [ev.row_runs[i] for i, f in enumerate(ev.row_flags) if "baseline" in f] == [CONTROL]
    # the runs table: one best run (the primary metric's), the failed one, the control
    runs = _table(doc, "runs")
    assert {r: f for r, f in zip(runs.row_runs, runs.row_flags, strict=True) if f} == {
        best.run: ("best",), FAILED: ("failed",), CONTROL: ("baseline",)}


def test_comparison_rows_flagged_significant_exactly_where_the_registered_test_says(sweep):
    _exp, analysis, doc, _page = sweep
    comp = _table(doc, "comparisons")
    sig = [bool(s) for s in analysis.comparisons["significant"]]
    assert 0 < sum(sig) < len(sig)  # the fixture has both kinds
    assert ["significant" in f for f in comp.row_flags] == sig


def test_flags_are_rendered_as_row_classes_with_a_label(sweep):
    _exp, analysis, _doc, page = sweep
    ev = [(a, cells) for table, a, cells in page.rows if table == "table-evaluation" and cells]
    best = [(a, cells) for a, cells in ev if "best" in a.get("class", "").split()]
    assert len(best) == 1 and best[0][0]["data-run"] == analysis.best[0].run
    failed = [a for a, _cells in ev if "failed" in a.get("class", "").split()]
    assert len(failed) == 2 and all(a["data-run"] == FAILED for a in failed)
    plain = [a for a, _cells in ev if not a.get("class")]
    assert plain and all("data-run" in a for a in plain)


def test_a_flag_never_comes_from_cell_text():
    """A run *named* like a flag, or a cell saying 'best', flags nothing."""
    exp = make_experiment()
    analysis = make_analysis(exp)
    doc = ReportDoc("t", KeyValues([]), [Section("S", [Table(pd.DataFrame(
        {"run": ["best", run_name(8, 1e-4)], "note": ["best", "failed"]}), name="x")])])
    annotate(doc, exp, analysis)
    t = doc.sections[0].blocks[0]
    assert isinstance(t, Table)
    is_best = analysis.best[0].run == run_name(8, 1e-4)
    assert t.row_flags == ([(), ("best",)] if is_best else [])
    assert t.row_runs == [None, run_name(8, 1e-4)]


def test_headers_read_as_words_and_lists_as_items(sweep):
    assert human_header("p_adjusted") == "adjusted p"
    assert human_header("ci_low") == "CI low"
    assert human_header("lora_rank") == "lora rank"
    assert human_header("final loss") == "final loss"
    assert human_header("diff A−B") == "diff A−B"
    assert cell_text(["a", "b"]) == "a, b"
    assert cell_text(np.array([1, 2])) == "1, 2"
    assert cell_text({"y", "x"}) == "x, y"
    assert cell_text(float("nan")) == "" and cell_text(None) == "" and cell_text(pd.NA) == ""
    doc = ReportDoc("t", KeyValues([]), [Section("S", [Table(pd.DataFrame(
        {"tied_with": [["r1", "r2"]], "p_value": ["0.01"]}), name="x")])])
    out = render_html(doc, {}, None)
    assert "<td>r1, r2</td>" in out and "[&#39;r1" not in out and "['r1" not in out
    from analyze_experiment.report.markdown import markdown_table

    md = markdown_table(pd.DataFrame({"tied_with": [["r1", "r2"]]}))
    assert "r1, r2" in md and "\\['r1" not in md and "['r1" not in md
    assert re.search(r"<th[^>]*>tied with</th>", out) and re.search(r"<th[^>]*>p</th>", out)
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", render_html(sweep[2], {}, None))
    assert heads and not [h for h in heads if "_" in h and " " not in h]


def test_metric_switch_selects_the_statistics_primary_metric():
    exp = make_experiment()
    analysis = make_analysis(exp)
    iv = analysis.intervals
    other = iv.assign(scorer="other")
    analysis.intervals = pd.concat([other, iv], ignore_index=True)  # "other" first: order must not decide
    analysis.metrics = pd.DataFrame({
        "task": [TASK, TASK], "scorer": ["other", SCORER], "metric": [METRIC, METRIC], "primary": [True, True],
        "direction": ["higher", "higher"], "family": [True, True]})
    exp.design.scorers = [SCORER, "other"]  # the design names SCORER first: it is the confirmatory one
    choices = metric_choices(analysis, [SCORER, "other"])
    assert choices == [MetricChoice(TASK, "other", METRIC, False), MetricChoice(TASK, SCORER, METRIC, True)]
    analysis.best = [*analysis.best, Best(TASK, "other", METRIC, run_name(8, 1e-4), 1.0, 0.7, 0.6, 0.8, False, "x")]
    doc = build_doc(exp, analysis, [])
    page = _Rows()
    page.feed(render_html(doc, {}, None))
    [switch] = [s for s in page.selects if "data-switch-task" in s]
    assert switch["data-switch-task"] == TASK
    options = [(a.get("data-scorer"), "selected" in a, text) for a, text in page.options
               if a.get("data-scorer") or a.get("value") == "*"]
    assert options == [("other", False, f"other · {METRIC}"), (SCORER, True, f"{SCORER} · {METRIC} (primary)"),
                       (None, False, "all metrics")]
    tagged = [a for t, a, _c in page.rows if t == "table-evaluation" and "data-scorer" in a]
    assert {a["data-scorer"] for a in tagged} == {SCORER, "other"}
    # the runs table highlights the best on the primary metric only, not the other scorer's
    runs = _table(doc, "runs")
    assert [r for r, f in zip(runs.row_runs, runs.row_flags, strict=True) if "best" in f] == [analysis.best[0].run]


def test_no_switch_when_each_task_has_one_metric(sweep):
    assert not [s for s in sweep[3].selects if "data-switch-task" in s]
    assert [s["data-param"] for s in sweep[3].selects if "data-param" in s] == ["lora_rank", "learning_rate"]


def test_appendix_sections_are_folded(sweep):
    _exp, _analysis, doc, page = sweep
    assert [d["id"] for d in page.details] == ["statistical-summary", "retrospective"][: len(page.details)]
    assert page.details and all("open" not in d for d in page.details)
    assert [s.title for s in doc.sections if s.appendix] == ["Statistical Summary", "Retrospective"]


def test_plotly_js_once_from_the_vendored_partial_bundle():
    exp = make_experiment()
    analysis = make_analysis(exp)
    figures = interactive_figures(exp, analysis)
    infos = [PlotInfo(key, key, "training", None, key) for key in figures]
    out = render_html(build_doc(exp, analysis, infos), figures, None)
    assert out.count('id="plotly-js"') == 1  # embedded once, compressed
    js = unpack_plotlyjs(out)
    assert js == (html_mod.ASSETS / "plotly-cartesian.min.js").read_text(encoding="utf-8")  # unchanged
    assert out.count("Plotly.newPlot") == 1  # one drawing function for every chart
    used = {t.get("type", "scatter") for f in figures.values() for t in f.data}
    assert used and used <= bundle_trace_types()
    assert {"scatter", "bar", "heatmap"} <= bundle_trace_types()
    # plotly's template (its styling) is stored once, not once per figure
    templates = json.loads(out.split('id="plotly-templates">')[1].split("</script>")[0])
    assert len(templates) == 1 and "colorway" in templates[0]["layout"]
    charts = re.findall(r'<script type="application/json" id="fig-[^"]*-data">(.*?)</script>', out, flags=re.S)
    assert len(charts) == len(figures) and not [c for c in charts if '"colorway"' in c]
    assert all(json.loads(c)["template"] == 0 for c in charts)
    import plotly.offline

    assert plotly.offline.get_plotlyjs_version() == "4.1.1"  # refresh the bundle with plotly (make vendor-plotly)
    assert (html_mod.ASSETS / "plotly.js-LICENSE.txt").read_text().startswith("MIT License")


def test_a_trace_type_missing_from_the_bundle_brings_the_full_bundle():
    doc = ReportDoc("t", KeyValues([]), [Section("S", [Figure(
        "polar", "Polar", interactive="polar")])])
    out = render_html(doc, {"polar": go.Figure(go.Scatterpolar(r=[1, 2], theta=[0, 90]))}, None)
    js = unpack_plotlyjs(out)
    assert "plotly.js (cartesian" not in js and "plotly.js v4.1.1" in js


def test_long_curves_are_thinned_keeping_spikes_and_breaks():
    n = 20_000
    x = np.arange(n, dtype=float)
    y = np.exp(-x / 5000)
    y[12_345] = 9.0  # a spike a stride would skip
    y[17_000] = np.nan  # a divergence: the line must still break there
    tx, ty = _thin(x, y)
    assert len(tx) <= DISPLAY_POINTS + DISPLAY_POINTS // 2 and len(tx) < n / 40
    assert np.all(np.diff(tx) > 0)  # in step order
    assert 12_345 in tx and ty[list(tx).index(12_345)] == 9.0
    assert np.isnan(ty).sum() == 1 and tx[np.isnan(ty)][0] == 17_000
    assert tx[0] == 0  # the start kept (the first slice's highest value)
    short_x, _ = _thin(x[:100], y[:100])
    assert len(short_x) == 100


def test_a_hundred_long_runs_fit_in_the_page_budget():
    """100 runs × 4,000 steps of loss (raw and smoothed), lr and throughput: the charts' data
    stay small because each line is thinned to what a screen shows."""
    rng = np.random.default_rng(0)
    steps = np.arange(1, 4001)
    figs = {}
    for key in ("loss", "lr", "throughput"):
        fig = go.Figure()
        for r in range(100):
            fig.add_trace(go.Scatter(x=steps, y=rng.random(len(steps)), mode="lines", name=f"run{r}"))
            if key == "loss":
                fig.add_trace(go.Scatter(x=steps, y=rng.random(len(steps)), mode="lines", name=f"run{r}"))
        figs[key] = fig
    fig_blocks = [Figure(k, k, interactive=k) for k in figs]
    out = render_html(ReportDoc("t", KeyValues([]), [Section("S", fig_blocks)]), figs, None)
    raw = sum(len(t.x) * 16 for f in figs.values() for t in f.data)
    assert raw > 25_000_000
    assert len(out.encode()) < 1_600_000  # the packed bundle (0.66 MB) and 20,000 points per chart
    loss = json.loads(out.split('id="fig-loss-data">')[1].split("</script>")[0])
    assert len(loss["data"]) == 200 and all(t["x"]["dtype"] == "i4" and t["y"]["dtype"] == "f4" for t in loss["data"])
