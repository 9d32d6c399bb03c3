"""``index`` and ``query``: SQL (DuckDB) over two analysed experiments, through the real CLI.

Every answer is checked against the same number computed with pandas from each
experiment's own analysis folder.
"""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment.catalog import default_catalog, find_experiments
from analyze_experiment.cli import analyze, index_cmd, main, query_cmd

DROPPED = "Llama-3.2-1B-Instruct_rank16_lr1e-4"


@pytest.fixture(scope="module")
def two(example, analysed, tmp_path_factory):
    """Sweep A (the example with its report, copied) and sweep B (the example without one run,
    another name), analysed here."""
    root = tmp_path_factory.mktemp("cat") / "projects"
    a, b = root / "cap" / "sweep_a", root / "cap" / "nested" / "sweep_b"
    shutil.copytree(analysed("mid2026", 40).root, a, symlinks=True)
    shutil.copytree(example("mid2026", 40), b, symlinks=True)
    shutil.rmtree(b / DROPPED)
    design = b / "experiment_summary.yaml"
    design.write_text(design.read_text().replace("cap_lora_rank_lr_2026-05-12", "sweep_b"))
    # --format html: no PNG figures to draw (the catalog reads summary.json and the tables)
    r = CliRunner().invoke(analyze, [str(b), "--quiet", "--no-cache", "--format", "html"])
    assert r.exit_code == 0, r.output
    (root / "not_analysed").mkdir()
    return root, a, b


def _q(sql: str, catalog) -> pd.DataFrame:
    r = CliRunner().invoke(query_cmd, [sql, "--catalog", str(catalog), "--format", "csv"])
    assert r.exit_code == 0, r.output
    return pd.read_csv(io.StringIO(r.stdout))


def test_index_and_query_across_two_experiments(two, tmp_path):
    root, a, b = two
    cat = tmp_path / "cat.duckdb"
    assert find_experiments([root]) == sorted([a.resolve(), b.resolve()])
    r = CliRunner().invoke(index_cmd, [str(root), "--catalog", str(cat)])
    assert r.exit_code == 0, r.output
    assert "2 added, 0 refreshed, 0 removed" in r.output

    exps = _q("SELECT experiment_name, n_runs FROM experiments ORDER BY experiment_name", cat)
    assert exps.values.tolist() == [["cap_lora_rank_lr_2026-05-12", 5], ["sweep_b", 4]]

    best = _q("SELECT experiment_name, task, scorer, max(value) AS best FROM intervals WHERE metric = 'accuracy' "
              "GROUP BY ALL ORDER BY ALL", cat)
    for name, folder in (("cap_lora_rank_lr_2026-05-12", a), ("sweep_b", b)):
        iv = pd.read_csv(folder / "analysis" / "tables" / "intervals.csv")
        expect = iv[iv["metric"] == "accuracy"].groupby(["task", "scorer"])["value"].max()
        got = best[best["experiment_name"] == name].set_index(["task", "scorer"])["best"]
        assert got.to_dict() == pytest.approx(expect.to_dict())

    # a run the design lists but the disk lacks is a row with on_disk = false
    fast = _q("SELECT experiment_name, run FROM runs WHERE learning_rate >= 1e-4 AND on_disk ORDER BY ALL", cat)
    assert fast.values.tolist() == [["cap_lora_rank_lr_2026-05-12", DROPPED],
                                    ["cap_lora_rank_lr_2026-05-12", "Llama-3.2-1B-Instruct_rank4_lr1e-4"],
                                    ["sweep_b", "Llama-3.2-1B-Instruct_rank4_lr1e-4"]]
    hours = _q("SELECT experiment_name, sum(gpu_hours) AS h FROM runs GROUP BY ALL ORDER BY ALL", cat)
    summary = json.loads((b / "analysis" / "summary.json").read_text())
    b_hours = sum(r["training"]["gpu_hours"] or 0 for r in summary["runs"] if r["training"])
    assert hours.set_index("experiment_name")["h"]["sweep_b"] == pytest.approx(b_hours)


def test_reindex_refreshes_and_drops_gone_reports(two, tmp_path):
    root, _, b = two
    cat = tmp_path / "cat.duckdb"
    assert CliRunner().invoke(index_cmd, [str(root), "--catalog", str(cat)]).exit_code == 0
    r = CliRunner().invoke(index_cmd, [str(root), "--catalog", str(cat)])
    assert "0 added, 2 refreshed, 0 removed" in r.output
    moved = b.parent / "sweep_b_report_away"
    (b / "analysis").rename(moved)
    try:
        r = CliRunner().invoke(query_cmd, ["SELECT count(*) AS n FROM experiments", "--catalog", str(cat),
                                           "--format", "csv"])
        assert r.exit_code == 0, r.output
        assert "its report is gone" in r.output  # noted, and its tables are left out of the views
        runs = _q("SELECT DISTINCT experiment_name FROM runs", cat)
        assert runs["experiment_name"].tolist() == ["cap_lora_rank_lr_2026-05-12"]
        r = CliRunner().invoke(index_cmd, [str(root), "--catalog", str(cat)])
        assert "0 added, 1 refreshed, 1 removed" in r.output
    finally:
        moved.rename(b / "analysis")


def test_errors_are_one_line_for_the_user(two, tmp_path):
    root, _, _ = two
    r = CliRunner().invoke(query_cmd, ["SELECT 1", "--catalog", str(tmp_path / "none.duckdb")])
    assert r.exit_code == 1 and "run `analyze-experiment index ROOT` first" in r.output
    cat = tmp_path / "cat.duckdb"
    CliRunner().invoke(index_cmd, [str(root), "--catalog", str(cat)])
    r = CliRunner().invoke(query_cmd, ["SELECT nosuchcolumn FROM runs", "--catalog", str(cat)])
    assert r.exit_code == 1 and "nosuchcolumn" in r.output and "intervals" in r.output


def test_console_entry_and_default_location(two, tmp_path, monkeypatch, capsys):
    root, _, _ = two
    monkeypatch.setenv("ANALYZE_EXPERIMENT_CATALOG", str(tmp_path / "env.duckdb"))
    assert default_catalog() == tmp_path / "env.duckdb"
    with pytest.raises(SystemExit) as done:
        main(["index", str(root)])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["query", "SELECT count(*) AS n FROM experiments", "--format", "json"])
    assert done.value.code == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 2}]


def test_every_example_query_of_the_docs_runs(two, tmp_path):
    import re
    from pathlib import Path

    from analyze_experiment.catalog import index, query

    root, _, _ = two
    cat = tmp_path / "cat.duckdb"
    index([root], cat)
    doc = (Path(__file__).parents[1] / "docs" / "catalog.md").read_text()
    examples = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    assert len(examples) == 5
    for sql in examples:
        df, notes = query(sql, cat)
        assert not notes and len(df.columns) >= 2, sql
