"""A catalog of many analysed experiments, queried with SQL (DuckDB, embedded).

One sweep's report answers questions about that sweep. Questions across sweeps — the best
accuracy per task over every sweep of the last month, every run that diverged at a learning
rate of 1e-4 or more — need the tidy tables of all of them in one place. ``index`` records
where each analysed experiment's tables are (``analysis/data/*.parquet``, written by every
report); ``query`` answers SQL over them.

The catalog stores *where* the tables are, not copies: each table name is a DuckDB view over
the Parquet files of every indexed experiment, stacked by column name (sweeps with different
parameters have different columns; a column an experiment lacks is NULL there), with
``experiment`` (the experiment folder's path) and ``experiment_name`` in front. Re-running
the tool on a sweep refreshes what the catalog shows without re-indexing; an experiment whose
report has gone is left out of the views with a note until it is indexed again.

Tables: ``experiments`` (one row per experiment: path, name, question, analysed time, runs
found on disk, tool version) and, per experiment, every table of ``analysis/data/`` — the tidy tables
(``runs``, ``train_steps``, ``eval_samples``, …) and the statistics (``intervals``,
``comparisons``, ``effects``, …).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SUMMARY = Path("analysis") / "summary.json"
DATA = Path("analysis") / "data"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def default_catalog() -> Path:
    """``$ANALYZE_EXPERIMENT_CATALOG``, else ``$XDG_DATA_HOME/analyze-experiment/catalog.duckdb``."""
    env = os.environ.get("ANALYZE_EXPERIMENT_CATALOG")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "analyze-experiment" / "catalog.duckdb"


class CatalogError(RuntimeError):
    """The catalog cannot be opened or a query failed (the message is DuckDB's, for the user)."""


@dataclass
class IndexResult:
    """What one ``index`` call did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    """Experiments under the given roots whose report has gone."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of analysis folders that could not be read."""


def _connect(path: Path):
    import duckdb

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    except (OSError, duckdb.Error) as err:
        raise CatalogError(f"cannot open the catalog {path}: {err}") from None
    con.execute("""CREATE TABLE IF NOT EXISTS experiments (
        experiment VARCHAR PRIMARY KEY, experiment_name VARCHAR, question VARCHAR, hypothesis VARCHAR,
        analysed_at TIMESTAMPTZ, indexed_at TIMESTAMPTZ, n_runs INTEGER, tool_version VARCHAR, layout VARCHAR)""")
    return con


def find_experiments(roots: Iterable[Path]) -> list[Path]:
    """Every experiment folder under ``roots`` that holds an analysed report (``analysis/summary.json``).

    Report folders (``analysis/``) and hidden folders are not searched further.
    """
    found: list[Path] = []
    for root in roots:
        root = Path(root).expanduser().resolve()
        if (root / SUMMARY).is_file():
            found.append(root)
            continue
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if (here / SUMMARY).is_file():
                found.append(here)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "analysis")
    return sorted(dict.fromkeys(found))


def _row(exp: Path) -> dict[str, Any]:
    summary = json.loads((exp / SUMMARY).read_text(encoding="utf-8"))
    e = summary.get("experiment") or {}
    gen = summary.get("generated_by") or {}
    return {"experiment": str(exp), "experiment_name": e.get("name") or exp.name, "question": e.get("question"),
            "hypothesis": e.get("hypothesis"), "analysed_at": gen.get("created"),
            "n_runs": sum(1 for r in summary.get("runs") or [] if isinstance(r, dict) and r.get("dir")), "tool_version": gen.get("version"), "layout": e.get("layout")}


def index(roots: Iterable[Path], catalog: Path | None = None) -> IndexResult:
    """Add or refresh every analysed experiment under ``roots`` in the catalog."""
    roots = [Path(r).expanduser().resolve() for r in roots]
    con = _connect(catalog or default_catalog())
    result = IndexResult()
    try:
        known = {r[0] for r in con.execute("SELECT experiment FROM experiments").fetchall()}
        found = find_experiments(roots)
        for exp in found:
            try:
                row = _row(exp)
            except (OSError, ValueError) as err:
                result.skipped.append((str(exp / SUMMARY), f"unreadable summary.json ({err})"))
                continue
            if not (exp / DATA).is_dir():
                result.skipped.append((str(exp / DATA), "no analysis/data folder (re-run analyze-experiment)"))
                continue
            con.execute("DELETE FROM experiments WHERE experiment = ?", [row["experiment"]])
            con.execute("INSERT INTO experiments VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?)",
                        [row["experiment"], row["experiment_name"], row["question"], row["hypothesis"],
                         row["analysed_at"], row["n_runs"], row["tool_version"], row["layout"]])
            (result.updated if row["experiment"] in known else result.added).append(row["experiment"])
        found_set = {str(p) for p in found}
        for exp in sorted(known - found_set):
            if any(Path(exp).is_relative_to(r) for r in roots) and not (Path(exp) / SUMMARY).is_file():
                con.execute("DELETE FROM experiments WHERE experiment = ?", [exp])
                result.removed.append(exp)
        _views(con)
    finally:
        con.close()
    return result


def _tables_of(con) -> dict[str, list[tuple[str, str, Path]]]:
    """table name -> [(experiment, experiment_name, parquet file)] over every indexed experiment."""
    out: dict[str, list[tuple[str, str, Path]]] = {}
    for exp, name in con.execute("SELECT experiment, experiment_name FROM experiments ORDER BY experiment").fetchall():
        data = Path(exp) / DATA
        if not data.is_dir():
            continue
        for f in sorted(data.glob("*.parquet")):
            if _NAME.match(f.stem) and f.stem != "experiments":
                out.setdefault(f.stem, []).append((exp, name, f))
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _views(con) -> list[str]:
    """(Re)create one view per table name; returns the notes on experiments left out."""
    notes = []
    existing = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'").fetchall()}
    tables = _tables_of(con)
    for name in existing - set(tables):
        con.execute(f'DROP VIEW IF EXISTS "{name}"')
    for name, parts in tables.items():
        selects = [f"SELECT {_quote(exp)} AS experiment, {_quote(str(ename))} AS experiment_name, * "
                   f"FROM read_parquet({_quote(str(path))})" for exp, ename, path in parts if path.is_file()]
        if not selects:
            continue
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS ' + " UNION ALL BY NAME ".join(selects))
    for exp, in con.execute("SELECT experiment FROM experiments").fetchall():
        if not (Path(exp) / SUMMARY).is_file():
            notes.append(f"{exp}: its report is gone (left out; index it again after re-running the analysis)")
    return notes


def query(sql: str, catalog: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Run ``sql`` over the catalog; returns the result and notes on experiments left out.

    The views are rebuilt first, so a sweep analysed again since it was indexed shows its
    current tables. The catalog is opened read-write only for that and for nothing else.
    """
    path = catalog or default_catalog()
    if not path.is_file():
        raise CatalogError(f"no catalog at {path}: run `analyze-experiment index ROOT` first")
    import duckdb

    con = _connect(path)
    try:
        notes = _views(con)
        try:
            return con.execute(sql).df(), notes
        except duckdb.Error as err:
            tables = sorted(r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall())
            raise CatalogError(f"{err}\ntables: {', '.join(tables)}") from None
    finally:
        con.close()
