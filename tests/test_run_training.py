"""A run's training summary is one typed record (``tables.RunTraining``): the runs table holds
exactly its fields beside the run's identity and parameters, every field is filled by the
training ingest for some real run, and the cache gives the same record back (an entry from
before the record, whose summary was a dict, is read again, never returned)."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest import cache as cache_mod
from analyze_experiment.ingest import validation as val
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.ingest.training import find_training_files, read_training
from training_runs import two_gpu_torchrun_run

FIX = Path(__file__).parent / "fixtures" / "torchtune"
LATER = 4_000_000_000.0  # long after every fixture was written: no run counts as running
COMPLETED = "local_v0.6.1_lora_cpu_slurm_completed"
OVERFIT = "local_v0.6.1_lora_cpu_slurm_val_overfit"
NAN = "local_v0.6.1_lora_cpu_slurm_nan"
FIELDS = [f.name for f in dataclasses.fields(tables.RunTraining)]


def _run(root: Path, name: str, sample: str) -> Path:
    """A run directory holding one captured torchtune job (its SLURM output and DiskLogger file)."""
    run = root / name
    (run / "logs").mkdir(parents=True)
    shutil.copy(FIX / f"{sample}.out", run / "slurm-101.out")
    disk = FIX / f"{sample}.disklogger.txt"
    if disk.exists():
        shutil.copy(disk, run / "logs" / "log_1795713941.txt")
    return run


def _read(root: Path, run: Path, cache: Cache | None = None) -> tables.RunTraining:
    return read_training(run.name, find_training_files(run), Diagnostics(root=root), now=LATER, cache=cache).summary


def _same(a: Any, b: Any) -> bool:
    """Equal, or both unknown (the table keeps a missing number as NaN)."""
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    return all(missing) or (not any(missing) and a == b)


def test_runs_table_holds_each_run_training_record_and_nothing_undeclared(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    runs = {"m_rank8_lr1e-4": _run(root, "m_rank8_lr1e-4", COMPLETED),
            "m_rank16_lr1e-4": _run(root, "m_rank16_lr1e-4", OVERFIT)}
    exp = load(root, now=LATER)
    assert list(exp.runs.columns) == tables.RUNS + exp.param_names  # no column outside the declaration
    assert exp.param_names == ["lora_rank", "learning_rate"]
    for name, run in runs.items():
        row = exp.runs.set_index("run").loc[name]
        record = _read(root, run).as_record()
        assert list(record) == FIELDS
        assert [f for f in FIELDS if not _same(row[f], record[f])] == []
    rows = exp.runs.set_index("run")
    assert (rows.loc["m_rank16_lr1e-4", "overfitting"], rows.loc["m_rank16_lr1e-4", "val_loss_best_step"]) == (True, 16)
    assert _same(rows.loc["m_rank8_lr1e-4", "val_loss_source"], None)  # no validation logged


def test_every_run_training_field_is_filled_for_some_real_run(tmp_path: Path) -> None:
    """A field nothing fills would be a runs column that is always empty: declared on one side only."""
    gpu_run = two_gpu_torchrun_run(tmp_path / "gpu")
    records = [_read(tmp_path, _run(tmp_path, s, s)) for s in (COMPLETED, OVERFIT, NAN)] + [_read(tmp_path, gpu_run)]
    empty = tables.RunTraining().as_record()
    filled = {k for r in records for k, v in r.as_record().items() if v != empty[k]}
    assert [f for f in FIELDS if f not in filled] == []
    assert [r.status for r in records] == ["completed", "completed", "diverged", "failed"]
    assert (records[2].first_nonfinite_step, records[3].peak_memory_gib, records[3].peak_memory_source) == (
        5, 2.0, "gpu_metrics.csv memory.used")


def test_validation_columns_are_run_training_fields() -> None:
    """The validation ingest names its columns itself; each must be a field of the record."""
    assert [c for c in val.RUN_COLUMNS if c not in FIELDS] == []
    assert [FIELDS.index(c) for c in val.RUN_COLUMNS] == sorted(FIELDS.index(c) for c in val.RUN_COLUMNS)


def test_a_cached_run_reads_back_as_the_same_record(tmp_path: Path) -> None:
    run = _run(tmp_path, "run", OVERFIT)
    first = _read(tmp_path, run, Cache(tmp_path / "c"))
    again = Cache(tmp_path / "c")
    second = _read(tmp_path, run, again)
    assert again.hits == 2  # the run's SLURM output and DiskLogger file, from the run's entry
    assert isinstance(second, tables.RunTraining) and second == first == _read(tmp_path, run)
    assert (second.status, second.val_evaluations, second.overfitting) == ("completed", 8, True)


def test_an_entry_with_the_dict_summary_of_before_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    run = _run(tmp_path, "run", COMPLETED)
    current = cache_mod.PARSER_VERSION
    monkeypatch.setattr(cache_mod, "PARSER_VERSION", 1)  # the version that stored summaries as dicts
    _read(tmp_path, run, Cache(tmp_path / "c"))
    (entry,) = (tmp_path / "c" / "run").glob("*.bin")
    data = cache_mod._load_entry(entry)
    data["value"].summary = data["value"].summary.as_record()  # the entry as version 1 wrote it
    Cache(tmp_path / "c")._write(entry, data)
    monkeypatch.setattr(cache_mod, "PARSER_VERSION", current)
    c = Cache(tmp_path / "c")
    got = _read(tmp_path, run, c)
    assert c.hits == 0 and isinstance(got, tables.RunTraining)
    assert (got.status, got.steps, got.final_loss) == ("completed", 16, 4.952439785003662)
