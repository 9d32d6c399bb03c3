"""Tables whose content did not change are copied from the cache instead of written: the same
bytes as a fresh writing; a changed table is written again; an unusable entry is discarded
with a note and the table written."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.sweep import flip_one_sample

from analyze_experiment import export
from analyze_experiment.export import TABLE_KIND
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.write import write_report

N = 30
NOW = 2_000_000_000.0


def _tables(out: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes()
            for p in sorted([*(out / "tables").iterdir(), *(out / "data").iterdir()])}


@pytest.fixture
def written(monkeypatch) -> list[str]:
    """Names of the tables written (not copied from the cache)."""
    names: list[str] = []
    real = export.write_csv
    monkeypatch.setattr(export, "write_csv", lambda df, p: names.append(p.stem) or real(df, p))
    return names


@pytest.mark.slow
def test_unchanged_tables_are_copied_and_changed_ones_written(example_copy, tmp_path, written):
    root = example_copy("mid2026", N)
    cache = Cache(tmp_path / "cache")
    write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache, formats=("html",))
    assert "train_steps" in written and "intervals" in written
    written.clear()
    flip_one_sample(sorted(root.rglob("*.eval"))[0])
    exp = load(root, now=NOW, cache=cache)
    write_report(exp, tmp_path / "a", cache=cache, formats=("html",))
    assert "train_steps" not in written and "runs" not in written  # training unchanged: copied
    assert "eval_scores" in written and "intervals" in written  # a score changed: written again
    # the copies are the bytes a fresh writing gives
    write_report(load(root, now=NOW), tmp_path / "plain", formats=("html",))
    assert _tables(tmp_path / "a") == _tables(tmp_path / "plain")


@pytest.mark.slow
def test_an_unusable_cached_table_is_discarded_with_a_note(example_copy, tmp_path, written):
    root = example_copy("mid2026", N)
    cache = Cache(tmp_path / "cache")
    write_report(load(root, now=NOW, cache=cache), tmp_path / "a", cache=cache, formats=("html",))
    entries = sorted((tmp_path / "cache" / TABLE_KIND).iterdir())
    assert entries
    for entry in entries:
        entry.write_bytes(b"not a cache entry")
    flip_one_sample(sorted(root.rglob("*.eval"))[0])
    written.clear()
    exp = load(root, now=NOW, cache=cache)
    write_report(exp, tmp_path / "a", cache=cache, formats=("html",))
    assert "train_steps" in written  # nothing trusted: every table written
    notes = [w.message for w in exp.diagnostics.warnings if "table was unusable" in w.message]
    assert any(m.startswith("cached copy of the train_steps table was unusable") for m in notes), notes
    write_report(load(root, now=NOW), tmp_path / "plain", formats=("html",))
    assert _tables(tmp_path / "a") == _tables(tmp_path / "plain")
