"""The line parser: a state machine over the non-bar text of one file (config banner, wandb
summary, checkpoints, seeds, end messages, ``Step N |`` lines), and the epoch timing read
from the bar frames that reach 100 %."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import yaml

from analyze_experiment.sources.slurm import classify_line
from analyze_experiment.sources.torchtune.limits import LINE_HEAD, LINE_TAIL, MAX_CONFIG_LINES
from analyze_experiment.sources.torchtune.patterns import (
    _ANSI_RE,
    _BANNER_RE,
    _BAR_STRIP_RE,
    _CKPT_DIR_RE,
    _CKPT_SIZE_RE,
    _CKPT_START_RE,
    _CKPT_TIME_RE,
    _DESC_FRAME_RE,
    _EPOCH_IN_PATH_RE,
    _FINAL_RE,
    _LOGGER_PREFIX_RE,
    _MEMORY_RE,
    _NPROC_RE,
    _RANK_RE,
    _SEED_RE,
    _TRAINING_WORDS_RE,
    _UNIT_GIB,
    _WANDB_KV_RE,
    _WANDB_SUMMARY_RE,
    _WRITING_RE,
    BAR_RE,
)
from analyze_experiment.sources.torchtune.records import Checkpoint, EpochInfo, SlurmOutput
from analyze_experiment.sources.torchtune.values import parse_elapsed, parse_step_line, parse_value

_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


def _safe_load(text: str) -> object:
    """``yaml.safe_load`` through libyaml's parser when PyYAML has it (the same constructor and
    resolver, so the same values; parsing the banner of 100 runs was half of reading their
    training logs in pure Python). Text libyaml rejects, and text with characters the
    pure-Python reader refuses, go to the pure-Python loader, so a broken banner gives the same
    result and error message with or without libyaml."""
    if _FAST_LOADER is not None and not _NON_PRINTABLE.search(text):
        try:
            return yaml.load(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


class _LineParser:
    """State machine over the non-bar text of one file (config banner, wandb summary …)."""

    def __init__(self, out: SlurmOutput) -> None:
        self.out = out
        self.in_config = False
        self.config_lines: list[str] = []
        self.config_started = False
        self.in_wandb = False
        self.ckpt_epoch: int | None = None
        self.config_done = False
        self.frame_before: int | None = None
        """File offset of the last bar frame before the segment being fed (None: no frame yet)."""
        self.boundary = 0
        """Offset where the current attempt began."""
        self.output_since = False
        """A Step line or an end message was seen since ``boundary``."""
        self.last_stdout_step: int | None = None
        self.last_stdout_offset = 0
        self.other_rank_line = False
        """The line in progress at the end of the last block carries a rank prefix other than 0."""

    def feed(
        self,
        raw: str,
        offset: int,
        bar_epoch: int | None,
        terminated: bool,
        blank_before: bool,
        other_rank: bool = False,
    ) -> None:
        """One segment of text; ``bar_epoch`` is the 1-based epoch of the last frame before it.

        ``other_rank``: the segment belongs to a line torchrun prefixed with a rank other
        than 0; only failures are read from it (the curve, config and checkpoints are rank 0's).
        """
        text = _ANSI_RE.sub("", raw)
        rm = _RANK_RE.match(text)
        if rm:  # torchrun's `[rankN]:` prefix (evidence lines keep it; the config banner does not)
            self.out.ranks.add(int(rm.group("r")))
            if not text[rm.end() :].strip():  # a blank line of that rank
                if self.in_config and self.config_started and not other_rank:
                    self._finish_config()
                return
        if other_rank:
            ev = classify_line(text)
            if ev is not None:
                self.out.events.append((offset, ev))
                self.output_since = True
            return
        if self.in_config and self._config_line(text[rm.end() :] if rm else text, blank_before):
            return
        if "%|" in text:
            self._unparsed_frames(text)
        if "|" in text and "%|" in text:
            text = _BAR_STRIP_RE.sub("\n", text)
        for piece in text.split("\n"):
            if len(piece) > LINE_HEAD + LINE_TAIL:
                self._line(piece[:LINE_HEAD], offset, bar_epoch, False)
                self._line(piece[-LINE_TAIL:], offset, bar_epoch, terminated)
            elif piece.strip():
                self._line(piece, offset, bar_epoch, terminated)

    def _unparsed_frames(self, text: str) -> None:
        """Count progress frames that speak of loss/step/epoch in a format not read here.

        Frames in the known ``{epoch}|{step}|Loss: {loss}`` format that reach this point (glued
        to other text) are read elsewhere; other bars (``Loading checkpoint shards``, dataset
        ``Map``) say nothing of training and are not counted."""
        for m in _DESC_FRAME_RE.finditer(text):
            frame = m.group(0)
            if _TRAINING_WORDS_RE.search(frame) and not BAR_RE.search(frame):
                self.out.unparsed_frames += 1
                if self.out.first_unparsed is None:
                    self.out.first_unparsed = frame.strip()[:200]

    def _config_line(self, text: str, blank_before: bool) -> bool:
        """Collect YAML lines of the banner; True when ``text`` was consumed."""
        if not self.config_started:
            if not text.strip():
                return True
            self.config_started = True
        elif blank_before or len(self.config_lines) >= MAX_CONFIG_LINES:
            self._finish_config()
            return False
        self.config_lines.append(text.rstrip())
        return True

    def _finish_config(self) -> None:
        self.in_config = False
        if self.config_done:
            self.config_lines = []
            return
        self.config_done = True
        text = "\n".join(self.config_lines)
        self.config_lines = []
        try:
            cfg = _safe_load(text)
        except yaml.YAMLError as exc:
            self.out.config_error = f"the resolved-config banner is not valid YAML ({str(exc).splitlines()[0]})"
            return
        if isinstance(cfg, dict):
            self.out.config = cfg
        else:
            self.out.config_error = "the resolved-config banner is not a YAML mapping"

    def finish(self) -> None:
        if self.in_config:
            self._finish_config()

    def _line(self, line: str, offset: int, bar_epoch: int | None, terminated: bool) -> None:
        """One line of text: the first reading that claims it wins, in this order (an end
        message is never read as anything else; a ``Step`` line ends the wandb summary)."""
        rm = _RANK_RE.match(line)
        if rm:
            self.out.ranks.add(int(rm.group("r")))
        body = _LOGGER_PREFIX_RE.sub("", line, count=1)
        if self._event(line, offset) or ("Step " in body and self._step(body, offset, terminated)):
            return
        if self._wandb_value(body):
            return
        sm = _SEED_RE.search(body)
        if sm and (rm is None or rm.group("r") == "0"):
            self.out.local_seed = int(sm.group("seed"))
            return
        for read in _READERS:
            if read(self, body, offset, bar_epoch):
                return

    def _event(self, line: str, offset: int) -> bool:
        ev = classify_line(line)
        if ev is None:
            return False
        self.out.events.append((offset, ev))
        self.output_since = True
        return True

    def _step(self, body: str, offset: int, terminated: bool) -> bool:
        parsed = parse_step_line(body, terminated=terminated)
        if not parsed:
            return False
        step, values = parsed
        if self.last_stdout_step is not None and step < self.last_stdout_step:
            self.out.restarts.append((self.last_stdout_offset, offset))
        self.last_stdout_step, self.last_stdout_offset = step, offset
        self.out.stdout_steps.setdefault(step, {}).update(values)
        self.output_since = True
        return True

    def _wandb_value(self, body: str) -> bool:
        """A ``key value`` line of the wandb run summary (any other line ends the summary)."""
        if not self.in_wandb:
            return False
        m = _WANDB_KV_RE.match(body)
        if m:
            self.out.wandb_summary[m.group("key")] = parse_value(m.group("value"))
            return True
        self.in_wandb = False
        return False

    def _banner(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        m = _BANNER_RE.search(body)
        if not m:
            return False
        # a banner after training output or an end message starts a new attempt; the
        # banners of several ranks at the start of one job do not
        if self.output_since or (self.frame_before is not None and self.frame_before >= self.boundary):
            self.out.attempt_starts.append(offset)
            self.boundary, self.output_since = offset, False
            self.last_stdout_step = None
        if self.out.recipe is None:
            self.out.recipe = m.group("recipe")
        self.in_config = True
        self.config_started = False
        return True

    def _wandb_start(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        if not _WANDB_SUMMARY_RE.search(body):
            return False
        self.in_wandb = True
        return True

    def _disk_log(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        m = _WRITING_RE.search(body)
        if m:
            self.out.disk_log_names.append(m.group("path"))
        return m is not None

    def _memory(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        m = _MEMORY_RE.search(body)
        if m:
            kind = {"allocation": "alloc"}.get(m.group("kind"), m.group("kind"))
            self.out.memory_init[kind] = float(m.group("value")) * _UNIT_GIB[m.group("unit")]
        return m is not None

    def _checkpoint(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        """A saved checkpoint; its 0-based epoch from the path, else from the bar."""
        m = _CKPT_SIZE_RE.search(body) or _CKPT_DIR_RE.search(body)
        if not m:
            return False
        path = m.group("path")
        pm = _EPOCH_IN_PATH_RE.search(path.rstrip("/"))
        epoch = None
        if pm and "recipe_state" not in path:
            epoch = int(pm.group("e") or pm.group("e2"))
            if epoch < 0:
                epoch = None
        if epoch is None and bar_epoch is not None:
            epoch = bar_epoch - 1
        kind = m.groupdict().get("kind") or "Model"
        size = m.groupdict().get("size")
        gib = float(size) * _UNIT_GIB[m.group("unit")] if size else None
        self.out.checkpoints.append(Checkpoint(kind, path, gib, epoch))
        if kind != "Recipe" and epoch is not None:
            self.ckpt_epoch = epoch
        return True

    def _checkpoint_start(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        if not _CKPT_START_RE.search(body):
            return False
        self.ckpt_epoch = bar_epoch - 1 if bar_epoch is not None else None
        return True

    def _checkpoint_time(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        m = _CKPT_TIME_RE.search(body)
        if not m:
            return False
        seconds = float(m.group("s") or m.group("s2"))
        epoch = self.ckpt_epoch if self.ckpt_epoch is not None else (bar_epoch - 1 if bar_epoch else None)
        if epoch is not None:
            self.out.checkpoint_s[epoch] = self.out.checkpoint_s.get(epoch, 0.0) + seconds
        return True

    def _final(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        if not _FINAL_RE.search(body):
            return False
        self.out.final_checkpoint = body.strip()[:300]
        self.out.final_checkpoint_offset = offset
        return True

    def _nproc(self, body: str, offset: int, bar_epoch: int | None) -> bool:
        m = _NPROC_RE.search(body)
        if m:
            self.out.n_gpus = int(m.group("n") or m.group("n2"))
            self.out.n_gpus_source = "torchrun nproc_per_node"
        return m is not None


_READERS: tuple[Callable[[_LineParser, str, int, int | None], bool], ...] = (
    _LineParser._banner, _LineParser._wandb_start, _LineParser._disk_log, _LineParser._memory,
    _LineParser._checkpoint, _LineParser._checkpoint_start, _LineParser._checkpoint_time, _LineParser._final,
    _LineParser._nproc,
)
"""The line readers after events, Step lines, the wandb summary and the seed, in order."""


def _bar_frames_in(text: str) -> Iterator[re.Match[str]]:
    return BAR_RE.finditer(_ANSI_RE.sub("", text))


def _note_epoch_frames(out: SlurmOutput, text: str, *, last: bool) -> None:
    """Record totals/elapsed of the bar frames in ``text`` (the 100 % ones, or the last one)."""
    frames = [m for m in _bar_frames_in(text) if m.group("n")]
    if last:
        frames = frames[-1:]
    for m in frames:
        e = int(m.group("epoch"))
        info = out.epochs.setdefault(e, EpochInfo(e))
        n, total = int(m.group("n")), int(m.group("total"))
        elapsed = parse_elapsed(m.group("elapsed"))
        info.total = total
        if n >= total and not info.complete:
            info.complete = True
            info.elapsed_s = elapsed
        if (last or n >= total) and (info.last_n is None or n >= info.last_n):
            info.last_n = n
            info.last_elapsed_s = elapsed
