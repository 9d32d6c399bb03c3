"""Rows of a tidy table held by column, for the cache and for joining many runs' rows at once.

A run's training steps are a thousand ``{"run": …, "step": …, "loss": …}`` dicts. Kept in
the incremental cache as dicts, a re-run over a 100-run sweep spent a quarter of its loading
time unpickling 10^5 dicts and building the ``train_steps`` table from them again. A
:class:`Records` keeps the same rows as one array per column (floats and integers as NumPy
buffers, which pickle as bytes), and :func:`records_frame` joins the records of every run
into the table :func:`analyze_experiment.tables.frame` builds from the dicts — equal to it,
dtypes, column order and values alike:

* a column is stored as ``float64`` only when every row has it and every value is a Python
  ``float``, and as ``int64`` only when every row has it and every value is a Python ``int``
  that fits: exactly the columns ``pd.DataFrame.from_records`` would make ``float64`` /
  ``int64`` from the dicts;
* a column every row has and holds a ``str`` in becomes the Series pandas infers from the
  strings (``str`` dtype), as ``from_records`` infers it;
* every other column keeps its values as they were (a row without the key is marked
  :data:`MISSING`; the table holds NaN there, as ``from_records`` fills it) and goes
  through ``from_records``' own type inference;
* the columns are ordered by first appearance, row by row, as ``from_records`` orders them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment import tables

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Missing:
    """Marks a row without the column's key (pickled by name: one object in every process)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(eq=False)
class Records:
    """Rows by column: ``columns[name]`` is a ``float64``/``int64`` array (see the module
    docstring for when) or a list of the rows' values, :data:`MISSING` where a row lacked the
    key. Iterates, indexes and compares as the list of row dicts it was made from."""

    n: int = 0
    columns: dict[str, np.ndarray | list[Any]] = field(default_factory=dict)
    text: frozenset[str] = frozenset()
    """Columns every row has and holds a ``str`` in."""
    gaps: frozenset[str] = frozenset()
    """Columns some row lacks (:data:`MISSING` in the list)."""

    @classmethod
    def from_dicts(cls, rows: Sequence[Mapping[str, Any]]) -> Records:
        """The records of ``rows`` (dicts, keys in any order; a missing key is an unknown)."""
        names: dict[str, None] = {}
        for row in rows:
            for k in row:
                if k not in names:
                    names[k] = None
        columns: dict[str, np.ndarray | list[Any]] = {}
        text: set[str] = set()
        gaps: set[str] = set()
        for name in names:
            values = [row.get(name, MISSING) for row in rows]
            kinds = set(map(type, values))
            if _Missing in kinds:
                gaps.add(name)
            elif kinds == {str}:
                text.add(name)
            columns[name] = values if name in gaps or name in text else _typed(values, kinds)
        return cls(len(rows), columns, frozenset(text), frozenset(gaps))

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rows as the dicts they were (a key a row lacked is not in its dict)."""
        lists = [c.tolist() if isinstance(c, np.ndarray) else c for c in self.columns.values()]
        names = list(self.columns)
        for values in zip(*lists, strict=True):
            yield {k: v for k, v in zip(names, values, strict=True) if v is not MISSING}

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = {k: c[i].item() if isinstance(c, np.ndarray) else c[i] for k, c in self.columns.items()}
        return {k: v for k, v in row.items() if v is not MISSING}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records | list):
            return self.rows() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (see :meth:`__iter__`)."""
        return list(self)


def _typed(values: list[Any], kinds: set[type]) -> np.ndarray | list[Any]:
    """A ``float64``/``int64`` array when ``from_records`` would give exactly that, else ``values``."""
    if not values:
        return values
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    if kinds == {int} and min(values) >= _INT64_MIN and max(values) <= _INT64_MAX:
        return np.array(values, dtype=np.int64)
    return values


def _kind(r: Records, name: str) -> str:
    p = r.columns.get(name)
    if p is None:
        return "absent"
    if isinstance(p, np.ndarray):
        return p.dtype.kind
    return "text" if name in r.text else "gaps" if name in r.gaps else "values"


def records_frame(columns: list[str], parts: Sequence[Records | Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """``tables.frame(columns, <every part's rows, in order>)``, built by column.

    A part may still be a list of dicts (a run read by an older path); it is turned into
    :class:`Records` first. A column whose parts are all ``float64`` (or absent in some parts:
    NaN, as ``from_records`` fills) becomes one ``float64`` array, one whose parts are all
    ``int64`` one ``int64`` array; every other column is built by ``from_records`` from its
    values, so it gets exactly the type the dicts would have given it.
    """
    recs = [p if isinstance(p, Records) else Records.from_dicts(p) for p in parts]
    n = sum(r.n for r in recs)
    if not n:
        return tables.frame(columns)
    names: dict[str, None] = {}
    for r in recs:
        if r.n:
            names.update(dict.fromkeys(r.columns))
    fast: dict[str, np.ndarray | pd.Series] = {}
    slow: dict[str, list[Any]] = {}
    for name in names:
        pieces = [(r.columns.get(name), r.n, _kind(r, name)) for r in recs if r.n]
        kinds = {kind for _, _, kind in pieces}
        if kinds == {"i"}:
            fast[name] = np.concatenate([p for p, _, _ in pieces])
        elif kinds in ({"f"}, {"f", "absent"}):
            fast[name] = np.concatenate([np.full(k, np.nan) if p is None else p for p, k, _ in pieces])
        elif kinds == {"text"}:  # every value a str: the str (or object) column from_records infers
            fast[name] = pd.Series([v for p, _, _ in pieces for v in p])
        else:
            values: list[Any] = []
            for p, k, kind in pieces:
                if p is None:
                    values.extend([np.nan] * k)
                elif isinstance(p, np.ndarray):
                    values.extend(p.tolist())
                elif kind == "gaps":  # a row without the key holds NaN, as from_records fills it
                    values.extend(np.nan if v is MISSING else v for v in p)
                else:
                    values.extend(p)
            slow[name] = values
    inferred = (pd.DataFrame.from_records(list(zip(*slow.values(), strict=True)), columns=list(slow))
                if slow else None)
    df = pd.DataFrame({name: fast[name] if name in fast else inferred[name] for name in names})  # type: ignore[index]
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(dtype="object")
    extra = [c for c in df.columns if c not in columns]
    return tables.typed(df[columns + extra])
