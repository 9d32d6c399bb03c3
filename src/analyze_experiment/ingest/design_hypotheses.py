"""What the design expects of each variable: the YAML ``hypotheses:`` list, or a reading of its text.

A report that echoes "rank 32 beats rank 8 by ≥ 3 points" and never answers it leaves the reader
to do the statistics. The structured form makes the expectation exact::

    hypotheses:
      - variable: lora_rank
        expect: "32 > 8"      # A > B, A < B, A >= B, A <= B, A = B, matters, no effect, higher, lower
        margin: 0.03          # optional: the gap the expectation claims, in the metric's units
        task: capitalization  # optional: task / scorer / metric (default: each task's primary metric)

Without it, the free-text hypothesis and question are read clause by clause: a clause that names a
swept variable (by its name, its name with spaces, or a known alias such as ``lr``) and two of its
levels with a comparison word ("beats", "no better than", …) becomes one expectation; anything
less certain is kept with the reason the reading may be wrong (:attr:`Hypothesis.unsure`), which
the report prints beside the verdict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from analyze_experiment.experiment import Design, Hypothesis
from analyze_experiment.ingest.design_values import PARAM_ALIASES, normalize_param_name

PAIR_OPS = (">=", "<=", ">", "<", "=")
"""Comparisons between two levels ``A op B``: better, worse, no worse, no better, no different."""
WHOLE = ("matters", "no effect", "higher", "lower")
"""Expectations about the variable as a whole (``higher``: larger levels are better)."""

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_EXPECT = re.compile(r"^\s*(\S+)\s*(>=|<=|≥|≤|==|=|>|<)\s*(\S+)\s*$")

# comparison words, most specific first (a negation before the word it negates)
_WORDS: tuple[tuple[str, str], ...] = (
    (r"\b(?:no|not|isn't|is not|never)\s+better\s+than\b", "<="),
    (r"\b(?:no|not|isn't|is not|never)\s+worse\s+than\b|\bat least as good as\b", ">="),
    (r"\b(?:same as|equal to|as good as|no (?:real )?difference|makes? no difference|does(?:n't| not) matter|"
     r"no effect|irrelevant)\b", "="),
    (r"\b(?:beats?|better than|outperforms?|higher than|exceeds?|improves? (?:on|over)|more accurate than)\b|>", ">"),
    (r"\b(?:worse than|lower than|underperforms?|loses? to)\b|<", "<"),
    (r"\b(?:matters?|affects?|effect|influences?|impact|depends? on)\b", "matters"),
)
_MARGIN = re.compile(r"\bby\s+(?:at least\s+|≥\s*|>=\s*|more than\s+)?(\d+\.?\d*)\s*(points?|pp|percentage points?|%)?",
                     re.IGNORECASE)


def parse_expect(text: str) -> tuple[str, str | None, str | None] | None:
    """``"32 > 8"`` -> ``(">", "32", "8")``; ``"matters"`` -> ``("matters", None, None)``; None if unreadable.

    >>> parse_expect("32 > 8"), parse_expect("1e-4 >= 1e-5"), parse_expect("no effect")
    (('>', '32', '8'), ('>=', '1e-4', '1e-5'), ('no effect', None, None))
    """
    t = " ".join(str(text).strip().lower().split())
    if t in WHOLE:
        return t, None, None
    m = _EXPECT.match(t)
    if not m:
        return None
    op = {"≥": ">=", "≤": "<=", "==": "="}.get(m[2], m[2])
    return op, m[1], m[3]


def _level(text: str | None, levels: list[Any]) -> Any:
    """The design level a written level stands for (``1e-4`` is ``0.0001``); None when none is."""
    if text is None:
        return None
    for lv in levels:
        if str(lv) == text:
            return lv
    try:
        x = float(text)
    except ValueError:
        return None
    for lv in levels:
        try:
            if math.isclose(float(lv), x, rel_tol=1e-9):
                return lv
        except (TypeError, ValueError):
            continue
    return None


def structured(raw: Any, variables: Mapping[str, list[Any]]) -> tuple[list[Hypothesis], list[str]]:
    """The YAML ``hypotheses:`` list; each entry that cannot be read is named in a problem and left out."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ["hypotheses is not a list of {variable, expect, margin?} entries; ignored"]
    out: list[Hypothesis] = []
    problems: list[str] = []
    for i, entry in enumerate(raw):
        where = f"hypotheses[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not a mapping with variable and expect; ignored")
            continue
        var = normalize_param_name(str(entry.get("variable", ""))) if entry.get("variable") else ""
        expect = parse_expect(str(entry.get("expect", "")))
        if not var or expect is None:
            problems.append(f"{where}: needs variable and expect (\"A > B\", \"A <= B\", \"matters\", \"no effect\", "
                            f"\"higher\", \"lower\"); got {entry!r}; ignored")
            continue
        if variables and var not in variables and var != "epoch":
            problems.append(f"{where}: {var} is not a variable of the design ({', '.join(variables) or 'none'}); "
                            "ignored")
            continue
        op, a, b = expect
        if a is not None and variables.get(var) and (_level(a, variables[var]) is None
                                                     or _level(b, variables[var]) is None):
            problems.append(f"{where}: {a} or {b} is not a level of {var} ({', '.join(map(str, variables[var]))}); "
                            "ignored")
            continue
        margin = entry.get("margin")
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))
                                   or not margin >= 0):
            problems.append(f"{where}: margin {margin!r} is not a non-negative number; the margin was ignored")
            margin = None
        out.append(Hypothesis(variable=var, expect=_expect_text(op, a, b), margin=None if margin is None else float(margin),
                              task=_opt(entry.get("task")), scorer=_opt(entry.get("scorer")),
                              metric=_opt(entry.get("metric")), source="yaml",
                              text=f"{var}: {entry.get('expect')}" + (f" (margin {margin})" if margin is not None else "")))
    return out, problems


