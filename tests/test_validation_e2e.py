"""Validation during training, end to end through the CLI, on the real validating captures.

The bundled example gets two runs' training output replaced by the captures of
``tests/fixtures/torchtune/local_v0.6.1_lora_cpu_slurm_val*`` (README there): one run
validated and kept improving, the other overfitted. A second copy keeps only the SLURM files,
so the validation loss can come from the printed ``Validation loss:`` lines alone. Every value
checked is recomputed here from the fixture files with plain string parsing.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from analyze_experiment.cli import main

FIX = Path(__file__).parent / "fixtures" / "torchtune"
VAL_RUN = "Llama-3.2-1B-Instruct_rank4_lr1e-4"
OVERFIT_RUN = "Llama-3.2-1B-Instruct_rank16_lr1e-4"
CAPTURES = {VAL_RUN: ("local_v0.6.1_lora_cpu_slurm_val", 3, "log_1796112526.txt"),
            OVERFIT_RUN: ("local_v0.6.1_lora_cpu_slurm_val_overfit", 5, "log_1796112657.txt")}


def disk_values(stem: str) -> tuple[dict[int, float], dict[int, float]]:
    """(training loss by step, val_loss by step) from a DiskLogger fixture."""
    loss, val = {}, {}
    for line in (FIX / f"{stem}.disklogger.txt").read_text().splitlines():
        m = re.match(r"Step (\d+) \| (\w+):(\S+)", line)
        if m:
            (val if m[2] == "val_loss" else loss)[int(m[1])] = float(m[3])
    return loss, val


def printed_values(stem: str) -> list[float]:
    return [float(x) for x in re.findall(rb"Validation loss: ([0-9.]+)", (FIX / f"{stem}.out").read_bytes())]


def expected(stem: str, val: dict[int, float]) -> dict[str, object]:
    """The run's validation summary, computed independently of the library."""
    loss, _ = disk_values(stem)
    steps = sorted(val)
    windows = {}
    prev = 0
    for s in steps:
        w = [loss[i] for i in range(prev + 1, s + 1)]
        windows[s] = sum(w) / len(w)
        prev = s
    best = min(steps, key=lambda s: val[s])
    after = len(steps) - 1 - steps.index(best)
    return {"evaluations": len(steps), "final_loss": val[steps[-1]], "best_loss": val[best], "best_step": best,
            "gap_to_training": val[steps[-1]] - windows[steps[-1]],
            "overfitting": after >= 3 and windows[steps[-1]] < windows[best], "windows": windows}


def _build(example, dest: Path, *, disk: bool) -> Path:
    shutil.copytree(example("mid2026"), dest, symlinks=True)
    for run, (stem, job, disk_name) in CAPTURES.items():
        art = dest / run / "artifacts"
        for p in [*art.glob("slurm-*.out"), *art.glob("log_*.txt")]:
            p.unlink()
        shutil.copy(FIX / f"{stem}.out", art / f"slurm-{job}.out")
        if disk:
            shutil.copy(FIX / f"{stem}.disklogger.txt", art / disk_name)
    return dest


@pytest.fixture(scope="module", params=["disklogger", "slurm"])
def analysed(request, example, tmp_path_factory):
    disk = request.param == "disklogger"
    root = _build(example, tmp_path_factory.mktemp(f"val-{request.param}") / "exp", disk=disk)
    with pytest.raises(SystemExit) as done:
        main([str(root), "--quiet", "--svg"])
    assert done.value.code == 0
    out = root / "analysis"
    return request.param, out, json.loads((out / "summary.json").read_text())


def _run(summary: dict, name: str) -> dict:
    return next(r for r in summary["runs"] if r["name"] == name)


def test_validation_summary_has_exact_values_from_the_files(analysed):
    source, _out, summary = analysed
    for run, (stem, _job, _disk) in CAPTURES.items():
        _, disk_val = disk_values(stem)
        if source == "disklogger":
            vals = disk_val
        else:  # the printed lines, at the DiskLogger's steps (same order), 4 decimals
            vals = dict(zip(sorted(disk_val), printed_values(stem), strict=True))
            assert all(abs(vals[s] - disk_val[s]) <= 5e-5 for s in vals)
        exp = expected(stem, vals)
        got = _run(summary, run)["training"]["validation"]
        assert got["source"] == source
        assert got["evaluations"] == exp["evaluations"]
        assert got["final_loss"] == exp["final_loss"]
        assert got["best_loss"] == exp["best_loss"]
        assert got["best_step"] == exp["best_step"]
        assert got["gap_to_training"] == pytest.approx(exp["gap_to_training"], abs=1e-12)
        assert got["overfitting"] is exp["overfitting"]
        assert got["patience"] == 3
    # the two captures' verdicts, stated outright so the rule cannot drift unnoticed
    assert _run(summary, OVERFIT_RUN)["training"]["validation"]["overfitting"] is True
    assert _run(summary, VAL_RUN)["training"]["validation"]["overfitting"] is False
    assert _run(summary, OVERFIT_RUN)["training"]["validation"]["best_step"] == 16
    others = [r for r in summary["runs"] if r["name"] not in CAPTURES and r["training"]]
    assert others and all(r["training"]["validation"] is None for r in others)


def test_overfitting_finding_names_the_flagged_run_only(analysed):
    source, out, _summary = analysed
    report = (out / "report.md").read_text()
    stem = CAPTURES[OVERFIT_RUN][0]
    _, disk_val = disk_values(stem)
    exp = expected(stem, disk_val)
    assert f"{OVERFIT_RUN} overfits: its validation loss was lowest at step 16" in report
    assert f"{VAL_RUN} overfits" not in report
    w = exp["windows"]
    assert f"training loss fell from {w[16]:.4f} to {w[32]:.4f}" in report
    assert (round(w[16], 4), round(w[32], 4)) == (3.4545, 3.3891)  # the figures docs/training.md quotes
    assert "val loss (final / best @ step)" in report
    last = printed_values(stem)[-1] if source == "slurm" else disk_val[32]
    assert f"{last:.4f} / {min(disk_val.values()) if source == 'disklogger' else 4.5735:.4f} @ 16" in report


def test_validation_plotted_beside_training_loss(analysed):
    _source, out, _summary = analysed
    assert (out / "plots" / "validation.png").stat().st_size > 0
    svg = (out / "plots" / "validation.svg").read_text()
    assert f"{OVERFIT_RUN} (overfitting)" in svg and VAL_RUN in svg
    html = (out / "report.html").read_text()
    assert "Validation and training loss" in html
    assert f"{OVERFIT_RUN} validation (overfitting)" in html
