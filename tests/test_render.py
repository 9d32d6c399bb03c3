"""Markdown and HTML rendering of the report document: structure, escaping, self-containment."""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser

import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from analyze_experiment.report.doc import Bullets, Figure, KeyValues, Paragraph, ReportDoc, Section, Table
from analyze_experiment.report.html import render_html, unpack_plotlyjs
from analyze_experiment.report.markdown import (
    escape,
    escape_cell,
    github_slug,
    markdown_table,
    render_markdown,
)
from analyze_experiment.textsafe import visible
from report_fixtures import EVIL, make_analysis, make_experiment

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _doc(n_sections: int = 8) -> ReportDoc:
    table = pd.DataFrame({
        "run": [EVIL, "a|b\nc", "rank8_lr1e-5"],
        "accuracy": ["0.850 [0.80, 0.89]", "0.9", "—"],
        "log": ["log", "log", "log"],
        "log_path": ["r1/eval/logs/x.eval", "javascript:alert(1)", "r 3/eval/logs/(y).eval"],
    })
    sections = [
        Section("Overview", [Paragraph(f"Run {EVIL} & *friends* # not a heading"),
                             Table(table, caption="Runs", name="runs", links={"log": "log_path"})],
                anchor="overview"),
        Section("Training Results", [Figure("loss", "Training loss", caption="raw & smoothed", interactive="loss"),
                                     Figure("lr", "LR <schedule>")]),
        Section("Evaluation Results", [Bullets(["first", "- second"]),
                                       Section("Best Performers", [Paragraph("x")], level=3),
                                       Section("Empty sub", [], level=3)]),
        Section("Empty", []),
    ]
    sections += [Section(f"Extra {i}", [Paragraph(f"para {i}")]) for i in range(n_sections - 3)]
    return ReportDoc(title="Report: <b>sweep</b>", header=KeyValues([("Experiment", EVIL), ("Runs", "5")]),
                     sections=sections, footer="made by analyze-experiment")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


# --- markdown ---------------------------------------------------------------------------------


def test_markdown_escapes_untrusted_text_and_keeps_tables_intact():
    md = render_markdown(_doc())
    out = MD.render(md)
    assert "<script" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    rows = re.findall(r"<tr>(.*?)</tr>", out, flags=re.S)
    assert len(rows) == 4
    assert all(r.count("<td") + r.count("<th") == 3 for r in rows)  # run, accuracy, log (path hidden)
    assert "<td>a|b\\nc</td>" in out  # the newline is shown, never obeyed
    assert '<a href="r1/eval/logs/x.eval">log</a>' in out
    assert '<a href="r%203/eval/logs/%28y%29.eval">log</a>' in out
    assert "javascript" not in out
    assert "<em>friends" not in out and "<h1>Run" not in out
    assert "*friends*" in out


def test_markdown_tables_are_aligned():
    md = markdown_table(pd.DataFrame({"name": ["a", "long name"], "value": ["1.5", "10.25"]}))
    lines = md.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1] == "| --------- | ----: |"
    assert lines[3] == "| long name | 10.25 |"


def test_markdown_images_relative_toc_and_no_empty_sections():
    md = render_markdown(_doc())
    assert "![Training loss](plots/loss.png)" in md
    assert "![LR &lt;schedule>](plots/lr.png)" in md  # only a "<" that could open a tag is escaped
    assert "*raw & smoothed*" in md  # a bare "&" that starts no entity stays readable
    assert "- [Overview](#overview)" in md
    assert "  - [Best Performers](#best-performers)" in md
    assert "## Empty" not in md and "Empty sub" not in md
    headings = re.findall(r"^(#+) (.*)$", md, flags=re.M)
    assert headings[0] == ("#", "Report: &lt;b>sweep&lt;/b>")
    assert ("###", "Best Performers") in headings
    assert md.endswith("made by analyze-experiment\n")
    short = render_markdown(_doc(n_sections=3).__class__("t", KeyValues([]), [Section("Only", [Paragraph("p")])]))
    assert "Contents" not in short


def test_markdown_line_start_specials_do_not_become_blocks():
    out = MD.render(escape("# title\n- item\n1. first\n> quote\n---"))
    assert "<h1>" not in out and "<ul>" not in out and "<ol>" not in out and "<blockquote>" not in out
    assert "<hr" not in out


def test_comparison_signs_stay_readable_and_tags_stay_text():
    md = escape("p < 0.001, F > 3 & n >= 10; <b>x</b> <!-- c --> <https://e.x> &copy;")
    assert md.startswith("p < 0.001, F > 3 & n >= 10;")
    out = MD.render(md)
    assert "<b>" not in out and "<!--" not in out and "<a " not in out and "©" not in out
    assert htmllib.unescape(re.sub(r"</?p>", "", out)).strip() == (
        "p < 0.001, F > 3 & n >= 10; <b>x</b> <!-- c --> <https://e.x> &copy;")


def test_github_slugs_deduplicate():
    seen: dict[str, int] = {}
    assert [github_slug(t, seen) for t in ("Key Findings", "Key Findings", "A/B: test")] == [
        "key-findings", "key-findings-1", "ab-test"]


