"""SLURM / failure lines in every wording we know of (our own lines in the public formats)."""

from __future__ import annotations

import pytest

from analyze_experiment.sources.slurm import classify_line

CASES = [
    # time limit: Debian/multi-slurmd prefix, plain prefix, legacy wording, STEP variant, glued to a frame
    ("slurmstepd-node-07: error: *** JOB 1449736 ON node-07 CANCELLED AT 2023-12-03T12:47:09 DUE TO TIME LIMIT ***", "timeout", "1449736"),
    ("slurmstepd: error: *** JOB 4191701 ON c5-1 CANCELLED AT 2021-08-17T15:09:00 DUE TO TIME LIMIT ***", "timeout", "4191701"),
    ("slurmstepd: *** JOB 830329 CANCELLED AT 2018-08-06T17:21:44 DUE TO TIME LIMIT on n447 ***", "timeout", "830329"),
    ("slurmstepd: error: *** STEP 494583.0 ON ... CANCELLED AT 2024-04-20T09:09:37 DUE TO TIME LIMIT ***", "timeout", "494583.0"),
    ("22|171|Loss: 4.0093:  38%|███▊      | 3/8 [00:02<00:05,  1.00s/it]\x1b[Aslurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT 2026-11-26T17:26:55 DUE TO TIME LIMIT ***", "timeout", "2"),
    # cancellation without reason, old forms, preemption, node failure, requeue
    ("slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-11-26T17:27:27 ***", "cancelled", "3"),
    ("slurmstepd: *** JOB 77 CANCELLED AT 2019-01-02T03:04:05 ***", "cancelled", "77"),
    ("slurmstepd: error: *** JOB 78 CANCELLED AT 2019-01-02T03:04:05 *** on gpu12", "cancelled", "78"),
    ("slurmstepd-gpu20-15: error: *** STEP 9411285.0 ON gpu20-15 CANCELLED AT 2022-05-17T17:58:10 ***", "cancelled", "9411285.0"),
    ("slurmstepd: error: *** JOB 12 ON a1 CANCELLED AT 2025-01-01T00:00:00 DUE TO PREEMPTION ***", "preempted", "12"),
    ("slurmstepd: error: *** JOB 13 ON a1 CANCELLED AT 2025-01-01T00:00:00 DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***", "node_failure", "13"),
    ("slurmstepd: error: *** JOB 14 ON a1 CANCELLED AT 2025-01-01T00:00:00 DUE TO JOB REQUEUE ***", "requeued", "14"),
    ("slurmstepd: error: *** JOB 15 ON a1 FAILED (non-zero exit code or other failure mode) ***", "slurm_failed", None),
    ("slurmstepd: error: *** JOB 16 ON a1 UNCORRECTABLE MEMORY ERROR AT 2025-01-01T00:00:00 ***", "memory_error", None),
    # host OOM, all generations
    ("slurmstepd: error: Detected 2 oom-kill event(s) in step 3756240.batch cgroup.", "oom", "3756240.batch"),
    ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=191.batch cgroup. Some of your processes may have been killed by the cgroup out-of-memory handler.", "oom", "191.batch"),
    ("slurmstepd-gpu20-15: error: Detected 1 oom-kill event(s) in StepId=9411285.batch. Some of your processes may have been killed by the cgroup out-of-memory handler.", "oom", "9411285.batch"),
    ("slurmstepd: error: Detected 1 oom_kill event in StepId=11300781.0. Some of the step tasks have been OOM Killed.", "oom", "11300781.0"),
    ("slurmstepd: error: Detected 3 oom_kill events in StepId=11300782.batch. Some of the step tasks have been OOM Killed.", "oom", "11300782.batch"),
    ("srun: error: sdumont6156: task 0: Out Of Memory", "oom", None),
    ("slurmstepd: error: Step 5.0 exceeded memory limit (8000000 > 7000000), being killed", "oom", None),
    # CUDA OOM, three PyTorch generations, with and without rank prefix
    ("[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 424.00 MiB. GPU 0 has a total capacity of 21.96 GiB", "cuda_oom", None),
    ("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 100.00 MiB (GPU 0; 23.68 GiB total capacity)", "cuda_oom", None),
    ("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 10.76 GiB total capacity)", "cuda_oom", None),
    # process failures
    ("/var/spool/slurmd/job00191/slurm_script: line 28:  8156 Killed                  python3 main.py", "killed", None),
    ("torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "child_failed", None),
    ("[rank1]: Traceback (most recent call last):", "traceback", None),
    ("[rank0]: ValueError: Logging memory stats is not supported on CPU devices", "exception", None),
]


@pytest.mark.parametrize(("line", "kind", "job"), CASES)
def test_classify(line: str, kind: str, job: str | None) -> None:
    ev = classify_line(line)
    assert ev is not None
    assert ev.kind == kind
    assert ev.job == job


@pytest.mark.parametrize(
    "line",
    [
        "Loss is initialized.",
        "    raise ChildFailedError(",
        "srun: Job step aborted: Waiting up to 47 seconds for job step to finish.",
        "Setting `pad_token_id` to `eos_token_id`:128001 for open-end generation.",
        "Step 3 | loss:4.9 lr:0.0015 ",
        "",
    ],
)
def test_ordinary_lines(line: str) -> None:
    assert classify_line(line) is None
