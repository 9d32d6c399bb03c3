"""Run folders made of captured torchtune output, shared by the training tests."""

from __future__ import annotations

import shutil
from pathlib import Path

FIX = Path(__file__).parent / "fixtures" / "torchtune"


def two_gpu_torchrun_run(run: Path) -> Path:
    """A run folder with the captured two-process torchrun failure and a nvidia-smi CSV of two
    GPUs (the one real run whose GPU count, memory and utilisation columns are all filled)."""
    (run / "artifacts").mkdir(parents=True)
    shutil.copy(FIX / "local_v0.6.1_full_distributed_cpu_torchrun_failure.out", run / "artifacts" / "slurm-5.out")
    (run / "artifacts" / "gpu_metrics.csv").write_text(
        "timestamp, index, utilization.gpu [%], memory.used [MiB]\n"
        "2025/11/12 14:03:21.123, 0, 80 %, 1024 MiB\n2025/11/12 14:03:21.123, 1, 60 %, 2048 MiB\n")
    return run
