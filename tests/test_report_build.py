"""The report's evaluation table when a log has no per-sample scores."""

from __future__ import annotations

from pathlib import Path

from analyze_experiment import tables
from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Design, Experiment
from analyze_experiment.report.build import evaluation_table


def test_metrics_without_intervals_share_one_row_per_candidate():
    scores = tables.frame(tables.EVAL_SCORES, [
        {"run": "r1", "task": "t", "epoch": 0.0, "scorer": "match", "metric": "accuracy", "value": 0.8,
         "n": 50, "log": "r1/eval/logs/a.eval"},
        {"run": "r1", "task": "t", "epoch": 0.0, "scorer": "match", "metric": "stderr", "value": 0.05,
         "n": 50, "log": "r1/eval/logs/a.eval"},
        {"run": "r1", "task": "t", "epoch": 0.0, "scorer": "match", "metric": "ci_wilson/lower", "value": 0.67,
         "n": 50, "log": "r1/eval/logs/a.eval"},
    ])
    exp = Experiment(root=Path("/x"), layout="oct2025", design=Design(name="e"), has_design_doc=False,
                     eval_scores=scores)
    table = evaluation_table(exp, Analysis(), link_prefix="..")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["accuracy (from log)"] == "0.800"
    assert row["ci_wilson/lower (from log)"] == "0.670"
    assert row["n"] == "50"
    assert row["log_path"] == "../r1/eval/logs/a.eval"
    assert "stderr (from log)" not in table.columns
