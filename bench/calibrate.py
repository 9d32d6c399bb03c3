"""Null and power simulations of the whole report, through the public API (``make calibrate``).

Each sweep is a synthetic experiment (binary per-item scores with a shared item difficulty,
as real evals have) analysed with ``analyze_experiment.analyze``; we count the sweeps whose
report makes *any* significant claim that asserts a difference (kinds ``difference``,
``effect``, ``winner``, ``outlier``). Where nothing differs that share must stay ≤ α.

Scenarios (all runs share one true accuracy under the null):

- ``grid``: lora_rank {4, 16} × learning_rate {1e-5, 1e-4}, one run per cell, plus an
  untrained control at the same accuracy;
- ``grid_run_noise``: the same, each run's true accuracy moved by run-to-run training noise
  (SD 2 pp). The *checkpoints* then truly differ, so a significant checkpoint comparison is
  not a false claim; the column that must stay ≤ α is the configuration-level one;
- ``seeds``: lora_rank {8, 32} × 3 seeds with run-to-run noise (configuration claims are
  seed-level Welch tests);
- ``mixed_epochs``: the grid with the rank-16 runs evaluated at epochs 0 and 1 and the rank-4
  runs at epoch 1 only.

Power: the ``seeds`` and ``grid`` designs with learning rate (grid) or rank (seeds) raising
the true accuracy by +5 or +10 pp.

    python -m bench.calibrate [--sweeps 300] [--power-sweeps 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

import analyze_experiment as ae
from analyze_experiment import tables
from analyze_experiment.experiment import Design, Experiment, Options, RunSpec

ALPHA = 0.05
DIFFERENCE_KINDS = {"difference", "effect", "winner", "outlier"}
CONFIG_FAMILIES = ("configurations:", "effects:")
N_ITEMS = 200
BASE_ACC = 0.7
ITEM_SD = 1.0
"""SD of the shared per-item logit offset (item difficulty)."""
RUN_SD_PP = 0.02
"""Run-to-run training noise of a run's true accuracy (2 pp)."""


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def sweep(rng: np.random.Generator, runs: dict[str, dict[str, Any]], *, n: int = N_ITEMS,
          controls: tuple[str, ...] = ()) -> Experiment:
    """An Experiment from ``runs``: name -> {"acc": {epoch: true accuracy}, "params": {...}}."""
    offsets = rng.normal(0, ITEM_SD, n)
    samples, rows, specs = [], [], []
    for run, spec in runs.items():
        is_control = run in controls
        for ep, acc in spec["acc"].items():
            p = 1 / (1 + np.exp(-(_logit(acc) + offsets)))
            scores = (rng.random(n) < p).astype(float)
            samples.extend({"run": run, "task": "qa", "epoch": ep, "sample_id": f"s{i:04d}", "sample_epoch": 1,
                            "scorer": "match", "score": float(s), "value_raw": str(s), "answer": f"a{i % 7}",
                            "target": "t", "log": f"{run}.eval"} for i, s in enumerate(scores))
        rows.append({"run": run, "type": "control" if is_control else "fine-tuned", "status": "completed",
                     "n_gpus": 1, "epochs_done": len(spec["acc"]), **spec["params"]})
        specs.append(RunSpec(run, "control" if is_control else "fine-tuned", params=spec["params"]))
    names = sorted({k for r in runs.values() for k in r["params"]})
    variables = {k: sorted({r["params"][k] for r in runs.values() if k in r["params"]}) for k in names}
    design = Design(name="calibration", variables=variables, runs=specs, tasks=["qa"], scorers=["match"])
    return Experiment(root=Path("."), layout="unknown", design=design, has_design_doc=True,
                      runs=tables.frame(tables.RUNS, rows), eval_samples=tables.frame(tables.EVAL_SAMPLES, samples),
                      param_names=names)


def _noisy(rng: np.random.Generator, acc: float, sd: float) -> float:
    return float(np.clip(acc + rng.normal(0, sd), 0.02, 0.98)) if sd else acc


def grid(rng: np.random.Generator, *, run_sd: float = 0.0, lr_gain: float = 0.0,
         mixed_epochs: bool = False) -> Experiment:
    """rank {4, 16} × lr {1e-5, 1e-4}, one run per cell, and a control at the base accuracy."""
    runs: dict[str, dict[str, Any]] = {"base": {"acc": {None: BASE_ACC}, "params": {}}}
    for rank in (4, 16):
        for lr in (1e-5, 1e-4):
            acc = _noisy(rng, BASE_ACC + (lr_gain if lr == 1e-4 else 0.0), run_sd)
            eps = ((0, 1) if rank == 16 else (1,)) if mixed_epochs else (0,)
            runs[f"r{rank}_lr{lr:g}"] = {"acc": dict.fromkeys(eps, acc), "params": {"lora_rank": rank,
                                                                                   "learning_rate": lr}}
    return sweep(rng, runs, controls=("base",))


def seeds(rng: np.random.Generator, *, run_sd: float = RUN_SD_PP, rank_gain: float = 0.0) -> Experiment:
    """lora_rank {8, 32} × seeds {1, 2, 3}, run-to-run noise on every run."""
    runs: dict[str, dict[str, Any]] = {}
    for rank in (8, 32):
        for s in (1, 2, 3):
            acc = _noisy(rng, BASE_ACC + (rank_gain if rank == 32 else 0.0), run_sd)
            runs[f"r{rank}_seed{s}"] = {"acc": {0: acc}, "params": {"lora_rank": rank, "seed": s}}
    return sweep(rng, runs)


