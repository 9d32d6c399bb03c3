"""Design documents of the bundled example, in the formats of their eras.

2026 layouts get an ``experiment_summary.yaml`` in the schema of cruijff_kit's
``design-experiment`` template (experiment, tools, variables, controls, models, data,
output, runs[].parameters, evaluation.tasks/scorers/matrix); the Oct-2025 layout gets the
``experiment_summary.md`` of the last markdown template (Overview, Variables, All Runs
with ``Type`` Fine-tuned/Control and ``-`` for not applicable, Evaluation Matrix).
Numbers are written the way people write them (``lr: 1e-5``, which YAML 1.1 — and so
PyYAML — reads as a *string*: a real trap the design reader must handle).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyze_experiment.demo.plan import MODEL, PROMPT, RUNS, SYSTEM_PROMPT, TASK

SCRATCH = "/scratch/gpfs/jdoe"
REPO = "/home/jdoe/cruijff_kit"
TASK_SCRIPT = f"{REPO}/blueprints/capitalization/inspect_task.py"


@dataclass(frozen=True)
class Era:
    """Names and dates that differ between the example's layouts."""

    experiment: str
    date: str
    created_time: str


ERAS: dict[str, Era] = {
    "mid2026": Era("cap_lora_rank_lr_2026-05-12", "2026-05-12", "09:14:03"),
    "early2026": Era("cap_lora_rank_lr_2026-02-03", "2026-02-03", "15:41:27"),
    "oct2025": Era("cap_lora_rank_lr_2025-10-30", "2025-10-30", "11:02:45"),
}

QUESTION = (
    "Does the learning rate or the LoRA rank matter more for how well "
    "Llama-3.2-1B-Instruct learns to capitalize words?"
)
HYPOTHESIS = "lr 1e-4 beats 1e-5 clearly; LoRA rank 16 is no better than rank 4."


def experiment_dir(layout: str) -> str:
    """Where the experiment lived on the cluster (paths inside the documents and logs)."""
    return f"{SCRATCH}/ck-projects/capitalization/{ERAS[layout].experiment}"


def checkpoint_dir(layout: str, run: str) -> str:
    """torchtune's ``output_dir`` for a run (``ck-out-<run>``, checkpoints in ``epoch_N``)."""
    return f"{SCRATCH}/ck-outputs/{ERAS[layout].experiment}/ck-out-{run}"


def dataset_label(n_samples: int) -> str:
    """The dataset's file stem, named like the cluster's (``words_<n>``)."""
    return f"words_4-9L_{n_samples}"


def dataset_path(n_samples: int) -> str:
    """The evaluation dataset's path on the cluster."""
    return f"{REPO}/data/green/capitalization/{dataset_label(n_samples)}.json"


