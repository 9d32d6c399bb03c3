"""Identical loss curves (ingest/design_facts.py): only runs whose step count and lowest loss
allow it are compared exactly, and the runs grouped are those whose (step, loss rounded to 9
decimals) curves are equal — losses a rounding apart included, infinities included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analyze_experiment import tables
from analyze_experiment.experiment import Design, Experiment
from analyze_experiment.ingest.design_facts import identical_curve_facts


def _exp(curves: dict[str, list[float]]) -> Experiment:
    rows = [{"run": run, "epoch": 0, "step": i + 1, "loss": v, "source": "disklogger"}
            for run, losses in curves.items() for i, v in enumerate(losses)]
    steps = tables.compact(tables.frame(tables.TRAIN_STEPS, rows))
    params = {run: {"lora_rank": 4 * (i + 1)} for i, run in enumerate(curves)}
    return Experiment(root=Path("/x"), layout="unknown", design=Design(name="x"), has_design_doc=False,
                      train_steps=steps, run_params=params)


def _reference(curves: dict[str, list[float]]) -> list[list[str]]:
    """The rule, written plainly: runs of 3+ steps grouped by their (step, round(loss, 9)) tuples."""
    groups: dict[tuple, list[str]] = {}
    for run in sorted(curves):
        losses = [v for v in curves[run] if v == v]
        if len(losses) >= 3:
            key = tuple((i + 1, round(v, 9)) for i, v in enumerate(curves[run]) if v == v)
            groups.setdefault(key, []).append(run)
    return [g for g in groups.values() if len(g) > 1]


def _flagged(curves: dict[str, list[float]]) -> list[list[str]]:
    return [f["runs"] for f in identical_curve_facts(_exp(curves), same_seed=False)]


def test_curves_a_rounding_apart_are_one_group_and_near_misses_are_not():
    base = [2.5, 2.25, 2.0, 1.875, 1.8]
    curves = {
        "a": base,
        "b": list(base),
        "c": [v + 1e-11 for v in base],  # equal at 9 decimals
        "d": [2.5, 2.25 + 1e-6, 2.0, 1.875, 1.8],  # same lowest loss, one step differs
        "e": base[:-1],  # one step fewer
        "f": [v + 3e-9 for v in base],  # lowest loss just beyond rounding
        "g": [float("-inf"), 1.0, 0.5],
        "h": [float("-inf"), 1.0, 0.5],
        "i": [1.0, 0.5],  # too short to compare
        "j": [1.0, 0.5],
    }
    assert _flagged(curves) == [["a", "b", "c"], ["g", "h"]] == _reference(curves)


def test_random_near_curves_group_as_the_plain_rule_does():
    rng = np.random.default_rng(7)
    for _ in range(30):
        base = np.round(rng.uniform(0.5, 3.0, size=6), int(rng.integers(3, 12))).tolist()
        curves = {}
        for k in range(8):
            noise = rng.choice([0.0, 1e-12, 4e-10, 2e-9, 1e-7])
            curve = [v + noise * rng.choice([-1, 1]) for v in base]
            if rng.random() < 0.2:
                curve[int(rng.integers(0, 6))] = float("nan")
            curves[f"r{k}"] = curve
        assert _flagged(curves) == _reference(curves), curves


def test_no_steps_no_facts():
    assert identical_curve_facts(_exp({}), same_seed=False) == []
    steps = pd.DataFrame({"run": ["a"], "step": [1]})
    exp = _exp({})
    exp.train_steps = steps
    assert identical_curve_facts(exp, same_seed=False) == []