@dataclass
class Tally:
    """Sweeps with at least one significant claim of each sort."""

    sweeps: int = 0
    any_claim: int = 0
    config_claim: int = 0
    correct_winner: int = 0

    def rate(self, hits: int) -> tuple[float, float, float, float]:
        """(share, Monte Carlo SE, Clopper–Pearson 95% low, high)."""
        p = hits / self.sweeps
        ci = stats.binomtest(hits, self.sweeps).proportion_ci(0.95, method="exact")
        return (p, math.sqrt(p * (1 - p) / self.sweeps), float(ci.low), float(ci.high))


def run_scenario(make: Callable[[np.random.Generator], Experiment], sweeps: int, seed: int,
                 better: Callable[[ae.Analysis], bool] | None = None) -> Tally:
    """Analyse ``sweeps`` experiments from ``make`` and count the claims."""
    rng = np.random.default_rng(seed)
    t = Tally()
    opts = Options(n_permutations=2_000, n_bootstrap=300, seed=seed)
    for _ in range(sweeps):
        a = ae.analyze(make(rng), opts)
        sig = [f.claim for f in a.claims if f.claim is not None and f.claim.significant
               and f.claim.kind in DIFFERENCE_KINDS]
        t.sweeps += 1
        t.any_claim += bool(sig)
        t.config_claim += any(c.family.startswith(CONFIG_FAMILIES) for c in sig)
        if better is not None:
            t.correct_winner += better(a)
    return t


def _pairs_found(a: ae.Analysis, is_better: Callable[[str], bool]) -> bool:
    """A significant checkpoint test in which a truly better run beats a truly worse one."""
    p = a.pair_tests
    if p.empty or "significant" not in p.columns:
        return False
    for _, r in p[p["significant"].astype(bool)].iterrows():
        hi, lo = (r["a"], r["b"]) if r["diff"] > 0 else (r["b"], r["a"])
        if is_better(str(hi)) and not is_better(str(lo)):
            return True
    return False


def _config_found(a: ae.Analysis, better_config: str) -> bool:
    """A significant seed-level test with the truly better configuration on top."""
    c = a.seed_comparisons
    if c.empty or "significant" not in c.columns:
        return False
    return bool((c["significant"].astype(bool) & (c["a"] == better_config) & (c["diff"] > 0)).any())


NULL_SCENARIOS: dict[str, Callable[[np.random.Generator], Experiment]] = {
    "2×2 grid, one run per cell + control": lambda rng: grid(rng),
    "2×2 grid with run-to-run noise (SD 2 pp)": lambda rng: grid(rng, run_sd=RUN_SD_PP),
    "2 configs × 3 seeds with run-to-run noise": lambda rng: seeds(rng),
    "2×2 grid, mixed epochs": lambda rng: grid(rng, mixed_epochs=True),
}


def power_scenarios() -> dict[str, tuple[Callable[[np.random.Generator], Experiment],
                                          Callable[[ae.Analysis], bool]]]:
    """Planted effects of +5 and +10 pp; "found" = a significant claim in the right direction
    at the design's unit (a better checkpoint over a worse one; the better configuration)."""
    out = {}
    for gain in (0.05, 0.10):
        pp = f"+{gain * 100:.0f} pp"
        out[f"2×2 grid, learning_rate 1e-4 {pp} (checkpoint claims)"] = (
            lambda rng, g=gain: grid(rng, lr_gain=g), lambda a: _pairs_found(a, lambda run: "lr0.0001" in run))
        out[f"2 configs × 3 seeds, rank 32 {pp}, run noise SD 2 pp (configuration claims)"] = (
            lambda rng, g=gain: seeds(rng, rank_gain=g), lambda a: _config_found(a, "lora_rank=32"))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", type=int, default=300)
    ap.add_argument("--power-sweeps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    print(f"Null sweeps ({args.sweeps} each, α = {ALPHA}): share with any significant difference-type claim")
    print("| scenario | any claim (± MC SE) | 95% CI | configuration-level claim |")
    print("|---|---|---|---|")
    worst = 0.0
    for i, (name, make) in enumerate(NULL_SCENARIOS.items()):
        t = run_scenario(make, args.sweeps, args.seed + i)
        p, se, lo, hi = t.rate(t.any_claim)
        pc = t.rate(t.config_claim)
        # a run-noise grid's checkpoints truly differ: there only configuration claims are false
        worst = max(worst, pc[2] if "grid with run-to-run" in name else lo)
        print(f"| {name} | {_pct(p)} ± {_pct(se)} | {_pct(lo)}–{_pct(hi)} | {_pct(pc[0])} ± {_pct(pc[1])} |")
    print(f"\nPower ({args.power_sweeps} sweeps each): share of sweeps with any significant claim, and with a "
          "significant claim in the right direction at the design's unit")
    print("| scenario | any significant claim | right claim found |")
    print("|---|---|---|")
    for i, (name, (make, better)) in enumerate(power_scenarios().items()):
        t = run_scenario(make, args.power_sweeps, args.seed + 100 + i, better)
        print(f"| {name} | {_pct(t.rate(t.any_claim)[0])} | {_pct(t.rate(t.correct_winner)[0])} |")
    print(f"\n({time.time() - t0:.0f} s)")
    return 0 if worst <= ALPHA else 1


if __name__ == "__main__":
    raise SystemExit(main())
