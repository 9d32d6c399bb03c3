"""A rebuilt report copies the figures whose input did not change from the cache instead of
drawing them; a changed evaluation log redraws its metric's figures only; a broken cached
figure is discarded and drawn; ``--no-cache`` draws every figure; a reused PNG is the PNG a
fresh drawing writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench.sweep import flip_one_sample
from click.testing import CliRunner

from analyze_experiment.cli import analyze
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.ingest.load import load
from analyze_experiment.report.plots import specs as specs_mod
from analyze_experiment.report.plots.figure_cache import KIND, figure_key
from analyze_experiment.write import write_report

N = 40
NOW = 2_000_000_000.0
TRAINING = {"loss", "lr", "throughput", "gpu"}


@pytest.fixture
def drawn(monkeypatch) -> list[str]:
    """The names of the figures drawn (in this process: one drawing process)."""
    monkeypatch.setenv(specs_mod.WORKERS_ENV, "1")
    names: list[str] = []
    real = specs_mod.FigureSpec.draw
    monkeypatch.setattr(specs_mod.FigureSpec, "draw", lambda self: names.append(self.name) or real(self))
    return names


def _report(root: Path, out: Path, cache: Cache | None):
    """The experiment written (its diagnostics hold the notes and the log's actions)."""
    exp = load(root, now=NOW, cache=cache)
    write_report(exp, out, formats=("md",), cache=cache)
    return exp


def _pngs(out: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted((out / "plots").glob("*.png"))}


def _flip_one_sample(root: Path) -> str:
    """Flip one sample's score of the first log with inspect-ai (as the benchmark's "one log
    changed" does); returns the log's task."""
    return flip_one_sample(sorted(root.rglob("*.eval"))[0])


def _first_report(example_copy, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A private example, its cache folder and the PNGs of its first report (into ``a``)."""
    root = example_copy("mid2026", N)
    folder = tmp_path / "cache"
    _report(root, tmp_path / "a", Cache(folder))
    return root, folder, _pngs(tmp_path / "a")


@pytest.mark.slow
def test_unchanged_figures_are_reused_and_a_changed_log_redraws_its_metric_only(example_copy, tmp_path, drawn):
    root, folder, first = _first_report(example_copy, tmp_path)
    assert set(first) >= TRAINING and len(drawn) == len(first)

    # another output folder: the report is rebuilt, but not one figure is drawn again
    drawn.clear()
    exp = _report(root, tmp_path / "b", Cache(folder))
    assert drawn == []
    assert _pngs(tmp_path / "b") == first
    assert f"{len(first)} figures from the cache, 0 drawn" in [a.result for a in exp.diagnostics.actions]

    # the PNG of a reused figure is byte for byte the one a fresh drawing writes
    _report(root, tmp_path / "plain", None)
    assert _pngs(tmp_path / "plain") == first

    # one evaluation sample flipped: that metric's figures are drawn again, training's reused
    drawn.clear()
    task = _flip_one_sample(root)
    _report(root, tmp_path / "c", Cache(folder))
    redrawn = set(drawn)
    assert redrawn, "a changed score must change its metric's figures"
    assert not redrawn & TRAINING
    slugs = {name.split("_", 1)[1] for name in redrawn}
    assert len(slugs) == 1, redrawn  # one metric's figures: its bars, Pareto front, per-sample view
    slug = slugs.pop()
    assert slug.startswith(task.split("/")[-1].split("_")[0]) and f"final_{slug}" in redrawn, (task, redrawn)
    reused = set(first) - redrawn
    assert reused >= TRAINING and f"effects_{slug}" in reused, reused  # the control's log: no main effect
    after = _pngs(tmp_path / "c")
    assert set(after) == set(first)
    assert all(after[name] == first[name] for name in TRAINING)


@pytest.mark.slow
def test_a_broken_cached_figure_is_discarded_and_drawn(example_copy, tmp_path, drawn):
    root, folder, first = _first_report(example_copy, tmp_path)
    cache = Cache(folder)
    entries = sorted((folder / KIND).glob("*.bin"))
    assert len(entries) == len(first)

    # the loss entry: payload corrupted (fails its checksum); the lr entry: holds no PNG
    loss_entry = cache._entry(KIND, Path("loss"))
    raw = bytearray(loss_entry.read_bytes())
    raw[-10] ^= 0xFF
    loss_entry.write_bytes(bytes(raw))
    cache.put_group(KIND, "lr", [], {"png": b"not a png", "svg": None}, extra=_key_of(root, "lr"))

    drawn.clear()
    exp = _report(root, tmp_path / "b", Cache(folder))
    assert sorted(drawn) == ["loss", "lr"]
    assert _pngs(tmp_path / "b") == first
    notes = [w.message for w in exp.diagnostics.warnings if w.stage == "cache" and w.severity == "info"]
    assert any("loss plot was unusable" in m and "checksum mismatch" in m for m in notes), notes
    assert any("lr plot was unusable" in m and "not a PNG" in m for m in notes), notes

    # both were stored again: a third report draws nothing
    drawn.clear()
    _report(root, tmp_path / "c", Cache(folder))
    assert drawn == []


def _key_of(root: Path, name: str) -> str:
    from analyze_experiment.conclude import analyze as analyse
    from analyze_experiment.experiment import Options
    from analyze_experiment.report.plots.plan import plan_figures

    exp = load(root, now=NOW)
    spec = next(s for s in plan_figures(exp, analyse(exp, Options())) if s.name == name)
    key = figure_key(spec, svg=False)
    assert key is not None
    return key


@pytest.mark.slow
def test_no_cache_draws_every_figure(example_copy, drawn):
    root = example_copy("mid2026", N)
    runner = CliRunner()
    args = [str(root), "--format", "md", "--quiet"]
    assert runner.invoke(analyze, args, catch_exceptions=False).exit_code == 0
    n = len(drawn)
    assert n >= len(TRAINING)
    drawn.clear()
    log = sorted(root.rglob("*.eval"))[0]
    st = log.stat()
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: read and rebuilt, same data
    result = runner.invoke(analyze, args, catch_exceptions=False)
    assert result.exit_code == 0 and "Nothing changed" not in result.output
    assert drawn == []  # every figure from the cache
    assert runner.invoke(analyze, [*args, "--no-cache"], catch_exceptions=False).exit_code == 0
    assert len(drawn) == n


def test_two_different_data_give_different_keys():
    import pandas as pd

    from analyze_experiment.report.plots.specs import FigureSpec
    from analyze_experiment.report.plots.static import plot_step_series

    def spec(df, **options):
        return FigureSpec("loss", "t", "training", plot_step_series, df, options)

    a = pd.DataFrame({"run": ["r1", "r2"], "step": [1, 2], "loss": [0.5, 0.25]})
    b = a.assign(loss=[0.5, 0.2500001])
    c = a.astype({"step": "float64"})
    keys = {figure_key(spec(x), svg=False) for x in (a, b, c)}
    assert len(keys) == 3 and None not in keys
    assert figure_key(spec(a.copy()), svg=False) == figure_key(spec(a), svg=False)
    assert figure_key(spec(a), svg=True) != figure_key(spec(a), svg=False)
    assert figure_key(spec(a, y="loss"), svg=False) != figure_key(spec(a, y="lr"), svg=False)



def test_an_edit_anywhere_in_the_package_changes_every_key(monkeypatch):
    """The drawing functions call helpers outside report/plots (text escaping, formatting): an
    edited helper or another release must not reuse PNGs the old code drew."""
    import pandas as pd

    from analyze_experiment.report.plots import figure_cache as fc
    from analyze_experiment.report.plots.specs import FigureSpec
    from analyze_experiment.report.plots.static import plot_step_series

    spec = FigureSpec("loss", "t", "training", plot_step_series, pd.DataFrame({"run": ["r"], "step": [1], "loss": [1.0]}))
    before = figure_key(spec, svg=False)
    fc._drawing_digest.cache_clear()
    real = Path.read_bytes

    def edited(path: Path) -> bytes:  # one helper outside report/plots changed on disk
        return real(path) + (b"# edited\n" if path.name == "textsafe.py" else b"")

    monkeypatch.setattr(Path, "read_bytes", edited)
    try:
        assert figure_key(spec, svg=False) != before
    finally:
        fc._drawing_digest.cache_clear()
