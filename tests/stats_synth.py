"""Synthetic sweeps with known truth for the statistics tests (seeded, no files)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from analyze_experiment import tables
from analyze_experiment.experiment import Design, Experiment, RunSpec


def make_experiment(
    accuracies: dict[str, float],
    *,
    params: dict[str, dict[str, Any]] | None = None,
    controls: tuple[str, ...] = (),
    n: int = 200,
    seed: int = 0,
    task: str = "qa",
    scorer: str = "match",
    epochs: dict[str, list[int | None]] | None = None,
    gpu_hours: dict[str, float] | None = None,
    shared_difficulty: float = 0.0,
    sample_epochs: int = 1,
    meta: dict[str, list[Any]] | None = None,
    continuous: bool = False,
) -> Experiment:
    """Binary (or continuous) per-sample scores drawn with the given true accuracies.

    ``shared_difficulty`` > 0 makes samples correlated across runs (a per-sample logit
    offset), as real evals are.
    """
    rng = np.random.default_rng(seed)
    params = params or {r: {} for r in accuracies}
    offsets = rng.normal(0, shared_difficulty, n) if shared_difficulty else np.zeros(n)
    samples, runs, specs = [], [], []
    for run, acc in accuracies.items():
        is_control = run in controls
        eps = (epochs or {}).get(run, [None] if is_control else [0])
        for ep in eps:
            for se in range(1, sample_epochs + 1):
                if continuous:
                    scores = rng.normal(acc, 0.2, n) + offsets
                else:
                    logit = np.log(acc / (1 - acc)) + offsets
                    scores = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
                for i, s in enumerate(scores):
                    row = {"run": run, "task": task, "epoch": ep, "sample_id": f"s{i:04d}",
                           "sample_epoch": se, "scorer": scorer, "score": float(s),
                           "value_raw": str(s), "answer": f"a{i % 7}", "target": "t", "log": f"{run}.eval"}
                    for k, vals in (meta or {}).items():
                        row[f"meta.{k}"] = vals[i]
                    samples.append(row)
        p = params.get(run, {})
        runs.append({"run": run, "type": "control" if is_control else "fine-tuned", "status": "completed",
                     "gpu_hours": (gpu_hours or {}).get(run), "n_gpus": 1, "epochs_done": len(eps), **p})
        specs.append(RunSpec(run, "control" if is_control else "fine-tuned", params=p))
    names = sorted({k for p in params.values() for k in p})
    variables = {k: sorted({p[k] for p in params.values() if k in p}) for k in names}
    design = Design(name="synthetic", variables=variables, runs=specs, tasks=[task], scorers=[scorer])
    return Experiment(root=Path("."), layout="unknown", design=design, has_design_doc=True,
                      runs=tables.frame(tables.RUNS, runs), eval_samples=tables.frame(tables.EVAL_SAMPLES, samples),
                      param_names=names)


def grid(ranks: list[int], lrs: list[float], acc: Any, seeds: int = 1) -> tuple[dict, dict]:
    """Accuracies and params for a rank × lr (× seed) grid; ``acc(rank, lr)`` gives truth."""
    accs, params = {}, {}
    for r, lr, s in itertools.product(ranks, lrs, range(seeds)):
        name = f"rank{r}_lr{lr:g}" + (f"_seed{s}" if seeds > 1 else "")
        accs[name] = acc(r, lr)
        params[name] = {"lora_rank": r, "learning_rate": lr, **({"seed": s} if seeds > 1 else {})}
    return accs, params


def demo_like(n: int = 200, seed: int = 0, lr_gain: float = 0.25, epoch_gain: float = 0.04) -> Experiment:
    """The bundled example's shape with known truth: rank {4, 16} × lr {1e-5, 1e-4}, one run
    per cell evaluated at epochs 0 and 1, plus a control.

    lr 1e-4 is ``lr_gain`` better, rank makes no difference; epoch 1 equals epoch 0 with a
    few wrong answers turned right (a small *paired* gain whose marginal intervals overlap).
    Samples share a difficulty, as real evals do.
    """
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1.0, n)
    rows, runs, specs = [], [], []

    def add(run: str, ep: int | None, scores: np.ndarray) -> None:
        for i, s in enumerate(scores):
            rows.append({"run": run, "task": "qa", "epoch": ep, "sample_id": f"s{i:04d}", "sample_epoch": 1,
                         "scorer": "match", "score": float(s), "answer": f"a{i}", "log": f"{run}_{ep}.eval"})

    for rank, lr in itertools.product([4, 16], [1e-5, 1e-4]):
        run = f"rank{rank}_lr{lr:g}"
        p = 0.55 + (lr_gain if lr > 5e-5 else 0.0)
        logit = np.log(p / (1 - p)) - difficulty
        e0 = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
        e1 = np.where((e0 == 0) & (rng.random(n) < epoch_gain / max(1e-9, 1 - p)), 1.0, e0)
        add(run, 0, e0)
        add(run, 1, e1)
        params = {"lora_rank": rank, "learning_rate": lr}
        runs.append({"run": run, "type": "fine-tuned", "status": "completed", "gpu_hours": 0.001,
                     "n_gpus": 1, "epochs_done": 2, **params})
        specs.append(RunSpec(run, "fine-tuned", params=params))
    logit = np.log(0.2 / 0.8) - difficulty
    add("base", None, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float))
    runs.append({"run": "base", "type": "control", "status": "completed", "n_gpus": 1})
    specs.append(RunSpec("base", "control", params={}))
    design = Design(name="demo-like", variables={"lora_rank": [4, 16], "learning_rate": [1e-5, 1e-4]},
                    runs=specs, tasks=["qa"], scorers=["match"])
    return Experiment(root=Path("."), layout="unknown", design=design, has_design_doc=True,
                      runs=tables.frame(tables.RUNS, runs), eval_samples=tables.frame(tables.EVAL_SAMPLES, rows),
                      param_names=["lora_rank", "learning_rate"])
