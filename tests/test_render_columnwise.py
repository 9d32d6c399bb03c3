"""The report's tables, curves and next design are rendered column by column, in one pass or
through libyaml, and read exactly as the one-cell-at-a-time forms they replace.

Each test compares the fast form with an independent statement of what it must give: a cell
read on its own (``df.iloc[i, j]``), the rows as Jinja writes them from the old per-cell
template loop, each slice's extremes picked in plain Python, and PyYAML's own emitter.
"""

from __future__ import annotations

import copy
import math
import random
import unicodedata

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.report import html as html_mod
from analyze_experiment.report import retrospective as retro
from analyze_experiment.report.cells import cell_text
from analyze_experiment.report.doc import Table
from analyze_experiment.report.markdown import (
    _width,
    column_values,
    escape_cell,
    escape_inline,
    markdown_table,
)

HOSTILE = ["<script>alert(1)</script>", 'say "hi" & \'bye\'', "rank8\u202eevil", "two\nlines", "a|b", "*x*", "",
           "café 中文", "  padded  "]


def _mixed_frame() -> pd.DataFrame:
    """A 100-run-like table: every kind of column a report table may hold, with gaps."""
    n = 12
    rng = np.random.default_rng(3)
    f64 = rng.normal(size=n) * 10.0 ** rng.integers(-7, 17, size=n)
    f64[[2, 7]] = np.nan
    return pd.DataFrame({
        "run": [f"rank{r}_lr{lr}" for r, lr in zip(range(n), np.geomspace(1e-5, 3e-3, n), strict=True)],
        "name": [HOSTILE[i % len(HOSTILE)] if i % 4 else None for i in range(n)],
        "f64": f64,
        "f32": np.array([0.1, 0.2, np.nan, 1 / 3] * 3, dtype="float32"),
        "i64": np.arange(n) * 1_000_000_007,
        "flag": [i % 3 == 0 for i in range(n)],
        "Int64": pd.array([1, None, 3] * 4, dtype="Int64"),
        "Float64": pd.array([0.5, None, 1e-9] * 4, dtype="Float64"),
        "string": pd.array(["a", None, "<b>"] * 4, dtype="string"),
        "cat": pd.Categorical([0.1, 0.25, None] * 4),
        "when": pd.to_datetime(["2026-12-02 07:00", None, "2026-01-01"] * 4, format="mixed"),
        "took": pd.to_timedelta([90, None, 3600] * 4, unit="s"),
        "levels": [[1, 2], ("b", "a"), {"z", "y"}, np.array([0.5, 1.5])] * 3,
        "mixed": [1, "two", 3.5, None, float("nan"), pd.NA, True, "x", 0, -1.25, "1e-05", "—"],
        "log": [f"logs/run {i}/(a).eval" if i % 5 else ("javascript:alert(1)" if i else None) for i in range(n)],
    })


def test_table_cells_read_as_each_cell_read_alone():
    df = _mixed_frame()
    t = Table(df, name="mixed", links={"run": "log"})
    view = html_mod._table_view(t, html_mod._Ids())
    shown = [c for c in df.columns if c != "log"]
    assert view.columns == [[cell_text(df.iloc[i, df.columns.get_loc(c)]) for i in range(len(df))] for c in shown]
    links = view.links[shown.index("run")]
    assert links == [html_mod._link_target(cell_text(df["log"].iloc[i])) for i in range(len(df))]
    assert all(view.links[j] is None for j, c in enumerate(shown) if c != "run")
    col = dict(zip(shown, view.columns, strict=True))
    # the values a reader sees: float32 at its own precision, gaps empty, collections as items
    assert col["f32"][:2] == ["0.1", "0.2"] and col["f32"][3] == "0.33333334"
    assert col["f64"][2] == col["f64"][7] == "" and col["Int64"][1] == col["string"][1] == col["cat"][2] == ""
    assert col["levels"][:4] == ["1, 2", "b, a", "y, z", "0.5, 1.5"]
    assert col["when"][0] == "2026-12-02 07:00:00" and col["took"][0] == "0 days 00:01:30"
    assert col["mixed"][:6] == ["1", "two", "3.5", "", "", ""]
    assert links[0] is None and links[1] == "logs/run%201/%28a%29.eval" and links[5] is None  # no scheme kept


def test_a_name_two_columns_share_reads_as_before():
    df = pd.DataFrame([["a", 1.5, "x"], ["b", None, "<y>"]], columns=["run", "v", "v"])
    view = html_mod._table_view(Table(df, name="dup"), html_mod._Ids())
    assert view.columns == [[cell_text(df[c].iloc[i]) for i in range(len(df))] for c in df.columns]
    assert view.columns[1] == ["1.5, x", ", <y>"]  # each row's values, the gap empty
    first = markdown_table(df, {"run": "v"}).split("\n")[2]
    assert first.startswith(f"| [a]({html_mod._link_target(df['v'].iloc[0])}) ")


