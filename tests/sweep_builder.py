"""Build small sweeps on disk from real captured torchtune output and real inspect-ai logs.

Training output: the captured ``tests/fixtures/torchtune/local_*`` files (config banner,
``Setting manual seed to local seed 1234`` line, progress bar, DiskLogger file) with the
banner's ``lora_rank``/``lr``/``seed`` lines edited, as a user's own run would print them.
Evaluation logs: the example's real inspect-ai log writer (``mockllm/model`` answers
re-scored by inspect-ai's own ``match``/``includes`` scorers), with a planted number of
correct answers per run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analyze_experiment.demo.evals import CellLog, write_cell_log
from analyze_experiment.demo.plan import capitalize, make_words

TT = Path(__file__).parent / "fixtures" / "torchtune"
CAPTURES = ("local_v0.6.1_lora_cpu_slurm_completed", "local_v0.3.1_lora_cpu", "local_v0.4.0_lora_cpu")
"""Captures whose loss curves differ from each other (0.4.0 and 0.5.0 print the same curve)."""
TASK = "capitalization"


@dataclass
class Run:
    """One run of a test sweep."""

    name: str
    accuracy: float | None
    """Planted ``match`` accuracy (None: no evaluation log)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Parameters the design lists for the run."""
    config: dict[str, Any] = field(default_factory=dict)
    """Banner edits: ``lora_rank``, ``lr``, ``seed`` (what the training really used)."""
    capture: str | None = CAPTURES[0]
    """None for a base model (no training output)."""
    epochs: tuple[int | None, ...] = (0,)


def _yaml(v: Any) -> str:
    return repr(v) if not isinstance(v, str) else v


def training_output(run: Run) -> tuple[bytes, bytes]:
    """The capture's SLURM output and DiskLogger file with the run's banner values."""
    assert run.capture is not None
    out = (TT / f"{run.capture}.out").read_bytes()
    disk = (TT / f"{run.capture}.disklogger.txt").read_bytes()
    c = run.config
    if "lora_rank" in c:
        out, n = re.subn(rb"(?m)^(  lora_rank: )\d+", rb"\g<1>" + str(c["lora_rank"]).encode(), out)
        assert n == 1
    if "lr" in c:
        out, n = re.subn(rb"(?m)^(optimizer:\r?\n(?:  .*\r?\n)*?  lr: )\S+", rb"\g<1>" + _yaml(c["lr"]).encode(), out)
        assert n == 1
    if "seed" in c:
        s = str(c["seed"]).encode()
        out, n = re.subn(rb"(?m)^seed: \d+", b"seed: " + s, out)
        assert n == 1
        out = re.sub(rb"local seed \d+\. Local seed is seed \+ rank = \d+", b"local seed " + s
                     + b". Local seed is seed + rank = " + s, out)
    return out, disk


def design_yaml(runs: list[Run], variables: dict[str, list[Any]], *, matrix: list[tuple[str, list[int] | None]]
                | None = None, controls: dict[str, Any] | None = None) -> str:
    """``experiment_summary.yaml`` listing ``runs`` (``matrix``: run -> planned epochs)."""
    lines = ["experiment:", '  name: "seed_sweep"', '  question: "Which LoRA rank?"', "", "variables:"]
    lines += [f"  {k}: [{', '.join(str(x) for x in v)}]" for k, v in variables.items()]
    if controls:
        lines += ["", "controls:", *[f"  {k}: {v}" for k, v in controls.items()]]
    lines += ["", "runs:"]
    for r in runs:
        lines += [f'  - name: "{r.name}"']
        if r.capture is None:
            lines += ['    type: "control"', "    parameters: {}"]
        else:
            lines += ['    type: "fine-tuned"', "    parameters:"]
            lines += [f"      {k}: {v}" for k, v in r.params.items()] or ["      {}"]
    lines += ["", "evaluation:", '  scorers:', '    - name: "match"', '    - name: "includes"', "  tasks:",
              f'    - name: "{TASK}"']
    if matrix is None:
        matrix = [(r.name, None if r.capture is None else list(e for e in r.epochs if e is not None)) for r in runs]
    lines += ["  matrix:"]
    for name, eps in matrix:
        lines += [f'    - run: "{name}"', f'      tasks: ["{TASK}"]',
                  f"      epochs: {'null' if eps is None else '[' + ', '.join(str(e) for e in eps) + ']'}"]
    return "\n".join(lines) + "\n"


def write_eval(root: Path, run: Run, epoch: int | None, words: tuple[str, ...], correct: np.ndarray,
               rng: np.random.Generator, *, folder: str | None = None) -> Path:
    """One real inspect-ai log for ``run`` at ``epoch`` with ``correct`` answers planted."""
    outputs = [capitalize(w) if ok else w.lower() for w, ok in zip(words, correct, strict=True)]
    meta: dict[str, Any] = {"is_finetuned": run.capture is not None}
    if epoch is not None:
        meta = {"epoch": epoch, **meta}
    model = f"hf/{run.name}" if epoch is None else f"hf/{run.name}_epoch_{epoch}"
    cell = CellLog(task_name=TASK, model=model, model_args={"model_path": f"/scratch/{run.name}/epoch_{epoch}"},
                   task_args={"split": "test"}, metadata=meta)
    sub = folder or (TASK if epoch is None else f"{TASK}_epoch{epoch}")
    return write_cell_log(words, outputs, cell, root / run.name / "eval" / sub / "logs", rng)


def build(root: Path, runs: list[Run], *, variables: dict[str, list[Any]] | None = None, n: int = 40,
          seed: int = 0, design: bool = True, matrix: list[tuple[str, list[int] | None]] | None = None,
          controls: dict[str, Any] | None = None) -> Path:
    """Write the sweep into ``root`` (design optional) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    words = tuple(make_words(n, seed))
    rng = np.random.default_rng(seed)
    difficulty = rng.standard_normal(n)
    if design:
        (root / "experiment_summary.yaml").write_text(
            design_yaml(runs, variables or {}, matrix=matrix, controls=controls), encoding="utf-8")
    for i, r in enumerate(runs):
        if r.capture is not None:
            out, disk = training_output(r)
            art = root / r.name / "artifacts"
            art.mkdir(parents=True, exist_ok=True)
            (art / f"slurm-{100 + i}.out").write_bytes(out)
            name = re.search(rb"Writing logs to \S*/(log_\d+\.txt)", out)
            (art / (name[1].decode() if name else "log_1.txt")).write_bytes(disk)
        if r.accuracy is None:
            continue
        for epoch in r.epochs:
            score = difficulty + 0.9 * rng.standard_normal(n)
            correct = np.zeros(n, bool)
            correct[np.argsort(score, kind="stable")[: round(r.accuracy * n)]] = True
            write_eval(root, r, epoch, words, correct, rng)
    return root
