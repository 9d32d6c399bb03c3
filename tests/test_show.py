"""``analyze-experiment show``: runs × changed parameters × status × primary metrics."""

from __future__ import annotations

import io

import pandas as pd
from click.testing import CliRunner

from analyze_experiment import analyze, load
from analyze_experiment.cli import main, show_cmd
from analyze_experiment.show import runs_overview


def test_csv_has_changed_params_status_and_each_runs_best_checkpoint(example):
    root = example("mid2026", 40)
    r = CliRunner().invoke(show_cmd, [str(root), "--csv"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(io.StringIO(r.stdout), dtype=str, keep_default_na=False)
    assert list(df.columns[:4]) == ["run", "type", "lora_rank", "learning_rate"]
    assert "epochs" not in df.columns and "batch_size" not in df.columns  # the same for every run
    exp = load(root)
    a = analyze(exp)
    iv = a.intervals[(a.intervals["scorer"] == "match") & (a.intervals["metric"] == "accuracy")]
    for run, g in iv.groupby("run"):
        cell = df.loc[df["run"] == run, "match accuracy ↑"].iloc[0]
        assert cell.startswith(f"{g['value'].max():.3f}")
    best = next(b for b in a.best if b.scorer == "match")
    starred = df.loc[df["match accuracy ↑"].str.endswith("★"), "run"].tolist()
    assert starred == [best.run]
    done = df[df["type"] == "fine-tuned"]
    assert set(done["status"]) == {"completed"} and all(s.endswith("/16") for s in done["steps"])


def test_failed_runs_are_marked(example):
    exp = load(example("mid2026", 40))
    a = analyze(exp)
    run = exp.runs.loc[exp.runs["type"] == "fine-tuned", "run"].iloc[0]
    a.failed_runs = pd.DataFrame({"run": [run], "status": ["diverged"]})
    table = runs_overview(exp, a)
    assert table.loc[table["run"] == run, "status"].iloc[0] == "FAILED: diverged"


def test_md_table_and_entry_point(example, capsys):
    root = example("mid2026", 40)
    try:
        main(["show", str(root), "--md"])
    except SystemExit as e:
        assert e.code in (0, None)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("| run") and "| lora_rank" in lines[0]
    assert len(lines) == 2 + 5  # header, rule, five runs


def test_nothing_to_show(tmp_path):
    r = CliRunner().invoke(show_cmd, [str(tmp_path)])
    assert r.exit_code == 1 and "Nothing to show" in r.output
