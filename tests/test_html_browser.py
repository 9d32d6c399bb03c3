"""The HTML report in a real headless Chromium: no network, no console errors, charts draw,
tables sort, hostile run names stay text; the layout holds at 1,280 px (nothing scrolls the
page sideways, every table's last column is visible or reachable by the table's own scroll,
the contents stay in view), flagged rows are highlighted, and the metric switch and the run
filter hide what they should."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from report_fixtures import EVIL, make_analysis, make_experiment, run_name
from screenshots import VIEWPORT, defects, measure

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALLOWED_SCHEMES = ("file:", "data:", "about:", "blob:")
FAILED = run_name(8, 1e-5)


def _require_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian 'chromium' package (make browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Python playwright is not installed (pip install -e '.[dev]')")
    return sync_playwright


@pytest.fixture(scope="module")
def page_report(tmp_path_factory):
    """report.html of the generated sweep (one run named <script>…) opened in Chromium."""
    sync_playwright = _require_browser()
    from analyze_experiment.report.build import build_doc
    from analyze_experiment.report.html import render_html
    from analyze_experiment.report.plots.interactive import interactive_figures
    from analyze_experiment.report.plots.static import render_plots

    out = tmp_path_factory.mktemp("report")
    exp = make_experiment(evil=True)
    analysis = make_analysis(exp)
    analysis.failed_runs = pd.DataFrame({"run": [FAILED], "status": ["diverged"]})
    plots = render_plots(exp, analysis, out / "plots", exp.diagnostics)
    doc = build_doc(exp, analysis, plots, command="analyze-experiment sweep")
    html_path = out / "report.html"
    html_path.write_text(render_html(doc, interactive_figures(exp, analysis), out / "plots"), encoding="utf-8")

    requests, console_errors, page_errors, dialogs = [], [], [], []
    with sync_playwright() as p:
        # A fresh profile per run: no cached state, extensions or sync can make a request for us.
        context = p.chromium.launch_persistent_context(
            str(out / "chromium-profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            service_workers="block", viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(html_path.as_uri(), wait_until="load")
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
            page.wait_for_timeout(300)
            state = {
                "n_charts": page.locator(".js-plotly-plot").count(),
                "svg_marks": page.evaluate(
                    "Array.from(document.querySelectorAll('.js-plotly-plot')).map("
                    "d => d.querySelectorAll('.main-svg path, .main-svg rect, .main-svg image').length)"),
                "title": page.title(),
                "script_tags": page.evaluate("document.scripts.length"),
                "evil_cells": page.evaluate(
                    f"Array.from(document.querySelectorAll('td')).filter(td => td.textContent === {EVIL!r}).length"),
            }
            table = page.locator("table#table-evaluation")
            header = table.locator("th", has_text="accuracy")
            cells = "Array.from(document.querySelectorAll('#table-evaluation tbody tr')).map(r => r.cells[{i}].textContent)"
            idx = page.evaluate(
                "Array.from(document.querySelectorAll('#table-evaluation th')).findIndex("
                "h => h.textContent.startsWith('accuracy'))")
            state["before"] = page.evaluate(cells.format(i=idx))
            header.click()
            state["asc"] = page.evaluate(cells.format(i=idx))
            state["aria"] = header.get_attribute("aria-sort")
            header.click()
            state["desc"] = page.evaluate(cells.format(i=idx))
            state["layout"] = measure(page)
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            page.wait_for_timeout(300)
            state["layout_open"] = measure(page)
            page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight / 2)")
            page.wait_for_timeout(100)
            state["toc"] = page.evaluate("(() => { const n = document.getElementById('contents');"
                                         " return [getComputedStyle(n).position, n.getBoundingClientRect().top,"
                                         " n.getBoundingClientRect().bottom > 0, scrollY]; })()")
            state["flags"] = page.evaluate(
                "Array.from(document.querySelectorAll('#table-evaluation tbody tr')).filter(r => r.className)"
                ".map(r => [r.className, r.dataset.run, r.cells[2].textContent,"
                " getComputedStyle(r.cells[0]).backgroundColor, getComputedStyle(r.cells[0], '::after').content])")
            state["plain_bg"] = page.evaluate(
                "getComputedStyle(document.querySelector('#table-evaluation tbody tr:not([class]) td')).backgroundColor")
            rows = "document.querySelectorAll('#table-training tbody tr:not(.off-filter)').length"
            state["rows_all"] = page.evaluate(rows)
            page.select_option("select[data-param='lora_rank']", "16")
            state["rows_16"] = page.evaluate(rows)
            state["count_16"] = page.text_content("#run-count")
            state["visible_traces_16"] = page.evaluate(
                "document.getElementById('fig-loss-chart').data.filter(t => t.visible !== false).map(t => t.name)")
            page.select_option("select[data-param='lora_rank']", "")
            state["rows_back"] = page.evaluate(rows)
            state["th_sticky"] = page.evaluate(
                "Array.from(document.querySelectorAll('th')).filter(h => h.checkVisibility()).map(h => {"
                " const cs = getComputedStyle(h); return cs.position + ' ' + cs.top; })")
            page.set_viewport_size({"width": 800, "height": 900})  # a narrow window: contents move above
            page.wait_for_timeout(300)
            state["narrow"] = measure(page)
            state["narrow_nav"] = page.evaluate("getComputedStyle(document.getElementById('contents')).position")
        finally:
            context.close()
    return state, requests, console_errors, page_errors, dialogs, html_path


def test_no_network_and_no_errors(page_report):
    _state, requests, console_errors, page_errors, _dialogs, html_path = page_report
    assert requests, "the page itself must have been requested"
    external = [u for u in requests if not u.startswith(ALLOWED_SCHEMES)]
    assert external == []
    assert requests[0] == html_path.as_uri()
    assert console_errors == []
    assert page_errors == []


def test_charts_render(page_report):
    state = page_report[0]
    assert state["n_charts"] >= 6  # loss, lr, throughput, gpu, bars, heatmap, pareto, effects
    assert all(n > 0 for n in state["svg_marks"]), state["svg_marks"]


def test_table_sorts_on_click(page_report):
    state = page_report[0]
    values = [float(c.split()[0]) for c in state["before"]]
    assert [float(c.split()[0]) for c in state["asc"]] == sorted(values)
    assert [float(c.split()[0]) for c in state["desc"]] == sorted(values, reverse=True)
    assert state["asc"] != state["before"]
    assert state["aria"] == "ascending"


def test_hostile_run_name_is_text(page_report):
    state, _req, _con, _err, dialogs, _path = page_report
    assert dialogs == []
    assert state["evil_cells"] >= 4  # runs, training, status and evaluation tables
    # plotly.js (packed) and its unpacker, the sorter and the dashboard script, the shared plotly
    # template and the run parameters (JSON), and one JSON block per chart: no script per figure
    assert state["script_tags"] == 4 + 2 + state["n_charts"]


def test_no_sideways_scroll_and_every_last_column_reachable(page_report):
    state = page_report[0]
    for layout in (state["layout"], state["layout_open"]):
        assert layout["innerWidth"] == 1280
        assert layout["scrollWidth"] <= layout["innerWidth"]
        assert defects({**layout, "errors": []}) == []
        assert len(layout["tables"]) >= 4
        assert all(t["reached"] for t in layout["tables"]), layout["tables"]
    # the folded appendix holds tables too: opening it shows more of them, and they fit as well
    assert len(state["layout_open"]["tables"]) > len(state["layout"]["tables"])
    wide = [t for t in state["layout_open"]["tables"] if not t["visible"]]
    assert all(t["scrolls"] for t in wide)


def test_table_headers_stick_and_narrow_windows_do_not_scroll_sideways(page_report):
    state = page_report[0]
    assert state["th_sticky"] and set(state["th_sticky"]) == {"sticky 0px"}
    narrow = state["narrow"]
    assert narrow["innerWidth"] == 800 and narrow["scrollWidth"] <= 800
    assert all(t["reached"] for t in narrow["tables"]) and [t for t in narrow["tables"] if t["scrolls"]]
    assert narrow["overlaps"] == []
    assert state["narrow_nav"] == "static"


def test_contents_stay_in_view(page_report):
    position, top, shown, scrolled = page_report[0]["toc"]
    assert scrolled > 1000  # the page was scrolled far down …
    assert position == "sticky" and top == 0 and shown  # … and the contents are still at the top


def test_best_and_failed_rows_are_highlighted(page_report):
    state = page_report[0]
    by_class = {}
    for cls, run, _epoch, bg, label in state["flags"]:
        by_class.setdefault(cls, []).append((run, bg, label))
    best = page_report[0]["layout"]
    assert best["best"] >= 1 and best["failed"] >= 1
    # the evaluation table's best row is the analysis' best candidate (rank16_lr0.0001 @ epoch 1 here)
    analysis = make_analysis(make_experiment(evil=True))
    [(run, bg, label)] = by_class["best"]
    assert run == analysis.best[0].run
    assert "best" in label and bg != state["plain_bg"]
    failed = by_class["failed"] + by_class.get("failed baseline", [])
    assert {r for r, _bg, _label in failed} == {FAILED}
    assert all("failed" in label and bg not in (state["plain_bg"], by_class["best"][0][1]) for _r, bg, label in failed)


def test_run_filter_hides_rows_and_traces(page_report):
    state = page_report[0]
    assert state["rows_all"] == 4  # four fine-tuned runs
    assert state["rows_16"] == 2  # rank 16: two learning rates
    assert state["count_16"].strip() == "2 of 5 runs shown"
    assert state["rows_back"] == 4
    names = set(state["visible_traces_16"])
    assert run_name(16, 1e-5) in names and run_name(8, 1e-5) not in names
