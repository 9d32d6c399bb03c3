"""The real command line on real experiments, in each of the three directory layouts.

Truth comes from outside the package: the captured torchtune files (last DiskLogger
loss), the planted accuracies of the example, inspect-ai's own reader, statsmodels'
Wilson interval.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from click.testing import CliRunner
from inspect_ai.log import read_eval_log
from statsmodels.stats.proportion import proportion_confint

import analyze_experiment
from analyze_experiment.cli import analyze, export
from analyze_experiment.demo.plan import RUNS, planted_accuracy

DATA = Path(analyze_experiment.__file__).parent / "data" / "torchtune"
SCHEMA = json.loads((Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json").read_text())
LAYOUTS = ["mid2026", "early2026", "oct2025"]
N = 40


def _last_disklogger_loss(capture: str) -> tuple[int, float]:
    """Last `Step N | loss:X` of a captured DiskLogger file, read with a plain regex."""
    text = (DATA / f"{capture}.disklogger.txt").read_text()
    step, loss = re.findall(r"Step (\d+) \| loss:(\S+)", text)[-1]
    return int(step), float(loss)


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(analyze, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_reports_each_layout(analysed, layout):
    done = analysed(layout, N)
    root = done.root
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.json)
    assert summary == json.loads((root / "analysis" / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    assert summary["experiment"]["layout"] == layout

    # run list and parameters, as designed
    runs = {r["name"]: r for r in summary["runs"]}
    assert sorted(runs) == sorted(r.name for r in RUNS)
    for r in RUNS:
        got = runs[r.name]
        if r.is_control:
            assert got["type"] == "control"
            assert got["params"] == {}
            assert got["training"] is None
        else:
            assert got["type"] == "fine-tuned"
            assert got["params"] == {"lora_rank": r.lora_rank, "learning_rate": r.lr}
            # training: the last step and loss of the captured run, exactly
            step, loss = _last_disklogger_loss(r.capture)
            assert got["training"]["status"] == "completed"
            assert got["training"]["steps"] == step == 16
            assert got["training"]["final_loss"] == loss
            assert got["training"]["epochs"] == 2

        # evaluation: the planted accuracy for every evaluated epoch, with Wilson's interval
        match = {e["epoch"]: e for e in got["evals"] if e["scorer"] == "match"}
        assert sorted(match, key=lambda e: -1 if e is None else e) == list(r.epochs)
        for epoch in r.epochs:
            acc = match[epoch]["metrics"]["accuracy"]
            expected = planted_accuracy(r, epoch, N)
            assert acc["value"] == pytest.approx(expected, abs=1e-12)
            lo, hi = proportion_confint(round(expected * N), N, alpha=0.05, method="wilson")
            assert acc["ci_low"] == pytest.approx(lo, abs=1e-9)
            assert acc["ci_high"] == pytest.approx(hi, abs=1e-9)
            assert match[epoch]["n_samples"] == N

    # outputs exist where the contract says; inputs untouched
    out_dir = root / "analysis"
    for name in ("report.md", "report.html", "summary.json", "tables/runs.csv", "data/eval_samples.parquet"):
        assert (out_dir / name).is_file(), name
    after = {k: v for k, v in _hash_tree(root).items() if not k.startswith("analysis/") and "analyze-experiment.log" not in k}
    assert after == _hash_tree(done.pristine)


def test_eval_value_matches_inspect_reader(analysed):
    """One accuracy cross-checked against inspect-ai's own reader of the same log."""
    done = analysed("mid2026", N)
    root = done.root
    assert done.exit_code == 0
    summary = json.loads(done.json)
    run = next(r for r in summary["runs"] if r["name"].endswith("rank16_lr1e-4"))
    ev = next(e for e in run["evals"] if e["scorer"] == "match" and e["epoch"] == 1)
    log = read_eval_log(str(root / ev["log"]))
    scores = [s.scores["match"].value for s in log.samples]
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(sum(v == "C" for v in scores) / len(scores), abs=1e-12)
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(log.results.scores[0].metrics["accuracy"].value)


def test_report_sections_and_run_log(analysed):
    done = analysed("early2026", N)
    root = done.root
    assert done.exit_code == 0, done.stderr
    md = (root / "analysis" / "report.md").read_text()
    headings = [h for h in re.findall(r"^## (.+)$", md, flags=re.M)]
    assert headings == [  # the story, then the appendix
        "Bottom Line", "Question and Hypothesis", "Key Findings", "Recommendations", "Next Steps",
        "Overview", "Training Results", "Evaluation Results", "Statistical Summary", "Retrospective", "Data Quality",
    ]
    assert "![Training loss](plots/loss.png)" in md
    assert (root / "analysis" / "plots" / "loss.png").stat().st_size > 1000
    # early 2026 keeps skill logs in logs/: our log goes there, in the documented format
    log = (root / "logs" / "analyze-experiment.log").read_text()
    assert not (root / "analyze-experiment.log").exists()
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] READ_DESIGN: ", log, flags=re.M)
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] WRITE: Report written to ", log, flags=re.M)
    assert "  Details: " in log and "  Result: " in log
    # links from the report to logs resolve from the report's folder
    links = re.findall(r"\]\((\.\./[^)]+\.eval)\)", md)
    assert links and all((root / "analysis" / link).resolve().is_file() for link in links)


