"""``write_report(experiment, out_dir)``: statistics, plots, reports, tables, summary.json.

Everything is built in a temporary folder and swapped in atomically (:mod:`output`), so
an interrupted run leaves the previous report intact. A failure of one optional output
(a plot, the HTML page) is recorded as an error in Data Quality and the rest is written:
the report must survive anything the data throw at it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.output import (
    CACHE_NAME,
    MANIFEST_NAME,
    READ_ONLY_ERRNOS,
    WRITE_ERRNOS,
    OutputNotWritable,
    atomic_dir,
    carry_over,
    find_user_files,
    move_cache,
    read_manifest,
    write_manifest,
    write_text,
)
from analyze_experiment.progress import Progress, silent
from analyze_experiment.report.build import build_doc
from analyze_experiment.report.summary_json import build_summary, dumps
from analyze_experiment.runlog import LOG_NAME, append_log, log_path, writable

T = TypeVar("T")

FORMATS = ("md", "html")

SCORER_TABLES = ("risk", "auc_tests", "risk_curves", "classification", "subgroups", "subgroup_tests")
"""Tables of the scorer kinds (stats/scorer_kinds.py), written only when a sweep has them."""

OUTPUT_MARKER = ".analyze-experiment-output"
"""Written into every output folder: only a folder holding it (or an empty one) is replaced."""


class UnsafeOutput(ValueError):
    """The output folder would replace something that is not ours (a usage error)."""


def _ours(folder: Path) -> bool:
    """A previous report: our marker, or a summary.json we wrote."""
    if (folder / OUTPUT_MARKER).exists() or (folder / MANIFEST_NAME).exists():
        return True
    if {p.name for p in folder.iterdir()} <= {CACHE_NAME}:
        return True  # only our cache (made by the reading stage before the first report)
    try:
        import json

        return json.loads((folder / "summary.json").read_text())["generated_by"]["tool"] == "analyze-experiment"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_out_dir(exp: Experiment, out: Path) -> None:
    """Refuse output folders whose replacement would destroy inputs or a user's files.

    The folder is swapped out wholesale, so it must not be the experiment (or hold it), must
    not be inside a run directory (inputs stay untouched), and must be absent, empty, or a
    previous report of ours.
    """
    root = exp.root.resolve()
    out = out.resolve()
    if out == root or root.is_relative_to(out):
        raise UnsafeOutput(f"{out} contains the experiment itself; choose a folder for the report only")
    run_dirs = [root / d for d in exp.runs["run_dir"].dropna()] if len(exp.runs) else []
    for d in run_dirs:
        if out.is_relative_to(d.resolve()):
            raise UnsafeOutput(f"{out} is inside the run directory {d.name}; run directories are inputs")
    if out.is_dir() and any(out.iterdir()) and not _ours(out):
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UnsafeOutput(
            f"{out} is not empty ({shown}) and was not written by analyze-experiment; nothing was changed. "
            "Choose a new or empty folder"
        )
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not writable(existing):
        where = "the experiment directory" if out.parent == root else "the folder"
        raise OutputNotWritable(
            13, f"{where} {existing} is read-only: cannot write the report to {out}; "
            "choose a writable folder with --out DIR"
        )


@dataclass
class ReportResult:
    """What :func:`write_report` produced."""

    out_dir: Path
    analysis: Analysis | None
    summary: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    log_file: Path | None = None
    unchanged: bool = False
    """Nothing changed since the report in ``out_dir`` was written (same inputs, options and
    version): it was left exactly as it was, ``analysis`` is None and ``summary`` is read back."""


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


def _guard(exp: Experiment, what: str, fn: Callable[[], T], default: T) -> T:
    """Run an optional output step; on an internal error record it and carry on."""
    try:
        return fn()
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS or exc.errno in READ_ONLY_ERRNOS:
            raise  # the disk, not the step, failed: the whole report is abandoned (output.py)
        _internal_error(exp, what, exc)
        return default
    except Exception as exc:  # the report must survive a bug in one optional output
        _internal_error(exp, what, exc)
        return default


def _internal_error(exp: Experiment, what: str, exc: Exception) -> None:
    """Record a failed optional output step in Data Quality."""
    last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
    exp.diagnostics.warn(
        None,
        f"internal error while producing {what}: {type(exc).__name__}: {exc}{where}; {what} left out",
        severity="error",
        stage="report",
    )


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed types become strings (Parquet wants one type per column)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            kinds = {type(v) for v in out[c].dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool, int, float}):
                out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))
    return out


def write_tables(exp: Experiment, analysis: Analysis, out: Path) -> list[Path]:
    """``tables/*.csv`` (tidy + statistics) and ``data/*.parquet`` (tidy + statistics: typed,
    for pandas, DuckDB and the cross-experiment catalog, :mod:`analyze_experiment.catalog`)."""
    written = []
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, df in {**exp.tables(), **analysis_tables(analysis)}.items():
        p = out / "tables" / f"{name}.csv"
        df.to_csv(p, index=False)
        written.append(p)
    for name, df in {**exp.tables(), **analysis_tables(analysis)}.items():
        if not len(df.columns):
            continue
        p = out / "data" / f"{name}.parquet"
        parquet_safe(df).to_parquet(p, index=False)
        written.append(p)
    return written


def write_report(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    *,
    options: Options | None = None,
    command: str | None = None,
    formats: Sequence[str] = FORMATS,
    cache: Cache | None = None,
    svg: bool = False,
    progress: Progress = silent,
) -> ReportResult:
    """Analyse ``experiment`` and write the report folder (default ``<experiment>/analysis``).

    Args:
        experiment: from :func:`analyze_experiment.load`.
        out_dir: the output folder; replaced atomically.
        options: statistics settings (confidence level, baselines, margin, …).
        command: the command line, recorded in the report for reproducibility.
        formats: which reports to write: ``md`` and/or ``html``.
        cache: when given, a report whose inputs, options and version are those of the report
            already in ``out_dir`` is not rebuilt (:func:`analyze_experiment.ingest.cache.fingerprint`).
        svg: also write every figure as SVG (``plots/<name>.svg``); PNG only by default.
        progress: ``progress(stage, done, total)`` as figures are drawn (the CLI's bar).

    Returns:
        Paths written, the Analysis and the summary document.
    """
    from analyze_experiment.report.html import render_html
    from analyze_experiment.report.markdown import render_markdown
    from analyze_experiment.report.plots.interactive import interactive_figures
    from analyze_experiment.report.plots.plan import plan_figures
    from analyze_experiment.report.plots.specs import start_plots

    exp = experiment
    diag = exp.diagnostics
    options = options or Options()
    out = Path(out_dir) if out_dir is not None else exp.root / "analysis"
    out = out.resolve()
    check_out_dir(exp, out)
    keep = find_user_files(out)
    for rel in keep.foreign:
        diag.warn(
            out / rel,
            f"{rel} in the report folder was not written by analyze-experiment: carried over into the new "
            "report folder unchanged",
            severity="info",
            stage="output",
        )
    for rel, copy in keep.edited.items():
        diag.warn(
            out / rel,
            f"{rel} was edited since analyze-experiment wrote it: the edited version is kept as {copy}, "
            f"{rel} is written afresh",
            severity="warning",
            stage="output",
        )

    digest = None
    if cache is not None:
        from analyze_experiment.ingest.cache import fingerprint

        digest = fingerprint(exp, {"options": options, "formats": sorted(formats), "out": str(out), "svg": svg})
        if cache.unchanged(out, digest):
            return _unchanged(exp, out, digest)

    analysis = analyze(exp, options)
    diag.act(
        "ANALYSE",
        f"Statistics at {options.confidence:.0%} confidence",
        result=(
            f"{len(analysis.intervals)} intervals, {len(analysis.comparisons)} paired comparisons, "
            f"{len(analysis.findings)} findings"
        ),
    )
    files: list[Path] = []
    log_file = log_path(exp.root)
    if not writable(log_file.parent):
        log_file = out / LOG_NAME
        diag.warn(
            None,
            f"{exp.root} is read-only: {LOG_NAME} is written to the output folder instead",
            severity="info",
            stage="output",
        )
    with atomic_dir(out) as tmp:
        write_text(tmp / OUTPUT_MARKER, "This folder is replaced as a whole by each run of analyze-experiment.\n")
        # figures are drawn in worker processes while this one builds the interactive charts
        specs = _guard(exp, "the plots", lambda: plan_figures(exp, analysis), [])
        job = start_plots(specs, tmp / "plots", diag, svg=svg, progress=progress)
        figures = (_guard(exp, "the interactive charts", lambda: interactive_figures(exp, analysis, specs), {})
                   if "html" in formats else {})
        plots = _guard(exp, "the plots", job.result, [])
        doc = build_doc(exp, analysis, plots, command=command, link_prefix=os.path.relpath(exp.root, out))
        if "md" in formats:
            write_text(tmp / "report.md", render_markdown(doc))
            files.append(out / "report.md")
        if "html" in formats:
            html = _guard(exp, "report.html", lambda: render_html(doc, figures, tmp / "plots"), None)
            if html is not None:
                write_text(tmp / "report.html", html)
                files.append(out / "report.html")
        if analysis.next_design:
            from analyze_experiment.report.build import (
                NEXT_DESIGN_FILE,
                RETROSPECTIVE_FILE,
                retrospective_doc,
            )
            from analyze_experiment.stats.retrospective import yaml_text

            write_text(tmp / RETROSPECTIVE_FILE, render_markdown(retrospective_doc(exp, analysis)))
            reasons = [f for f in analysis.section("retrospective") if f.rule.startswith("next_")]
            write_text(tmp / NEXT_DESIGN_FILE, yaml_text(analysis.next_design, reasons))
            files += [out / RETROSPECTIVE_FILE, out / NEXT_DESIGN_FILE]
        files += [out / p.relative_to(tmp) for p in write_tables(exp, analysis, tmp)]
        files += [out / "plots" / f"{p.name}.png" for p in plots]
        diag.act("WRITE", f"Report written to {out}", details=[str(f.relative_to(out)) for f in files])
        summary = build_summary(exp, analysis, command=command)
        write_text(tmp / "summary.json", dumps(summary))
        files.append(out / "summary.json")
        if log_file.parent == out:
            append_log(tmp / LOG_NAME, diag)
        # looked at again now: a file the user saved while the report was being built is kept too
        late = find_user_files(out)
        keep.foreign += [f for f in late.foreign if f not in keep.foreign]
        keep.edited.update({k: v for k, v in late.edited.items() if k not in keep.edited})
        kept = carry_over(out, tmp, keep)
        write_manifest(tmp, exclude=kept)
        move_cache(out, tmp)
    if log_file.parent != out:
        problem = append_log(log_file, diag)
        if problem:
            diag.warn(None, problem, stage="output")
    if cache is not None and digest is not None:
        cache.remember(out, digest)
    return ReportResult(out_dir=out, analysis=analysis, summary=summary, files=files, log_file=log_file)


def _unchanged(exp: Experiment, out: Path, digest: str) -> ReportResult:
    """The report in ``out`` already answers this run: leave it byte for byte, say so in the log."""
    import json

    diag = exp.diagnostics
    diag.act("UNCHANGED", f"Nothing changed since the report in {out} was written (same inputs, options and "
             "version): statistics and report skipped, the folder is left as it was", result=f"fingerprint {digest[:16]}")
    log_file = log_path(exp.root)
    if writable(log_file.parent):  # never inside the report folder: it stays as it was
        append_log(log_file, diag)
    else:
        log_file = out / LOG_NAME
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    files = [out / rel for rel in sorted(read_manifest(out) or {})]
    return ReportResult(out_dir=out, analysis=None, summary=summary, files=files, log_file=log_file, unchanged=True)
