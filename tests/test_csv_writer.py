"""The report's CSV tables are written column by column (export.write_csv) and equal, byte for
byte, what ``DataFrame.to_csv(index=False)`` writes: for every table of a sweep with hostile text,
for numbers of every kind, and for any mix of the column types the tables hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment import export
from analyze_experiment.export import all_tables, write_csv
from report_fixtures import make_analysis, make_experiment


def _check(df: pd.DataFrame, tmp_path, name: str = "t") -> str:
    mine, theirs = tmp_path / f"{name}.mine.csv", tmp_path / f"{name}.pandas.csv"
    write_csv(df, mine)
    df.to_csv(theirs, index=False)
    assert mine.read_bytes() == theirs.read_bytes(), name
    return mine.read_text(encoding="utf-8")


def test_every_table_of_a_hostile_sweep_is_written_as_pandas_writes_it(tmp_path):
    exp = make_experiment(evil=True)
    tables = all_tables(exp, make_analysis(exp))
    assert {"runs", "train_steps", "eval_samples", "warnings", "comparisons"} <= set(tables)
    for name, df in tables.items():
        _check(df, tmp_path, name)


def test_numbers_missing_values_and_quoted_text(tmp_path, monkeypatch):
    df = pd.DataFrame({
        "run": pd.Categorical(["b", "a,1", None, "b"]),
        "epoch": pd.array([0, None, 2, 3], dtype="Int64"),
        "loss": [2.3698270320892334, float("nan"), -0.0, float("inf")],
        "lr": [1e-7, 1e16, 5e-324, 1.7976931348623157e308],
        "f32": np.array([0.1, 2.5, np.nan, 1e-8], dtype=np.float32),
        "n": np.array([1, -2, 2**62, 0], dtype=np.int64),
        "ok": [True, False, True, False],
        "maybe": pd.array([True, None, False, True], dtype="boolean"),
        "note": pd.array(['say "hi"', None, "two\nlines", "cr\rhere"], dtype="str"),
        "mixed": [1.5, np.float64(2.5), None, "x"],
        "gaps": [None, float("nan"), pd.NA, None],
    })
    text = _check(df, tmp_path)
    assert '"say ""hi"""' in text and '"two\nlines"' in text and '"a,1"' in text  # the csv writer's quoting
    plain = df[["epoch", "loss", "lr", "n", "ok"]]
    calls = []
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: calls.append(1))
    write_csv(plain, tmp_path / "plain.csv")
    assert not calls  # numbers only: joined here, not handed to pandas


def test_python_writes_a_float64_as_numpy_does():
    """The premise of writing float64 cells with ``repr``: NumPy's ``astype(str)`` (what pandas
    uses) gives the same text for any bit pattern — subnormals, the exponent cut-offs, NaN, inf."""
    rng = np.random.default_rng(16)
    bits = rng.integers(0, 2**63, size=200_000, dtype=np.uint64) | (
        rng.integers(0, 2, size=200_000, dtype=np.uint64) << np.uint64(63))
    near = np.array([1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 0.00011, 5e-324, 2.2250738585072014e-308,
                     1.7976931348623157e308, 0.1, 1 / 3, -0.0, 0.0, 123456789012345678.0])
    with np.errstate(over="ignore"):  # the largest float's next is inf: also a case
        v = np.concatenate([bits.view(np.float64), near, np.nextafter(near, np.inf), np.nextafter(near, -np.inf)])
    assert list(map(float.__repr__, v.tolist())) == v.astype(str).tolist()


def test_what_is_not_handled_here_is_left_to_pandas(tmp_path):
    when = pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None]), "x": [1, 2]})
    _check(when, tmp_path, "datetime")
    _check(pd.DataFrame({"only": ["", "a"]}), tmp_path, "one_column")
    _check(pd.DataFrame({1: [1.0], 2: ["a"]}), tmp_path, "int_names")
    _check(pd.DataFrame({"a": pd.array([1.5, None], dtype="Float64"), "b": [1, 2]}), tmp_path, "float_ea")
    _check(pd.DataFrame({"a": [], "b": []}), tmp_path, "empty")


_text = st.text(alphabet=st.sampled_from(list('ab,"\n\r é1.-e')), max_size=4)
_columns = {
    "f": st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
    "i": st.lists(st.integers(-(2**63), 2**63 - 1), min_size=4, max_size=4),
    "I": st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=4, max_size=4),
    "c": st.lists(st.one_of(st.none(), _text), min_size=4, max_size=4),
    "s": st.lists(st.one_of(st.none(), _text), min_size=4, max_size=4),
    "o": st.lists(st.one_of(st.none(), _text, st.floats(), st.integers(), st.booleans()), min_size=4, max_size=4),
}


def _series(kind: str, values: list) -> pd.Series:
    if kind == "I":
        return pd.Series(pd.array(values, dtype="Int64"))
    if kind == "c":
        return pd.Series(pd.Categorical(values))
    if kind == "s":
        return pd.Series(pd.array(values, dtype="str"))
    if kind == "o":
        return pd.Series(values, dtype=object)
    return pd.Series(np.array(values, dtype=np.float64 if kind == "f" else np.int64))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(sorted(_columns)), min_size=2, max_size=5).flatmap(
    lambda kinds: st.tuples(st.just(kinds), st.tuples(*[_columns[k] for k in kinds]))))
def test_any_mix_of_columns_is_written_as_pandas_writes_it(tmp_path_factory, case):
    kinds, values = case
    df = pd.DataFrame({f"{k}{i}": _series(k, v) for i, (k, v) in enumerate(zip(kinds, values, strict=True))})
    _check(df, tmp_path_factory.mktemp("mix"))


@pytest.mark.parametrize("name", ["train_steps"])
def test_report_tables_use_the_writer(name, tmp_path):
    exp = make_experiment(evil=False)
    written = export.write_tables(exp, make_analysis(exp), tmp_path)
    path = tmp_path / "tables" / f"{name}.csv"
    assert path in written
    assert path.read_bytes() == getattr(exp, name).to_csv(index=False).encode()
