"""Training output for the bundled example: real captured torchtune runs, minimally adjusted.

The four captures in ``data/torchtune`` are completed 2-epoch LoRA runs of torchtune
0.6.1, 0.5.0, 0.4.0 and 0.3.1 (a tiny model on CPU, all at ``lora_rank: 4``,
``lr: 0.003``). The example keeps every byte except, in the SLURM file, the config
banner's ``lora_rank:`` and optimizer ``lr:`` lines (set to the run's design values, so
the design/banner cross-check agrees) and the output directory prefix wherever it occurs
(the banner's ``output_dir``/``log_dir``, ``Writing logs to …`` and the checkpoint
lines). In the DiskLogger file only the ``lr:`` values change: the captured schedule
(warm-up to 0.003, cosine decay) is rescaled to peak at the run's design learning rate, so
the learning-rate plot agrees with the design. ``docs/demo.md`` lists these changes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

_OUTPUT_DIR = re.compile(rb"^output_dir: (?P<path>\S+)$", re.MULTILINE)
_LORA_RANK = re.compile(rb"^(?P<indent>  )lora_rank: 4$", re.MULTILINE)
_OPTIMIZER_LR = re.compile(rb"^(?P<head>optimizer:\n  _component_: [^\n]+\n)  lr: 0\.003$", re.MULTILINE)
_WRITING_LOGS = re.compile(rb"Writing logs to (?P<path>\S+)")
_DISK_LR = re.compile(rb"(?<= )lr:(?P<value>[^ \n]+)")
CAPTURED_PEAK_LR = 0.003

GPU_METRICS_HEADER = (
    "timestamp, index, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W]"
)


@dataclass(frozen=True)
class Capture:
    """One captured run, as the example writes it."""

    slurm: bytes
    """The SLURM output with the documented banner and path changes."""
    disklogger: bytes
    """The DiskLogger metrics file, its ``lr:`` values rescaled to the design's peak."""
    disklogger_name: str
    """``log_<unix_ts>.txt``: the name ``Writing logs to`` gives."""
    started_at: int
    """The unix time in the DiskLogger file name (when the metric logger was created)."""


def read_capture(stem: str) -> tuple[bytes, bytes]:
    """The packaged ``.out`` and ``.disklogger.txt`` of one capture, byte for byte."""
    base = resources.files("analyze_experiment").joinpath("data", "torchtune")
    return (base / f"{stem}.out").read_bytes(), (base / f"{stem}.disklogger.txt").read_bytes()


def _yaml_scalar(value: float | int) -> bytes:
    """How torchtune's banner (an OmegaConf YAML dump) prints a number: ``1.0e-05``."""
    return yaml.safe_dump(value).splitlines()[0].encode()


def render_capture(stem: str, *, lora_rank: int, lr: float, output_dir: str) -> Capture:
    """The capture ``stem`` re-labelled as a run with ``lora_rank``, ``lr`` and ``output_dir``.

    Raises:
        ValueError: when the capture does not have exactly one line of each kind to change
            (a new capture needs its changes reviewed, not guessed).
    """
    out, disk = read_capture(stem)
    m = _OUTPUT_DIR.search(out)
    if m is None:
        raise ValueError(f"{stem}.out: no top-level output_dir in the config banner")
    out = out.replace(m["path"], output_dir.encode())
    out, n_rank = _LORA_RANK.subn(rb"\g<indent>lora_rank: " + _yaml_scalar(lora_rank), out)
    out, n_lr = _OPTIMIZER_LR.subn(rb"\g<head>  lr: " + _yaml_scalar(lr), out)
    if n_rank != 1 or n_lr != 1:
        raise ValueError(f"{stem}.out: expected one lora_rank and one optimizer lr line, got {n_rank}/{n_lr}")
    w = _WRITING_LOGS.search(out)
    if w is None:
        raise ValueError(f"{stem}.out: no 'Writing logs to' line")
    name = w["path"].decode().rsplit("/", 1)[-1]
    started = re.fullmatch(r"log_(\d+)\.txt", name)
    if started is None:
        raise ValueError(f"{stem}.out: unexpected DiskLogger file name {name!r}")
    return Capture(slurm=out, disklogger=rescale_lr(disk, lr), disklogger_name=name, started_at=int(started[1]))


def rescale_lr(disk: bytes, peak_lr: float) -> bytes:
    """DiskLogger text with every ``lr:`` value scaled from the captured peak to ``peak_lr``.

    >>> rescale_lr(b"Step 1 | loss:4.9 lr:0.0015 tokens_per_second_per_gpu:1.0 \\n", 1e-4)
    b'Step 1 | loss:4.9 lr:5e-05 tokens_per_second_per_gpu:1.0 \\n'
    """

    def scaled(m: re.Match[bytes]) -> bytes:
        value = float(m["value"]) * peak_lr / CAPTURED_PEAK_LR
        return b"lr:" + repr(float(f"{value:.12g}")).encode()

    return _DISK_LR.sub(scaled, disk)


def gpu_metrics_csv(started_at: int, *, lora_rank: int, rng: np.random.Generator, seconds: int = 24) -> str:
    """A small ``nvidia-smi --query-gpu=… --format=csv -l 1`` log around one training run.

    One A100-80GB sampled every second: idle, the model loading, training (utilisation
    85–98 %, memory a little higher for the larger LoRA rank), then idle again.
    """
    t0 = dt.datetime.fromtimestamp(started_at - 4, tz=dt.UTC)
    train_mem = 14_800 + 45 * lora_rank
    lines = [GPU_METRICS_HEADER]
    for s in range(seconds):
        phase = "idle" if s < 2 or s >= seconds - 2 else ("load" if s < 5 else "train")
        if phase == "idle":
            util, mem, power = 0, 4 if s < 2 else 6, 61.0 + rng.uniform(0, 3)
        elif phase == "load":
            util, mem, power = int(rng.integers(5, 30)), 2_600 * (s - 1), 90.0 + rng.uniform(0, 25)
        else:
            util = int(rng.integers(85, 99))
            mem = train_mem + int(rng.integers(-120, 121))
            power = 250.0 + rng.uniform(0, 110)
        stamp = (t0 + dt.timedelta(seconds=s, milliseconds=int(rng.integers(0, 999))))
        lines.append(
            f"{stamp:%Y/%m/%d %H:%M:%S}.{stamp.microsecond // 1000:03d}, 0, {util} %, "
            f"{mem} MiB, 81920 MiB, {power:.2f} W"
        )
    return "\n".join(lines) + "\n"
