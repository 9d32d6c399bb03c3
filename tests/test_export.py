"""Exports: CSV/Parquet/JSON round-trip to the tables; LaTeX structure; filters; stdout text."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyze_experiment.export import (
    PARQUET_ONLY,
    ExportError,
    all_tables,
    export_tables,
    latex_escape,
    parquet_safe,
    write_tables,
)
from report_fixtures import CONTROL, EVIL, make_analysis, make_experiment


@pytest.fixture(scope="module")
def sweep():
    exp = make_experiment(evil=True)
    return exp, make_analysis(exp)


def _same_values(read: pd.Series, orig: pd.Series) -> None:
    """Column equality after a text round trip: times as instants, numbers exactly, the rest as text."""
    if pd.api.types.is_datetime64_any_dtype(orig) or orig.map(lambda v: isinstance(v, pd.Timestamp)).any():
        assert list(pd.to_datetime(read, utc=True)) == list(pd.to_datetime(orig, utc=True))
        return
    num_o = pd.to_numeric(orig, errors="coerce")
    is_bool = orig.map(lambda v: isinstance(v, bool | np.bool_)).any()
    if orig.notna().sum() and num_o.notna().sum() == orig.notna().sum() and not is_bool:
        np.testing.assert_array_equal(pd.to_numeric(read, errors="coerce").to_numpy(float), num_o.to_numpy(float))
        return
    assert [None if pd.isna(v) else str(v) for v in read] == [None if pd.isna(v) else str(v) for v in orig]


def test_csv_round_trip_every_table(sweep, tmp_path):
    exp, an = sweep
    paths = export_tables(exp, an, "csv", tmp_path)
    tables = all_tables(exp, an)
    assert sorted(p.name for p in paths) == sorted(f"{n}.csv" for n in tables)
    assert {"runs", "train_steps", "eval_samples", "intervals", "comparisons", "effects", "anova", "pareto",
            "best"} <= set(tables)
    for name, df in tables.items():
        if not len(df.columns):  # a statistics table the sweep did not need (no seeds)
            assert (tmp_path / f"{name}.csv").read_text().strip() == ""
            continue
        back = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=True)
        assert list(back.columns) == list(df.columns), name
        assert len(back) == len(df), name
        for col in df.columns:
            _same_values(back[col], df[col])
    steps = pd.read_csv(tmp_path / "train_steps.csv")
    assert steps["loss"].tolist() == exp.train_steps["loss"].tolist()  # exact floats, not rounded


def test_parquet_round_trip_tidy_tables(sweep, tmp_path):
    exp, an = sweep
    paths = export_tables(exp, an, "parquet", tmp_path)
    assert sorted(p.stem for p in paths) == sorted(exp.tables())
    for name, df in exp.tables().items():
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, parquet_safe(df).reset_index(drop=True), check_dtype=False,
                                      check_exact=True)
    with pytest.raises(ExportError, match="output folder"):
        export_tables(exp, an, "parquet", None)


def test_report_folder_writes_the_per_sample_table_as_parquet_only(sweep, tmp_path):
    """The report folder: every table as CSV except the per-sample scores (the largest table by
    far, shown in no table of the report), which are in data/ as Parquet with the same rows."""
    exp, an = sweep
    written = write_tables(exp, an, tmp_path)
    assert PARQUET_ONLY == ("eval_samples",)
    csvs = sorted(p.stem for p in (tmp_path / "tables").glob("*.csv"))
    assert "eval_samples" not in csvs and {"runs", "train_steps", "eval_scores", "intervals", "comparisons"} <= set(csvs)
    assert sorted(p.stem for p in written if p.suffix == ".csv") == csvs
    back = pd.read_parquet(tmp_path / "data" / "eval_samples.parquet")
    assert len(back) == len(exp.eval_samples) > 0
    assert back["score"].tolist() == exp.eval_samples["score"].reset_index(drop=True).tolist()
    # the CSV is still one command away (export), and equals the table
    export_tables(exp, an, "csv", tmp_path / "x")
    assert len(pd.read_csv(tmp_path / "x" / "eval_samples.csv")) == len(exp.eval_samples)


def test_parquet_safe_copies_only_when_a_column_needs_converting():
    clean = pd.DataFrame({"a": ["x", None], "b": [1.0, 2.0]})
    assert parquet_safe(clean) is clean
    mixed = pd.DataFrame({"a": ["x", 3]})
    safe = parquet_safe(mixed)
    assert safe is not mixed and safe["a"].tolist() == ["x", "3"] and mixed["a"].tolist() == ["x", 3]


def test_json_stdout_and_files(sweep, tmp_path):
    exp, an = sweep
    data = json.loads(export_tables(exp, an, "json", None))
    assert [r["value"] for r in data["intervals"]] == an.intervals["value"].tolist()
    assert data["intervals"][-1]["epoch"] is None  # NaN -> null
    assert data["eval_logs"][0]["created"].startswith("2026-01-11T00:00:00")
    export_tables(exp, an, "json", tmp_path)
    assert json.loads((tmp_path / "runs.json").read_text())[3]["run"] == EVIL


def test_filters_apply_to_every_table(sweep):
    exp, an = sweep
    tables = all_tables(exp, an, runs=["rank8_lr1e-05"], task="arc_easy", metric="accuracy")
    assert set(tables["runs"]["run"]) == {"rank8_lr1e-05"}
    assert set(tables["eval_samples"]["run"]) == {"rank8_lr1e-05"}
    assert len(tables["intervals"]) == 2
    comp = tables["comparisons"]
    assert len(comp) == 2 and all("rank8_lr1e-05" in (a, b) for a, b in zip(comp["a"], comp["b"], strict=True))
    assert all(len(df) == 0 for n, df in all_tables(exp, an, task="other").items() if "task" in df.columns)
    assert len(all_tables(exp, an, metric="f1")["intervals"]) == 0
    text = export_tables(exp, an, "csv", None, runs=[CONTROL], table="intervals")
    assert pd.read_csv(pd.io.common.StringIO(text))["run"].tolist() == [CONTROL]


def _check_latex(tex: str) -> list[list[str]]:
    """Validate one exported table's structure; return its body rows split into cells."""
    assert "\\documentclass" not in tex  # \input-ready
    envs = re.findall(r"\\(begin|end)\{(\w+)\}", tex)
    stack = []
    for kind, env in envs:
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert stack == [] and [e for _, e in envs] == ["table", "tabular", "tabular", "table"]
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    depth = 0
    for ch in re.sub(r"\\[{}]", "", body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    lines = body.splitlines()
    top, mid, bottom = lines.index("\\toprule"), lines.index("\\midrule"), lines.index("\\bottomrule")
    assert top < mid < bottom
    rows = []
    for line in lines[top + 1:bottom]:
        if line == "\\midrule":
            continue
        assert line.endswith(" \\\\")
        cells = re.split(r"(?<!\\)&", line[:-3])
        assert len(cells) == len(spec), line
        for cell in cells:
            bare = re.sub(r"\\(textbf|textless|textgreater|textbar|textbackslash|textasciitilde|textasciicircum)"
                          r"|\\[&%$#_{}]|\$\\pm\$|[{}]", "", cell)
            assert not re.search(r"[&%$#_\\<>^~|]", bare), cell
        rows.append([c.strip() for c in cells])
    return rows


def test_latex_tables_structure_bold_best_and_escaping(sweep, tmp_path):
    exp, an = sweep
    paths = export_tables(exp, an, "latex", tmp_path)
    assert sorted(p.name for p in paths) == ["anova.tex", "comparisons.tex", "effects.tex", "results.tex",
                                             "training.tex"]
    results = _check_latex((tmp_path / "results.tex").read_text())
    assert results[0] == ["Run", "lora\\_rank", "learning\\_rate", "Epoch", "accuracy", "95\\% CI", "n"]
    top = an.intervals["value"].max()
    bold = [r for r in results[1:] if r[4].startswith("\\textbf")]
    assert {r[4] for r in bold} == {f"\\textbf{{{top:.3f}}}"}
    assert len(bold) == int((an.intervals["value"] == top).sum())
    row = next(r for r in results[1:] if r[0] == "rank8\\_lr1e-05" and r[3] == "0")
    iv = an.intervals[(an.intervals["run"] == "rank8_lr1e-05") & (an.intervals["epoch"] == 0)].iloc[0]
    assert row[4:] == [f"{iv['value']:.3f}", f"({iv['ci_low']:.3f}, {iv['ci_high']:.3f})", "40"]
    assert any(r[0] == "\\textless{}script\\textgreater{}alert(1)\\textless{}/script\\textgreater{}" for r in results)
    training = _check_latex((tmp_path / "training.tex").read_text())
    losses = exp.runs.dropna(subset=["final_loss"])
    best_run = losses.loc[losses["final_loss"].idxmin(), "run"]
    bold_rows = [r for r in training[1:] if r[4].startswith("\\textbf")]
    assert [r[0] for r in bold_rows] == [latex_escape(best_run)]
    for name in ("comparisons", "effects", "anova"):
        assert len(_check_latex((tmp_path / f"{name}.tex").read_text())) > 1


def test_latex_compiles_when_an_engine_is_installed(sweep, tmp_path):
    engine = shutil.which("pdflatex") or shutil.which("lualatex")
    if engine is None:
        pytest.skip("no LaTeX engine installed; structure is validated by the test above")
    import subprocess

    exp, an = sweep
    export_tables(exp, an, "latex", tmp_path)
    doc = tmp_path / "paper.tex"
    doc.write_text("\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}\\begin{document}"
                   + "".join(f"\\input{{{n}}}" for n in ("results", "comparisons", "effects", "anova", "training"))
                   + "\\end{document}\n")
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]


def test_markdown_and_latex_to_stdout(sweep):
    exp, an = sweep
    md = export_tables(exp, an, "markdown", None, task="arc_easy")
    assert md.count("<!-- ") == 5
    assert "&lt;script>" in md and EVIL not in md
    assert "0.775 (best)" in md
    tex = export_tables(exp, an, "latex", None, runs=["rank8_lr1e-05"])
    assert "% results.tex" in tex and "\\toprule" in tex
    with pytest.raises(ExportError, match="unknown export format"):
        export_tables(exp, an, "xlsx", None)


@given(st.text(max_size=60))
def test_latex_escape_leaves_no_active_character(text):
    out = latex_escape(text)
    bare = re.sub(r"\\(textless|textgreater|textbar|textbackslash|textasciitilde|textasciicircum)\{\}"
                  r"|\\[&%$#_{}]|\$\\pm\$", "", out)
    assert not re.search(r"[&%$#_{}\\<>^~|]", bare)
