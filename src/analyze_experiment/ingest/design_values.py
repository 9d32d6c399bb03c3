"""Normalising what design documents and run names say about parameters.

Both design formats (the markdown tables of Oct–Nov 2025 and the YAML of 2026) and the
run-directory names must give the *same* keys and values, or runs of the two eras could
not be compared: ``LoRA Rank`` (a markdown column header), ``lora_rank`` (a YAML key) and
``rank8`` (a directory name) all become ``lora_rank: 8``.
"""

from __future__ import annotations

import re
from typing import Any

# -- parameter names ---------------------------------------------------------------------

PARAM_ALIASES: dict[str, str] = {
    "lr": "learning_rate",
    "learning_rate": "learning_rate",
    "learningrate": "learning_rate",
    "rank": "lora_rank",
    "lora_rank": "lora_rank",
    "lora_r": "lora_rank",
    "lorarank": "lora_rank",
    "alpha": "lora_alpha",
    "lora_alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "lora_dropout": "lora_dropout",
    "bs": "batch_size",
    "batch_size": "batch_size",
    "batch_sizes": "batch_size",
    "batchsize": "batch_size",
    "epochs": "epochs",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "wd": "weight_decay",
    "weight_decay": "weight_decay",
    "grad_accum": "gradient_accumulation_steps",
    "gradient_accumulation": "gradient_accumulation_steps",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "gpus": "gpus",
    "num_gpus": "gpus",
}
"""Spellings met in design documents and torchtune configs -> one snake_case name.

Keys are already in the canonical ``lower_snake`` form produced by
:func:`normalize_param_name` before the alias lookup (``"LoRA Rank"`` -> ``lora_rank``,
``"Learning Rate"`` -> ``learning_rate``, ``"lr"`` -> ``learning_rate``)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z][a-z])")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")
_NON_IDENT = re.compile(r"[^0-9a-z]+")


def normalize_param_name(label: str) -> str:
    """A parameter label as a snake_case identifier shared by both design formats.

    Markdown emphasis and a trailing unit in parentheses are dropped, camelCase is split,
    everything that is not a letter or digit becomes ``_``, and known aliases map to one
    name (see :data:`PARAM_ALIASES`).

    >>> normalize_param_name("LoRA Rank"), normalize_param_name("lr"), normalize_param_name("Batch Size")
    ('lora_rank', 'learning_rate', 'batch_size')
    """
    text = str(label).strip().strip("*_`").strip()
    text = _PARENTHETICAL.sub("", text) or text
    text = _CAMEL.sub("_", text)
    ident = _NON_IDENT.sub("_", text.lower()).strip("_")
    if not ident:
        return "param"
    if ident[0].isdigit():
        ident = "p_" + ident
    return PARAM_ALIASES.get(ident, ident)


# -- values ------------------------------------------------------------------------------

NOT_APPLICABLE = frozenset({"-", "–", "—", "n/a", "na", ""})
"""Cell texts meaning "this parameter does not apply to this run" (the key is left out)."""

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def parse_value(text: Any) -> Any:
    """A design-document value as a number, a boolean, ``None`` or the text itself.

    ``None`` means *not applicable* (``-``, ``N/A``, an empty cell): callers leave the key
    out rather than store a guess. Only plain decimal/scientific notation becomes a number
    (``"nan"``, ``"inf"``, ``"1_000"`` stay text, so a typo never turns into a value).

    >>> parse_value("1e-5"), parse_value("8"), parse_value("-"), parse_value("~10min")
    (1e-05, 8, None, '~10min')
    """
    if not isinstance(text, str):
        return text
    s = text.strip().strip("`").strip()
    if s.lower() in NOT_APPLICABLE:
        return None
    if _INT.fullmatch(s):
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    return s


def coerce_value(value: Any) -> Any:
    """A YAML scalar with numeric strings turned into numbers (``"1e-5"`` -> ``1e-05``).

    YAML 1.1 reads ``1e-5`` (no dot) as a *string*; designs written by hand are full of
    them. Unlike :func:`parse_value`, text such as ``"-"`` or ``""`` is kept as written
    (in YAML a missing value is ``null``, not a dash)."""
    if isinstance(value, str):
        s = value.strip()
        if _INT.fullmatch(s):
            return int(s)
        if _FLOAT.fullmatch(s):
            return float(s)
    return value


# -- run types ---------------------------------------------------------------------------

RUN_TYPE_ALIASES: dict[str, str] = {
    "fine_tuned": "fine-tuned",
    "finetuned": "fine-tuned",
    "finetune": "fine-tuned",
    "fine_tune": "fine-tuned",
    "ft": "fine-tuned",
    "trained": "fine-tuned",
    "control": "control",
    "base": "control",
    "baseline": "control",
    "base_model": "control",
    "eval_only": "eval-only",
    "evaluation_only": "eval-only",
    "evalonly": "eval-only",
}
"""``Fine-tuned``/``fine-tuned``/``finetuned`` -> ``fine-tuned``; ``Control``/``base`` ->
``control``; ``eval-only``/``eval_only`` -> ``eval-only``."""


def normalize_run_type(text: Any) -> str | None:
    """The run type in the vocabulary of :class:`~analyze_experiment.experiment.RunSpec`.

    ``None`` when the text is not a known spelling (the caller warns and decides).

    >>> normalize_run_type("Fine-tuned"), normalize_run_type("Control"), normalize_run_type("x")
    ('fine-tuned', 'control', None)
    """
    if not isinstance(text, str):
        return None
    key = _NON_IDENT.sub("_", text.strip().lower()).strip("_")
    return RUN_TYPE_ALIASES.get(key)


# -- run names ---------------------------------------------------------------------------

_NUM = r"(?P<value>\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
_BOUNDARY_BEFORE = r"(?:^|(?<=[_\-]))"
_BOUNDARY_AFTER = r"(?=$|[_\-])"

RUN_NAME_TOKENS: dict[str, str] = {
    "rank": "lora_rank",
    "lr": "learning_rate",
    "bs": "batch_size",
    "batch": "batch_size",
    "alpha": "lora_alpha",
    "wd": "weight_decay",
    "seed": "seed",
    "epochs": "epochs",
    "dropout": "lora_dropout",
}
"""Prefixes recognised in run-directory names, each followed directly by a number:
``rank8`` -> ``lora_rank``, ``lr1e-5`` -> ``learning_rate``, ``bs4``/``batch4`` ->
``batch_size``, ``alpha16`` -> ``lora_alpha``, ``wd0.01`` -> ``weight_decay``,
``seed42`` -> ``seed``, ``epochs2`` -> ``epochs``, ``dropout0.05`` -> ``lora_dropout``.
A token stands between ``_``/``-`` separators or the ends of the name; anything else
(the model name, ``base``, ``epoch1`` of a checkpoint) is not a parameter."""

_RUN_NAME_TOKEN = re.compile(
    _BOUNDARY_BEFORE
    + r"(?P<key>"
    + "|".join(sorted(RUN_NAME_TOKENS, key=len, reverse=True))
    + r")"
    + _NUM
    + _BOUNDARY_AFTER,
    re.IGNORECASE,
)


def params_from_run_name(name: str) -> dict[str, Any]:
    """Parameters encoded in a run-directory name (the fallback when the design is silent).

    >>> params_from_run_name("rank8_lr1e-5")
    {'lora_rank': 8, 'learning_rate': 1e-05}
    >>> params_from_run_name("Llama-3.2-1B_rank16"), params_from_run_name("Llama-3.2-1B_base")
    ({'lora_rank': 16}, {})
    """
    params: dict[str, Any] = {}
    for m in _RUN_NAME_TOKEN.finditer(name):
        params[RUN_NAME_TOKENS[m.group("key").lower()]] = parse_value(m.group("value"))
    return params
