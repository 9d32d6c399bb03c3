"""Does a log's header agree with its own per-sample scores?

inspect-ai computes the header's metrics (``results.scores``) from the same samples it
stores in ``summaries.json``. When the two disagree — a hand-edited or corrupted log, all
samples "I" while the header says accuracy 0.85 — the evaluation table and summary.json
would show one number while the paired tests, which rest on the samples, say another
(issue 12). For every header metric that is defined from per-sample values (``accuracy``
and ``mean``, under the ``mean`` epoch reducer or a single epoch) the value is recomputed
from the samples; beyond rounding, the sample-based value is the one used (the header's
stays in ``header_value``) and a warning names both.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

RECOMPUTED = ("accuracy", "mean")
"""Header metrics that are the mean of per-sample values (inspect-ai's ``accuracy`` and ``mean``)."""
TOLERANCE = 1e-6
"""Absolute difference allowed (float rounding in inspect-ai's JSON is far below this)."""


def sample_means(cols: dict[str, list[Any]]) -> dict[str, tuple[float, int]]:
    """Per scorer: the mean of the per-sample values (sample epochs averaged first, as
    inspect-ai's ``mean`` reducer) and the number of samples."""
    if not cols.get("score"):
        return {}
    df = pd.DataFrame({k: cols[k] for k in ("sample_id", "scorer", "score")})
    df = df[pd.to_numeric(df["score"], errors="coerce").notna()]
    per_sample = df.groupby(["scorer", "sample_id"], sort=False)["score"].mean()
    out = {}
    for scorer, s in per_sample.groupby(level=0, sort=False):
        out[str(scorer)] = (float(s.mean()), len(s))
    return out


def missing_samples(scores: list[dict[str, Any]], cols: dict[str, list[Any]]) -> str | None:
    """Why the stored samples cannot stand for the header's metrics, or None.

    The header's ``n`` (inspect-ai's ``scored_samples``) counts the samples behind each
    metric. When a log stores samples for a scorer but fewer distinct ids than that — ids
    that collapsed into one when the log was written or read (``1`` and ``"1"``, or one id
    used 200 times), or records cut out — a paired test on them would rest on fewer samples
    than the table shows (issue 12: paired n 1 where the table says 200).
    """
    if not cols.get("score"):
        return None
    ids: dict[str, set[str]] = {}
    for scorer, sid in zip(cols["scorer"], cols["sample_id"], strict=True):
        ids.setdefault(str(scorer), set()).add(str(sid))
    short = []
    for row in scores:
        n, scorer = row.get("n"), str(row.get("scorer"))
        if isinstance(n, int) and scorer in ids and len(ids[scorer]) < n and row["metric"] in RECOMPUTED:
            short.append(f"{scorer}: {len(ids[scorer])} of {n}")
    if not short:
        return None
    return (f"the log stores fewer distinct samples than its header counts ({', '.join(short[:3])}; duplicate "
            "or colliding sample ids, or records missing)")


def reconcile(scores: list[dict[str, Any]], cols: dict[str, list[Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Header metric rows checked against the samples.

    Args:
        scores: :func:`~analyze_experiment.sources.inspect_log.score_records` of a log.
        cols: its :func:`~analyze_experiment.sources.inspect_log.sample_columns`.

    Returns:
        The rows (a disagreeing row gets the sample-based ``value`` and the header's in
        ``header_value``) and one warning per disagreement.
    """
    means = sample_means(cols)
    if not means:
        return scores, []
    out, problems = [], []
    for row in scores:
        reducer = row.get("reducer")
        defined = row["metric"] in RECOMPUTED and reducer in (None, "mean") and row["scorer"] in means
        header = row.get("value")
        if not defined or header is None or (isinstance(header, float) and math.isnan(header)):
            out.append(row)
            continue
        value, n = means[row["scorer"]]
        if abs(value - float(header)) <= TOLERANCE:
            out.append(row)
            continue
        out.append({**row, "value": value, "header_value": float(header)})
        problems.append(
            f"the header says {row['scorer']} {row['metric']} = {float(header):.4g} but its {n} per-sample "
            f"scores give {value:.4g}: the report uses the per-sample value {value:.4g} (the paired tests rest "
            "on the samples); the header's value is kept in eval_scores.header_value"
        )
    return out, problems
