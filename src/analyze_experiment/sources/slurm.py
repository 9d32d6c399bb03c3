"""SLURM and process-failure lines in a job's output file, turned into evidence.

The lines come from slurmstepd (time limit, scancel, preemption, node failure, cgroup OOM),
from srun, from the batch shell, from Python (tracebacks, CUDA OOM) and from torchrun
(``ChildFailedError``). Every wording we know of is matched *anywhere* in a line, because
SLURM's message is often glued to the end of an unterminated progress-bar frame and may
carry a ``slurmstepd-<node>: error:`` prefix (FORMATS.md §5).

>>> classify_line("slurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT 2026-11-26T17:26:55 DUE TO TIME LIMIT ***").kind
'timeout'
>>> classify_line("Loss is initialized.") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

EventKind = Literal[
    "timeout",
    "cancelled",
    "preempted",
    "node_failure",
    "requeued",
    "slurm_failed",
    "memory_error",
    "oom",
    "cuda_oom",
    "killed",
    "traceback",
    "child_failed",
    "exception",
]
"""What one line says happened to the job."""

# `*** JOB 5 ON vm CANCELLED AT 2026-11-26T17:29:55 DUE TO TIME LIMIT ***`, the STEP variant,
# the old `*** JOB N CANCELLED AT <ts> DUE TO TIME LIMIT on n447 ***` and `… *** on <node>`.
_CANCEL_RE = re.compile(
    r"\*\*\* (?P<what>JOB|STEP) (?P<id>\S+)(?: ON (?P<node>\S+))? CANCELLED AT (?P<ts>\S+)"
    r"(?: DUE TO (?P<reason>[A-Z][A-Z ]*[A-Z]))?[^*]*\*\*\*"
)
_FAILED_RE = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ FAILED\b[^*]*\*\*\*")
_MEMERR_RE = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ UNCORRECTABLE MEMORY ERROR")
# every generation of the cgroup OOM line: `oom-kill event(s) in step N.batch cgroup`,
# `… in StepId=N.batch cgroup.`, `… in StepId=N.batch.`, `oom_kill event in StepId=N.0.`
_OOM_RE = re.compile(r"Detected (?P<n>\d+) oom[-_]kill events?(?:\(s\))? in (?:step |StepId=)(?P<step>\d+(?:\.\w+)?)")
_SRUN_OOM_RE = re.compile(r"task \d+: Out Of Memory")
_EXCEEDED_RE = re.compile(r"exceeded (?:job )?memory limit \(")
_CUDA_OOM_RE = re.compile(
    r"(?:CUDA|HIP|XPU|NPU|MPS backend) out of memory|torch(?:\.cuda)?\.OutOfMemoryError|\bOutOfMemoryError:"
)
_KILLED_RE = re.compile(r"slurm_script: line \d+: +\d+ Killed")
_TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\):")
_CHILD_RE = re.compile(r"^(?!.*\braise\b).*ChildFailedError")
# the last line of a traceback: `ValueError: …`, `[rank0]: torch.AcceleratorError: …`
_EXCEPTION_RE = re.compile(r"^(?:\[[^\]\s]{1,40}\]: ?)?(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)(?::|$)")

_PLAIN_EVENTS: tuple[tuple[re.Pattern[str], EventKind], ...] = (
    (_SRUN_OOM_RE, "oom"),
    (_EXCEEDED_RE, "oom"),
    (_CUDA_OOM_RE, "cuda_oom"),
    (_FAILED_RE, "slurm_failed"),
    (_MEMERR_RE, "memory_error"),
    (_KILLED_RE, "killed"),
    (_CHILD_RE, "child_failed"),
    (_TRACEBACK_RE, "traceback"),
    (_EXCEPTION_RE, "exception"),
)
"""Lines whose event carries no job id, in order of precedence (the first that matches wins;
``_EXCEPTION_RE`` is anchored at the line start, so ``search`` acts as ``match``)."""

_REASONS: dict[str, EventKind] = {
    "TIME LIMIT": "timeout",
    "PREEMPTION": "preempted",
    "NODE FAILURE": "node_failure",
    "JOB REQUEUE": "requeued",
}

# cheap first filter: a line without any of these bytes cannot match
_TRIGGERS = ("***", "oom", "Out Of Memory", "out of memory", "OutOfMemory", "memory limit", "Killed",
             "Traceback", "ChildFailedError", "Error", "Exception")


@dataclass(frozen=True)
class Event:
    """One SLURM/failure line: what it means and the line itself (stripped, capped)."""

    kind: EventKind
    line: str
    job: str | None = None


def classify_line(line: str) -> Event | None:
    """Return the event a line reports, or None for an ordinary line.

    >>> classify_line("slurmstepd: error: Detected 2 oom-kill event(s) in step 3756240.batch cgroup.").kind
    'oom'
    >>> classify_line("slurmstepd: *** JOB 830329 CANCELLED AT 2018-08-06T17:21:44 DUE TO TIME LIMIT on n447 ***").kind
    'timeout'
    """
    if not any(t in line for t in _TRIGGERS):
        return None
    text = line.strip()[:500]
    m = _CANCEL_RE.search(line)
    if m:
        reason = (m.group("reason") or "").strip()
        kind: EventKind = "cancelled"
        for key, k in _REASONS.items():
            if reason.startswith(key):
                kind = k
        return Event(kind, text, m.group("id"))
    m = _OOM_RE.search(line)
    if m:
        return Event("oom", text, m.group("step"))
    for pattern, kind in _PLAIN_EVENTS:
        if pattern.search(line):
            return Event(kind, text)
    return None
