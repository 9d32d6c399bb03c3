"""The HTML report in a real headless Chromium: no network, no console errors, charts draw,
tables sort, hostile run names stay text."""

from __future__ import annotations

from pathlib import Path

import pytest

from report_fixtures import EVIL, make_analysis, make_experiment

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALLOWED_SCHEMES = ("file:", "data:", "about:", "blob:")


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
    plots = render_plots(exp, analysis, out / "plots", exp.diagnostics)
    doc = build_doc(exp, analysis, plots, command="analyze-experiment sweep")
    html_path = out / "report.html"
    html_path.write_text(render_html(doc, interactive_figures(exp, analysis), out / "plots"), encoding="utf-8")

    requests, console_errors, page_errors, dialogs = [], [], [], []
    with sync_playwright() as p:
        # A fresh profile per run: no cached state, extensions or sync can make a request for us.
        context = p.chromium.launch_persistent_context(
            str(out / "chromium-profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            service_workers="block")
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
    assert state["script_tags"] == 1 + 1 + state["n_charts"]  # plotly.js, sorter, one per chart
