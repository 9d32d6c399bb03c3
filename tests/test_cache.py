"""The incremental cache: unchanged files are not read again, changed ones are, results are
those of a run without the cache, and a report whose inputs and options did not change is
left byte for byte as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment.cli import analyze
from analyze_experiment.ingest import cache as cache_mod
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load

N = 40
NOW = 2_000_000_000.0  # long after the example's files were written: no run counts as running


def _tables_equal(a, b, skip: tuple[str, ...] = ()) -> None:
    for name, df in a.tables().items():
        if name in skip:
            continue
        pd.testing.assert_frame_equal(df, b.tables()[name], obj=name)


def _inputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".out", ".txt", ".eval"))


def _bump_mtime(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_second_load_reads_nothing_and_equals_an_uncached_load(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    files = _inputs(root)
    c = Cache(tmp_path / "cache")
    first = load(root, now=NOW, cache=c)
    assert (c.hits, c.misses) == (0, len(files))
    c2 = Cache(tmp_path / "cache")
    second = load(root, now=NOW, cache=c2)
    assert (c2.hits, c2.misses) == (len(files), 0)
    plain = load(root, now=NOW)
    _tables_equal(second, plain)
    _tables_equal(first, plain)
    assert second.diagnostics.warnings == plain.diagnostics.warnings


def test_touch_edit_and_parser_version_invalidate(example_copy, tmp_path, monkeypatch):
    root = example_copy("mid2026", N)
    files = _inputs(root)
    load(root, now=NOW, cache=Cache(tmp_path / "c"))

    touched = next(p for p in files if p.suffix == ".eval")
    _bump_mtime(touched)
    c = Cache(tmp_path / "c")
    load(root, now=NOW, cache=c)
    assert (c.hits, c.misses) == (len(files) - 1, 1)

    disk = next(p for p in files if p.name.startswith("log_"))
    lines = disk.read_text().splitlines(keepends=True)
    disk.write_text("".join(lines[:-1]))  # the last step is gone
    c = Cache(tmp_path / "c")
    edited = load(root, now=NOW, cache=c)
    assert (c.hits, c.misses) == (len(files) - 1, 1)
    _tables_equal(edited, load(root, now=NOW))

    monkeypatch.setattr(cache_mod, "PARSER_VERSION", cache_mod.PARSER_VERSION + 1)
    c = Cache(tmp_path / "c")
    load(root, now=NOW, cache=c)
    assert (c.hits, c.misses) == (0, len(files))


def test_corrupt_entry_is_discarded_with_an_info_note(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    load(root, now=NOW, cache=Cache(tmp_path / "c"))
    files = _inputs(root)
    victim = sorted((tmp_path / "c" / "eval").glob("*.bin"))[0]  # one evaluation log's entry
    raw = bytearray(victim.read_bytes())
    raw[-10] ^= 0xFF  # one flipped byte in the payload
    victim.write_bytes(bytes(raw))
    # one run's whole training result: its files' own entries are used instead (and still valid)
    sorted((tmp_path / "c" / "run").glob("*.bin"))[0].write_bytes(b"garbage")
    c = Cache(tmp_path / "c")
    exp = load(root, now=NOW, cache=c)
    assert c.misses == 1 and c.hits == len(files) - 1
    notes = [w for w in exp.diagnostics.warnings if w.stage == "cache"]
    assert len(notes) == 2 and {w.severity for w in notes} == {"info"}
    assert any("checksum mismatch" in w.message for w in notes)
    assert any("not a cache entry" in w.message for w in notes)
    plain = load(root, now=NOW)
    _tables_equal(exp, plain, skip=("warnings",))
    assert [w for w in exp.diagnostics.warnings if w.stage != "cache"] == plain.diagnostics.warnings
    # the entries were rewritten: the next load trusts them again
    c = Cache(tmp_path / "c")
    load(root, now=NOW, cache=c)
    assert c.misses == 0


def test_a_cached_broken_file_still_warns(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    disk = next(p for p in _inputs(root) if p.name.startswith("log_"))
    with disk.open("a") as fh:
        fh.write("this is not a step line\n")
    first = load(root, now=NOW, cache=Cache(tmp_path / "c"))
    c = Cache(tmp_path / "c")
    second = load(root, now=NOW, cache=c)
    assert c.misses == 0
    msgs = [w.message for w in second.diagnostics.warnings if "not in the `Step N" in w.message]
    assert msgs == [w.message for w in first.diagnostics.warnings if "not in the `Step N" in w.message]
    assert len(msgs) == 1 and "'this is not a step line'" in msgs[0]
    assert second.diagnostics.warnings == load(root, now=NOW).diagnostics.warnings


def _cli(args: list[str]) -> tuple[str, str]:
    # --format html: the HTML report draws its figures as interactive charts, so no PNG is drawn
    # (most of a report's CPU time); what is under test is when a report is rebuilt, not its figures
    result = CliRunner().invoke(analyze, [*args, "--format", "html"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def _folder_digest(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".cache" not in p.relative_to(out).parts}


@pytest.mark.slow
def test_cli_skips_an_unchanged_report_and_rebuilds_on_any_change(example_copy):
    root = example_copy("mid2026", N)
    out = root / "analysis"
    _cli([str(root)])
    before = _folder_digest(out)
    assert (out / ".cache").is_dir()
    assert not any(".cache" in rel for rel in before)  # never in the manifest or the tables

    assert "Nothing changed since the last report" in _cli([str(root)])[0]
    assert _folder_digest(out) == before
    log = (root / "analyze-experiment.log").read_text()
    assert log.rstrip().splitlines()[-2].split("] ", 1)[1].startswith("UNCHANGED: Nothing changed")

    assert "Nothing changed" not in _cli([str(root), "--confidence", "0.9"])[0]  # another option: a new report
    summary = (out / "summary.json").read_text()
    assert '"confidence": 0.9' in summary

    assert "Nothing changed" not in _cli([str(root), "--confidence", "0.9", "--no-cache"])[0]  # bypassed
    assert "Nothing changed" in _cli([str(root), "--confidence", "0.9"])[0]
    _bump_mtime(next(p for p in _inputs(root) if p.suffix == ".out"))
    assert "Nothing changed" not in _cli([str(root), "--confidence", "0.9"])[0]

    (out / "report.html").write_text("my edits\n")  # an edited report is never left as it is
    assert "Nothing changed" not in _cli([str(root), "--confidence", "0.9"])[0]
    assert list(out.glob("report.edited-*.html"))
    # the cache was carried into each new folder, never reported as a user's file
    summary = (out / "summary.json").read_text()
    assert ".cache" not in summary


def test_cache_dir_option_and_json_mode(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    where = tmp_path / "elsewhere"
    first, _ = _cli([str(root), "--cache-dir", str(where), "--json"])
    assert list(where.rglob("*.bin")) and not (root / "analysis" / ".cache").exists()
    out, err = _cli([str(root), "--cache-dir", str(where), "--json"])
    assert out == first  # the same summary.json, read back from the untouched report
    assert "Nothing changed" in err


def test_an_unwritable_cache_is_no_error(example_copy, tmp_path):
    root = example_copy("mid2026", N)
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache folder should be")
    c = Cache(blocker)
    exp = load(root, now=NOW, cache=c)
    _tables_equal(exp, load(root, now=NOW))
    assert c.hits == 0
