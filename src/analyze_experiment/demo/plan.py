"""The bundled example sweep as data: its runs, its words and the planted truth.

Everything the example's evaluation logs say is decided here, before inspect-ai writes a
byte, so that the documentation (``docs/demo.md``) and the tests can state what the
analysis must find. The planted effects are exact: a cell's ``match`` accuracy is the
planted fraction of its samples, rounded to whole samples (never a random draw around
it), while *which* samples a run gets right is drawn from a shared per-sample difficulty
plus run- and epoch-specific noise, so paired tests see realistic discordant pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

MODEL = "Llama-3.2-1B-Instruct"
TASK = "capitalization"
PROMPT = "Capitalize the given word: {input}\n"
SYSTEM_PROMPT = "You are a helpful assistant."
CLUSTER_KEY = "word_length"
"""Sample metadata key: the word's length, a natural cluster (longer words are harder)."""

WrongKind = Literal["typo", "lowercase", "verbose"]


@dataclass(frozen=True)
class DemoRun:
    """One run of the example sweep and the accuracy planted for each evaluated epoch."""

    name: str
    vis_label: str
    lora_rank: int | None
    lr: float | None
    lr_text: str | None
    """The learning rate as the design documents write it (``1e-5``)."""
    capture: str | None
    """Stem of the captured torchtune output in ``data/torchtune`` (None: not trained)."""
    job_id: int | None
    planted: tuple[float, ...]
    """``match`` accuracy per evaluated epoch (0, 1, …); one value for the control."""

    @property
    def is_control(self) -> bool:
        """A base model evaluated as-is: no training output, no epoch."""
        return self.capture is None

    @property
    def epochs(self) -> tuple[int | None, ...]:
        """The 0-based checkpoint epochs evaluated (``(None,)`` for the control)."""
        return (None,) if self.is_control else tuple(range(len(self.planted)))


def _ft(rank: int, lr_text: str, capture: str, job_id: int, planted: tuple[float, float]) -> DemoRun:
    label = f"rank{rank}_lr{lr_text}"
    return DemoRun(
        name=f"{MODEL}_{label}",
        vis_label=label,
        lora_rank=rank,
        lr=float(lr_text),
        lr_text=lr_text,
        capture=capture,
        job_id=job_id,
        planted=planted,
    )


RUNS: tuple[DemoRun, ...] = (
    # learning rate 1e-4 clearly beats 1e-5; rank 16 vs 4 differs by at most one point;
    # epoch 1 is slightly better than epoch 0; the base model is far behind.
    _ft(4, "1e-5", "local_v0.6.1_lora_cpu_slurm_completed", 1, (0.555, 0.600)),
    _ft(4, "1e-4", "local_v0.5.0_lora_cpu", 2, (0.810, 0.850)),
    _ft(16, "1e-5", "local_v0.4.0_lora_cpu", 3, (0.545, 0.610)),
    _ft(16, "1e-4", "local_v0.3.1_lora_cpu", 4, (0.820, 0.845)),
    DemoRun(
        name=f"{MODEL}_base",
        vis_label="base",
        lora_rank=None,
        lr=None,
        lr_text=None,
        capture=None,
        job_id=None,
        planted=(0.210,),
    ),
)

# Shares of the wrong answers by kind. A fine-tuned model mostly misspells; the base
# model mostly chats ("Sure! The capitalized word is Apple."), which the ``includes``
# scorer accepts and the exact ``match`` scorer does not.
WRONG_MIX: dict[bool, dict[WrongKind, float]] = {
    False: {"typo": 0.7, "lowercase": 0.2, "verbose": 0.1},
    True: {"typo": 0.2, "lowercase": 0.3, "verbose": 0.5},
}

_VERBOSE = (
    "Sure! The capitalized word is {w}.",
    "The word capitalized is: {w}",
    "{w}\n\nLet me know if you need anything else.",
    "Here you go: {w}",
)

_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
           "br", "cl", "dr", "gr", "pl", "st", "tr", "sh", "ch", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ea", "ou", "ai")
_CODAS = ("", "", "", "n", "r", "l", "s", "t", "m", "ck", "nd")


def planted_count(p: float, n_samples: int) -> int:
    """Samples a cell gets right: the planted fraction rounded half up to whole samples."""
    return int(np.floor(p * n_samples + 0.5))


