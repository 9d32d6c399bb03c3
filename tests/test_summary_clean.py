"""JSON safety of summary values and report number formatting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analyze_experiment import formatting as fmt
from analyze_experiment.report.summary_json import clean, dumps


def test_clean_turns_unknowns_into_null():
    data = {"a": float("nan"), "b": np.float64("inf"), "c": pd.NA, "d": np.int64(3), "e": [np.bool_(True)]}
    assert clean(data) == {"a": None, "b": None, "c": None, "d": 3, "e": [True]}
    assert dumps(clean(data)).count("null") == 3


def test_clean_keeps_numbers_exact():
    assert clean(np.float64(0.26427456736564636)) == 0.26427456736564636
    assert clean(pd.Timestamp("2026-01-02T03:04:05Z")) == "2026-01-02T03:04:05+00:00"


def test_formatting():
    assert fmt.ci(0.8534, 0.80123, 0.894) == "0.853 [0.801, 0.894]"
    assert fmt.ci(0.5, None, math.nan) == "0.500"
    assert fmt.pp(0.0412) == "+4.1 pp"
    assert fmt.pvalue(0.0004) == "< 0.001"
    assert fmt.pvalue(0.034) == "0.034"
    assert fmt.pvalue(0.62) == "0.62"
    assert fmt.seconds(3725) == "1h 02m"
    assert fmt.seconds(200) == "3m 20s"
    assert fmt.value(1e-05) == "1e-05"
    assert fmt.epoch(float("nan")) == "—"


def test_one_formatter_reads_a_value_the_same_in_sentences_and_tables():
    """A p-value differs only by its "p" label; a missing value is "—" in both (issue 14)."""
    for p in (0.0004, 0.0012, 0.0342, 0.05, 0.62, 1.0):
        cell, sentence = fmt.pvalue(p), "p " + fmt.fmt_p(p)
        assert sentence in (f"p = {cell}", f"p {cell}"), (p, cell, sentence)
    assert [fmt.pvalue(p) for p in (0.0012, 0.1, 1.0)] == ["0.0012", "0.1", "1"]
    missing = [fmt.num(None), fmt.pvalue(math.nan), fmt.ci(None, 0, 1), fmt.fmt_value("accuracy", None),
               fmt.fmt_diff("accuracy", math.nan), fmt.fmt_usd(math.nan), fmt.fmt_hours(math.nan)]
    assert set(missing) == {"—"}
    assert fmt.fmt_ci("accuracy", None, 0.5, 0.95).endswith("CI —")