def test_terminal_summary_names_best_run_and_report(analysed):
    done = analysed("mid2026", N)
    root, out = done.root, done.stdout
    assert done.exit_code == 0
    assert "best on capitalization/match: " in out
    assert "no clear winner" in out or "clear winner" in out
    assert f"Report: {root / 'analysis' / 'report.md'}" in out
    assert "Dig deeper" in out


def test_out_option_and_read_only_experiment(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    target = tmp_path / "elsewhere"
    code, _, err = _run_cli([str(root), "--out", str(target), "--quiet", "--format", "html"])  # html: no PNGs to draw
    assert code == 0, err
    assert (target / "report.html").is_file()
    assert not (root / "analysis").exists()


def test_usage_errors_exit_2(tmp_path):
    code, _, err = _run_cli([str(tmp_path / "does-not-exist")])
    assert code == 2
    assert "is not a directory" in err


def test_nothing_to_analyse_exits_1(tmp_path):
    (tmp_path / "empty-run").mkdir()
    code, _, err = _run_cli([str(tmp_path)])
    assert code == 1
    assert "Nothing to analyse" in err
    assert not (tmp_path / "analysis").exists()


def test_without_design_document_runs_are_still_analysed(example_copy):
    root = example_copy("early2026", N)
    (root / "experiment_summary.yaml").unlink()
    code, out, err = _run_cli([str(root), "--json", "--quiet"])
    assert code == 0, err
    summary = json.loads(out)
    names = {r["name"]: r for r in summary["runs"]}
    assert sorted(names) == sorted(r.name for r in RUNS)
    # parameters come from the run names
    assert names["Llama-3.2-1B-Instruct_rank16_lr1e-4"]["params"] == {"lora_rank": 16, "learning_rate": 1e-4}
    md = (root / "analysis" / "report.md").read_text()
    assert "No design document" in md


def test_strict_turns_warnings_into_exit_3(example_copy):
    root = example_copy("mid2026", N)
    broken = root / "Llama-3.2-1B-Instruct_base" / "eval" / "capitalization" / "logs" / "broken.eval"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = _run_cli([str(root), "--quiet", "--strict", "--format", "html"])  # html: no PNGs to draw
    assert "--strict" in err
    assert code == 3
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    files = [w["file"] for w in summary["warnings"]]
    assert "Llama-3.2-1B-Instruct_base/eval/capitalization/logs/broken.eval" in files


def test_console_script_and_module_entry_points(example_copy):
    root = example_copy("oct2025", N)
    version = subprocess.run(
        [sys.executable, "-m", "analyze_experiment", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"analyze-experiment, version {analyze_experiment.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "analyze_experiment", str(root), "--format", "html"],  # html: no PNGs to draw
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (root / "analysis" / "report.html").is_file()
    assert not (root / "analysis" / "report.md").exists()


def test_export_csv_to_stdout(example):
    """One stream holds one valid CSV: --table picks it; without it, a usage error lists the tables."""
    root = example("mid2026", N)
    result = CliRunner().invoke(export, [str(root), "--format", "csv", "--task", "capitalization", "--table", "runs"])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(io.StringIO(result.stdout))
    assert list(df.columns[:3]) == ["run", "type", "model"]
    assert "Llama-3.2-1B-Instruct_rank4_lr1e-5" in set(df["run"])
    result = CliRunner().invoke(export, [str(root), "--format", "csv"])
    assert result.exit_code == 2 and "--table NAME" in result.output and "intervals" in result.output
    result = CliRunner().invoke(export, [str(root), "--format", "csv", "--table", "nosuch"])
    assert result.exit_code == 2 and "no table 'nosuch'" in result.output
    md = CliRunner().invoke(export, [str(root), "--format", "md", "--table", "comparisons"])
    assert md.exit_code == 0, md.output
    header = md.stdout.splitlines()[3]
    assert header.startswith("| Task") and "| Scorer" in header and "| Metric" in header


def test_help_documents_every_option():
    result = CliRunner().invoke(analyze, ["--help"])
    assert result.exit_code == 0
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for opt in re.findall(r"(--[a-z][a-z-]+)", result.output):
        if opt in ("--help",):
            continue
        assert opt in readme, f"{opt} is not documented in the README"


def test_claims_registry_and_confirmatory_flag(example_copy):
    root = example_copy("mid2026", N)
    code, out, err = _run_cli([str(root), "--json", "--quiet", "--format", "md", "--confirmatory", "all",
                               "--margin", "0.02"])
    assert code == 0, err
    summary = json.loads(out)
    jsonschema.validate(summary, SCHEMA)
    fams = {f["family"]: f for f in summary["families"]}
    assert summary["claims"] and all(c["family"] in fams for c in summary["claims"] if c["family"])
    assert {e["margin"] for e in summary["equivalence"]} == {0.02}
    assert all(f["confirmatory"] for f in fams.values())
    report = (root / "analysis" / "report.md").read_text()
    report = re.sub(r"\[([^\]]*)\]\(#[^)]*\)", r"\1", report)  # the bottom line's numbers link to their tables
    for c in summary["claims"]:
        assert c["text"].replace("|", "\\|")[:60] in report or c["text"][:60] in report
