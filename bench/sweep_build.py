"""Synthetic sweeps for the whole-report benchmark (``bench/sweep.py``), built once and reused.

A sweep of ``n`` runs is ``n`` fine-tuned runs plus one control (the base model), each with:

- a SLURM output in the real format of torchtune 0.6 under sbatch (the resolved-config banner
  of the captured ``tests/fixtures/torchtune/local_v0.6.1_lora_cpu_slurm_completed.out`` with
  the run's ``lr``/``lora_rank`` edited in, then 2 epochs × 500 steps of tqdm frames written
  exactly as the capture writes them: ``\\r``-joined in the first epoch, ``\\n\\r…ESC[A`` in
  the second, a stale frame before each real one, checkpoint lines glued to the last frame)
  and its DiskLogger file (one ``Step k | loss:… lr:… tokens_per_second_per_gpu:…`` line per
  step);
- one real inspect-ai log of 1,000 samples scored by ``match`` and ``includes`` (each sample
  keeps its messages and scores; its event transcript is dropped, which makes writing a log
  5× cheaper — the report reads only a log's header and score summaries).

The evaluation logs come from inspect-ai itself: one log is made with ``mockllm/model`` and
re-scored by inspect-ai's own scorers (``analyze_experiment.demo.evals.write_cell_log``, the
example's writer); every other run's log is that log read with ``read_eval_log``, given new
ids, the run's model name and its planted per-sample scores, its metrics recomputed by
``recompute_metrics`` and written with ``write_eval_log`` — never hand-written JSON.

The cache key is a digest of this file's source plus the sweep's size: editing the builder
rebuilds the sweeps, editing the benchmark does not.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "_work" / "sweep"
CAPTURE = ROOT.parent / "tests" / "fixtures" / "torchtune" / "local_v0.6.1_lora_cpu_slurm_completed.out"
STEPS = 500
EPOCHS = 2
SAMPLES = 1000
TASK = "capitalization"
EVAL_EPOCH = 1
"""The checkpoint evaluated (``epoch_1``: the last of the two)."""
RANKS = (8, 16, 32, 64)


def digest() -> str:
    """Changes whenever this builder changes (the sweeps are rebuilt then)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def run_names(n: int) -> list[str]:
    """The control first, then ``n`` fine-tuned runs."""
    return ["base"] + [f"r{i:04d}" for i in range(n)]


