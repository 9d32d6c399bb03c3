"""What a re-run over an unchanged sweep does not redo: the design document's parsed result is
kept in the incremental cache (an unchanged document gives the same design and warnings
without being parsed, an edited one is parsed again, a corrupt entry is discarded with an info
note), and only training files that share a name and size are hashed to find copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from analyze_experiment.ingest import design as design_mod
from analyze_experiment.ingest import load as load_mod
from analyze_experiment.ingest import training as training_mod
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load

NOW = 2_000_000_000.0
SLURM = Path(__file__).parent / "fixtures" / "torchtune" / "local_v0.6.1_lora_cpu_slurm_completed.out"


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = design_mod.read_design

    def counted(root, diag):
        calls.append(1)
        return real(root, diag)

    monkeypatch.setattr(load_mod, "read_design", counted)
    return calls


def test_an_unchanged_design_is_not_parsed_again_and_reads_the_same(example_copy, tmp_path, monkeypatch):
    root = example_copy("mid2026", 40)
    # both documents: the markdown one is noted as ignored, a warning the cache must replay
    (root / "experiment_summary.md").write_text("# Experiment: other\n", encoding="utf-8")
    plain = load(root, now=NOW)
    calls = _counting(monkeypatch)
    first = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    second = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    assert len(calls) == 1  # the second load used the stored design
    assert first.design == second.design == plain.design
    assert second.has_design_doc and second.design.variables
    assert second.diagnostics.warnings == plain.diagnostics.warnings
    assert any("the markdown one ignored" in w.message for w in second.diagnostics.warnings)

    yaml = root / "experiment_summary.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    st = yaml.stat()
    os.utime(yaml, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load(root, now=NOW, cache=Cache(tmp_path / "c"))
    assert len(calls) == 2  # edited: parsed again


def test_a_corrupt_design_entry_is_discarded_with_an_info_note(example_copy, tmp_path, monkeypatch):
    root = example_copy("mid2026", 40)
    load(root, now=NOW, cache=Cache(tmp_path / "c"))
    (entry,) = (tmp_path / "c" / "design").glob("*.bin")
    entry.write_bytes(b"garbage")
    calls = _counting(monkeypatch)
    exp = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    assert len(calls) == 1
    notes = [w for w in exp.diagnostics.warnings if w.stage == "cache"]
    assert len(notes) == 1 and notes[0].severity == "info" and "not a cache entry" in notes[0].message
    assert notes[0].file == "experiment_summary.yaml"
    assert exp.design == load(root, now=NOW).design


def test_only_files_sharing_a_name_and_size_are_hashed(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "artifacts" / "epoch_0").mkdir(parents=True)
    (run / "artifacts" / "epoch_1").mkdir(parents=True)
    shutil.copy(SLURM, run / "artifacts" / "slurm-12.out")
    shutil.copy(SLURM, run / "artifacts" / "epoch_0" / "slurm-12.out")  # an identical copy: counted once
    changed = bytearray(SLURM.read_bytes())
    changed[0] ^= 0x01  # same name and size, other bytes: another file
    (run / "artifacts" / "epoch_1" / "slurm-12.out").write_bytes(bytes(changed))
    (run / "slurm-3.out").write_text("first job\n")
    hashed: list[str] = []
    real = training_mod._fingerprint

    def counted(path):
        hashed.append(path.relative_to(run).as_posix())
        return real(path)

    monkeypatch.setattr(training_mod, "_fingerprint", counted)
    files = training_mod.find_training_files(run)
    assert sorted(p.relative_to(run).as_posix() for p in files.slurm_outputs) == [
        "artifacts/epoch_1/slurm-12.out", "artifacts/slurm-12.out", "slurm-3.out"]
    assert sorted(hashed) == ["artifacts/epoch_0/slurm-12.out", "artifacts/epoch_1/slurm-12.out",
                              "artifacts/slurm-12.out"]
