"""``make screenshots`` on the real demo: the bundled sweep analysed by the real CLI, its
report.html opened in headless Chromium at 1,280 px, screenshots taken and the layout checked
(tests/screenshots.py does the work; these tests hold it to the numbers)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from screenshots import CHROMIUM, VIEWPORT, defects

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO_BUDGET = 2_000_000
"""report.html of the demo, in bytes (issue 15: ≤ 2 MB; it was 5.3 MB with the full plotly.js)."""


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def demo_shots(tmp_path_factory, example):
    """What ``make screenshots`` does: the script, run as a program, into a fresh folder (on a
    copy of the session's bundled example, built once by the demo builder for every test)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian 'chromium' package (make browser)")
    pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("screens")
    built = example("mid2026", 200, 0)
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "screenshots.py"), str(out), str(built)],
                          capture_output=True, text=True, timeout=900)
    if not (out / "layout.json").exists():
        pytest.fail(f"make screenshots failed before measuring: {done.stderr[-3000:]}")
    facts = json.loads((out / "layout.json").read_text(encoding="utf-8"))
    facts["returncode"], facts["stdout"], facts["stderr"] = done.returncode, done.stdout, done.stderr
    return out / "demo-experiment" / "analysis" / "report.html", facts, out


def _demo_report_fits_the_size_budget(demo_shots):
    html, facts, _out = demo_shots
    assert facts["bytes"] == html.stat().st_size <= DEMO_BUDGET
    assert facts["charts"] >= 6  # the charts are still there: the bytes went from the bundle


def _demo_layout_has_no_defects(demo_shots):
    _html, facts, _out = demo_shots
    assert facts["innerWidth"] == VIEWPORT["width"]
    assert defects(facts) == []
    assert facts["nText"] > 100  # the overlap check saw the page's text
    assert len(facts["tables"]) >= 8 and all(t["reached"] for t in facts["tables"])
    assert [t for t in facts["tables"] if t["scrolls"]], "no wide table: the reachability check checked nothing"


def _demo_dashboard_parts(demo_shots):
    _html, facts, _out = demo_shots
    assert facts["toc_position"] == "sticky" and facts["toc_top_after_scroll"] == 0
    assert facts["best"] >= 1 and facts["significant"] >= 1
    assert facts["failed"] == 0  # the demo's runs all completed
    # folded appendix: the first reading is shorter than the whole page
    assert facts["height"] < facts["height_unfolded"] and facts["words"] < facts["words_unfolded"]


def _screenshots_are_written(demo_shots):
    _html, facts, out = demo_shots
    assert _png_size(out / "first-screen.png") == (VIEWPORT["width"], VIEWPORT["height"])
    for name in ("findings", "wide-table"):
        assert facts["shots"][name] is True
        w, h = _png_size(out / f"{name}.png")
        assert 200 < w <= VIEWPORT["width"] and 50 < h <= 1420
    assert facts["shots"]["agreement-matrix"] is True  # the per-sample view of the demo
    w, h = _png_size(out / "agreement-matrix.png")
    assert 200 < w <= VIEWPORT["width"] and 100 < h <= 1420


def _screenshots_script_reports_and_exits_clean(demo_shots):
    _html, facts, _out = demo_shots
    assert facts["returncode"] == 0, facts["stderr"]
    assert f"report.html {facts['bytes']:,} bytes; page {facts['height']:,} px tall" in facts["stdout"]


def test_make_screenshots_on_the_demo(demo_shots):
    """One test for the one run of the script (a second xdist worker would run it again):
    size budget, layout, dashboard parts, the screenshots, and the script's own report."""
    _demo_report_fits_the_size_budget(demo_shots)
    _demo_layout_has_no_defects(demo_shots)
    _demo_dashboard_parts(demo_shots)
    _screenshots_are_written(demo_shots)
    _screenshots_script_reports_and_exits_clean(demo_shots)


def test_defects_are_named():
    """The script fails on a broken page: each defect is named (the exit code follows)."""
    facts = {"scrollWidth": 1500, "innerWidth": 1280, "overlaps": [["a", "b", 10, 20]], "errors": ["boom"],
             "tables": [{"id": "table-x", "reached": False}, {"id": "table-y", "reached": True}]}
    assert defects(facts) == ["the page scrolls sideways: 1500 px wide at 1280 px",
                              "overlapping text: 'a' and 'b' at (10, 20)", "table table-x: last column cut off",
                              "console error: boom"]
