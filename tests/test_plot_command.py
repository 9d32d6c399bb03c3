"""``analyze-experiment plot``: one report figure for a paper or a talk, from the real CLI.

The PDF is opened with a PDF reader library (pypdf): its page is the style's exact size, its
fonts are embedded (no Type 3), and the numbers printed on it are the report's own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader

from analyze_experiment import analyze, load
from analyze_experiment.cli import plot
from analyze_experiment.report.plots.presentation import STYLES, common_prefix
from analyze_experiment.report.story import lead_bests

N = 40


@pytest.fixture(scope="module")
def built(example):
    root = example("mid2026", N)
    exp = load(root)
    return root, exp, analyze(exp)


def _fonts(reader: PdfReader) -> list[dict]:
    fonts = []
    for page in reader.pages:
        res = page["/Resources"]
        for obj in res.get("/Font", {}).values():
            fonts.append(obj.get_object())
        for xobj in res.get("/XObject", {}).values():  # matplotlib puts text in the page itself,
            x = xobj.get_object()  # but a glyph can sit in a form XObject
            for f in x.get("/Resources", {}).get("/Font", {}).values():
                fonts.append(f.get_object())
    return fonts


def test_paper_pdf_is_one_column_with_embedded_fonts_and_the_reports_numbers(built, tmp_path):
    root, exp, analysis = built
    out = tmp_path / "final.pdf"
    result = CliRunner().invoke(plot, [str(root), "final", "--out", str(out)])
    assert result.exit_code == 0, result.output
    reader = PdfReader(out)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(STYLES["paper"].width * 72, abs=0.5)
    assert float(box.height) == pytest.approx(STYLES["paper"].height * 72, abs=0.5)
    fonts = _fonts(reader)
    assert fonts, "no font in the PDF"
    for f in fonts:
        assert f["/Subtype"] != "/Type3", f"Type 3 font {f.get('/BaseFont')}"
        desc = f.get("/FontDescriptor") or f["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        desc = desc.get_object()
        assert any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")), f"{f.get('/BaseFont')} not embedded"
    text = reader.pages[0].extract_text()
    best = lead_bests(analysis)[0]  # the report's primary metric, drawn by default
    assert f"{best.value:.3f}" in text  # the best run's value, as the report computed it
    prefix = common_prefix(sorted(exp.runs["run"].astype(str)))
    assert prefix == "Llama-3.2-1B-Instruct_"
    assert best.run.removeprefix(prefix) in text
    assert f"run names start with {prefix}" in text


def test_talk_png_is_16_by_9_and_runs_restrict_the_drawing(built, tmp_path):
    root, _, analysis = built
    out = tmp_path / "talk.png"
    result = CliRunner().invoke(plot, [str(root), "loss", "--style", "talk", "--out", str(out)])
    assert result.exit_code == 0, result.output
    w, h = Image.open(out).size
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    assert w == pytest.approx(STYLES["talk"].width * 300, abs=2)

    keep = ["Llama-3.2-1B-Instruct_rank4_lr1e-4", "Llama-3.2-1B-Instruct_base"]
    pdf = tmp_path / "two.pdf"
    result = CliRunner().invoke(plot, [str(root), "final", "--runs", ",".join(keep), "--style", "paper-wide",
                                       "--out", str(pdf)])
    assert result.exit_code == 0, result.output
    text = PdfReader(pdf).pages[0].extract_text()
    assert "rank4_lr1e-4" in text and "base" in text
    assert "rank16" not in text and "lr1e-5" not in text
    iv = analysis.intervals
    kept = iv[iv["run"] == keep[0]]
    for v in kept["value"]:  # the whole sweep's intervals, not recomputed on two runs
        assert f"{v:.3f}" in text


def test_default_is_the_reports_primary_metric_and_scorer_picks_another(built, tmp_path):
    """Without --scorer the figure is the metric report.md and the bottom line speak of (the
    primary ``match``), though ``includes`` comes first among the scored targets; --scorer picks."""
    root, _, analysis = built
    assert [b.scorer for b in analysis.best][:2] == ["includes", "match"]
    assert [b.scorer for b in lead_bests(analysis)] == ["match"]
    for extra, scorer in (([], "match"), (["--scorer", "includes"], "includes"), (["--scorer", "match"], "match")):
        out = tmp_path / f"final-{scorer}-{len(extra)}.pdf"
        r = CliRunner().invoke(plot, [str(root), "final", "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        text = PdfReader(out).pages[0].extract_text()
        assert f"accuracy ({scorer}; bars: 95% CI)" in text, (extra, text[:300])


def test_usage_errors_name_what_exists(built, tmp_path):
    root, _, _ = built
    r = CliRunner().invoke(plot, [str(root), "violin", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "loss" in r.output and "effects" in r.output
    r = CliRunner().invoke(plot, [str(root), "final", "--runs", "nosuch", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "nosuch" in r.output and "Llama-3.2-1B-Instruct_base" in r.output
    r = CliRunner().invoke(plot, [str(root), "final", "--metric", "bleu", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "capitalization/match/accuracy" in r.output
    r = CliRunner().invoke(plot, [str(root), "final", "--scorer", "nosuch", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "scorer=nosuch" in r.output and "capitalization/includes/accuracy" in r.output
    r = CliRunner().invoke(plot, [str(root), "final", "--out", str(tmp_path / "x.jpg")])
    assert r.exit_code == 2 and ".pdf" in r.output
    r = CliRunner().invoke(plot, [str(root), "validation", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "no validation figure" in r.output
    assert not list(tmp_path.iterdir())  # nothing written on a usage error
    assert not (root / "analysis" / "figures").exists()


def test_console_entry_point_dispatches_plot(built, tmp_path):
    root, _, _ = built
    out = tmp_path / "effects.svg"
    proc = subprocess.run([sys.executable, "-m", "analyze_experiment", "plot", str(root), "effects", "--out",
                           str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert out.read_text().startswith("<?xml")
    assert "<text" not in out.read_text()  # glyphs as outlines: the SVG needs no font installed


def test_default_output_is_in_the_current_folder(built, tmp_path, monkeypatch):
    root, _, _ = built
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(plot, [str(root), "heatmap"])
    assert r.exit_code == 0, r.output
    assert Path(r.output.strip()) == tmp_path / "heatmap-paper.pdf"
    assert (tmp_path / "heatmap-paper.pdf").stat().st_size > 1000
