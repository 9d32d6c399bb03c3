"""Screenshots of the demo's report.html in headless Chromium, with the page's layout measured.

``make screenshots`` (or ``python tests/screenshots.py OUT``) builds the bundled demo sweep,
analyses it with the real CLI and writes into OUT: ``first-screen.png`` (what a reader sees on
opening the page at 1,280 × 800), ``findings.png``, ``wide-table.png`` (the widest table, scrolled
to its end), ``agreement-matrix.png`` (when the report has one) and ``layout.json`` (page height,
word count, horizontal overflow, overlapping text, tables whose last column cannot be reached).
It exits non-zero when the layout has a defect, so the PNGs are never taken of a broken page.
The browser tests call :func:`capture` on the same page and assert on what it measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}

MEASURE = """() => {
  const se = document.scrollingElement;
  const clipOf = (el) => {
    let r = {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
    for (let a = el.parentElement; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
        const b = a.getBoundingClientRect();
        r = {left: Math.max(r.left, b.left), top: Math.max(r.top, b.top),
             right: Math.min(r.right, b.right), bottom: Math.min(r.bottom, b.bottom)};
      }
    }
    return r;
  };
  // every line of visible text, clipped to its scroll containers, in page coordinates
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el || el.closest('script, style, svg, .js-plotly-plot') || !el.checkVisibility()) continue;
    const clip = clipOf(el);
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) {
      const b = {left: Math.max(r.left, clip.left), top: Math.max(r.top, clip.top),
                 right: Math.min(r.right, clip.right), bottom: Math.min(r.bottom, clip.bottom)};
      if (b.right - b.left < 1 || b.bottom - b.top < 1) continue;
      boxes.push({l: b.left + scrollX, t: b.top + scrollY, r: b.right + scrollX, b: b.bottom + scrollY,
                  text: n.textContent.trim().slice(0, 40), node: boxes.length, owner: n});
    }
  }
  boxes.sort((a, b) => a.t - b.t);
  const overlaps = [];
  for (let i = 0; i < boxes.length && overlaps.length < 20; i++) {
    for (let j = i + 1; j < boxes.length && boxes[j].t < boxes[i].b - 2; j++) {
      const a = boxes[i], c = boxes[j];
      if (a.owner === c.owner) continue;
      const w = Math.min(a.r, c.r) - Math.max(a.l, c.l), h = Math.min(a.b, c.b) - Math.max(a.t, c.t);
      if (w > 2 && h > 2) overlaps.push([a.text, c.text, Math.round(a.l), Math.round(a.t)]);
    }
  }
  const tables = Array.from(document.querySelectorAll('table')).filter(t => t.checkVisibility()).map(t => {
    const wrap = t.closest('.table-wrap') || t.parentElement;
    const cs = getComputedStyle(wrap);
    const last = t.tHead ? t.tHead.rows[0].lastElementChild : t.rows[0].lastElementChild;
    const visible = last.getBoundingClientRect().right <= wrap.getBoundingClientRect().right + 1;
    const scrolls = wrap.scrollWidth > wrap.clientWidth && ['auto', 'scroll'].includes(cs.overflowX);
    let reached = visible;
    if (!visible && scrolls) {
      const keep = wrap.scrollLeft;
      wrap.scrollLeft = wrap.scrollWidth;
      reached = last.getBoundingClientRect().right <= wrap.getBoundingClientRect().right + 1;
      wrap.scrollLeft = keep;
    }
    return {id: t.id, visible, scrolls, reached, width: t.scrollWidth, box: wrap.clientWidth};
  });
  return {
    height: se.scrollHeight, scrollWidth: se.scrollWidth, innerWidth: innerWidth,
    words: document.body.innerText.split(/\\s+/).filter(Boolean).length,
    overlaps, tables, nText: boxes.length,
    best: document.querySelectorAll('tr.best').length, failed: document.querySelectorAll('tr.failed').length,
    significant: document.querySelectorAll('tr.significant').length,
    charts: document.querySelectorAll('.js-plotly-plot').length,
  };
}"""


def open_page(p: Any, html: Path, profile: Path) -> tuple[Any, Any, list[str]]:
    """A fresh Chromium (no cache, no network) showing ``html`` at 1,280 px, charts drawn."""
    context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS,
                                                   headless=True, viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.as_uri(), wait_until="load")
    if page.locator("div.chart[data-figure]").count():
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    page.wait_for_timeout(500)
    return context, page, errors


def measure(page: Any) -> dict[str, Any]:
    """Layout facts of the page as it is now (see the module docstring)."""
    return page.evaluate(MEASURE)


def _shot_element(page: Any, selector: str, path: Path, max_height: int = 1400) -> bool:
    """A screenshot of the first *shown* element matching ``selector`` (one a metric switch hides
    is skipped; one in a folded section is unfolded first)."""
    if not page.locator(selector).count():
        return False
    page.evaluate("sel => { const el = document.querySelector(sel);"
                  " for (let d = el; d; d = d.parentElement) { if (d.tagName === 'DETAILS') d.open = true; } }",
                  selector)
    el = page.locator(f"{selector} >> visible=true").first
    if not el.count():
        return False
    el.scroll_into_view_if_needed(timeout=10_000)
    box = el.bounding_box()
    if box is None or box["height"] < 1:
        return False
    page.wait_for_timeout(200)
    y = page.evaluate("scrollY")
    clip = {"x": max(0, box["x"] - 8), "y": box["y"] + y - 8,
            "width": min(box["width"] + 16, VIEWPORT["width"] - max(0, box["x"] - 8)),
            "height": min(box["height"] + 16, max_height)}
    page.screenshot(path=str(path), clip=clip, full_page=True)
    return True


def capture(html: Path, out: Path) -> dict[str, Any]:
    """Screenshots of ``html`` into ``out`` and the layout measured (also ``out/layout.json``)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context, page, errors = open_page(p, html, out / ".chromium-profile")
        try:
            facts = measure(page)
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            page.wait_for_timeout(500)
            opened = measure(page)  # the folded appendix too: its tables and text must fit as well
            facts["overlaps"] += opened["overlaps"]
            facts["tables"] = opened["tables"]
            facts["scrollWidth"] = max(facts["scrollWidth"], opened["scrollWidth"])
            facts["height_unfolded"], facts["words_unfolded"] = opened["height"], opened["words"]
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = false; });"
                          "window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "first-screen.png"))
            shots = {"first-screen": True}
            shots["findings"] = _shot_element(page, "#bottom-line, #key-findings", out / "findings.png")
            tables = sorted(facts["tables"], key=lambda t: -t["width"])
            if tables:
                sel = f"#{tables[0]['id']}"
                page.evaluate(f"document.querySelector('{sel}').closest('.table-wrap').scrollLeft = 1e6")
                shots["wide-table"] = _shot_element(page, f".table-block:has({sel})", out / "wide-table.png")
            shots["agreement-matrix"] = _shot_element(page, "[id^='agreement-matrix']", out / "agreement-matrix.png")
            page.evaluate("window.scrollTo(0, 3000)")
            page.wait_for_timeout(200)
            facts["toc_top_after_scroll"] = page.evaluate(
                "(() => { const n = document.getElementById('contents'); return n ? n.getBoundingClientRect().top"
                " : null; })()")
            facts["toc_position"] = page.evaluate(
                "(() => { const n = document.getElementById('contents'); return n ? getComputedStyle(n).position"
                " : null; })()")
        finally:
            context.close()
    facts["errors"] = errors
    facts["shots"] = shots
    facts["bytes"] = html.stat().st_size
    (out / "layout.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return facts


def build_demo(root: Path, built: Path | None = None) -> Path:
    """The bundled demo sweep in ``root`` (built, or copied from ``built``, an example the
    demo builder already made), analysed by the real CLI; returns its report.html."""
    if built is not None:
        import shutil

        shutil.copytree(built, root, symlinks=True, ignore=shutil.ignore_patterns("analysis"))
    else:
        subprocess.run([sys.executable, "-m", "analyze_experiment.demo", str(root)], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "analyze_experiment", str(root)], check=True, stdout=subprocess.DEVNULL)
    return root / "analysis" / "report.html"


