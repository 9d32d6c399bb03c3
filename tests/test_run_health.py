"""Run health gates inference (issue 11): a run whose training failed is listed first, never
best or production, and left out of every estimate unless ``--include-failed``.

The sweeps are built here from real captured torchtune 0.6.1 output under Slurm
(``tests/fixtures/torchtune``: NaN loss from step 5, time limit at 171 of 16,000 steps,
scancel at 67, a torchrun crash) and real inspect-ai logs (``tests/fixtures/evals/health``,
made by ``make_health_logs.py`` there). The failed run's checkpoint scores 85%, the completed
runs 65% and 55%: without the gate the failed run would be best.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analyze_experiment.conclude import analyze as conclude
from analyze_experiment.experiment import Options
from cli_helpers import cli
from stats_synth import grid, make_experiment

TT = Path(__file__).parent / "fixtures" / "torchtune"
EV = Path(__file__).parent / "fixtures" / "evals" / "health"
CAPTURES = {  # name -> (SLURM output, DiskLogger file or None, the name the SLURM file gives it)
    "completed": ("local_v0.6.1_lora_cpu_slurm_completed.out", "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt",
                  "log_1795713941.txt"),
    "nan": ("local_v0.6.1_lora_cpu_slurm_nan.out", "local_v0.6.1_lora_cpu_slurm_nan.disklogger.txt",
            "log_1795714051.txt"),
    "timeout": ("local_v0.6.1_lora_cpu_slurm_timeout.out", "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt",
                "log_1795713954.txt"),
    "scancel": ("local_v0.6.1_lora_cpu_slurm_scancel.out", None, None),
    "torchrun": ("local_v0.6.1_full_distributed_cpu_torchrun_failure.out", None, None),
}


def sweep(root: Path, bad: str | None) -> Path:
    """alpha (completed, 65%), bravo (completed, 55%) and — unless ``bad`` is None — charlie,
    trained as the ``bad`` capture and evaluated at 85%."""
    runs = {"alpha": ("completed", "acc65"), "bravo": ("completed", "acc55")}
    if bad is not None:
        runs["charlie"] = (bad, "acc85")
    for run, (capture, log) in runs.items():
        out, disk, disk_name = CAPTURES[capture]
        d = root / run
        (d / "eval" / "logs").mkdir(parents=True)
        shutil.copy(TT / out, d / "slurm-1.out")
        if disk:
            shutil.copy(TT / disk, d / disk_name)
        shutil.copy(EV / f"{log}.eval", d / "eval" / "logs" / f"{log}.eval")
    return root


def sentences(md: str) -> list[str]:
    return [line[2:] for line in md.splitlines() if line.startswith("- ")]


def section_titles(md: str) -> list[str]:
    return re.findall(r"^## (.+)$", md, flags=re.M)


EXPECTED = {  # capture -> (status, first bad step, steps, planned steps, evidence starts with)
    "nan": ("diverged", 5, 8, 8, "loss is not finite (NaN/inf) from step 5 (last step 8)"),
    "timeout": ("timeout", 171, 171, 16000, "slurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT"),
    "scancel": ("cancelled", 67, 67, 16000, "slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT"),
    "torchrun": ("failed", None, None, None, "[rank0]: ValueError: Logging memory stats is not supported"),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """capture -> (exit code, stdout, report.md, report.html, summary, out folder)."""
    done = {}

    def get(bad: str, *extra: str):
        key = (bad, extra)
        if key not in done:
            base = tmp_path_factory.mktemp(f"health-{bad}")
            root = sweep(base / "exp", bad)
            out = base / "out"
            code, stdout, _ = cli(root, "--out", out, *extra)
            done[key] = (code, stdout, (out / "report.md").read_text(), (out / "report.html").read_text(),
                         json.loads((out / "summary.json").read_text()), out)
        return done[key]

    return get


@pytest.mark.parametrize("bad", ["nan", "timeout", "scancel", "torchrun"])
def test_failed_run_that_would_be_best_is_listed_first_and_never_best(reports, bad):
    code, stdout, md, html, summary, out = reports(bad)
    status, step, steps, planned, evidence = EXPECTED[bad]
    assert code == 0
    # summary.json: the failed run, its first bad step and why it is out
    (fr,) = summary["failed_runs"]
    assert (fr["run"], fr["status"], fr["step"], fr["steps"], fr["planned_steps"], fr["excluded"]) == (
        "charlie", status, step, steps, planned, True)
    assert fr["evidence"].startswith(evidence) and fr["file"] == "charlie/slurm-1.out"
    # never best, never production: the best completed run is
    assert [b["run"] for b in summary["best_by_task"]] == ["alpha"]
    prod = [s for s in sentences(md) if s.startswith("Production config")]
    assert prod and all("charlie" not in s for s in prod) and "alpha" in prod[0]
    # listed first: report (md and html) and terminal
    assert section_titles(md)[:2] == ["Bottom Line", "Failed Runs"]  # right after the bottom line, which names it
    bottom = md.split("## Bottom Line", 1)[1].split("\n## ", 1)[0]
    assert "- [1 run failed](#failed-runs): charlie (" in bottom and "never best, left out of every estimate" in bottom
    assert html.index('id="failed-runs"') < html.index('id="overview"')
    failed_line = next(i for i, line in enumerate(stdout.splitlines()) if "FAILED charlie" in line)
    best_line = next(i for i, line in enumerate(stdout.splitlines()) if line.strip().startswith("best on"))
    assert failed_line < best_line and status in stdout.splitlines()[failed_line]
    assert "best on capitalization/cip: alpha" in stdout
    # its evaluation stays in the tables, marked; it is out of every comparison and estimate
    iv = pd.read_csv(out / "tables" / "intervals.csv")
    assert iv.loc[iv["run"] == "charlie", "value"].tolist() == [pytest.approx(0.85)]
    fr_csv = pd.read_csv(out / "tables" / "failed_runs.csv")
    assert fr_csv[["run", "status"]].values.tolist() == [["charlie", status]]
    assert f"charlie (failed: {status})" in md
    comps = pd.read_csv(out / "tables" / "comparisons.csv")
    assert not (comps[["a", "b"]] == "charlie").any().any()
    assert "charlie" not in set(pd.read_csv(out / "tables" / "pareto.csv")["run"])
    assert all(r["run"] != "charlie" for r in summary["noninferiority"])
    # the one sentence that puts it above the best says why it is not the best
    above = [s for s in sentences(md) if s.startswith("On capitalization, charlie")]
    assert len(above) == 1 and "neither the best nor a production candidate" in above[0]
    if bad == "nan":
        assert "would rank first" in above[0] and "first non-finite loss at step 5" in above[0]
    # outside the Bottom Line and the Failed Runs section charlie is named only by that sentence, the
    # Key Findings' opening sentence and the Next Steps' re-run: never in a comparison, an effect or a pick
    body = md.split("## Failed Runs", 1)[1].split("\n## ", 1)[1]
    named = [s for s in sentences(body) if re.search(r"\bcharlie\b", s)]
    key = md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    assert sentences(key)[0].startswith("1 run failed during training: charlie (failed")
    assert "left out of the best, the production pick and every estimate below" in sentences(key)[0]
    nxt = md.split("## Next Steps", 1)[1].split("\n## ", 1)[0]
    (rerun,) = [s for s in sentences(nxt) if "charlie" in s]
    assert rerun.startswith("Re-run the failed runs")
    # the Retrospective counts what the failed run cost, and names it only there
    retro = md.split("## Retrospective", 1)[1].split("\n## ", 1)[0]
    (cost,) = [s for s in sentences(retro) if "charlie" in s]
    assert "went to runs that failed: charlie (" in cost
    assert sorted(named) == sorted([above[0], sentences(key)[0], rerun, cost])
    dq = md.split("## Data Quality", 1)[1]
    assert dq.lstrip().startswith(f"1 run failed during training — charlie ({status}) — and is left out")


@pytest.mark.parametrize(("bad", "done"), [("timeout", "171/16,000"), ("scancel", "67/16,000")])
def test_run_cut_short_is_best_so_far_only_with_how_far_it_got(reports, bad, done):
    _, _, md, _, _, _ = reports(bad)
    so_far = [s for s in sentences(md) if "best so far" in s]
    assert so_far, md
    assert all(f"did not finish ({done} steps)" in s for s in so_far)
    (failed,) = [s for s in sentences(md) if s.startswith("charlie ")]
    assert f"did not finish ({done} steps)" in failed


def test_include_failed_puts_it_back_and_the_report_says_so(reports):
    code, stdout, md, _, summary, _ = reports("timeout", "--include-failed")
    assert code == 0
    assert [b["run"] for b in summary["best_by_task"]] == ["charlie"]
    assert summary["failed_runs"][0]["excluded"] is False
    failed_section = md.split("## Failed Runs", 1)[1].split("\n## ", 1)[0]
    assert "--include-failed was given" in failed_section
    # every sentence naming the timed-out run says it did not finish; the best one says "best so far"
    named = [s for s in sentences(md.split("## Failed Runs", 1)[1].split("\n## ", 1)[1])
             if re.search(r"\bcharlie\b", s)]
    assert named and all("did not finish (171/16,000 steps)" in s for s in named)
    best = [s for s in named if "has the highest accuracy" in s]
    assert len(best) == 1 and "best so far" in best[0]
    key = md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    assert sentences(key)[0].startswith("1 run failed during training: charlie (failed: timeout; did not finish")
    assert "--include-failed keeps it in the choice of best and production and in every estimate" in sentences(key)[0]
    assert "(failed: timeout; did not finish (171/16,000 steps); best so far)" in stdout
    assert "included in every estimate (--include-failed)" in stdout


def test_strict_exits_3_when_a_run_failed_even_without_warnings(tmp_path):
    clean = sweep(tmp_path / "clean", None)
    code, _, err = cli(clean, "--out", tmp_path / "o1", "--format", "html", "--strict")
    assert code == 0, err
    failed = sweep(tmp_path / "failed", "timeout")
    code, _, err = cli(failed, "--out", tmp_path / "o2", "--format", "html", "--strict")
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert [w for w in summary["warnings"] if w["severity"] != "info"] == []
    assert code == 3 and "--strict: 1 warnings or failed runs" in err
    # the same verdict when the report is unchanged (cached) and the analysis is skipped
    code, stdout, _ = cli(failed, "--out", tmp_path / "o2", "--format", "html", "--strict")
    assert code == 3 and "Nothing changed" in stdout


# --- every estimate leaves failed runs out (API, synthetic sweep with known truth) --------------


def test_failed_run_is_out_of_effects_seeds_outliers_and_pareto_unless_included():
    accs, params = grid([4, 16], [1e-5, 1e-4], lambda r, lr: 0.6 + (0.2 if r == 16 and lr > 5e-5 else 0.0), seeds=2)
    exp = make_experiment(accs, params=params, n=120, seed=3, gpu_hours={r: 1.0 for r in accs})
    bad = "rank16_lr0.0001_seed0"
    exp.runs.loc[exp.runs["run"] == bad, ["status", "status_evidence", "steps", "planned_steps"]] = [
        "diverged", "loss is not finite (NaN/inf) from step 5 (last step 8)", 8, 8]
    a = conclude(exp, Options(n_permutations=500, n_bootstrap=200))
    assert a.failed_runs["run"].tolist() == [bad]
    assert bad in set(a.intervals["run"])
    assert all(b.run != bad for b in a.best)
    for table in (a.comparisons, a.pair_tests):
        assert not (table[["a", "b"]] == bad).any().any()
    assert bad not in set(a.pareto["run"])
    assert not any(bad in runs for runs in a.seeds["runs"])
    runs_per_level = {(r.variable, float(r.level)): int(r.n_runs) for r in a.effects.itertuples()}
    assert runs_per_level == {("learning_rate", 1e-5): 4, ("learning_rate", 1e-4): 3, ("lora_rank", 4.0): 4,
                              ("lora_rank", 16.0): 3}  # 4 runs per level, the failed one left out
    assert bad not in set(a.outliers.get("run", pd.Series(dtype=object)))
    with_failed = conclude(exp, Options(n_permutations=500, n_bootstrap=200, include_failed=True))
    assert with_failed.include_failed and with_failed.failed_runs["run"].tolist() == [bad]
    assert any(bad in runs for runs in with_failed.seeds["runs"])
    assert set(with_failed.effects["n_runs"]) == {4}
    assert [b.run for b in with_failed.best] == [bad]


def test_run_stopped_before_its_first_step_takes_planned_steps_from_the_config(tmp_path):
    """The time limit hit while the model was loading: no progress bar, so the steps per epoch
    come from the config's ``max_steps_per_epoch`` (the real timeout capture, cut before its
    first step, with the cap set to 5)."""
    from analyze_experiment.diagnostics import Diagnostics
    from analyze_experiment.ingest.training import find_training_files, read_training
    from analyze_experiment.stats.health import failed_runs

    raw = (TT / CAPTURES["timeout"][0]).read_bytes()
    head = raw[: raw.index(b"1|1|Loss")]
    cancel = raw[raw.rindex(b"slurmstepd"):]
    run = tmp_path / "charlie"
    run.mkdir()
    (run / "slurm-2.out").write_bytes(head.replace(b"max_steps_per_epoch: null", b"max_steps_per_epoch: 5") + b"\n"
                                      + cancel)
    res = read_training("charlie", find_training_files(run), Diagnostics(root=tmp_path), now=4_000_000_000.0)
    s = res.summary
    assert (s.status, s.steps, s.planned_epochs, s.planned_steps) == ("timeout", None, 2000, 10000)
    fr = failed_runs(pd.DataFrame([{"run": "charlie", **s.as_record()}]))
    assert fr["mark"].tolist() == ["failed: timeout; did not finish (0/10,000 steps)"]
