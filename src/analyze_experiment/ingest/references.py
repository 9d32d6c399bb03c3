"""Reference numbers as the user writes them: ``--reference NAME=VALUE[,n=N]...`` on the command
line or a ``references:`` list in the YAML design. Reading them is part of reading the design,
so it lives here; :mod:`analyze_experiment.stats.references` tests runs against them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reference:
    """One number to compare against."""

    name: str
    value: float
    task: str | None = None
    """None: every task."""
    scorer: str | None = None
    metric: str | None = None
    """None: each task's primary metric."""
    n: int | None = None
    """Sample size behind the reference value (a 0/1 metric's interval follows from it)."""
    ci_low: float | None = None
    ci_high: float | None = None
    source: str | None = None
    """Where the number comes from (a citation, a URL)."""


class ReferenceError_(ValueError):
    """A reference that cannot be read (the message says why and how to write it)."""


_SYNTAX = "NAME=VALUE[,n=N][,ci=LOW:HIGH][,task=T][,scorer=S][,metric=M][,source=TEXT]"


def _number(text: Any, what: str) -> float:
    try:
        f = float(str(text).strip())
    except ValueError:
        raise ReferenceError_(f"{what} {text!r} is not a number") from None
    if not math.isfinite(f):
        raise ReferenceError_(f"{what} {text!r} is not a finite number")
    return f


def _count(text: Any, what: str) -> int:
    f = _number(text, what)
    if f < 1 or f != int(f):
        raise ReferenceError_(f"{what} {text!r} is not a positive whole number")
    return int(f)


def make_reference(name: Any, value: Any, **fields: Any) -> Reference:
    """A checked :class:`Reference` (raises :class:`ReferenceError_` naming the bad field)."""
    name = str(name).strip() if name is not None else ""
    if not name:
        raise ReferenceError_("a reference needs a name")
    v = _number(value, f"reference {name!r}: value")
    n = fields.get("n")
    n = _count(n, f"reference {name!r}: n") if n not in (None, "") else None
    lo = hi = None
    ci = fields.get("ci")
    if ci not in (None, ""):
        parts = ci if isinstance(ci, list | tuple) else re.split(r"[:;]", str(ci))
        if len(parts) != 2:
            raise ReferenceError_(f"reference {name!r}: ci must be LOW:HIGH (got {ci!r})")
        lo, hi = (_number(p, f"reference {name!r}: ci") for p in parts)
        if not lo <= v <= hi:
            raise ReferenceError_(f"reference {name!r}: value {v:g} is outside its interval [{lo:g}, {hi:g}]")
    text = {k: (str(fields[k]).strip() or None) if fields.get(k) is not None else None
            for k in ("task", "scorer", "metric", "source")}
    return Reference(name=name, value=v, n=n, ci_low=lo, ci_high=hi, **text)


def parse_reference(text: str) -> Reference:
    """``--reference`` syntax: ``NAME=VALUE[,n=N][,ci=LOW:HIGH][,task=T][,metric=M][,source=S]``.

    >>> parse_reference("Llama-3.2-1B paper=0.71")
    Reference(name='Llama-3.2-1B paper', value=0.71, task=None, scorer=None, metric=None, n=None, ci_low=None, ci_high=None, source=None)
    >>> parse_reference("paper=0.71,n=500,task=qa").n
    500
    """
    if "=" not in text:
        raise ReferenceError_(f"{text!r} has no '=': write {_SYNTAX}")
    name, rest = text.split("=", 1)
    value, *extra = rest.split(",")
    fields: dict[str, Any] = {}
    for item in extra:
        if "=" not in item:
            raise ReferenceError_(f"{item!r} in {text!r} is not KEY=VALUE: write {_SYNTAX}")
        k, v = (s.strip() for s in item.split("=", 1))
        if k not in ("n", "ci", "task", "scorer", "metric", "source"):
            raise ReferenceError_(f"unknown field {k!r} in {text!r}: write {_SYNTAX}")
        fields[k] = v
    return make_reference(name, value, **fields)


def design_references(raw: Any) -> tuple[list[Reference], list[str]]:
    """The design's ``references:`` list -> references and one problem per unusable entry.

    Each entry: ``{name, value, task?, scorer?, metric?, n?, ci?: [low, high], source?}``.
    """
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ["references is not a list; ignored"]
    out, problems = [], []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            problems.append(f"references[{i}] is not a mapping; ignored")
            continue
        unknown = sorted(set(map(str, entry)) - {"name", "value", "task", "scorer", "metric", "n", "ci", "source"})
        try:
            if unknown:
                raise ReferenceError_(f"unknown keys {', '.join(unknown)}")
            out.append(make_reference(entry.get("name"), entry.get("value"),
                                      **{k: entry.get(k) for k in ("task", "scorer", "metric", "n", "ci", "source")}))
        except ReferenceError_ as err:
            problems.append(f"references[{i}]: {err}; ignored")
    return out, problems
