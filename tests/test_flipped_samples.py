"""``flipped_samples``: the samples the best and the other candidate score differently, in
sample-id order (numbers by value), with the target and both answers as text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyze_experiment.report.plots.samples import flipped_samples


def _rows(label, scores, answers, targets=None):
    ids = list(scores)
    return pd.DataFrame({"label": label, "sample_id": ids, "score": [scores[i] for i in ids],
                         "answer": [answers.get(i) for i in ids],
                         "target": [(targets or {}).get(i, f"T{i}") for i in ids]})


def test_flips_in_sample_order_with_texts_and_direction():
    best = _rows("B", {"10": 1.0, "9": 0.0, "2": 1.0, "x": 1.0, "3": 1.0},
                 {"10": "ten", "9": None, "2": 2.5, "x": np.nan, "3": "same"})
    other = _rows("O", {"10": 0.0, "9": 1.0, "2": 0.0, "x": 0.0, "3": 1.0},
                  {"10": "dix", "9": "neuf", "2": None, "x": "ex", "3": "same"})
    out = flipped_samples(pd.concat([best, other, _rows("Z", {"10": 0.0}, {"10": "z"})]), "B", "O")
    assert out.to_dict("list") == {
        "sample_id": ["2", "9", "10", "x"],  # numbers by value, then text; "3" agreed
        "target": ["T2", "T9", "T10", "Tx"],
        "best_answer": ["2.5", "", "ten", ""],  # None and NaN read as nothing
        "other_answer": ["", "neuf", "dix", "ex"],
        "flip": ["gained", "lost", "gained", "gained"],
    }


def test_repeated_rows_average_and_the_first_answer_is_shown():
    best = _rows("B", {"1": 1.0}, {"1": "first"})
    again = _rows("B", {"1": 1.0}, {"1": "second"})
    other = _rows("O", {"1": 0.0}, {"1": "o"})
    out = flipped_samples(pd.concat([best, again, other]), "B", "O")
    assert out["best_answer"].tolist() == ["first"] and out["flip"].tolist() == ["gained"]


def test_no_answer_column_and_no_other_candidate():
    both = pd.concat([_rows("B", {"1": 1.0}, {}), _rows("O", {"1": 0.0}, {})]).drop(columns=["answer"])
    out = flipped_samples(both, "B", "O")
    assert out["best_answer"].tolist() == [""] and out["other_answer"].tolist() == [""]
    assert flipped_samples(both, "B", "missing").empty
    assert list(flipped_samples(both, "B", "missing").columns) == \
        ["sample_id", "target", "best_answer", "other_answer", "flip"]
