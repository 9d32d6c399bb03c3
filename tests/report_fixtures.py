"""A generated sweep (Experiment + Analysis) for the plot, render and export tests.

2x2 sweep ``lora_rank`` {8, 16} x ``learning_rate`` {1e-5, 1e-4} plus one control model,
two training epochs of 40 steps, one task with binary per-sample scores evaluated after
each epoch. Analysis tables hold plausible values derived from the samples with simple
formulas (the statistics stage itself is tested elsewhere); tests assert against these
exact numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analyze_experiment import tables
from analyze_experiment.analysis import Analysis, Best, Finding
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, Experiment, RunSpec

EVIL = "<script>alert(1)</script>"
TASK = "arc_easy"
SCORER = "choice"
METRIC = "accuracy"
STEPS_PER_EPOCH = 40
N_SAMPLES = 40
RANKS = [8, 16]
LRS = [1e-5, 1e-4]
CONTROL = "Llama-3.2-1B_base"


def run_name(rank: int, lr: float) -> str:
    """Directory-style run name, e.g. ``rank8_lr1e-05``."""
    return f"rank{rank}_lr{lr:g}"


def sweep_runs(evil: bool = False) -> list[tuple[str, dict[str, float]]]:
    """(name, params) of the fine-tuned runs; with ``evil`` the last run has a hostile name."""
    out = [(run_name(r, lr), {"lora_rank": r, "learning_rate": lr}) for r in RANKS for lr in LRS]
    if evil:
        out[-1] = (EVIL, out[-1][1])
    return out


def correct_probability(rank: int, lr: float, epoch: int | None) -> float:
    """The generating accuracy: higher lr and rank help, the second epoch helps a little."""
    if epoch is None:
        return 0.45
    return 0.55 + 0.1 * (lr == 1e-4) + 0.05 * (rank == 16) + 0.05 * epoch


def make_experiment(root: Path | None = None, *, evil: bool = False, with_gpu: bool = True) -> Experiment:
    """The tidy tables of the sweep (no files on disk)."""
    rng = np.random.default_rng(0)
    runs = sweep_runs(evil)
    design = Design(
        name="lora-sweep", source="experiment_summary.yaml", question="Does LoRA rank matter at 1B?",
        variables={"lora_rank": RANKS, "learning_rate": LRS},
        runs=[RunSpec(n, params=p) for n, p in runs] + [RunSpec(CONTROL, type="control")],
        tasks=[TASK], scorers=[SCORER],
    )
    run_rows, steps, epochs, gpu, logs, scores, samples = [], [], [], [], [], [], []
    for k, (name, p) in enumerate(runs):
        total = 2 * STEPS_PER_EPOCH
        for step in range(1, total + 1):
            epoch = (step - 1) // STEPS_PER_EPOCH
            loss = 2.0 * math.exp(-step / (30 + 10 * k)) + 0.3 + 0.05 * rng.standard_normal()
            lr = p["learning_rate"] * 0.5 * (1 + math.cos(math.pi * step / total))
            steps.append({"run": name, "epoch": epoch, "step": step, "loss": loss, "lr": lr,
                          "tokens_per_second_per_gpu": 2000.0 + 100 * k + 10 * rng.standard_normal(),
                          "peak_memory_active": 10.0 + k, "source": "disklogger"})
        for e in range(2):
            epochs.append({"run": name, "epoch": e, "steps_in_epoch": STEPS_PER_EPOCH,
                           "last_step": (e + 1) * STEPS_PER_EPOCH, "elapsed_s": 240.0, "complete": True,
                           "checkpoint_saved": True})
        t0 = pd.Timestamp("2026-01-10T10:00:00Z") + pd.Timedelta(hours=k)
        for i in range(10):
            for g in range(2):
                gpu.append({"run": name, "time": t0 + pd.Timedelta(minutes=i), "gpu": g,
                            "utilization_pct": 90.0 + g + i % 3, "memory_used_mib": 20480.0 + 1024 * k + 512 * g,
                            "memory_total_mib": 81920.0, "power_w": 300.0})
        run_rows.append({"run": name, "type": "fine-tuned", "model": "Llama-3.2-1B", "in_design": True,
                         "on_disk": True, "run_dir": name, "status": "completed",
                         "final_loss": steps[-1]["loss"], "min_loss": min(s["loss"] for s in steps if s["run"] == name),
                         "steps": total, "epochs_done": 2, "planned_epochs": 2, "train_time_s": 480.0 + 60 * k,
                         "n_gpus": 2, "gpu_hours": (480.0 + 60 * k) / 3600 * 2, "convergence": "converged",
                         "training_log": f"{name}/slurm-1.out", **p})
    run_rows.append({"run": CONTROL, "type": "control", "model": "Llama-3.2-1B", "in_design": True,
                     "on_disk": True, "run_dir": CONTROL, "lora_rank": None, "learning_rate": None})
    candidates = [(n, p, e) for n, p in runs for e in (0, 1)] + [(CONTROL, None, None)]
    for name, p, e in candidates:
        prob = correct_probability(p["lora_rank"], p["learning_rate"], e) if p else correct_probability(0, 0, None)
        log = f"{name}/eval/logs/{TASK}_epoch{e}.eval" if e is not None else f"{CONTROL}/eval/logs/{TASK}.eval"
        vals = (rng.random(N_SAMPLES) < prob).astype(float)
        for i, v in enumerate(vals):
            samples.append({"run": name, "task": TASK, "epoch": e, "sample_id": f"s{i:02d}", "sample_epoch": 1,
                            "scorer": SCORER, "score": v, "value_raw": "C" if v else "I", "log": log})
        mean = float(vals.mean())
        scores.append({"run": name, "task": TASK, "epoch": e, "scorer": SCORER, "metric": METRIC, "value": mean,
                       "stderr": math.sqrt(mean * (1 - mean) / N_SAMPLES), "n": N_SAMPLES, "log": log})
        logs.append({"log": log, "run": name, "task": TASK, "epoch": e, "status": "success",
                     "created": pd.Timestamp("2026-01-11T00:00:00Z"), "total_samples": N_SAMPLES, "used": True})
    diag = Diagnostics(root=root)
    diag.warn(f"{runs[0][0]}/slurm-2.out", "duplicate training output ignored", severity="info", stage="discover")
    return Experiment(
        root=root or Path("."), layout="mid2026", design=design, has_design_doc=True,
        runs=tables.frame(tables.RUNS, run_rows), train_steps=tables.frame(tables.TRAIN_STEPS, steps),
        train_epochs=tables.frame(tables.TRAIN_EPOCHS, epochs),
        gpu=tables.frame(tables.GPU, gpu if with_gpu else []), eval_logs=tables.frame(tables.EVAL_LOGS, logs),
        eval_scores=tables.frame(tables.EVAL_SCORES, scores), eval_samples=tables.frame(tables.EVAL_SAMPLES, samples),
        diagnostics=diag, param_names=["lora_rank", "learning_rate"],
    )


def wald(mean: float, n: int) -> tuple[float, float, float]:
    """(stderr, ci_low, ci_high) of a proportion: simple and exact enough for fixture values."""
    se = math.sqrt(mean * (1 - mean) / n)
    return se, mean - 1.96 * se, mean + 1.96 * se


def make_analysis(exp: Experiment) -> Analysis:
    """Analysis tables filled from the experiment's scores (plausible, formula-derived values)."""
    iv_rows = []
    for r in exp.eval_scores.itertuples():
        se, lo, hi = wald(r.value, r.n)
        iv_rows.append({"run": r.run, "task": r.task, "epoch": r.epoch, "scorer": r.scorer, "metric": r.metric,
                        "value": r.value, "stderr": se, "ci_low": lo, "ci_high": hi, "n": r.n, "n_clusters": None,
                        "method": "wilson", "binary": True})
    iv = pd.DataFrame(iv_rows)
    top = iv.sort_values("value", ascending=False, kind="stable").iloc[0]
    comps = []
    for r in iv_rows:
        if r["run"] == top["run"] and r["epoch"] == top["epoch"]:
            continue
        d = top["value"] - r["value"]
        comps.append({"task": TASK, "scorer": SCORER, "metric": METRIC, "a": top["run"], "epoch_a": top["epoch"],
                      "b": r["run"], "epoch_b": r["epoch"], "kind": "vs_best", "diff": d, "ci_low": d - 0.1,
                      "ci_high": d + 0.1, "test": "mcnemar_exact", "statistic": 3.0,
                      "p_value": min(1.0, 0.5 / (1 + 10 * abs(d))), "p_adjusted": min(1.0, 1.0 / (1 + 10 * abs(d))),
                      "q_value": min(1.0, 0.8 / (1 + 10 * abs(d))), "significant": abs(d) > 0.2,
                      "n_paired": N_SAMPLES, "n_a_only": 5, "n_b_only": 2, "correlation": 0.3})
    params = exp.runs.set_index("run")
    ft = iv[iv["run"] != CONTROL].copy()
    ft["lora_rank"] = ft["run"].map(params["lora_rank"])
    ft["learning_rate"] = ft["run"].map(params["learning_rate"])
    effects = []
    for var in ("lora_rank", "learning_rate"):
        for level, g in ft.groupby(var, sort=True):
            m = float(g["value"].mean())
            effects.append({"task": TASK, "scorer": SCORER, "metric": METRIC, "variable": var, "level": level,
                            "mean": m, "ci_low": m - 0.05, "ci_high": m + 0.05, "n_runs": g["run"].nunique(),
                            "n_samples": int(g["n"].sum())})
    anova = [{"task": TASK, "scorer": SCORER, "metric": METRIC, "term": t, "sum_sq": s, "df": 1.0, "F": f,
              "p_value": p, "partial_eta_sq": 0.2, "omega_sq": 0.1}
             for t, s, f, p in (("lora_rank", 0.01, 1.2, 0.28), ("learning_rate", 0.05, 6.1, 0.02))]
    pareto = []
    for r in iv_rows:
        gh = params.loc[r["run"], "gpu_hours"]
        pareto.append({"task": TASK, "scorer": SCORER, "metric": METRIC, "run": r["run"], "epoch": r["epoch"],
                       "value": r["value"], "gpu_hours": gh if r["run"] != CONTROL else None, "cost_usd": None,
                       "pareto": False})
    pa = pd.DataFrame(pareto)
    known = pa[pa["gpu_hours"].notna()].sort_values(["gpu_hours", "value"], ascending=[True, False])
    best_so_far = -1.0
    for idx, row in known.iterrows():
        if row["value"] > best_so_far:
            pa.loc[idx, "pareto"] = True
            best_so_far = row["value"]
    best = Best(task=TASK, scorer=SCORER, metric=METRIC, run=str(top["run"]), epoch=float(top["epoch"]),
                value=float(top["value"]), ci_low=float(top["ci_low"]), ci_high=float(top["ci_high"]),
                clear_winner=False, reason="tied with 2 runs after Holm correction")
    return Analysis(
        confidence=0.95, intervals=iv, comparisons=pd.DataFrame(comps), best=[best],
        effects=pd.DataFrame(effects), anova=pd.DataFrame(anova), pareto=pa,
        findings=[Finding("key_findings", f"{top['run']} scored highest.", "best_run")],
    )