def test_column_values_are_the_scalars_iloc_gives():
    df = _mixed_frame()
    for c in df.columns:
        got, want = column_values(df[c]), [df[c].iloc[i] for i in range(len(df))]
        assert [type(v) for v in got] == [type(v) for v in want], c
        assert [repr(v) for v in got] == [repr(v) for v in want], c


OLD_ROWS = """{% for row in rows %}
<tr{% if row.flags %} class="{{ row.flags|join(' ') }}"{% endif %}{% if row.run is not none %} data-run="{{ row.run }}"{% endif %}{% if row.task is not none %} data-task="{{ row.task }}" data-scorer="{{ row.scorer }}"{% if row.metric is not none %} data-metric="{{ row.metric }}"{% endif %}{% endif %}>{% for cell in row.cells %}<td{% if numeric[loop.index0] %} class="num"{% endif %}{% if loop.first and row.flags %} data-label="{{ row.flags|join(' · ') }}"{% endif %}>{% if cell.href %}<a href="{{ cell.href }}">{{ cell.text }}</a>{% else %}{{ cell.text }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}
"""
"""The table rows as the report's template wrote them, one Jinja loop step per cell."""


@pytest.mark.parametrize("first_numeric", [True, False])
def test_rows_are_the_markup_the_template_loop_wrote(first_numeric):
    rng = random.Random(7)
    n, numeric = 30, [first_numeric, False, True, False]
    columns = [[rng.choice([*HOSTILE, "0.25", "1e-05"]) for _ in range(n)] for _ in numeric]
    links = [None, [rng.choice([None, "", "logs/a%20b.eval", 'x"><script>']) for _ in range(n)], None, None]
    flag_sets = [(), ("best",), ("best", "control"), ("failed", '<i>"q"</i>')]
    rows = []
    for _ in range(n):
        task = rng.choice([None, "qa", "q&a <1>"])
        rows.append(html_mod.RowView(
            flags=rng.choice(flag_sets), run=rng.choice([None, "", "rank8", "r\u202eun<&>"]), task=task,
            scorer=None if task is None else rng.choice(["match", "it's"]),
            metric=None if task is None else rng.choice([None, "accuracy", "a\nb"])))
    view = html_mod.TableView("table-x", None, ["h"] * len(numeric), numeric, columns, links, rows)
    cells = [[{"text": columns[j][i], "href": None if links[j] is None else links[j][i]} for j in range(len(numeric))]
             for i in range(n)]
    old = html_mod._env().from_string(OLD_ROWS).render(
        numeric=numeric, rows=[{**vars(r), "cells": c} for r, c in zip(rows, cells, strict=True)])
    assert str(view.body) == old
    assert "<script>" not in old and "&lt;script&gt;" in old  # the hostile text really went through


def test_rows_of_a_table_without_columns_or_rows():
    rows = [html_mod.RowView(flags=("best",), run="r1")]
    assert str(html_mod.TableView("t", None, [], [], [], [], rows).body) == '<tr class="best" data-run="r1"></tr>\n'
    assert str(html_mod.TableView("t", None, ["a"], [True], [[]], [None], []).body) == ""


def _thin_reference(y: np.ndarray, points: int) -> list[int]:
    """Indices kept: per slice (``np.array_split``), the first non-finite value and the first
    lowest and first highest finite value, in step order."""
    keep: set[int] = set()
    for idx in np.array_split(np.arange(len(y)), points // 2):
        ids = [int(i) for i in idx]
        bad = [i for i in ids if not math.isfinite(y[i])]
        good = [i for i in ids if math.isfinite(y[i])]
        keep.update(bad[:1])
        if good:
            keep.add(min(good, key=lambda i: (y[i], i)))
            keep.add(min(good, key=lambda i: (-y[i], i)))
    return sorted(keep)


def test_thinning_keeps_each_slices_extremes_and_first_break():
    x = np.arange(10, dtype=float) * 2
    y = np.array([3.0, 1.0, 1.0, 5.0, 5.0, np.nan, 2.0, np.inf, 0.0, 0.0])
    tx, ty = html_mod._thin(x, y, points=4)  # two slices of five
    # first lowest and highest of each slice, and the first break (the NaN; the inf comes after it)
    assert tx.tolist() == [2, 6, 10, 12, 16]
    assert np.isnan(ty[2]) and ty[[0, 1, 3, 4]].tolist() == [1.0, 5.0, 2.0, 0.0]
    rng = np.random.default_rng(11)
    for _ in range(300):
        n, points = int(rng.integers(2, 900)), int(rng.integers(2, 120))
        y = rng.integers(-3, 4, size=n).astype(float)  # many ties
        y[rng.random(n) < 0.05] = np.nan
        y[rng.random(n) < 0.02] = np.inf
        x = np.arange(n, dtype=float) + 0.5
        tx, ty = html_mod._thin(x, y, points)
        want = list(range(n)) if n <= points else _thin_reference(y, points)
        assert tx.tolist() == [i + 0.5 for i in want]
        assert np.array_equal(ty, y[want], equal_nan=True)
        assert tx.dtype == x.dtype and ty.dtype == y.dtype


def test_markdown_links_and_escapes_read_cell_by_cell():
    df = _mixed_frame()
    lines = markdown_table(df, {"run": "log"}).split("\n")[2:]
    for i, line in enumerate(lines):
        target = html_mod._link_target(df["log"].iloc[i])
        text = escape_cell(cell_text(df["run"].iloc[i]))
        assert line.startswith(f"| [{text}]({target}) " if target else f"| {text} ")


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
                 st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=30)))