def params(i: int, n: int) -> dict[str, Any]:
    """Run ``i``'s swept values: a grid of learning rate × LoRA rank."""
    lrs = _lrs(n)
    return {"lr": lrs[i // len(RANKS)], "lora_rank": RANKS[i % len(RANKS)]}


def _lrs(n: int) -> list[float]:
    k = -(-n // len(RANKS))
    return [float(f"{x:.3g}") for x in np.geomspace(1e-5, 3e-3, k)]


# --- training output -----------------------------------------------------------------------


def _f32(x: float) -> str:
    return repr(struct.unpack("<f", struct.pack("<f", x))[0])


def _elapsed(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    return f"{m:02d}:{s:02d}"


def _bar(n: int, total: int) -> str:
    cells = ("█" * (10 * n // total)).ljust(10)
    return f"{100 * n // total:3d}%|{cells}| {n}/{total} [{_elapsed(n // 2)}<{_elapsed((total - n) // 2)},  2.{n % 97:02d}it/s]"


def _banner(lr: float, rank: int, seed: int, log_name: str) -> str:
    text = CAPTURE.read_bytes().decode()
    head = text[: text.index("\n", text.index("Writing logs to")) + 1]
    head, n1 = re.subn(r"(?m)^(  lora_rank: )\d+", rf"\g<1>{rank}", head)
    head, n2 = re.subn(r"(?m)^(optimizer:\n(?:  .*\n)*?  lr: )\S+", rf"\g<1>{lr!r}", head)
    head, n3 = re.subn(r"(?m)^seed: \d+", f"seed: {seed}", head)
    head = re.sub(r"local seed \d+\. Local seed is seed \+ rank = \d+",
                  f"local seed {seed}. Local seed is seed + rank = {seed}", head)
    head, n4 = re.subn(r"logs/log_\d+\.txt", f"logs/{log_name}", head)
    assert (n1, n2, n3, n4) == (1, 1, 1, 1), (n1, n2, n3, n4)
    return head


def training_files(i: int, n: int) -> tuple[str, str, str]:
    """(SLURM output, DiskLogger file name, DiskLogger text) of fine-tuned run ``i``."""
    p = params(i, n)
    rng = np.random.default_rng([7, i])
    total = STEPS * EPOCHS
    steps = np.arange(1, total + 1)
    speed = min(1.0, p["lr"] / 3e-4)
    loss = 0.35 + 2.0 * np.exp(-speed * steps / 300) + 0.04 * rng.standard_normal(total) + 0.02 * (p["lora_rank"] == 8)
    lr = p["lr"] * np.minimum(1.0, steps / 50) * (0.5 + 0.5 * np.cos(np.pi * steps / total))
    tps = 900 + 60 * rng.standard_normal(total)
    losses = [_f32(float(x)) for x in loss]
    log_name = f"log_{1795713941 + i}.txt"
    parts = [_banner(p["lr"], p["lora_rank"], 1234, log_name)]
    out_dir = "/scratch/gpfs/jdoe/tt-run/slurm/out_1"
    for epoch in range(1, EPOCHS + 1):
        pre, post = ("\r", "") if epoch == 1 else ("\n\r", "\x1b[A")
        if epoch == 1:
            parts.append(f"\r  0%|          | 0/{STEPS} [00:00<?, ?it/s]")
        desc = None
        for k in range(1, STEPS + 1):
            step = (epoch - 1) * STEPS + k
            bar = _bar(k, STEPS)
            if desc is not None and k > 1:  # stale frame: the previous description, the new count
                parts.append(f"{pre}{desc}: {bar}{post}")
            elif epoch == 1:
                parts.append(f"{pre}{bar}{post}")
            desc = f"{epoch}|{step}|Loss: {losses[step - 1]}"
            parts.append(f"{pre}{desc}: {bar}{post}")
        last = f"{desc}: {_bar(STEPS, STEPS)}"
        ckpt = (f"Starting checkpoint save...\nModel checkpoint of size 0.00 GiB saved to {out_dir}/epoch_{epoch - 1}/"
                f"model-00001-of-00001.bin\nAdapter checkpoint of size 0.00 GiB saved to {out_dir}/epoch_{epoch - 1}/"
                "adapter_model.pt\n")
        if epoch < EPOCHS:
            parts.append(ckpt + f"Recipe checkpoint of size 0.00 GiB saved to {out_dir}/recipe_state/recipe_state.pt\n"
                         "Checkpoint saved in 0.02 seconds.\n\n"
                         f"\r  0%|          | 0/{STEPS} [00:00<?, ?it/s]\x1b[A\r{last}\n")
        else:
            parts.append(ckpt + "Saving final epoch checkpoint.\nThe full model checkpoint, including all weights and "
                         "configurations, has been saved successfully.You can now use this checkpoint for further "
                         f"training or inference.\nCheckpoint saved in 0.01 seconds.\n\r{last}\n")
    disk = "".join(f"Step {s} | loss:{losses[s - 1]} lr:{float(lr[s - 1])!r} "
                   f"tokens_per_second_per_gpu:{_f32(float(tps[s - 1]))} \n" for s in steps)
    return "".join(parts), log_name, disk


# --- evaluation logs -----------------------------------------------------------------------


def _correct(i: int, n: int, difficulty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planted ``match`` and ``includes`` correctness of run ``i`` (-1: the control)."""
    rng = np.random.default_rng([11, i + 1])
    if i < 0:
        acc = 0.35
    else:
        p = params(i, n)
        acc = 0.55 + 0.25 * np.exp(-((np.log10(p["lr"]) + 3.8) ** 2)) + 0.01 * np.log2(p["lora_rank"])
    score = difficulty + 0.9 * rng.standard_normal(len(difficulty))
    match = np.zeros(len(difficulty), bool)
    match[np.argsort(score, kind="stable")[: round(acc * len(difficulty))]] = True
    includes = match | (rng.random(len(difficulty)) < 0.3)
    return match, includes


def _template(path: Path, words: tuple[str, ...]) -> None:
    """The one log made by inspect-ai (mockllm answers re-scored by match/includes)."""
    from analyze_experiment.demo.evals import CellLog, write_cell_log
    from analyze_experiment.demo.plan import capitalize

    difficulty = np.random.default_rng(3).standard_normal(len(words))
    match, _ = _correct(-1, 1, difficulty)
    outputs = [capitalize(w) if ok else w.lower() for w, ok in zip(words, match, strict=True)]
    cell = CellLog(task_name=TASK, model="hf/base", model_args={"model_path": "/scratch/base"},
                   task_args={"split": "test"}, metadata={"is_finetuned": False})
    made = write_cell_log(words, outputs, cell, path.parent / "tmp", np.random.default_rng(0))
    shutil.move(made, path)
    shutil.rmtree(path.parent / "tmp")


def _derive(template: str, root: str, n: int, indices: list[int]) -> None:
    """Write the logs of runs ``indices`` (-1: the control) from the template log."""
    import inspect_ai._util.zipfile as inspect_zip
    from inspect_ai.log import read_eval_log, recompute_metrics, write_eval_log
    from inspect_ai.scorer import CORRECT, INCORRECT
    from shortuuid import uuid

    # inspect-ai compresses each zip member with a 12-thread zstd compressor; on a busy
    # 2-core machine the threads cost more than they save. Same format, one thread.
    inspect_zip._ZSTD_THREADS = 0

    log = read_eval_log(template)
    samples = log.samples or []
    for s in samples:  # the transcript: 80 % of write_eval_log's time, never read by the report
        s.events = []
    difficulty = np.random.default_rng(3).standard_normal(len(samples))
    names = run_names(n)
    for i in indices:
        name = names[i + 1]
        match, includes = _correct(i, n, difficulty)
        for s, m, inc in zip(samples, match, includes, strict=True):
            s.uuid = uuid()
            assert s.scores is not None
            s.scores["match"].value = CORRECT if m else INCORRECT
            s.scores["includes"].value = CORRECT if inc else INCORRECT
        ev = log.eval
        ev.eval_id, ev.run_id, ev.task_id = uuid(), uuid(), uuid()
        fine = i >= 0
        ev.model = f"hf/{name}_epoch_{EVAL_EPOCH}" if fine else f"hf/{name}"
        ev.model_args = {"model_path": f"/scratch/{name}/epoch_{EVAL_EPOCH}" if fine else "/scratch/base"}
        ev.metadata = {"epoch": EVAL_EPOCH, "is_finetuned": True} if fine else {"is_finetuned": False}
        recompute_metrics(log)
        sub = f"{TASK}_epoch{EVAL_EPOCH}" if fine else TASK
        dest = Path(root) / name / "eval" / sub / "logs"
        dest.mkdir(parents=True, exist_ok=True)
        write_eval_log(log, str(dest / f"2026-11-30T10-00-00+00-00_{TASK}_{ev.task_id}.eval"))


# --- the sweep -------------------------------------------------------------------------------


def design(n: int) -> str:
    """``experiment_summary.yaml``: the variables, the control and the evaluation matrix."""
    names = run_names(n)
    lines = ["experiment:", f'  name: "bench_sweep_{n}"', '  question: "Which learning rate and LoRA rank?"', "",
             "variables:", f"  lr: [{', '.join(repr(x) for x in _lrs(n))}]",
             f"  lora_rank: [{', '.join(str(r) for r in RANKS)}]", "", "runs:",
             f'  - name: "{names[0]}"', '    type: "control"', "    parameters: {}"]
    for i, name in enumerate(names[1:]):
        p = params(i, n)
        lines += [f'  - name: "{name}"', '    type: "fine-tuned"', "    parameters:",
                  f"      lr: {p['lr']!r}", f"      lora_rank: {p['lora_rank']}"]
    lines += ["", "evaluation:", "  scorers:", '    - name: "match"', '    - name: "includes"', "  tasks:",
              f'    - name: "{TASK}"', "  matrix:", f'    - run: "{names[0]}"', f'      tasks: ["{TASK}"]',
              "      epochs: null"]
    for name in names[1:]:
        lines += [f'    - run: "{name}"', f'      tasks: ["{TASK}"]', f"      epochs: [{EVAL_EPOCH}]"]
    return "\n".join(lines) + "\n"


def _write_training(root: str, n: int, indices: list[int]) -> None:
    names = run_names(n)
    for i in indices:
        out, log_name, disk = training_files(i, n)
        art = Path(root) / names[i + 1] / "artifacts"
        art.mkdir(parents=True, exist_ok=True)
        (art / f"slurm-{5000 + i}.out").write_text(out, encoding="utf-8", newline="")
        (art / log_name).write_text(disk, encoding="utf-8")


def build(n: int, workers: int = 2) -> Path:
    """The ``n``-run sweep under ``bench/_work/sweep/<n>`` (built once; rebuilt when this file changes)."""
    root = WORK / str(n)
    stamp = WORK / f"{n}.json"
    want = {"builder": digest(), "runs": n, "samples": SAMPLES, "steps": STEPS * EPOCHS}
    if stamp.exists() and root.exists() and json.loads(stamp.read_text()) == want:
        return root
    if root.exists():
        shutil.rmtree(root)
    stamp.unlink(missing_ok=True)
    root.mkdir(parents=True)
    from analyze_experiment.demo.plan import make_words

    template = WORK / f"template-{digest()}.eval"
    if not template.exists():
        for old in WORK.glob("template-*.eval"):
            old.unlink()
        _template(template, tuple(make_words(SAMPLES, 0)))
    (root / "experiment_summary.yaml").write_text(design(n), encoding="utf-8")
    everyone = list(range(-1, n))
    shares = [everyone[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(_derive, str(template), str(root), n, s) for s in shares]
        jobs += [pool.submit(_write_training, str(root), n, [i for i in s if i >= 0]) for s in shares]
        for j in jobs:
            j.result()
    stamp.write_text(json.dumps(want))
    return root
