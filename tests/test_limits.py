"""The documented caps exist, hold, and are said when they bite (docs/robustness.md).

Zip members past the size limit are refused before or while inflating; a line without
line break keeps only its first bytes; discovery stops after its entry budget with a
warning; a folder of 10,000 weight files costs one listing and none of them is opened;
reading a file with a 100 MB line stays within a bounded amount of memory.
"""

from __future__ import annotations

import builtins
import io
import shutil
import tracemalloc
from pathlib import Path

import pytest
from tests.fuzz.corpus import _big_line_stream, zip_bomb_stream

from analyze_experiment import load
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design
from analyze_experiment.ingest.design import MAX_DESIGN_BYTES, read_design
from analyze_experiment.ingest.discover import WEIGHT_SUFFIXES, discover
from analyze_experiment.sources import inspect_log
from analyze_experiment.sources import torchtune as tt

FT = "Llama-3.2-1B-Instruct_rank4_lr1e-5"


def test_caps_have_their_documented_values():
    assert inspect_log.MAX_MEMBER_BYTES == 1 << 30
    assert tt.MAX_SEGMENT == 1 << 20
    assert MAX_DESIGN_BYTES == 5_000_000
    assert {".pt", ".bin", ".safetensors"} <= WEIGHT_SUFFIXES
    doc = (Path(__file__).parents[1] / "docs" / "robustness.md").read_text()
    for value in ("1 GiB", "1 MiB", "5,000,000", "200,000", "20,000"):
        assert value in doc


def test_zip_member_past_the_limit_is_refused_whatever_its_header_says(tmp_path):
    for declared in (None, 10):
        p = tmp_path / f"bomb{declared}.eval"
        with p.open("wb") as fh:
            zip_bomb_stream(4 << 20, declared=declared)(fh)
        with pytest.raises(inspect_log.LogReadError, match="limit"):
            inspect_log.read_log(p, limit=1 << 20)


def test_long_line_keeps_its_first_mebibyte(tmp_path):
    p = tmp_path / "log_1.txt"
    p.write_bytes(b"Step 1 | loss:1.5 lr:0.0001\n" + b"x" * (3 << 20) + b"\nStep 2 | loss:1.25 lr:0.0001\n")
    d = tt.read_disk_log(p, max_line=1 << 16)
    assert d.steps == {1: {"loss": 1.5, "lr": 0.0001}, 2: {"loss": 1.25, "lr": 0.0001}}
    assert (d.lines, d.bad_lines) == (3, 1)  # the long line is read as one (bad) line, cut


def test_slurm_line_past_the_chunk_is_cut_and_counted(tmp_path):
    p = tmp_path / "slurm-1.out"
    with p.open("wb") as fh:
        _big_line_stream(b"start\n", 20 << 20)(fh)
    out = tt.read_slurm_output(p)
    assert out.long_lines == 1 and out.n_bytes == p.stat().st_size


def test_slurm_long_line_within_one_chunk_is_counted():
    data = b"start\n" + b"0|1|Loss: 1.0 " * 200_000 + b"\nend\n"
    assert tt.read_slurm_bytes(data).long_lines == 1


def _peak(p: Path) -> int:
    tracemalloc.start()
    try:
        tt.read_slurm_output(p)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_on_a_100mb_line(tmp_path):
    peaks = []
    for size in (20 << 20, 100 << 20):
        p = tmp_path / f"slurm-{size}.out"
        with p.open("wb") as fh:
            _big_line_stream(b"start\n", size)(fh)
        peaks.append(_peak(p))
        p.unlink()
    # the read buffer (8 MiB chunks, their masks): the same for 20 MB and 100 MB, less than the file
    assert peaks[1] < 80 << 20
    assert peaks[1] < peaks[0] * 1.25


def test_discovery_stops_at_its_entry_budget(tmp_path):
    for i in range(30):
        (tmp_path / f"run{i:02d}").mkdir()
        (tmp_path / f"run{i:02d}" / "slurm-1.out").write_text("x")
    d = Diagnostics(root=tmp_path)
    found = discover(tmp_path, Design(name="x"), d, max_files=40)
    assert len(found.runs) < 30
    assert any("stopped looking for files after 40 directory entries" in w.message for w in d.warnings)


def test_ten_thousand_weight_files_are_listed_never_opened(example, tmp_path, monkeypatch):
    root = tmp_path / "exp"
    shutil.copytree(example("mid2026", 40, 1), root, symlinks=True)
    weights = root / FT / "artifacts" / "epoch_0"
    weights.mkdir()
    for i in range(10_000):
        (weights / f"model-{i:05d}-of-10000{('.safetensors', '.pt', '.bin')[i % 3]}").touch()
    opened: list[str] = []
    real_open, real_io_open = builtins.open, io.open

    def spy(opener):
        def wrapped(file, *a, **k):
            opened.append(str(file))
            return opener(file, *a, **k)

        return wrapped

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    exp = load(root)
    monkeypatch.undo()
    assert not [p for p in opened if "epoch_0" in p]
    assert exp.runs.set_index("run").loc[FT, "status"] == "completed"
    assert any(FT in p for p in opened)  # the spy saw the reads that did happen


def test_oversized_design_is_not_read(tmp_path):
    (tmp_path / "experiment_summary.yaml").write_bytes(b"a: 1\n" * (MAX_DESIGN_BYTES // 5 + 1))
    d = Diagnostics(root=tmp_path)
    _design, _has = read_design(tmp_path, d)
    assert any(w.file == "experiment_summary.yaml" and "not read" in w.message for w in d.warnings)
