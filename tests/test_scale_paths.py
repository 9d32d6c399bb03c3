"""Re-runs that scale: a changed log is the only file read again, unchanged runs are not
re-merged, long tables keep one copy of each repeated string, and descriptive steps draw no
permutations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from inspect_ai.log import read_eval_log, recompute_metrics, write_eval_log

from analyze_experiment import tables
from analyze_experiment.ingest import training
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.stats.paired import compare

N = 40
NOW = 2_000_000_000.0  # long after the example's files were written: no run counts as running


def _inputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".out", ".txt", ".eval"))


def test_one_changed_log_is_the_only_file_read_again(example_copy, tmp_path, monkeypatch):
    root = example_copy("mid2026", N)
    files = _inputs(root)
    load(root, now=NOW, cache=Cache(tmp_path / "c"))

    # a real edit made with inspect-ai: one sample's score flipped, the metrics recomputed
    log_path = next(p for p in files if p.suffix == ".eval")
    log = read_eval_log(str(log_path))
    assert log.samples
    first = log.samples[0]
    score = first.scores["match"]  # type: ignore[index]
    score.value = "I" if score.value == "C" else "C"
    recompute_metrics(log)
    write_eval_log(log, str(log_path))

    merged: list[str] = []
    real = training._read_training
    monkeypatch.setattr(training, "_read_training", lambda run, *a, **k: merged.append(run) or real(run, *a, **k))
    c = Cache(tmp_path / "c")
    exp = load(root, now=NOW, cache=c)
    assert (c.hits, c.misses) == (len(files) - 1, 1)
    assert merged == []  # no run's training output was parsed or merged again
    plain = load(root, now=NOW)
    for name, df in exp.tables().items():
        pd.testing.assert_frame_equal(df, plain.tables()[name], obj=name)
    flipped = exp.eval_samples[(exp.eval_samples["sample_id"] == str(first.id))
                               & (exp.eval_samples["scorer"] == "match")
                               & (exp.eval_samples["log"] == os.path.relpath(log_path, root))]
    assert flipped["score"].tolist() == [1.0 if score.value == "C" else 0.0]


def test_a_changed_training_file_re_merges_only_its_run(example_copy, tmp_path, monkeypatch):
    root = example_copy("mid2026", N)
    load(root, now=NOW, cache=Cache(tmp_path / "c"))
    disk = next(p for p in _inputs(root) if p.name.startswith("log_"))
    disk.write_text("".join(disk.read_text().splitlines(keepends=True)[:-1]))  # the last step is gone
    merged: list[str] = []
    real = training._read_training
    monkeypatch.setattr(training, "_read_training", lambda run, *a, **k: merged.append(run) or real(run, *a, **k))
    exp = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    assert len(merged) == 1 and disk.is_relative_to(root / merged[0])
    pd.testing.assert_frame_equal(exp.train_steps, load(root, now=NOW).train_steps)


def test_long_tables_hold_categoricals_with_unchanged_values(example_copy):
    exp = load(example_copy("mid2026", N), now=NOW)
    for name, cols in (("eval_samples", ("run", "task", "scorer", "log")), ("train_steps", ("run",))):
        df = getattr(exp, name)
        assert len(df) > 0
        for c in cols:
            assert isinstance(df[c].dtype, pd.CategoricalDtype), (name, c)
    plain = exp.eval_samples.astype({c: object for c in ("run", "task", "scorer", "log")})
    assert plain["run"].map(type).eq(str).all()
    assert exp.eval_samples.to_csv(index=False) == plain.to_csv(index=False)
    # grouping sees only the categories present (a filtered table has no empty groups)
    one = exp.eval_samples[exp.eval_samples["run"] == exp.eval_samples["run"].iloc[0]]
    assert one.groupby("run").size().tolist() == [len(one)]


def test_compact_leaves_non_strings_alone():
    df = pd.DataFrame({"run": ["a", None, "a"], "log": [1, 2, 3], "task": [1.5, np.nan, 2.0]})
    out = tables.compact(df)
    assert isinstance(out["run"].dtype, pd.CategoricalDtype) and out["run"].isna().tolist() == [False, True, False]
    assert out["log"].dtype == np.int64 and out["task"].dtype == np.float64


def test_describe_only_gives_the_same_gain_and_interval_without_a_test():
    rng = np.random.default_rng(2)
    idx = pd.Index(range(200))
    a, b = pd.Series(rng.random(200) + 0.05, idx), pd.Series(rng.random(200), idx)
    full = compare(a, b, binary=False, n_resamples=2000, seed=1)
    quick = compare(a, b, binary=False, n_resamples=2000, seed=1, describe_only=True)
    assert (quick.diff, quick.ci_low, quick.ci_high, quick.n_paired) == (full.diff, full.ci_low, full.ci_high, 200)
    assert quick.test == "descriptive" and np.isnan(quick.p_value) and full.test == "paired_permutation"
