"""The regular expressions of the line-level reader (applied to decoded text after the bar
frames are removed) and of the bar frame itself (epoch timing, the reference parser)."""

from __future__ import annotations

import re

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOGGER_PREFIX_RE = re.compile(r"^(?:\[[^\]\s]{1,40}\]: ?)?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:)?")
_NUM = r"nan|NaN|-?inf|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
BAR_RE = re.compile(
    r"(?P<epoch>\d+)\|(?P<step>\d+)\|Loss: (?P<loss>" + _NUM + r")"
    r"(?::\s*(?P<pct>\d+)%\|[^|\r\n]{0,200}\|\s*(?P<n>\d+)/(?P<total>\d+)"
    r" \[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+),\s*(?P<rate>[\d.?]+)(?P<unit>it/s|s/it)\])?"
)
"""One progress-bar frame with a description (the tail is optional: frames can be cut)."""
_BAR_STRIP_RE = re.compile(
    r"(?:\d+\|\d+(?:\|Loss: [^:\r\n]{0,64})?: *)?\d+%\|[^|\r\n]{0,200}\|\s*\d+/\d+ \[[^\]\r\n]{0,200}\]"
)
STEP_RE = re.compile(r"Step (?P<step>\d+) \| (?P<rest>[^\r\n]*)")
"""A metric-logger line ``Step N | key:value key:value `` (StdoutLogger or DiskLogger)."""
_KV_RE = re.compile(r"([^\s:|]{1,200}):(\S{1,400})(\s|$)")
_BANNER_RE = re.compile(r"Running (?P<recipe>\w+) with resolved config:")
_WRITING_RE = re.compile(r"Writing logs to (?P<path>\S+)")
_SEED_RE = re.compile(r"Setting manual seed to local seed (?P<seed>\d+)")
"""torchtune's ``set_seed``: the seed the process really used (the config's ``seed`` + rank, or a
random one when the config says ``seed: null``)."""
_MEMORY_RE = re.compile(
    r"(?P<device>\b\w{1,16}) peak memory (?P<kind>allocation|alloc|reserved|active): (?P<value>[\d.]+) (?P<unit>GiB|GB)"
)
_CKPT_SIZE_RE = re.compile(
    r"(?P<kind>Model|Adapter|Recipe) checkpoint of size (?P<size>[\d.]+) (?P<unit>GiB|GB) saved to (?P<path>\S+)"
)
_CKPT_DIR_RE = re.compile(r"Model checkpoint saved to (?P<path>\S+)")
_CKPT_TIME_RE = re.compile(
    r"Checkpoint saved in (?P<s>[\d.]+) seconds|Saving (?:asynchronous )?checkpoint took (?P<s2>[\d.]+) secs"
)
_CKPT_START_RE = re.compile(r"Starting checkpoint save|Saving checkpoint\. This may take")
_FINAL_RE = re.compile(r"Saving final epoch checkpoint\.")
_NPROC_RE = re.compile(r"--nproc[_-]per[_-]node[ =](?P<n>\d+)|Using nproc_per_node=(?P<n2>\d+)")
_RANK_RE = re.compile(r"^\[rank(?P<r>\d+)\]:")
_WANDB_SUMMARY_RE = re.compile(r"wandb: Run summary:")
_WANDB_KV_RE = re.compile(r"wandb:\s+(?P<key>\S+)\s+(?P<value>\S+)\s*$")
_EPOCH_IN_PATH_RE = re.compile(r"(?:^|/)(?:epoch|step)_(?P<e>\d+)(?:/|$)|_(?P<e2>\d+)\.(?:pt|bin|safetensors)$")
_TIME_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+)$")
_DESC_FRAME_RE = re.compile(
    r"[^\r\n]{0,300}?\d{1,3}%\|[^|\r\n]{0,200}\|\s*\d+/\d+\s*\[[^\]\r\n]{0,300}\]"
)
"""One tqdm frame with whatever description precedes it and its ``[…]`` postfix."""
_TRAINING_WORDS_RE = re.compile(r"(?i)loss|\bstep|epoch")
_NOISE_BAR_RE = re.compile(r"\s*\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*\]\s*")

_UNIT_GIB = {"GiB": 1.0, "GB": 1e9 / 2**30}