def planted_accuracy(run: DemoRun, epoch: int | None, n_samples: int) -> float:
    """The exact ``match`` accuracy the example's log for ``run`` at ``epoch`` carries."""
    idx = 0 if epoch is None else epoch
    return planted_count(run.planted[idx], n_samples) / n_samples


def make_words(n_samples: int, seed: int) -> list[str]:
    """``n_samples`` distinct pronounceable lowercase pseudo-words of 4–9 letters.

    Made-up words rather than a dictionary keep the package data small and make any
    number of samples possible; the task (capitalise the first letter) does not care.
    """
    rng = np.random.default_rng([seed, 1])
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n_samples:
        target = int(rng.integers(4, 10))
        w = ""
        while len(w) < target:
            w += (_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                  + _CODAS[rng.integers(len(_CODAS))])
        w = w[:target]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def plant_correct(words: list[str], seed: int) -> dict[tuple[str, int | None], np.ndarray]:
    """Which samples each (run, epoch) cell answers correctly.

    A cell's score for sample *i* is ``difficulty_i + run_noise_i + epoch_noise_i``; the
    ``planted_count`` lowest scores are correct. Difficulty grows with word length, so
    clustering by ``word_length`` matters, and one run's two epochs share their run noise,
    so they disagree on few samples (a paired test sees that epoch 1 is slightly better).
    """
    n = len(words)
    rng = np.random.default_rng([seed, 2])
    lengths = np.array([len(w) for w in words], dtype=float)
    z_len = (lengths - lengths.mean()) / (lengths.std() or 1.0)
    difficulty = 0.7 * z_len + 0.7 * rng.standard_normal(n)
    out: dict[tuple[str, int | None], np.ndarray] = {}
    for run in RUNS:
        run_noise = 0.8 * rng.standard_normal(n)
        for epoch, p in zip(run.epochs, run.planted, strict=True):
            score = difficulty + run_noise + 0.35 * rng.standard_normal(n)
            correct = np.zeros(n, dtype=bool)
            correct[np.argsort(score, kind="stable")[: planted_count(p, n)]] = True
            out[(run.name, epoch)] = correct
    return out


def capitalize(word: str) -> str:
    """The target: the word with its first letter upper-cased."""
    return word[:1].upper() + word[1:]


def wrong_answer(word: str, kind: WrongKind, rng: np.random.Generator) -> str:
    """A plausible wrong completion that exact ``match`` scores incorrect.

    ``typo`` and ``lowercase`` are also wrong for ``includes`` (the target never occurs
    in them); ``verbose`` contains the target, so ``includes`` scores it correct.
    """
    target = capitalize(word)
    if kind == "lowercase":
        return word.lower()
    if kind == "verbose":
        return _VERBOSE[int(rng.integers(len(_VERBOSE)))].format(w=target)
    letters = list(target)
    op = int(rng.integers(3))
    if op == 0:  # swap two neighbouring letters that differ (never the capital)
        spots = [i for i in range(1, len(letters) - 1) if letters[i] != letters[i + 1]]
        if spots:
            i = spots[int(rng.integers(len(spots)))]
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
            return "".join(letters)
    if op == 1:  # substitute one letter
        i = int(rng.integers(1, len(letters)))
        choices = [c for c in "aeiourstnlm" if c != letters[i]]
        letters[i] = choices[int(rng.integers(len(choices)))]
        return "".join(letters)
    # drop one letter
    i = int(rng.integers(1, len(letters)))
    return "".join(letters[:i] + letters[i + 1:])


def completions(words: list[str], seed: int) -> dict[tuple[str, int | None], list[str]]:
    """Every cell's model output per sample: the target where planted correct, else a wrong answer."""
    correct = plant_correct(words, seed)
    rng = np.random.default_rng([seed, 3])
    out: dict[tuple[str, int | None], list[str]] = {}
    for run in RUNS:
        mix = WRONG_MIX[run.is_control]
        kinds: list[WrongKind] = list(mix)
        probs = np.array([mix[k] for k in kinds])
        for epoch in run.epochs:
            ok = correct[(run.name, epoch)]
            texts = []
            for word, right in zip(words, ok, strict=True):
                if right:
                    texts.append(capitalize(word))
                else:
                    kind = kinds[int(rng.choice(len(kinds), p=probs))]
                    texts.append(wrong_answer(word, kind, rng))
            out[(run.name, epoch)] = texts
    return out
