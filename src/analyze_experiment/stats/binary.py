"""Two-class outcomes: confusion matrix, class balance and the rates that do not hide imbalance.

Why beside accuracy: on an eval set with 80% negatives a model that always answers "0"
scores 0.80 accuracy. Balanced accuracy (mean of the per-class recalls) and F1 of the
positive class expose it; the class balance says what accuracy a constant answer gets.

Conventions (shared by classification scorers and risk scorers thresholded at 0.5):

* An answer that is neither label ("other": unparsable, empty, a sentence) is counted per
  true class and is wrong: it stays in accuracy's and the recalls' denominators (the scorer
  scored it incorrect), never in precision's.
* Precision, recall and F1 are those of the positive label; a rate whose denominator is 0
  is NaN (undefined), never 0.
"""

from __future__ import annotations

import math
from typing import Any

CONFUSION = ["tp", "fp", "tn", "fn", "other_pos", "other_neg"]
"""Counts: true/false positives and negatives, and "other" answers per true class."""

RATES = ["accuracy", "balanced_accuracy", "f1", "precision", "recall", "specificity"]


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def rates(tp: int, fp: int, tn: int, fn: int, other_pos: int = 0, other_neg: int = 0) -> dict[str, Any]:
    """Accuracy, balanced accuracy, F1, precision, recall (positive class) and specificity,
    plus the class balance, from confusion counts.

    >>> r = rates(tp=8, fp=2, tn=6, fn=4)
    >>> round(r["balanced_accuracy"], 4), round(r["f1"], 4), r["prevalence"]
    (0.7083, 0.7273, 0.6)
    """
    n_pos, n_neg = tp + fn + other_pos, tn + fp + other_neg
    n = n_pos + n_neg
    recall = _ratio(tp, n_pos)
    specificity = _ratio(tn, n_neg)
    precision = _ratio(tp, tp + fp)
    f1 = _ratio(2 * precision * recall, precision + recall) if not (math.isnan(precision) or math.isnan(recall)) \
        else math.nan
    bal = (recall + specificity) / 2 if not (math.isnan(recall) or math.isnan(specificity)) else math.nan
    return {
        "n": n, "n_pos": n_pos, "n_neg": n_neg, "prevalence": _ratio(n_pos, n),
        "accuracy": _ratio(tp + tn, n), "balanced_accuracy": bal, "f1": f1, "precision": precision,
        "recall": recall, "specificity": specificity, "other": other_pos + other_neg,
    }


def confusion(truth: list[bool], predicted: list[bool | None]) -> dict[str, int]:
    """Confusion counts from true classes and predictions (``None``: an "other" answer)."""
    c = dict.fromkeys(CONFUSION, 0)
    for t, p in zip(truth, predicted, strict=True):
        if p is None:
            c["other_pos" if t else "other_neg"] += 1
        elif t:
            c["tp" if p else "fn"] += 1
        else:
            c["fp" if p else "tn"] += 1
    return c