def defects(facts: dict[str, Any]) -> list[str]:
    """What is wrong with the layout, in words (empty: nothing)."""
    out = []
    if facts["scrollWidth"] > facts["innerWidth"]:
        out.append(f"the page scrolls sideways: {facts['scrollWidth']} px wide at {facts['innerWidth']} px")
    out += [f"overlapping text: {a!r} and {b!r} at ({x}, {y})" for a, b, x, y in facts["overlaps"]]
    out += [f"table {t['id']}: last column cut off" for t in facts["tables"] if not t["reached"]]
    out += [f"console error: {e}" for e in facts["errors"]]
    return out


def main(argv: list[str]) -> int:
    """``screenshots.py [OUT [BUILT_DEMO]]``: BUILT_DEMO, an example already built by the demo
    builder, is copied instead of building one (the tests pass theirs)."""
    out = Path(argv[0]) if argv else Path("build/screenshots")
    built = Path(argv[1]) if len(argv) > 1 else None
    demo = out / "demo-experiment"
    if demo.exists():
        import shutil

        shutil.rmtree(demo)
    facts = capture(build_demo(demo, built), out)
    print(f"report.html {facts['bytes']:,} bytes; page {facts['height']:,} px tall, {facts['words']:,} words; "
          f"screenshots in {out}: {', '.join(k for k, v in facts['shots'].items() if v)}")
    problems = defects(facts)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
