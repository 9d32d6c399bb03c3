"""Type checks of design-document fields, shared by the YAML and markdown readers.

A design entry of the wrong type must never reach the analysis: a run name that is a
list crashed the reader, and a learning rate written as ``fast`` would have become its own
"level" of the sweep. A run whose entry has such a field is left out of the design with a
warning naming the field (issue 12); the run, if it is on disk, is then analysed with the
parameters its directory name states, and the report says it was not in the design.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from analyze_experiment.ingest.design_values import PARAM_ALIASES, RUN_NAME_TOKENS

NUMERIC_PARAMS = frozenset({*PARAM_ALIASES.values(), *RUN_NAME_TOKENS.values(), "max_steps_per_epoch"})
"""Parameters that are numbers by definition (``lora_rank``, ``learning_rate``, ``batch_size``,
``epochs``, ``seed`` …): any other value for them is a typo, not a level of the sweep."""

WHOLE_PARAMS = frozenset(
    {"lora_rank", "batch_size", "epochs", "gradient_accumulation_steps", "seed", "gpus", "max_steps_per_epoch"}
)
"""Numeric parameters that are counts: ``lora_rank: 0.5`` is a typo too."""


def describe(value: Any) -> str:
    """What kind of YAML value ``value`` is, in words a user recognises.

    >>> describe(["r1"]), describe({"a": 1}), describe(True), describe(3), describe("x")
    ('a list', 'a mapping', 'true/false', 'a number', 'text')
    """
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, _dt.datetime | _dt.date):
        return "a date"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """An int or float that is not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a run name (None when it can).

    Text, whole numbers and dates name a directory unambiguously; a decimal number does
    not (``1.10`` is read as ``1.1``), nor does anything that is not a single value.

    >>> name_problem("rank8"), name_problem(7), name_problem(["r1"]), name_problem(1.5)
    (None, None, 'is a list, not text', 'is a decimal number (1.5), not text; quote it')
    """
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if isinstance(value, _dt.date):
        return None
    if isinstance(value, float):
        return f"is a decimal number ({value!r}), not text; quote it"
    return f"is {describe(value)}, not text"


def text_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a one-line text field (``type``, ``model``, ``question`` …).

    >>> text_problem("Llama"), text_problem(None), text_problem({"a": 1})
    (None, None, 'is a mapping, not text')
    """
    if value is None or (isinstance(value, str | int | float | _dt.date) and not isinstance(value, bool)):
        return None
    return f"is {describe(value)}, not text"


def param_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of parameter ``key`` of one run (None when it can).

    ``key`` is already normalised (:func:`~analyze_experiment.ingest.design_values.normalize_param_name`).

    >>> param_problem("lora_rank", 8), param_problem("lora_rank", "eight"), param_problem("dataset", [1])
    (None, "is 'eight', not a number", 'is a list, not a single value')
    >>> param_problem("lora_rank", 0.5), param_problem("learning_rate", 0.5)
    ('is 0.5, not a whole number', None)
    """
    if isinstance(value, list | tuple | dict | set):
        return f"is {describe(value)}, not a single value"
    if key in NUMERIC_PARAMS and value is not None and not is_number(value):
        shown = value.isoformat() if isinstance(value, _dt.date) else value
        return f"is {shown!r}, not a number"
    if key in WHOLE_PARAMS and isinstance(value, float) and not value.is_integer():
        return f"is {value!r}, not a whole number"
    return None
