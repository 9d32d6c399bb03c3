"""The bundled example experiment: a realistic sweep to try the tool on (``make demo``).

A LoRA rank {4, 16} × learning rate {1e-5, 1e-4} sweep of Llama-3.2-1B-Instruct
(4 fine-tuned runs, 2 epochs each, evaluated at epochs 0 and 1) plus a base-model
control, laid out on disk exactly as one of the three eras of the cluster workflow left
it (DESIGN.md §1):

* ``mid2026`` (the demo): ``experiment_summary.yaml``; ``<run>/artifacts/slurm-<job>.out``,
  ``log_<ts>.txt`` (DiskLogger) and ``gpu_metrics.csv``;
  ``<run>/eval/<task>_epoch<N>/logs/*.eval``, the control in ``<run>/eval/<task>/logs/``.
* ``early2026``: ``experiment_summary.yaml`` and a ``logs/`` folder of skill logs;
  ``<run>/slurm-<job>.out``; ``<run>/eval/logs/*.eval``.
* ``oct2025``: ``experiment_summary.md``; ``<run>/slurm-<job>.out``;
  ``<run>/eval/logs/*.eval`` whose model is always ``hf/local`` (the epoch is only in
  ``model_args.model_path`` and the file name).

Training output is real captured torchtune output; evaluation logs are real inspect-ai
logs (``mockllm/model``, offline) carrying planted accuracies. ``docs/demo.md`` states
the planted truth and exactly how every file was made.

Example::

    python -m analyze_experiment.demo demo-experiment
    analyze-experiment demo-experiment
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from analyze_experiment._version import __version__
from analyze_experiment.demo.design import (
    ERAS,
    SCRATCH,
    TASK_SCRIPT,
    checkpoint_dir,
    dataset_label,
    dataset_path,
    experiment_dir,
    skill_logs,
    summary_markdown,
    summary_yaml,
)
from analyze_experiment.demo.evals import CellLog, write_cell_log
from analyze_experiment.demo.plan import MODEL, RUNS, TASK, DemoRun, completions, make_words
from analyze_experiment.demo.training import gpu_metrics_csv, render_capture

LAYOUTS = ("mid2026", "early2026", "oct2025")
MARKER = ".analyze-experiment-demo"
"""File that marks a directory as a built example (so a rebuild may replace it)."""
MIN_SAMPLES = 10

__all__ = ["LAYOUTS", "MARKER", "build_example", "is_example", "main"]


def is_example(path: Path) -> bool:
    """True when ``path`` is a directory this module built (it holds the marker file)."""
    return (path / MARKER).is_file()


def build_example(dest: Path, *, layout: str = "mid2026", n_samples: int = 200, seed: int = 0) -> Path:
    """Build the example experiment in ``dest`` and return ``dest``.

    The directory is built next to ``dest`` and moved into place when complete, so a
    failure never leaves half an experiment. A previous example in ``dest`` is replaced; what
    it holds that the builder did not write (an ``analysis/`` folder, notes) is kept.

    Args:
        dest: Directory to create (absent, empty, or a previous example).
        layout: ``mid2026`` (the demo), ``early2026`` or ``oct2025``.
        n_samples: Evaluation samples per log (at least 10).
        seed: Seed for the words, which samples each cell gets right, and ids.

    Returns:
        ``dest``.

    Raises:
        ValueError: unknown ``layout`` or too few samples.
        FileExistsError: ``dest`` is a file, or a non-empty directory that is not an example.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if n_samples < MIN_SAMPLES:
        raise ValueError(f"n_samples must be at least {MIN_SAMPLES}, got {n_samples}")
    dest = Path(dest)
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # mkdir (not mkdtemp) so the directory gets the user's usual permissions, not 0700
    tmp = dest.parent / f".{dest.name}.building-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        _build_into(tmp, layout=layout, n_samples=n_samples, seed=seed)
        _check_replaceable(dest)
        if dest.exists():
            _carry_over(dest, tmp, _built_files(dest))
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _built_files(root: Path) -> set[str]:
    """The relative paths the builder wrote into ``root`` (listed in its marker)."""
    try:
        files = json.loads((root / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(f) for f in files} if isinstance(files, list) else set()


def _carry_over(old: Path, new: Path, built: set[str], rel: str = "") -> None:
    """Move every file of the previous example that its build did not write into ``new``.

    A previous example may hold things the builder never wrote: the ``analysis/`` folder of an
    earlier ``analyze-experiment`` run (with files a user added to it) or a user's notes.
    Only the builder's own files (``built``, from the old marker) are replaced; the rest moves
    into the new example unchanged (where the new build has a file of the same name, the new
    build's file wins and the old one is kept beside it as ``<name>.previous``).
    """
    for entry in old.iterdir():
        path = f"{rel}{entry.name}"
        if path in built or (not rel and entry.name == MARKER):
            continue
        target = new / entry.name
        if entry.is_dir() and not entry.is_symlink() and not (target.exists() and not target.is_dir()):
            if any(b.startswith(f"{path}/") for b in built):  # a folder the build wrote into
                _carry_over(entry, target, built, f"{path}/")
                continue
            if target.is_dir():
                _carry_over(entry, target, built, f"{path}/")
                continue
        if target.exists() or target.is_symlink():
            target = new / f"{entry.name}.previous"
        target.parent.mkdir(parents=True, exist_ok=True)
        entry.rename(target)


def _check_replaceable(dest: Path) -> None:
    if dest.is_file() or dest.is_symlink():
        raise FileExistsError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not is_example(dest):
        raise FileExistsError(f"{dest} is not empty and is not a previously built example; not touching it")


def _build_into(root: Path, *, layout: str, n_samples: int, seed: int) -> None:
    words = tuple(make_words(n_samples, seed))
    outputs = completions(list(words), seed)
    rng = np.random.default_rng([seed, 4, LAYOUTS.index(layout)])

    if layout == "oct2025":
        (root / "experiment_summary.md").write_text(summary_markdown(n_samples), encoding="utf-8")
    else:
        (root / "experiment_summary.yaml").write_text(summary_yaml(layout, n_samples), encoding="utf-8")
    if layout == "early2026":
        for name, text in skill_logs(layout).items():
            _write(root / "logs" / name, text.encode())

    for run in RUNS:
        run_dir = root / run.name
        if not run.is_control:
            _write_training(run_dir, run, layout, rng)
        for epoch in run.epochs:
            cell = _cell(run, epoch, layout, n_samples)
            write_cell_log(words, outputs[(run.name, epoch)], cell, _eval_dir(run_dir, epoch, layout), rng)

    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    marker = {"layout": layout, "n_samples": n_samples, "seed": seed, "version": __version__, "files": files}
    (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_training(run_dir: Path, run: DemoRun, layout: str, rng: np.random.Generator) -> None:
    """The SLURM file (and, in mid-2026, the DiskLogger file and GPU metrics) of one run."""
    assert run.capture is not None and run.lora_rank is not None and run.lr is not None
    cap = render_capture(run.capture, lora_rank=run.lora_rank, lr=run.lr,
                         output_dir=checkpoint_dir(layout, run.name))
    where = run_dir / "artifacts" if layout == "mid2026" else run_dir
    _write(where / f"slurm-{run.job_id}.out", cap.slurm)
    if layout == "mid2026":
        _write(where / cap.disklogger_name, cap.disklogger)
        csv = gpu_metrics_csv(cap.started_at, lora_rank=run.lora_rank, rng=rng)
        _write(where / "gpu_metrics.csv", csv.encode())


def _eval_dir(run_dir: Path, epoch: int | None, layout: str) -> Path:
    if layout != "mid2026":
        return run_dir / "eval" / "logs"
    cell = TASK if epoch is None else f"{TASK}_epoch{epoch}"
    return run_dir / "eval" / cell / "logs"


def _cell(run: DemoRun, epoch: int | None, layout: str, n_samples: int) -> CellLog:
    """What the workflow of ``layout``'s era wrote into the header of this cell's log."""
    exp = experiment_dir(layout)
    if epoch is None:
        model_path = f"{SCRATCH}/pretrained-llms/{MODEL}"
    elif layout == "mid2026":
        model_path = f"{exp}/{run.name}/artifacts/epoch_{epoch}"
    else:
        model_path = f"{checkpoint_dir(layout, run.name)}/epoch_{epoch}"
    task_args: dict[str, Any] = {
        "data_path": dataset_path(n_samples),
        "config_path": f"{exp}/{run.name}/setup_finetune.yaml",
        "split": "test",
        "temperature": 1e-7,
        "max_tokens": 20,
        "vis_label": run.vis_label,
        "use_chat_template": True,
    }
    common: dict[str, Any] = {
        "dataset_name": dataset_label(n_samples),
        "dataset_location": dataset_path(n_samples),
        "task_file": TASK_SCRIPT,
    }
    if layout == "oct2025":
        del task_args["vis_label"]
        stem = "{created}_{task}_{id}" if epoch is None else "{created}_{task}_epoch" + str(epoch) + "_{id}"
        return CellLog(task_name=TASK, model="hf/local", model_args={"model_path": model_path},
                       task_args=task_args, metadata=None, file_stem=stem, **common)
    finetuned_key = "is_finetuned" if layout == "mid2026" else "finetuned"
    metadata: dict[str, Any] = {finetuned_key: not run.is_control}
    if epoch is not None:
        metadata = {"epoch": epoch, **metadata}
    model = f"hf/{run.name}" if epoch is None else f"hf/{run.name}_epoch_{epoch}"
    return CellLog(task_name=f"{TASK}_{run.vis_label}", model=model, model_args={"model_path": model_path},
                   task_args=task_args, metadata=metadata, **common)


def main(argv: list[str] | None = None) -> int:
    """``python -m analyze_experiment.demo DEST``: build the example and say where it is."""
    parser = argparse.ArgumentParser(
        prog="python -m analyze_experiment.demo",
        description="Build the bundled example experiment (a LoRA rank x learning-rate sweep "
        "with real torchtune output and inspect-ai logs).",
        epilog="Example: python -m analyze_experiment.demo demo-experiment && analyze-experiment demo-experiment",
    )
    parser.add_argument("dest", type=Path, help="directory to create (refused if it holds anything else)")
    parser.add_argument("--layout", choices=LAYOUTS, default="mid2026",
                        help="on-disk layout of the era to imitate (default: mid2026)")
    parser.add_argument("--samples", type=int, default=200, help="evaluation samples per log (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the planted data (default: 0)")
    args = parser.parse_args(argv)
    try:
        dest = build_example(args.dest, layout=args.layout, n_samples=args.samples, seed=args.seed)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_logs = sum(1 for _ in dest.rglob("*.eval"))
    print(f"Built the example experiment ({args.layout} layout, {len(RUNS)} runs, {n_logs} evaluation logs, "
          f"{ERAS[args.layout].experiment}) in {dest.resolve()}")
    print(f"Analyse it with: analyze-experiment {dest}")
    return 0

