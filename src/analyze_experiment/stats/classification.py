"""Two-class classification scorers (``match`` on "0"/"1" targets, or any two-label target set).

Why: a correct/incorrect scorer on a two-label eval set is a classifier, and accuracy alone
hides a model that answers one label for everything. For every task × scorer whose samples
have exactly two distinct targets and right/wrong scores, each candidate gets the confusion
matrix, the class balance, balanced accuracy, F1, precision and recall (:mod:`.binary`), and
the number of "other" answers (neither label).

The positive label is ``"1"`` when the labels are ``"0"``/``"1"``, otherwise the label that
sorts last (``yes`` over ``no``, ``true`` over ``false``); the table names it. What the model
answered: the scorer's verdict decides — a sample scored correct predicted its target; an
incorrect one predicted the other label when its answer (trimmed, case as written) is that
label, and is "other" otherwise. Sample epochs each count as one answer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyze_experiment.stats.binary import CONFUSION, confusion, rates
from analyze_experiment.stats.candidates import epoch_key
from analyze_experiment.tables import by_epoch

CLASSIFICATION = [
    "task", "scorer", "run", "epoch", "positive_label", "negative_label", "n", "n_pos", "n_neg", "prevalence",
    "accuracy", "balanced_accuracy", "f1", "precision", "recall", "specificity", "other", *CONFUSION,
]


def _labels(targets: pd.Series) -> list[str] | None:
    t = targets.dropna()
    if isinstance(t.dtype, pd.StringDtype):  # text: the distinct values first (a 100-run sweep
        t = t.unique()  # repeats each of its few targets 100,000 times); 1 and 1.0 would merge
    labels = sorted({str(v).strip() for v in t})
    if len(labels) != 2:
        return None
    return labels  # sorted: "0" < "1", "false" < "true", "no" < "yes": the positive is the last


def classification_table(samples: pd.DataFrame, exclude: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per candidate of every two-class right/wrong scorer (CLASSIFICATION columns).

    ``exclude``: (task, scorer) pairs reported elsewhere (risk scorers have their own table).
    """
    if samples is None or samples.empty or not {"target", "answer", "score"} <= set(samples.columns):
        return pd.DataFrame(columns=CLASSIFICATION)
    exclude = exclude or set()
    scored = samples["score"].notna()
    rows: list[dict[str, Any]] = []
    if isinstance(samples["target"].dtype, pd.StringDtype):
        # no task × scorer with two labels (each group's distinct targets, as _labels reads them):
        # nothing to split into families (at 100 runs, 200,000 rows copied and sorted for nothing)
        t = samples.loc[scored, ["task", "scorer", "target"]]
        distinct = t.groupby(["task", "scorer"], sort=True)["target"].unique()
        if not any(_labels(pd.Series(v, dtype=t["target"].dtype)) is not None for v in distinct):
            return pd.DataFrame(rows, columns=CLASSIFICATION)
    df = samples[scored].copy()
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    for (task, scorer), fam in df.groupby(["task", "scorer"], sort=True):
        if (str(task), str(scorer)) in exclude or not fam["score"].isin([0.0, 1.0]).all():
            continue
        labels = _labels(fam["target"])
        if labels is None:
            continue
        neg, pos = labels
        for (run, ep), g in by_epoch(fam, ["run", "epoch"]):
            truth, pred = [], []
            for t, a, s in zip(g["target"], g["answer"], g["score"], strict=True):
                t = str(t).strip()
                truth.append(t == pos)
                if s == 1.0:
                    pred.append(t == pos)
                else:
                    ans = None if a is None or pd.isna(a) else str(a).strip()
                    other = neg if t == pos else pos
                    pred.append((other == pos) if ans == other else None)
            counts = confusion(truth, pred)
            row = {"task": task, "scorer": scorer, "run": run, "epoch": epoch_key(ep),
                   "positive_label": pos, "negative_label": neg, **counts, **rates(**counts)}
            rows.append(row)
    return pd.DataFrame(rows, columns=CLASSIFICATION)