_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]) | st.sampled_from(list("\\`*_[]{}()#+-.!|<>&~\n \t=:"))
_PIECES = st.sampled_from(["&amp;", "<script>", "**", "__", "~~", "[x](y)", "1. ", "- ", "&#65;", "\\|", "`a`"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=_CHARS, max_size=6) | _PIECES, max_size=8).map("".join))
def test_table_cell_renders_as_its_own_text(text):
    """Whatever a cell holds, the rendered table shows exactly that text in one cell."""
    df = pd.DataFrame({"c": [text], "d": ["x"]})
    out = MD.render(markdown_table(df))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", out, flags=re.S)
    assert len(cells) == 2
    expected = re.sub(r"\s+", " ", visible(text).strip(" ")).strip()
    got = re.sub(r"\s+", " ", htmllib.unescape(cells[0])).strip()
    assert got == expected
    assert "<" not in cells[0]


def test_escape_cell_shows_newlines_and_escapes_pipes():
    assert escape_cell("a|b\r\nc") == "a\\|b\\\\r\\\\nc"
    assert MD.render(escape_cell("x\u202ey")) == "<p>x\\u202ey</p>\n"


# --- HTML -------------------------------------------------------------------------------------


def test_html_escapes_and_links():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="&lt;script&gt;"))
    html = render_html(_doc(), {"loss": fig}, None)
    assert EVIL not in html and "<b>sweep" not in html
    parsed = _parse(html)
    text = "".join(parsed.text)
    assert EVIL in text  # shown as text
    links = [a["href"] for tag, a in parsed.tags if tag == "a" and not a["href"].startswith("#")]
    assert links == ["r1/eval/logs/x.eval", "r%203/eval/logs/%28y%29.eval"]
    assert "javascript:" not in html.split("<script>")[0]
    tables = [a for tag, a in parsed.tags if tag == "table"]
    assert tables == [{"class": "sortable", "id": "table-runs"}]
    ths = [a for tag, a in parsed.tags if tag == "th"]
    assert [t.get("data-type") for t in ths] == [None, "num", None]
    imgs = [a["src"] for tag, a in parsed.tags if tag == "img"]
    assert imgs == ["plots/lr.png"]  # no plots_dir: relative link; loss is interactive
    assert html.count('<div class="chart" id=') == 1  # drawn from its JSON by the page's one script
    assert html.count("<script type=\"application/json\" id=\"fig-loss-data\">") == 1
    assert "&lt;script&gt;" not in html.split('id="fig-loss-data">')[1].split("</script>")[0]  # JSON: \u0026lt;
    assert "Empty sub" not in html and ">Empty<" not in html
    assert "made by analyze-experiment" in text


def test_html_is_self_contained(tmp_path):
    from analyze_experiment.report.build import build_doc
    from analyze_experiment.report.plots.interactive import interactive_figures

    exp = make_experiment(evil=True)
    an = make_analysis(exp)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "samples_arc_easy.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    from analyze_experiment.report.plots.static import PlotInfo

    infos = [PlotInfo("loss", "Training loss", "training", None, "loss"),
             PlotInfo("samples_arc_easy", "Per-sample", "evaluation", None, None)]
    html = render_html(build_doc(exp, an, infos), interactive_figures(exp, an), plots)
    # the partial bundle inline, compressed: 0.66 MB of the page instead of the full bundle's 4.8 MB
    assert "Plotly.newPlot" in html and "plotly.js (cartesian - minified) v4.1.1" in unpack_plotlyjs(html)
    assert html.count('id="plotly-js"') == 1 and 600_000 < len(html) < 1_200_000
    assert EVIL not in html
    # plotly.js mentions map-tile URLs in strings it never fetches here; check the markup itself.
    parsed = _parse(re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S))
    for tag, attrs in parsed.tags:
        for key in ("src", "href", "action", "data", "poster"):
            v = attrs.get(key) or ""
            assert not re.match(r"^\s*(https?:)?//", v), (tag, key, v)
    scripts = [a for tag, a in parsed.tags if tag == "script"]
    assert all("src" not in a for a in scripts)
    assert not [a for tag, a in parsed.tags if tag == "link"]
    assert "@import" not in html and "url(http" not in html
    csp = next(a["content"] for tag, a in parsed.tags if tag == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    imgs = [a["src"] for tag, a in parsed.tags if tag == "img"]
    assert imgs == ["data:image/png;base64,iVBORw0KGgpmYWtl"]


def test_html_and_markdown_carry_the_same_text():
    doc = _doc()
    md_text = htmllib.unescape(re.sub(r"<[^>]+>", " ", MD.render(render_markdown(doc))))
    html_text = "".join(_parse(render_html(doc, {}, None)).text)
    for needle in (EVIL, "a|b\\nc", "para 4", "Best Performers", "first", "- second", "raw & smoothed"):
        assert needle in re.sub(r"\s+", " ", md_text)
        assert needle in re.sub(r"\s+", " ", html_text)


@pytest.mark.parametrize("level", [2, 3])
def test_html_headings_follow_section_levels(level):
    doc = ReportDoc("t", KeyValues([]), [Section("S", [Paragraph("p")], level=level)])
    assert f"<h{level}>S</h{level}>" in render_html(doc, {}, None)
