"""The fast subset of the fuzz corpus (the full one is ``make fuzz``).

Every mutant of a small corpus is placed in an experiment and the experiment loaded:
nothing may raise and every file no reader can take whole must be named in the
warnings. One experiment full of mutants goes through the whole CLI. Regression tests
for what the full corpus found sit below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fuzz.corpus import generate, zip_bomb_stream
from tests.fuzz.run_full import KEEPER, corpus_for, load_one, plan, run_one

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.training import _gpu_rows
from analyze_experiment.sources import gpu


@pytest.fixture(scope="module")
def fast_corpus(example):
    bases = {"mid2026": example("mid2026", 40, 1), "oct2025": example("oct2025", 40, 1)}
    mutants = corpus_for(bases, seed=7, per_base=1, design_per_base=1, big=True,
                         bomb_bytes=64 << 20)
    return bases, mutants, plan(mutants, bases)


def test_corpus_is_deterministic_and_covers_every_kind(fast_corpus, example):
    bases, mutants, _ = fast_corpus
    again = corpus_for(bases, seed=7, per_base=1, design_per_base=1, big=True,
                       bomb_bytes=64 << 20)
    assert [(m.id, m.data) for m in mutants] == [(m.id, m.data) for m in again]
    kinds = {m.kind for m in mutants}
    assert {"empty", "zip_bomb", "zip_bomb_lying", "line_100mb", "yaml_anchor_bomb", "yaml_python_object",
            "ragged_rows", "garbage", "wrong_shape", "duplicate_ids", "extra_epoch", "non_finite_scores",
            "odd_values", "header_infinity", "all_incorrect", "requeued", "rank_prefixed", "newer_bar",
            "long_epochs", "restarted", "yaml_wrong_type", "yaml_duplicate_key", "md_wrong_cell"} <= kinds
    full = corpus_for(bases, seed=0, per_base=13, big=False)
    assert len(full) >= 1000


def test_every_mutant_loads_and_unreadable_files_are_named(fast_corpus, tmp_path):
    bases, _mutants, plans = fast_corpus
    unnamed = [u for i, p in enumerate(plans) for u in load_one(i, p, bases[p.layout], tmp_path)]
    assert unnamed == []


def test_whole_cli_over_the_fullest_experiment(fast_corpus, tmp_path):
    bases, _mutants, plans = fast_corpus
    i, p = max(enumerate(plans), key=lambda ip: len(ip[1].placed))
    assert len(p.placed) >= 15
    o = run_one(i, p, bases[p.layout], tmp_path, keep=True)
    assert (o.exit_code, o.traceback, o.report, o.unnamed_required) == (0, None, True, [])
    summary = json.loads((tmp_path / f"out-{i:04d}" / "summary.json").read_text())
    keeper = next(r for r in summary["runs"] if r["name"] == KEEPER)
    assert keeper["training"]["status"] == "completed"
    assert all(w["message"] for w in summary["warnings"])


# --- regressions found by the corpus -------------------------------------------------------


def _gpu(tmp_path: Path, text: bytes) -> list[str]:
    p = tmp_path / "gpu_metrics.csv"
    p.write_bytes(text)
    d = Diagnostics(root=tmp_path)
    rows = _gpu_rows("r", [p], d)
    assert all(w.file == "gpu_metrics.csv" for w in d.warnings)
    return [w.message for w in d.warnings], rows


HEADER = b"timestamp, index, utilization.gpu [%], memory.used [MiB]\n"


def test_empty_gpu_metrics_is_named(tmp_path):
    msgs, rows = _gpu(tmp_path, b"")
    assert rows == [] and msgs == ["no nvidia-smi header line and no samples (empty file): file skipped"]
    msgs, rows = _gpu(tmp_path, HEADER)
    assert rows == [] and msgs == ["a header line but no samples: no GPU values from this file"]


def test_gpu_rows_with_nul_or_non_utf8_bytes_are_skipped_and_named(tmp_path):
    good = b"2026/05/12 10:00:00.000, 0, 87 %, 40536 MiB\n"
    msgs, rows = _gpu(tmp_path, HEADER + good + b"2026/05/12 10:00:01.000, 0, 8\x007 %, 40536 MiB\n"
                      + b"2026/05/12 10:00:02.000, 0, 9\xff1 %, 40536 MiB\n")
    assert [r["utilization_pct"] for r in rows] == [87.0]
    assert msgs == ["2 row(s) with NUL bytes or bytes that are not UTF-8 text skipped"]


def test_gpu_cell_that_is_not_a_number_is_no_value(tmp_path):
    # '1e999' once read as 1.0 (the first digits): a wrong number
    assert gpu._number("1e999", "utilization_pct") is None
    assert gpu._number("40536 MiB", "memory_used_mib") == 40536.0
    assert gpu._number(" 2 GiB", "memory_used_mib") == 2048.0
    assert gpu._number("87 %", "utilization_pct") == 87.0


def test_zip_bomb_refused_whether_or_not_its_size_fields_lie(tmp_path):
    from analyze_experiment.sources.inspect_log import LogReadError, read_log

    for declared in (None, 1000):
        p = tmp_path / f"bomb-{declared}.eval"
        with p.open("wb") as fh:
            zip_bomb_stream(8 << 20, declared=declared)(fh)
        assert p.stat().st_size < 64 << 10
        with pytest.raises(LogReadError, match="limit"):
            read_log(p, limit=1 << 20)


def test_generate_is_pure():
    bases = {"slurm": [("a.out", b"line 1\nline 2\nline 3\n")]}
    assert [m.data for m in generate(bases, seed=3, big=False)] == [m.data for m in generate(bases, seed=3, big=False)]
    assert [m.data for m in generate(bases, seed=3, big=False)] != [m.data for m in generate(bases, seed=4, big=False)]


def test_sample_scores_of_the_wrong_shape_are_named_not_silently_dropped():
    from analyze_experiment.sources.inspect_log import LogData, sample_columns

    samples = [
        {"id": 1, "epoch": 1, "scores": {"match": {"value": "C", "answer": "A"}}},
        {"id": 2, "epoch": 1, "scores": []},  # found by the corpus: was dropped without a word
        {"id": 3, "epoch": 1, "scores": {"match": "C"}},
        {"id": 4, "epoch": 1, "scores": None},  # not scored (errored): no note
    ]
    data = LogData("x.eval", "eval", {}, samples, "summaries", [])
    cols = sample_columns(data)
    assert cols["sample_id"] == ["1"] and cols["score"] == [1.0]
    sample_columns(data)
    assert data.notes == ["2 sample score(s) that are not objects (wrong shape): left out of the per-sample scores"]


def test_summary_of_a_run_with_intervals_but_no_header_metrics():
    # found by the corpus: a run whose per-sample scores gave an interval for a scorer its
    # header metrics lack crashed build_summary (an empty list selected no columns)
    from types import SimpleNamespace

    from analyze_experiment import analysis, tables
    from analyze_experiment.report.summary_json import _run_evals

    scores = tables.frame(tables.EVAL_SCORES, [
        {"run": "r", "task": "t", "epoch": 0, "scorer": "match", "metric": "accuracy", "value": 0.8,
         "stderr": 0.1, "n": 10, "log": "r/eval/logs/a.eval"},
    ])
    intervals = tables.frame(analysis.INTERVALS, [
        {"run": "r", "task": "t", "epoch": 0, "scorer": "includes", "metric": "accuracy", "value": 0.7,
         "stderr": 0.15, "ci_low": 0.4, "ci_high": 0.9, "method": "wilson", "n": 10},
    ])
    out = [e.model_dump() for e in _run_evals(SimpleNamespace(eval_scores=scores), SimpleNamespace(intervals=intervals), "r")]
    assert [(e["scorer"], e["n_samples"], e["metrics"]["accuracy"]["value"]) for e in out] == [
        ("match", 10, 0.8), ("includes", 10, 0.7)]
    assert out[1]["metrics"]["accuracy"]["ci_low"] == 0.4 and out[1]["log"] is None
