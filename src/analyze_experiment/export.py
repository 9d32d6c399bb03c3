"""``analyze-experiment export``: the tables as CSV, JSON, Parquet, LaTeX or markdown.

* ``csv`` / ``json``: every table, raw (tidy tables and statistics tables), one file each.
* ``parquet``: the tidy tables (the analysis-ready data), one file each.
* ``latex`` / ``markdown``: the tables a paper or a pull request shows, formatted: results
  per task (value and CI, best in bold), paired comparisons, main effects, ANOVA and the
  training summary. LaTeX files are ``\\input``-ready ``table`` floats using booktabs.

Filters apply to every table that has the column: ``metric`` and ``task`` keep matching
rows; ``runs`` keeps rows whose ``run`` is listed, and comparisons that involve a listed
run (as ``a`` or ``b``). With ``out=None`` the text is returned for stdout.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from analyze_experiment import __version__
from analyze_experiment import formatting as fm
from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.report.markdown import markdown_table
from analyze_experiment.report.plots._select import Target, safe_stem, targets

ExportFormat = Literal["csv", "latex", "json", "parquet", "markdown", "md"]
FORMATS: tuple[str, ...] = ("csv", "latex", "json", "parquet", "markdown", "md")
"""``md`` is ``markdown`` (the extension users type)."""

SCORER_TABLES = ("risk", "auc_tests", "risk_curves", "classification", "subgroups", "subgroup_tests")
"""Tables of the scorer kinds (stats/scorer_kinds.py), written only when a sweep has them."""


def analysis_tables(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The statistics tables by name (for CSV output and exports)."""
    from analyze_experiment.stats.health import FAILED_RUNS

    failed = analysis.failed_runs
    return {
        "intervals": analysis.intervals,
        "comparisons": analysis.comparisons,
        "seeds": analysis.seeds,
        "seed_comparisons": analysis.seed_comparisons,
        "effects": analysis.effects,
        "anova": analysis.anova,
        "diminishing": analysis.diminishing,
        "pareto": analysis.pareto,
        "equivalence": analysis.equivalence,
        "outliers": analysis.outliers,
        "references": analysis.references,
        "failed_runs": failed if len(failed.columns) else pd.DataFrame(columns=FAILED_RUNS),
        **{name: getattr(analysis, name) for name in SCORER_TABLES if len(getattr(analysis, name, ()))},
    }


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed types become strings (Parquet wants one type per column).
    The table itself is returned when no column needs it: copying the per-sample table only to
    write it cost memory and time."""
    out = df
    for c in df.columns:
        if df[c].dtype == object:
            kinds = {type(v) for v in df[c].dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool, int, float}):
                if out is df:
                    out = df.copy()
                out[c] = out[c].map(lambda v: None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v))
    return out


PARQUET_ONLY = ("eval_samples",)
"""Tables the report folder holds as ``data/*.parquet`` only, not as ``tables/*.csv``: the
per-sample scores are one row per sample x scorer x run (202,000 rows, 34 MB of CSV at 100 runs
of 1,000 samples, most of the cost of writing the tables) and the report shows no table of them.
``analyze-experiment export --format csv --table eval_samples`` writes them as CSV on request."""


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
"""Characters that make Python's csv writer quote a field (delimiter, quote, line breaks)."""
_CSV_CHUNK_CELLS = 100_000
"""Cells formatted at a time (pandas' own chunk): a 10^6-row table never exists as text at once."""


def _csv_handled(dtype: Any) -> bool:
    """Column types :func:`_csv_cells` renders as ``to_csv`` does."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "fiubO"
    if isinstance(dtype, pd.CategoricalDtype):
        return dtype.categories.dtype.kind not in "mM"
    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.core.dtypes.dtypes.BaseMaskedDtype) and dtype.kind in "iub"  # Int64, boolean


def _numbers(v: np.ndarray) -> np.ndarray:
    """``v.astype(str)`` as object cells, each distinct value (by its bits) formatted once: a
    learning-rate column repeats a few thousand values over 10^5 rows."""
    if len(v) > 64 and v.dtype.itemsize in (1, 2, 4, 8):
        uniq, inverse = np.unique(v.view(f"u{v.dtype.itemsize}"), return_inverse=True)
        if 2 * len(uniq) < len(v):
            return _as_text(uniq.view(v.dtype))[inverse]
    return _as_text(v)


def _as_text(v: np.ndarray) -> np.ndarray:
    """``v.astype(str)`` as object cells. A float64 is written by Python's ``repr``: NumPy's str of
    a float64 is the same text (the shortest digits that read back as the value, scientific
    below 1e-4 and from 1e16 on, as Python does; tests/test_csv_writer.py checks it on random
    bit patterns), at two thirds of the cost."""
    if v.dtype == np.float64:
        return np.array(list(map(float.__repr__, v.tolist())), dtype=object)
    return v.astype(str).astype(object)


def _csv_cells(s: pd.Series) -> tuple[np.ndarray, bool]:
    """The column as the cells pandas hands the csv writer in ``to_csv`` (its
    ``get_values_for_csv`` with the defaults: NaN-like cells ``""``, floats ``astype(str)``,
    other values as the objects the writer turns into text), and whether every cell is a
    ``str`` the writer would write unquoted. Only for :func:`_csv_handled` types."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        v = s.to_numpy()
        if dtype.kind == "f":
            out = _numbers(v)
            out[np.isnan(v)] = ""
            return out, True
        if dtype.kind in "iub":  # the writer's str() of each number / bool: the same digits
            return _numbers(v), True
        mask = pd.isna(v)
        if mask.all():  # a column no row has a value in (grad_norm of most runs)
            return np.full(len(v), "", dtype=object), True
        out = np.array(v, dtype=object)
        out[mask] = ""
        return out, _plain(out)
    if isinstance(dtype, pd.CategoricalDtype):
        cats = np.array([_as_written(c) for c in dtype.categories.to_numpy(dtype=object)] + [""], dtype=object)
        codes = s.cat.codes.to_numpy()
        return cats[codes], _plain(cats[np.unique(codes)])  # code -1 (missing) takes the trailing ""
    if isinstance(dtype, pd.StringDtype):
        out = s.to_numpy(dtype=object, na_value="")
        return out, _plain(out)
    mask = s.isna().to_numpy()
    out = _numbers(s.to_numpy(dtype=dtype.numpy_dtype, na_value=dtype.numpy_dtype.type(0)))
    out[mask] = ""
    return out, True


def _as_written(value: Any) -> Any:
    """A category as the csv writer writes the object: str as is, a float by its repr, else str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _plain(cells: np.ndarray) -> bool:
    """Every cell a str without a character the writer would quote."""
    items = cells.tolist()
    return set(map(type, items)) <= {str} and not _NEEDS_QUOTES.search("".join(items))


def _csv_parts(df: pd.DataFrame) -> Iterator[str] | None:
    """The text of ``df.to_csv(index=False)`` in pieces, or None when pandas must write it (a
    type not handled here, a single column — the writer quotes an empty only cell — or column
    names that are not text)."""
    if (df.shape[1] < 2 or isinstance(df.columns, pd.MultiIndex) or not all(type(c) is str for c in df.columns)
            or not all(_csv_handled(d) for d in df.dtypes)):
        return None

    def parts() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(df.columns))
        yield buf.getvalue()
        step = max(1, _CSV_CHUNK_CELLS // df.shape[1])
        for start in range(0, len(df), step):
            part = df.iloc[start:start + step]
            cells = [_csv_cells(part.iloc[:, i]) for i in range(part.shape[1])]
            rows = zip(*[c.tolist() for c, _ in cells], strict=True)
            if all(plain for _, plain in cells):
                yield "\n".join(map(",".join, rows)) + "\n"
            else:  # the writer quotes, with the very cells pandas would give it
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows(rows)
                yield buf.getvalue()

    return parts()


def csv_text(df: pd.DataFrame) -> str:
    """``df.to_csv(index=False)``, byte for byte (see :func:`write_csv`)."""
    parts = _csv_parts(df)
    return df.to_csv(index=False) if parts is None else "".join(parts)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """``df.to_csv(path, index=False)``, byte for byte, built column by column.

    pandas formats every cell and hands the rows to Python's csv writer; for a table of
    numbers and plain text (train_steps: 10^5 rows at 100 runs, most of the cost of writing
    the report's tables) the same text is joined directly, each distinct number formatted
    once. Rows with a cell the writer would quote go through the writer with the same cells;
    a table this does not handle is written by pandas.
    """
    parts = _csv_parts(df)
    if parts is None:
        df.to_csv(path, index=False)
        return
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.writelines(parts)


def write_tables(exp: Experiment, analysis: Analysis, out: Path) -> list[Path]:
    """``tables/*.csv`` (tidy + statistics, but not :data:`PARQUET_ONLY`) and ``data/*.parquet``
    (tidy + statistics: typed, for pandas, DuckDB and the cross-experiment catalog,
    :mod:`analyze_experiment.catalog`)."""
    written = []
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    named = {**exp.tables(), **analysis_tables(analysis)}
    for name, df in named.items():
        if name in PARQUET_ONLY:
            continue
        p = out / "tables" / f"{name}.csv"
        write_csv(df, p)
        written.append(p)
    for name, df in named.items():
        if not len(df.columns):
            continue
        p = out / "data" / f"{name}.parquet"
        parquet_safe(df).to_parquet(p, index=False)
        written.append(p)
    return written


class ExportError(ValueError):
    """An export that cannot be done as asked (unknown format, Parquet to stdout)."""


# --- selection -------------------------------------------------------------------------------


def filter_table(df: pd.DataFrame, *, metric: str | None = None, task: str | None = None,
                 runs: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``df`` matching the filters (a filter is ignored when ``df`` lacks its column)."""
    keep = pd.Series(True, index=df.index)
    if metric is not None and "metric" in df.columns:
        keep &= df["metric"].astype(str) == metric
    if task is not None and "task" in df.columns:
        keep &= df["task"].astype(str) == task
    if runs:
        wanted = {str(r) for r in runs}
        if "run" in df.columns:
            keep &= df["run"].astype(str).isin(wanted)
        elif {"a", "b"} <= set(df.columns):
            keep &= df["a"].astype(str).isin(wanted) | df["b"].astype(str).isin(wanted)
    return df[keep].reset_index(drop=True)


def best_table(analysis: Analysis) -> pd.DataFrame:
    """``analysis.best`` as a table (one row per task x scorer x metric)."""
    rows = [{**asdict(b), "tied_with": ", ".join(b.tied_with) or None} for b in analysis.best]
    cols = ["task", "scorer", "metric", "run", "epoch", "value", "ci_low", "ci_high", "clear_winner", "reason",
            "tied_with"]
    return pd.DataFrame(rows, columns=cols)


def all_tables(experiment: Experiment, analysis: Analysis, *, metric: str | None = None, task: str | None = None,
               runs: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Every tidy and statistics table by name, filtered."""
    named = {**experiment.tables(), **analysis_tables(analysis), "best": best_table(analysis)}
    return {k: filter_table(v, metric=metric, task=task, runs=runs) for k, v in named.items()}


# --- LaTeX -----------------------------------------------------------------------------------

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "—": "---", "−": "-", "±": r"$\pm$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIALS))


def latex_escape(text: object) -> str:
    r"""Plain text -> LaTeX that typesets as that text.

    >>> latex_escape("rank8_lr1e-5 & 50% <x>")
    'rank8\\_lr1e-5 \\& 50\\% \\textless{}x\\textgreater{}'
    """
    s = re.sub(r"\s+", " ", str(text))
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], s)


def latex_table(df: pd.DataFrame, *, caption: str, label: str, bold: dict[str, set[int]] | None = None,
                numeric: Sequence[str] = ()) -> str:
    r"""A booktabs ``table`` float of already formatted cells.

    ``bold`` maps a column to the row positions set in ``\textbf``; ``numeric`` columns
    are right-aligned.
    """
    bold = bold or {}
    spec = "".join("r" if c in numeric else "l" for c in df.columns)
    lines = [
        f"% {caption}. Generated by analyze-experiment {__version__}; needs \\usepackage{{booktabs}}.",
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in df.columns) + r" \\",
        r"\midrule",
    ]
    for i in range(len(df)):
        cells = []
        for c in df.columns:
            cell = latex_escape(df[c].iloc[i])
            cells.append(rf"\textbf{{{cell}}}" if i in bold.get(c, set()) else cell)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _extremes(values: Sequence[Any], highest: bool) -> set[int]:
    """Positions of the best value (all ties), ignoring unknowns."""
    nums = [(i, float(v)) for i, v in enumerate(values) if not fm.is_missing(v)]
    if not nums:
        return set()
    target = max(v for _, v in nums) if highest else min(v for _, v in nums)
    return {i for i, v in nums if math.isclose(v, target, rel_tol=0, abs_tol=1e-12)}


def _ci_paren(value: Any, low: Any, high: Any, digits: int = 3) -> tuple[str, str]:
    """(value, "(low, high)") formatted; the interval is empty when unknown."""
    if fm.is_missing(low) or fm.is_missing(high):
        return fm.num(value, digits), ""
    return fm.num(value, digits), f"({fm.num(low, digits)}, {fm.num(high, digits)})"


def _results_frame(experiment: Experiment, analysis: Analysis, t: Target, runs: Sequence[str] | None
                   ) -> tuple[pd.DataFrame, set[int]]:
    iv = analysis.intervals
    iv = iv[(iv["task"] == t.task) & (iv["scorer"] == t.scorer) & (iv["metric"] == t.metric)]
    iv = filter_table(iv, runs=runs)
    iv = iv[pd.to_numeric(iv["value"], errors="coerce").notna()].sort_values("value", ascending=False, kind="stable")
    params = [p for p in experiment.param_names if p in experiment.runs.columns]
    prm = experiment.runs.set_index("run")[params] if params and len(experiment.runs) else None
    level = round(analysis.confidence * 100)
    rows = []
    for r in iv.itertuples():
        row: dict[str, str] = {"Run": str(r.run)}
        for p in params:
            v = prm.loc[r.run, p] if prm is not None and r.run in prm.index else None
            row[p] = fm.value(v.iloc[0] if isinstance(v, pd.Series) else v)
        value, ci = _ci_paren(r.value, r.ci_low, r.ci_high)
        row["Epoch"] = fm.epoch(r.epoch)
        row[t.metric] = value
        row[f"{level}% CI"] = ci
        row["n"] = fm.integer(r.n)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["Run", *params, "Epoch", t.metric, f"{level}% CI", "n"])
    return df, _extremes(list(iv["value"]), highest=True)


def _comparisons_frame(analysis: Analysis, metric: str | None, task: str | None, runs: Sequence[str] | None
                       ) -> pd.DataFrame:
    c = filter_table(analysis.comparisons, metric=metric, task=task, runs=runs)
    level = round(analysis.confidence * 100)
    rows = []
    for r in c.itertuples():
        d, ci = _ci_paren(r.diff, r.ci_low, r.ci_high)
        rows.append({"Task": str(r.task), "Scorer": str(r.scorer), "Metric": str(r.metric),
                     "A": f"{r.a}" + ("" if fm.is_missing(r.epoch_a) else f" (epoch {fm.epoch(r.epoch_a)})"),
                     "B": f"{r.b}" + ("" if fm.is_missing(r.epoch_b) else f" (epoch {fm.epoch(r.epoch_b)})"),
                     "Difference": d, f"{level}% CI": ci, "Test": str(r.test).replace("_", " "),
                     "p": fm.pvalue(r.p_value), "p (Holm)": fm.pvalue(r.p_adjusted), "n": fm.integer(r.n_paired)})
    return pd.DataFrame(rows, columns=["Task", "Scorer", "Metric", "A", "B", "Difference", f"{level}% CI", "Test",
                                       "p", "p (Holm)", "n"])


def _effects_frame(analysis: Analysis, metric: str | None, task: str | None) -> pd.DataFrame:
    e = filter_table(analysis.effects, metric=metric, task=task)
    level = round(analysis.confidence * 100)
    rows = []
    for r in e.itertuples():
        m, ci = _ci_paren(r.mean, r.ci_low, r.ci_high)
        rows.append({"Task": str(r.task), "Scorer": str(r.scorer), "Metric": str(r.metric), "Variable": str(r.variable),
                     "Level": fm.value(r.level), "Mean": m, f"{level}% CI": ci, "Runs": fm.integer(r.n_runs)})
    return pd.DataFrame(rows, columns=["Task", "Scorer", "Metric", "Variable", "Level", "Mean", f"{level}% CI",
                                       "Runs"])


def _anova_frame(analysis: Analysis, metric: str | None, task: str | None) -> pd.DataFrame:
    a = filter_table(analysis.anova, metric=metric, task=task)
    rows = [{"Task": str(r.task), "Scorer": str(r.scorer), "Metric": str(r.metric), "Term": str(r.term),
             "df": fm.num(r.df, 0), "F": fm.num(r.F, 2), "p": fm.pvalue(r.p_value),
             "Partial eta sq.": fm.num(r.partial_eta_sq, 3)}
            for r in a.itertuples()]
    return pd.DataFrame(rows, columns=["Task", "Scorer", "Metric", "Term", "df", "F", "p", "Partial eta sq."])


def _training_frame(experiment: Experiment, runs: Sequence[str] | None) -> tuple[pd.DataFrame, set[int]]:
    r = filter_table(experiment.runs, runs=runs)
    if len(r):
        r = r[r["type"].astype(str) != "control"]
    params = [p for p in experiment.param_names if p in r.columns]
    rows = []
    for x in r.to_dict("records"):
        rows.append({"Run": str(x["run"]), **{p: fm.value(x.get(p)) for p in params},
                     "Status": "—" if fm.is_missing(x.get("status")) else str(x["status"]),
                     "Final loss": fm.num(x.get("final_loss"), 4), "Min loss": fm.num(x.get("min_loss"), 4),
                     "Steps": fm.integer(x.get("steps")), "Time": fm.seconds(x.get("train_time_s"))})
    df = pd.DataFrame(rows, columns=["Run", *params, "Status", "Final loss", "Min loss", "Steps", "Time"])
    return df, _extremes(list(r["final_loss"]) if len(r) else [], highest=False)


def paper_tables(experiment: Experiment, analysis: Analysis, *, metric: str | None = None, task: str | None = None,
                 runs: Sequence[str] | None = None) -> list[tuple[str, str, pd.DataFrame, dict[str, set[int]], list[str]]]:
    """The formatted tables of a paper: (name, caption, frame, bold cells, numeric columns).

    Empty tables are left out.
    """
    out = []
    level = round(analysis.confidence * 100)
    for t in targets(analysis):
        if (metric is not None and t.metric != metric) or (task is not None and t.task != task):
            continue
        df, best = _results_frame(experiment, analysis, t, runs)
        name = "results" if len(targets(analysis)) == 1 else f"results_{t.slug}"
        out.append((name, f"{t.metric} on {t.task} ({t.scorer}) per run, with {level}% confidence intervals",
                    df, {t.metric: best}, [t.metric, "n"]))
    out.append(("comparisons", f"Paired comparisons ({level}% CI of the difference; Holm-adjusted p)",
                _comparisons_frame(analysis, metric, task, runs), {}, ["Difference", "p", "p (Holm)", "n"]))
    out.append(("effects", f"Main effects: mean metric per level with {level}% CI", _effects_frame(analysis, metric, task),
                {}, ["Mean", "Runs"]))
    out.append(("anova", "ANOVA of the metric over the swept variables", _anova_frame(analysis, metric, task), {},
                ["df", "F", "p", "Partial eta sq."]))
    tr, lowest = _training_frame(experiment, runs)
    out.append(("training", "Training summary (the lowest final loss is marked)", tr, {"Final loss": lowest},
                ["Final loss", "Min loss", "Steps"]))
    return [x for x in out if len(x[2])]


# --- writers ---------------------------------------------------------------------------------


def _json_default(v: Any) -> Any:
    if v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if fm.is_missing(v) else v) for k, v in row.items()} for row in df.to_dict("records")]


def _dump_json(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                        | orjson.OPT_NON_STR_KEYS)


def export_tables(
    experiment: Experiment,
    analysis: Analysis,
    fmt: str,
    out: Path | None,
    *,
    metric: str | None = None,
    task: str | None = None,
    runs: Sequence[str] | None = None,
    table: str | None = None,
) -> list[Path] | str:
    """Write the tables in one format to the folder ``out``, or return them as text.

    Args:
        experiment: the loaded experiment.
        analysis: its statistics.
        fmt: ``csv`` | ``latex`` | ``json`` | ``parquet`` | ``markdown``.
        out: destination folder (created), or None for the text (not for ``parquet``).
        metric: keep only this metric.
        task: keep only this task.
        runs: keep only these runs.
        table: only this table (required for CSV to stdout: one stream holds one valid CSV).

    Returns:
        The written paths, or the text when ``out`` is None.

    Raises:
        ExportError: unknown format or table, Parquet without a folder, CSV to stdout without
            ``table``.
    """
    fmt = "markdown" if fmt == "md" else fmt
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise ExportError("Parquet is binary: give an output folder")
    if fmt in ("csv", "json", "parquet"):
        tables = _one_table(all_tables(experiment, analysis, metric=metric, task=task, runs=runs), table)
        if fmt == "parquet":
            assert out is not None
            return _write_parquet(tables, set(experiment.tables()), out)
        files = _data_files(tables, fmt, out)
    else:
        papers = paper_tables(experiment, analysis, metric=metric, task=task, runs=runs)
        files = _paper_files(papers, fmt, table)
    if isinstance(files, str):
        return files
    if out is None:
        sep, end = ("% ", "") if fmt == "latex" else ("<!-- ", " -->")
        return "\n".join(f"{sep}{name}{end}\n{text}" for name, text in files.items())
    return _write_files(files, out)


def _write_parquet(tables: dict[str, pd.DataFrame], tidy: set[str], out: Path) -> list[Path]:
    """The tidy tables as Parquet (the statistics tables are already under ``analysis/data/``)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        if name in tidy:
            p = out / f"{safe_stem(name)}.parquet"
            parquet_safe(df).to_parquet(p, index=False)
            written.append(p)
    return written


def _data_files(tables: dict[str, pd.DataFrame], fmt: str, out: Path | None) -> dict[str, str | bytes] | str:
    """CSV or JSON per table; to stdout (``out`` None) one text: one CSV table, or one JSON object."""
    if fmt == "csv":
        if out is None and len(tables) > 1:
            raise ExportError("CSV to stdout holds one table: give --table NAME (one of "
                              f"{', '.join(tables)}) or --out FOLDER for every table")
        if out is None:
            return csv_text(next(iter(tables.values())))
        return {f"{n}.csv": csv_text(df) for n, df in tables.items()}
    if out is None:
        return _dump_json({n: _records(df) for n, df in tables.items()}).decode() + "\n"
    return {f"{n}.json": _dump_json(_records(df)) + b"\n" for n, df in tables.items()}


def _paper_files(papers: list[tuple[Any, ...]], fmt: str, table: str | None) -> dict[str, str | bytes]:
    """The paper tables as LaTeX or markdown (one file each), optionally only ``table``."""
    if table is not None:
        names = [n for n, *_ in papers]
        if table not in names:
            raise ExportError(f"no table {table!r} in the {fmt} export; one of {', '.join(names)}")
        papers = [p for p in papers if p[0] == table]
    if fmt == "latex":
        return {f"{n}.tex": latex_table(df, caption=cap, label=f"tab:{safe_stem(n)}", bold=bold, numeric=num)
                for n, cap, df, bold, num in papers}
    return {f"{n}.md": f"**{cap}**\n\n{markdown_table(_bold_md(df, bold))}\n" for n, cap, df, bold, _num in papers}


def _write_files(files: dict[str, str | bytes], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        p = out / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        written.append(p)
    return written


def _one_table(tables: dict[str, pd.DataFrame], table: str | None) -> dict[str, pd.DataFrame]:
    if table is None:
        return tables
    if table not in tables:
        raise ExportError(f"no table {table!r}; one of {', '.join(tables)}")
    return {table: tables[table]}


def _bold_md(df: pd.DataFrame, bold: dict[str, set[int]]) -> pd.DataFrame:
    """Mark the best cells for markdown with a ``(best)`` suffix (cell text is escaped, so no ``**``)."""
    out = df.copy()
    for col, rows in bold.items():
        for i in rows:
            out.loc[out.index[i], col] = f"{out[col].iloc[i]} (best)"
    return out