def _q(text: str) -> str:
    """A double-quoted YAML string (escapes ``\\`` ``"`` and newlines)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def summary_yaml(layout: str, n_samples: int) -> str:
    """``experiment_summary.yaml`` for a 2026 layout.

    Long on purpose: it is a template, one list entry per line of the document, in the order
    the upstream workflow writes them; split into helpers it could no longer be read against
    the real document it imitates.
    """
    era = ERAS[layout]
    lines = [
        "# Experiment design written by design-experiment.",
        "",
        "experiment:",
        f"  name: {_q(era.experiment)}",
        '  project: "capitalization"',
        f"  question: {_q(QUESTION)}",
        f'  date: "{era.date}"',
        f"  hypothesis: {_q(HYPOTHESIS)}",
        '  purpose: "Pick the LoRA settings for the capitalization blueprint before scaling up."',
        f"  dir: {_q(experiment_dir(layout))}",
        "",
        "tools:",
        '  preparation: "torchtune"',
        '  evaluation: "inspect-ai"',
        "",
        "variables:",
        "  lora_rank: [4, 16]",
        "  lr: [1e-5, 1e-4]",
        "",
        "controls:",
        f"  system_prompt: {_q(SYSTEM_PROMPT)}",
        f"  prompt: {_q(PROMPT)}",
        '  dataset_type: "chat_completion"',
        "  epochs: 2",
        "  batch_size: 4",
        "  gradient_accumulation_steps: 2",
        "  validation_during_training: false",
        "  seed: 1234",
        "",
        "models:",
        "  base:",
        f"    - name: {_q(MODEL)}",
        f'      path: "{SCRATCH}/pretrained-llms/{MODEL}"',
        "      size_gb: 2.5",
        "",
        "data:",
        "  training:",
        f"    path: {_q(dataset_path(n_samples))}",
        f"    dataset_label: {_q(dataset_label(n_samples))}",
        '    format: "json"',
        f"    size_kb: {max(1, (n_samples * 60) // 1024)}",
        "    splits:",
        "      train: 64",
        "      validation: 8",
        f"      test: {n_samples}",
        "",
        "output:",
        '  wandb_project: "cap_lora_sweeps"',
        "",
        "runs:",
    ]
    for run in RUNS:
        lines += [f"  - name: {_q(run.name)}"]
        if run.is_control:
            lines += ['    type: "control"', f"    model: {_q(MODEL)}", "    parameters: {}", ""]
        else:
            lines += [
                '    type: "fine-tuned"',
                f"    model: {_q(MODEL)}",
                "    parameters:",
                f"      lora_rank: {run.lora_rank}",
                f"      lr: {run.lr_text}",
                "",
            ]
    lines += [
        "evaluation:",
        f"  system_prompt: {_q(SYSTEM_PROMPT)}",
        "  temperature: 0.0",
        "  scorers:",
        '    - name: "match"',
        '    - name: "includes"',
        "",
        "  tasks:",
        f"    - name: {_q(TASK)}",
        f'      script: "{TASK_SCRIPT}"',
        '      dataset: "same"',
        '      description: "Tests word capitalization accuracy"',
        "",
        "  matrix:",
    ]
    for run in RUNS:
        epochs = "null" if run.is_control else "[" + ", ".join(str(e) for e in run.epochs) + "]"
        lines += [
            f"    - run: {_q(run.name)}",
            f"      vis_label: {_q(run.vis_label)}",
            f"      tasks: [{_q(TASK)}]",
            f"      epochs: {epochs}",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def summary_markdown(n_samples: int) -> str:
    """``experiment_summary.md`` of the Oct-2025 layout (the last markdown template's shape).

    Long on purpose, like :func:`summary_yaml`: a template read line by line against the
    document it imitates.
    """
    era = ERAS["oct2025"]
    fine_tuned = [r for r in RUNS if not r.is_control]
    controls = [r for r in RUNS if r.is_control]
    rows = []
    for r in RUNS:
        if r.is_control:
            rows.append(f"| {r.name} | {MODEL} | - | - | Control | N/A |")
        else:
            rows.append(f"| {r.name} | {MODEL} | {r.lora_rank} | {r.lr_text} | Fine-tuned | ~10min |")
    matrix = []
    for r in RUNS:
        if r.is_control:
            matrix.append(f"| {r.name} | ✓ | Base control |")
        else:
            matrix.append(f"| {r.name} | ✓ epoch {','.join(str(e) for e in r.epochs)} | |")
    return "\n".join(
        [
            f"# {era.experiment}",
            "",
            "## Overview",
            "- **Type:** experiment",
            f"- **Runs:** {len(fine_tuned)} fine-tuned + {len(controls)} controls = {len(RUNS)} total",
            f"- **Question:** {QUESTION}",
            f"- **Created:** {era.date}",
            "",
            "## Tools",
            "- **Model Preparation:** torchtune",
            "  - *Purpose:* Fine-tuning LLMs with LoRA",
            "  - *Used by:* `scaffold-torchtune` and `run-torchtune` skills",
            "",
            "- **Evaluation:** inspect-ai",
            "  - *Purpose:* Evaluating LLMs on custom tasks",
            "  - *Used by:* `scaffold-inspect` and `run-inspect` skills",
            "",
            "## Variables",
            "| Factor | Levels |",
            "|--------|--------|",
            "| LoRA Rank | 4, 16 |",
            "| Learning Rate | 1e-5, 1e-4 |",
            "",
            "## All Runs",
            "| Run Name | Model | LoRA Rank | Learning Rate | Type | Est. Time |",
            "|----------|-------|-----------|---------------|------|-----------|",
            *rows,
            "",
            "## Resources",
            "",
            "### Models",
            f"- **{MODEL}**: `{SCRATCH}/pretrained-llms/{MODEL}`",
            f"  - Verified: ✓ ({era.date})",
            "  - Size: ~2.5 GB",
            "",
            "### Dataset",
            f"- **Path**: `{dataset_path(n_samples)}`",
            "- **Format:** JSON",
            f"- **Splits:** train (64 samples), validation (8 samples), test ({n_samples} samples)",
            f"- **Verified:** ✓ ({era.date})",
            "",
            "### Evaluation Tasks",
            "| Task Name | Script | Dataset | Description |",
            "|-----------|--------|---------|-------------|",
            f"| {TASK} | `{TASK_SCRIPT}` | Same as training "
            "| Tests word capitalization accuracy |",
            "",
            "## Evaluation Plan",
            "",
            "### Evaluation Matrix",
            f"| Run Name | {TASK} | Notes |",
            "|----------|----------------|-------|",
            *matrix,
            "",
            "## Configuration",
            "",
            "### Training",
            "- **Recipe:** lora_finetune_single_device",
            "- **Epochs:** 2",
            "- **Batch size:** 4",
            f'- **System prompt:** "{SYSTEM_PROMPT}"',
            "",
            "### Evaluation",
            "- **Temperature:** 0.0",
            "- **Scorer:** match",
            f'- **System prompt:** "{SYSTEM_PROMPT}"',
            "",
            "### Output",
            f"- **Checkpoint directory:** `{SCRATCH}/ck-outputs/{era.experiment}`",
            "- **Naming pattern:** `ck-out-{run_name}/epoch_{N}`",
            "",
        ]
    )


def skill_logs(layout: str) -> dict[str, str]:
    """The early-2026 ``logs/`` folder: what the design and scaffold skills recorded."""
    era = ERAS[layout]
    stamp = f"{era.date} {era.created_time}"
    n_ft = sum(not r.is_control for r in RUNS)
    design = "\n".join(
        [
            f"[{stamp}] DESIGN_START: Designing experiment {era.experiment}",
            "Details: variables lora_rank [4, 16], lr [1e-5, 1e-4]; 1 control (base model)",
            f"Result: {n_ft} fine-tuned runs + 1 control planned",
            "",
            f"[{stamp}] WRITE_SUMMARY: Wrote experiment_summary.yaml",
            f"Details: {experiment_dir(layout)}/experiment_summary.yaml",
            "Result: success",
            "",
        ]
    )
    scaffold_lines = []
    for r in RUNS:
        what = "eval config only (control)" if r.is_control else "finetune.yaml + finetune.slurm + eval config"
        scaffold_lines += [
            f"[{stamp}] SCAFFOLD_RUN: {r.name}",
            f"Details: {what}",
            "Result: success",
            "",
        ]
    return {"design-experiment.log": design, "scaffold-experiment.log": "\n".join(scaffold_lines)}
