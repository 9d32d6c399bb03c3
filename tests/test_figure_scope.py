"""report.md shows the per-metric figures of the primary metric only (issue 15).

On the bundled example (two scorers, ``match`` primary, ``includes`` secondary; real inspect-ai
logs) report.md shows ``final``, ``heatmap``, ``samples``, ``pareto`` and ``effects`` of
``match`` alone, the secondary metric gets one line per section pointing to report.html, its
PNGs are not written, and report.html still carries an interactive chart of both metrics. A
single-scorer sweep (the run-health logs) keeps every figure.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from analyze_experiment.report.figure_scope import PER_METRIC
from cli_helpers import cli

PRIMARY, SECONDARY = "capitalization_match_accuracy", "capitalization_includes_accuracy"
TT = Path(__file__).parent / "fixtures" / "torchtune"
EV = Path(__file__).parent / "fixtures" / "evals" / "health"
POINTER = "is not the primary metric: its figures"


def images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(plots/([^)]+)\.png\)", md)


def test_two_scorer_report_md_shows_the_primary_metrics_figures_only(analysed):
    a = analysed()
    md = (a.out / "report.md").read_text(encoding="utf-8")
    html = (a.out / "report.html").read_text(encoding="utf-8")
    # the primary metric is the one the bottom line speaks of
    bottom = md.split("## Bottom Line", 1)[1].split("\n## ", 1)[0]
    assert "Best on capitalization (match accuracy)" in bottom
    shown = images(md)
    assert [n for n in shown if n.endswith(PRIMARY)] == [f"{k}_{PRIMARY}" for k in PER_METRIC]
    assert not [n for n in shown if SECONDARY in n]
    assert shown[:4] == ["loss", "lr", "throughput", "gpu"]  # the training figures are not per metric
    # written: exactly the PNGs report.md shows; none of the secondary metric
    pngs = sorted(p.stem for p in (a.out / "plots").glob("*.png"))
    assert pngs == sorted(shown)
    assert not list((a.out / "plots").glob(f"*{SECONDARY}*"))
    # one line per section where the secondary metric's figures were, naming report.html
    lines = [line for line in md.splitlines() if POINTER in line]
    assert lines == [
        "*capitalization · includes · accuracy is not the primary metric: its figures (per run, over the sweep, "
        "per sample, against training cost) are in report.html (choose it in the metric switch); to draw one as a "
        "file: analyze-experiment plot DIR final --task capitalization --scorer includes --metric accuracy.*",
        "*capitalization · includes · accuracy is not the primary metric: its figures (main effects) are in "
        "report.html (choose it in the metric switch); to draw one as a file: analyze-experiment plot DIR effects "
        "--task capitalization --scorer includes --metric accuracy.*",
    ]
    evaluation = md.split("## Evaluation Results", 1)[1].split("\n## ", 1)[0]
    assert evaluation.index(lines[0]) < evaluation.index(f"plots/final_{PRIMARY}.png")
    # its tables stay: the flipped samples of includes, the includes rows of the evaluation table
    assert "— capitalization (includes): " in evaluation and "| includes |" in evaluation
    # report.html: an interactive chart of every per-metric figure of both metrics, no image
    for slug in (PRIMARY, SECONDARY):
        for kind in ("final", "heatmap", "pareto", "effects"):
            assert f'<script type="application/json" id="fig-{kind}_{slug}-data">' in html, (kind, slug)
    assert html.count('data-scorer="includes"') >= 5
    assert "data:image/png" not in html and "plots/final_" not in html


def single_scorer_sweep(root: Path) -> Path:
    """alpha (65%) and bravo (55%): completed torchtune runs, one inspect-ai scorer each."""
    for run, log in (("alpha", "acc65"), ("bravo", "acc55")):
        d = root / run
        (d / "eval" / "logs").mkdir(parents=True)
        shutil.copy(TT / "local_v0.6.1_lora_cpu_slurm_completed.out", d / "slurm-1.out")
        shutil.copy(TT / "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt", d / "log_1795713941.txt")
        shutil.copy(EV / f"{log}.eval", d / "eval" / "logs" / f"{log}.eval")
    return root


def test_single_scorer_sweep_keeps_all_its_figures(tmp_path):
    root = single_scorer_sweep(tmp_path / "exp")
    out = tmp_path / "out"
    code, _, _ = cli(root, "--out", out, "--no-cache")
    assert code == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert POINTER not in md
    shown = images(md)
    per_metric = [n for n in shown if n.split("_", 1)[0] in PER_METRIC]
    assert "final_capitalization" in per_metric and "pareto_capitalization" in per_metric, shown
    assert sorted(p.stem for p in (out / "plots").glob("*.png")) == sorted(shown)
