"""Training steps kept by column (ingest/records.py): the table joined from the columns of many
runs is the table ``tables.frame`` builds from the row dicts — dtypes, column order, values,
CSV and categories alike — whatever the rows hold, and the cache keeps the floats as buffers."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment import tables
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.ingest.records import MISSING, Records, records_frame

NOW = 2_000_000_000.0


def _same(old: pd.DataFrame, new: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(old, new, check_exact=True, check_column_type=True, check_categorical=True)
    assert list(old.columns) == list(new.columns)
    assert [str(d) for d in old.dtypes] == [str(d) for d in new.dtypes]
    for c in old.columns:
        if isinstance(old[c].dtype, pd.CategoricalDtype):
            assert old[c].cat.categories.dtype == new[c].cat.categories.dtype
    assert old.to_csv(index=False) == new.to_csv(index=False)


def _both(parts: list[list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    old = tables.compact(tables.frame(tables.TRAIN_STEPS, [r for p in parts for r in p]))
    recs = [pickle.loads(pickle.dumps(Records.from_dicts(p), protocol=5)) for p in parts]  # as from the cache
    return old, tables.compact(records_frame(tables.TRAIN_STEPS, recs))


def _run(name: str, n: int, **extra) -> list[dict]:
    return [{"run": name, "epoch": i // 4, "step": i + 1, "loss": 2.0 - i / 7, "source": "disklogger", **extra}
            for i in range(n)]


def test_ordinary_runs_give_the_same_table_with_float_and_int_buffers():
    parts = [_run("a", 9, lr=1e-4), _run("b", 5, lr=2e-4), [], _run("c", 3)]  # c has no lr: NaN there
    old, new = _both(parts)
    _same(old, new)
    assert new["lr"].isna().sum() == 3 and str(new["lr"].dtype) == "float64"
    rec = Records.from_dicts(parts[0])
    assert rec.columns["loss"].dtype == np.float64 and rec.columns["step"].dtype == np.int64
    assert isinstance(rec.columns["run"], list)


def test_odd_values_take_pandas_own_inference():
    """Mixed ints and floats, None, NaN, bools, text among numbers, an int beyond int64, NumPy
    scalars, a key some rows lack: each column types as from_records types it."""
    a = _run("a", 4)
    a[0]["loss"] = 3  # an int among floats
    a[1]["epoch"] = None  # an unknown epoch
    a[2]["grad_norm"] = float("nan")
    a[3]["grad_norm"] = 0.5
    a[0]["flag"] = True
    a[1]["flag"] = False
    a[2]["note"] = "resumed, step 3"
    a[3]["note"] = 7
    b = _run("b", 3)
    b[0]["huge"] = 2**70
    b[1]["tokens_per_second_per_gpu"] = np.float64(10.5)
    b[2]["loss"] = float("inf")
    c = [{"step": 1, "run": "c", "val_loss": None}, {"run": "c", "step": 2, "val_loss": 1.25, "source": "stdout"}]
    old, new = _both([a, b, c])
    _same(old, new)
    assert list(new.columns[-4:]) == ["flag", "note", "huge", "val_loss"]  # extras in order of first sight


def test_text_columns_type_as_from_records_types_them():
    """Strings that look like numbers or gaps stay strings; a text column with a gap, a None or a
    number in one run is inferred from all its values."""
    words = ["1", "nan", "NaN", "None", "", "é ü", "a,b", "2.5"]
    a = [{"run": "a", "step": i + 1, "note": w, "tag": w} for i, w in enumerate(words)]
    b = [{"run": "b", "step": 1, "note": "x", "tag": None}, {"run": "b", "step": 2, "tag": 3}]
    c = [{"run": "c", "step": 1, "note": "y", "tag": "z"}]
    old, new = _both([a, b, c])
    _same(old, new)
    _same(*_both([a, c]))
    assert str(_both([a, c])[1]["note"].dtype) == str(pd.Series(["x"]).dtype)


def test_rows_come_back_as_they_were():
    rows = [{"run": "a", "step": 1, "loss": 1.5}, {"run": "a", "step": 2, "loss": 1.25, "lr": 0.1}]
    rec = pickle.loads(pickle.dumps(Records.from_dicts(rows), protocol=5))
    assert rec == rows and rec.rows() == rows and rec[1] == rows[1] and len(rec) == 2
    assert rec.columns["lr"] == [MISSING, 0.1]
    assert Records() == [] and len(Records()) == 0


_value = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.tuples(st.dictionaries(st.sampled_from(["loss", "lr", "x", "y"]), _value, max_size=4),
                                   st.one_of(st.none(), st.integers(0, 5)), st.one_of(st.none(), st.text(max_size=3))),
                         max_size=5), max_size=4))
def test_any_rows_give_the_same_table(parts):
    """(epoch and step hold whole numbers or None: anything else is refused by both builders alike.)"""
    parts = [[{"run": f"r{i}", **row, **({} if step is None else {"step": step, "epoch": step // 2}),
               **({} if text is None else {"source": text})}
              for row, step, text in part] for i, part in enumerate(parts)]
    old, new = _both(parts)
    _same(old, new)


def test_a_cached_load_equals_a_plain_one_and_keeps_buffers(example_copy, tmp_path):
    root = example_copy("mid2026", 40)
    plain = load(root, now=NOW, cache=Cache(tmp_path / "c"))  # read afresh (and stored)
    cached = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    _same(plain.train_steps, cached.train_steps)
    buf = io.BytesIO()
    plain.train_steps.to_parquet(buf, index=False)
    buf2 = io.BytesIO()
    cached.train_steps.to_parquet(buf2, index=False)
    assert pd.read_parquet(buf).equals(pd.read_parquet(buf2))
    entry = next((tmp_path / "c" / "run").glob("*.bin"))
    from analyze_experiment.ingest.cache import _load_entry

    steps = _load_entry(entry)["value"].steps
    assert isinstance(steps, Records) and steps.columns["loss"].dtype == np.float64
    assert len(steps) and math.isfinite(float(steps.columns["loss"][0]))
