"""Strings from logs are data, never markup: the real CLI on an example whose run
directory, task name and sample text carry HTML, script, pipes, newlines, LaTeX and
``../``; symlinks that loop or leave the experiment; every path written stays relative
and inside the output folder."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyze_experiment.cli import analyze, export

RUN = "Llama-3.2-1B-Instruct_rank16_lr1e-4"
SCRIPT = "<script>alert(1)</script>"
HOSTILE_DIR = "r16_<script>alert(1)<|x\n\\textbf{y}..z"
"""A legal directory name (no ``/``) with markup, a pipe, a newline and LaTeX."""
HOSTILE_TASK = f"cap{SCRIPT}|t\n\\textbf{{bold}}../../etc"
HOSTILE_ANSWER = f"{SCRIPT} a|b\n\\textbf{{c}} ../"


def _rewrite_eval(path: Path) -> None:
    """Put the hostile task name and answers into a real inspect-ai log."""
    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    out = []
    for name, data in members:
        if name in ("header.json", "_journal/start.json"):
            obj = json.loads(data)
            obj["eval"]["task"] = HOSTILE_TASK
            data = json.dumps(obj).encode()
        elif name == "summaries.json" or name.startswith("samples/"):
            text = data.decode()
            text = re.sub(r'"answer": ?"[^"]*"', '"answer": ' + json.dumps(HOSTILE_ANSWER), text)
            data = text.encode()
        out.append((name, data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in out:
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, example):
    import shutil

    root = tmp_path_factory.mktemp("hostile") / "exp"
    shutil.copytree(example("mid2026", 40, 1), root, symlinks=True)
    (root / RUN).rename(root / HOSTILE_DIR)
    design = root / "experiment_summary.yaml"
    text = design.read_text()
    assert f'"{RUN}"' in text
    design.write_text(text.replace(f'"{RUN}"', json.dumps(HOSTILE_DIR)))
    for p in (root / HOSTILE_DIR).rglob("*.eval"):
        _rewrite_eval(p)
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.eval").write_bytes(b"not yours")
    logs = next((root / "Llama-3.2-1B-Instruct_rank4_lr1e-4").rglob("logs"))
    os.symlink(outside / "secret.eval", logs / "leak.eval")
    os.symlink(logs, logs / "loop")
    os.symlink(outside, root / "elsewhere_run")
    out = root.parent / "out"
    res = CliRunner().invoke(analyze, [str(root), "--out", str(out), "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return root, out


def test_html_carries_no_injected_markup(hostile):
    _root, out = hostile
    html = (out / "report.html").read_text()
    assert "alert(1)" in html.replace("\\u003c", "<")  # the strings are there, as text
    assert SCRIPT not in html
    assert "<script>alert" not in html
    assert "alert(1)</script>" not in html and "alert(1)<\\/script>" not in html
    assert html.count("<script") == html.count("</script>")


def test_markdown_tables_keep_their_shape(hostile):
    _root, out = hostile
    md = (out / "report.md").read_text()
    assert SCRIPT not in md
    rows_with_name = [ln for ln in md.splitlines() if "alert(1)" in ln and ln.startswith("|")]
    assert rows_with_name, "the hostile run is in the tables"
    for block in re.findall(r"(?:^\|.*\n)+", md, flags=re.M):
        lines = block.rstrip("\n").split("\n")
        widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
        assert len(widths) == 1, block


def test_latex_and_markdown_exports_escape_the_strings(hostile):
    root, _out = hostile
    tex = CliRunner().invoke(export, [str(root), "--format", "latex"], catch_exceptions=False).output
    assert "alert(1)" in tex
    assert "\\textbf{y}" not in tex and "\\textbf{bold}" not in tex
    assert "<|x" not in tex  # the pipe of the run name is escaped
    mdx = CliRunner().invoke(export, [str(root), "--format", "markdown"], catch_exceptions=False).output
    for block in re.findall(r"(?:^\|.*\n)+", mdx, flags=re.M):
        widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in block.rstrip("\n").split("\n")}
        assert len(widths) == 1, block


def test_symlinks_leaving_or_looping_are_not_followed_and_said(hostile):
    _root, out = hostile
    summary = json.loads((out / "summary.json").read_text())
    msgs = {(w["file"] or ""): w["message"] for w in summary["warnings"]}
    leak = next(f for f in msgs if f.endswith("leak.eval"))
    assert "points outside the experiment directory; not followed" in msgs[leak]
    assert "points outside the experiment directory; not followed" in msgs["elsewhere_run"]
    assert any(f.endswith("logs/loop") for f in msgs)
    assert "secret" not in json.dumps(summary)
    assert "elsewhere_run" not in {r["name"] for r in summary["runs"]}


def _paths(obj, key=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _paths(v, key)
    elif isinstance(obj, str) and key in ("log", "file", "dir", "design_document"):
        yield obj


def test_paths_in_outputs_are_relative_and_inside(hostile):
    root, out = hostile
    summary = json.loads((out / "summary.json").read_text())
    paths = list(_paths(summary))
    assert any(HOSTILE_DIR in p for p in paths)
    for p in paths:
        assert not p.startswith("/") and ".." not in Path(p).parts, p
        assert (root / p).exists() or (root / p).is_symlink(), p
    assert str(root) not in (out / "report.md").read_text()
    for f in out.rglob("*"):
        assert f.resolve().is_relative_to(out.resolve())
    md = (out / "report.md").read_text()
    for link in re.findall(r"\]\(([^)\s]+)\)", md):
        if "://" not in link and not link.startswith("#"):
            # relative, and landing in the report folder or on an input of the experiment
            assert not link.startswith("/"), link
            target = (out / link).resolve()
            assert target.exists(), link
            assert target.is_relative_to(out.resolve()) or target.is_relative_to(root.resolve()), link