def test_a_cell_with_nothing_to_escape_is_left_as_it_is(text):
    """The shortcut for plain cells (most of a 100-run table) gives what the escapes give."""
    assert escape_cell(text) == escape_inline(text.strip(" ")).replace("|", "\\|")
    assert _width(text) == sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _design(question: str, names: list[str]) -> dict:
    """A next design shaped like the 100-run sweep's: many levels, nested runs, nulls."""
    lrs = [float(f"{v:.3g}") for v in np.geomspace(1e-5, 3e-3, 20)]
    return {"experiment": {"name": "bench_sweep_100_next", "question": question, "hypothesis": None,
                           "purpose": "Follow-up of bench_sweep_100: settle what it left open."},
            "variables": {"lr": lrs, "lora_rank": [4, 8, 16], "note": "it's: 'quoted' # not a comment"},
            "controls": {"batch_size": 4, "epochs": 1.5, "packed": True, "empty": [], "nothing": {}},
            "runs": [{"name": n, "parameters": {"lr": lr, "seed": s}} for n in names for lr in lrs[:3] for s in (1, 2)],
            "evaluation": {"tasks": ["capitalization", "yes", "null", "1e-05", "- dash", "a: b"],
                           "min_samples_per_task": 800}}


@pytest.mark.parametrize("question,names", [
    ("Which learning rate and LoRA rank?", ["rank4_lr1e-4_seed1", "rank8"]),  # libyaml writes these
    ("Which rate — and why?", ["rank4"]),  # non-ASCII: PyYAML's emitter
    ("two\nlines\tand\u202e", ["r" * 80]),  # escapes, a long name
])
def test_next_design_yaml_is_pyyamls_own_text(question, names):
    doc = _design(question, names)
    want = yaml.dump(retro.plain(doc), Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)
    assert retro.yaml_text(doc, []).split("\n\n", 1)[1] == want
    assert yaml.safe_load(want) == retro.plain(doc)
    fast = getattr(yaml, "__with_libyaml__", False) and question.isascii()
    assert (retro._dumper(retro.plain(doc)) is yaml.CSafeDumper) == fast


def test_a_design_written_again_is_the_same_text_and_a_changed_one_is_written_anew():
    """The report writes its next design three times; the second and third reuse the first
    text, and a value changed in kind (``True``, ``1``, ``"1"``) is written anew."""
    doc = _design("Which rank?", ["r1"])
    assert retro.yaml_text(copy.deepcopy(doc), []) == retro.yaml_text(doc, [])
    texts = set()
    for value in (1, 0.5, True, "1", None, [1], {"a": 1}):
        changed = copy.deepcopy(doc)
        changed["controls"]["batch_size"] = value
        got = retro.yaml_text(changed, []).split("\n\n", 1)[1]
        assert got == yaml.dump(retro.plain(changed), Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=True,
                                default_flow_style=False, width=100)
        texts.add(got)
    assert len(texts) == 7


def test_libyaml_is_used_only_where_it_writes_the_same():
    assert not retro._libyaml_safe({"": 1}) and not retro._libyaml_safe({"k" * 65: 1})
    assert not retro._libyaml_safe({"k": ["café"]}) and not retro._libyaml_safe({"k": "a\nb"})
    assert retro._libyaml_safe({"k" * 64: [1, 2.5, None, True, "it's: fine # yes"]})


_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
_scalar = st.one_of(_ascii, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
_key = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64)
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_key, inner, max_size=4)), max_leaves=12)


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml")
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_key, _value, min_size=1, max_size=5))
def test_libyaml_and_pyyaml_write_the_same_text_where_libyaml_is_used(doc):
    assert retro._libyaml_safe(doc)
    kw = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False, "width": 100}
    assert yaml.dump(doc, Dumper=yaml.CSafeDumper, **kw) == yaml.dump(doc, Dumper=yaml.SafeDumper, **kw)