def _opt(v: Any) -> str | None:
    return None if v is None else str(v)


def _expect_text(op: str, a: str | None, b: str | None) -> str:
    return op if a is None else f"{a} {op} {b}"


def _names(var: str) -> list[str]:
    """Ways a text may name ``var``: itself, with spaces, and its aliases (``lr``)."""
    names = {var, var.replace("_", " ")}
    names |= {alias for alias, canon in PARAM_ALIASES.items() if canon == var}
    names |= {alias.replace("_", " ") for alias in set(names)}
    return sorted(names, key=len, reverse=True)


def _mentions(clause: str, var: str) -> bool:
    low = clause.lower()
    return any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", low) for n in _names(var))


def _clauses(text: str) -> list[str]:
    """Sentences and ``;``-separated parts (a ``.`` inside a number does not split)."""
    parts = re.split(r";|\.(?=\s|$)|\?(?=\s|$)", text)
    return [p.strip() for p in parts if p.strip()]


def from_text(text: str | None, source: str, variables: Mapping[str, list[Any]]) -> list[Hypothesis]:
    """Expectations read from the free-text hypothesis (``source="hypothesis"``) or question."""
    if not text:
        return []
    out: list[Hypothesis] = []
    for clause in _clauses(text):
        named = [v for v in variables if _mentions(clause, v)]
        for var in named:
            out.append(_read_clause(clause, var, list(variables[var]), source, several=len(named) > 1))
    return out


def _read_clause(clause: str, var: str, levels: list[Any], source: str, several: bool) -> Hypothesis:
    low = clause.lower()
    op = next((o for pattern, o in _WORDS if re.search(pattern, low)), None)
    found: list[str] = []
    for m in _NUMBER.finditer(clause):
        lv = _level(m.group(0).lstrip("+"), levels)
        if lv is not None and m.group(0) not in found:
            found.append(m.group(0).lstrip("+"))
    unsure: list[str] = []
    if several:
        unsure.append("the sentence names several variables; each is answered on its own")
    if source == "question":
        op = "matters"
    elif op is None:
        op = "matters"
        unsure.append("no comparison word found; read as 'it matters'")
    if op in PAIR_OPS and len(found) < 2:
        unsure.append(f"two levels of {var} to compare were not found; read as "
                      f"'{'no effect' if op == '=' else 'matters'}'")
        op = "no effect" if op == "=" else "matters"
    if op == "=" and len(found) < 2:
        op = "no effect"
    a, b = (found[0], found[1]) if op in PAIR_OPS else (None, None)
    margin = None
    m = _MARGIN.search(clause)
    if m and op in (">", "<"):
        value = float(m.group(1))
        margin = value / 100 if (m.group(2) or value >= 1) else value
        if not m.group(2) and value >= 1:
            unsure.append(f"'by {m.group(1)}' read as {value:g} percentage points")
    return Hypothesis(variable=var, expect=_expect_text(op, a, b), margin=margin, source=source, text=clause,
                      unsure="; ".join(unsure) or None)


def design_hypotheses(design: Design, variables: Mapping[str, list[Any]] | None = None) -> list[Hypothesis]:
    """Every expectation the report answers: the YAML list when the design has one (exact), else the
    hypothesis text; plus the question's variables that no hypothesis covers ("does it matter")."""
    variables = dict(variables if variables is not None else design.variables)
    out = list(design.hypotheses) or from_text(design.hypothesis, "hypothesis", variables)
    covered = {h.variable for h in out}
    out += [h for h in from_text(design.question, "question", variables) if h.variable not in covered]
    return out
