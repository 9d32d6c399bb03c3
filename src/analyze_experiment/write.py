"""``write_report(experiment, out_dir)``: statistics, plots, reports, tables, summary.json.

Everything is built in a temporary folder and swapped in atomically (:mod:`output`), so
an interrupted run leaves the previous report intact. A failure of one optional output
(a plot, the HTML page) is recorded as an error in Data Quality and the rest is written:
the report must survive anything the data throw at it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment, Options
from analyze_experiment.ingest.cache import Cache
from analyze_experiment.output import (
    OUTPUT_MARKER,
    READ_ONLY_ERRNOS,
    WRITE_ERRNOS,
    CarryOver,
    atomic_dir,
    carry_over,
    check_out_dir,
    find_user_files,
    move_cache,
    read_manifest,
    write_manifest,
    write_text,
)
from analyze_experiment.progress import Progress, silent
from analyze_experiment.runlog import LOG_NAME, append_log, log_path, writable

T = TypeVar("T")

FORMATS = ("md", "html")

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
    exp = experiment
    options = options or Options()
    out = (Path(out_dir) if out_dir is not None else exp.root / "analysis").resolve()
    check_out_dir(exp, out)
    keep = find_user_files(out)
    _announce_user_files(exp, out, keep)

    digest = None
    if cache is not None:
        from analyze_experiment.ingest.cache import fingerprint

        digest = fingerprint(exp, {"options": options, "formats": sorted(formats), "out": str(out), "svg": svg})
        if cache.unchanged(out, digest):
            return _unchanged(exp, out, digest)

    # Imported here, not at the top: an unchanged report (above) needs neither the statistics
    # nor the renderers, and importing them (scipy, statsmodels, matplotlib) is most of its cost.
    from analyze_experiment.report.summary_json import build_summary, dumps

    with _drawing_processes(formats, svg, cache) as draw_pool:
        analysis = _analyse(exp, options)
        log_file = _log_destination(exp, out)
        with atomic_dir(out) as tmp:
            write_text(tmp / OUTPUT_MARKER, "This folder is replaced as a whole by each run of analyze-experiment.\n")
            files = _write_documents(exp, analysis, tmp, out, command=command, formats=formats, svg=svg,
                                     progress=progress, cache=cache, pool=draw_pool)
            summary = build_summary(exp, analysis, command=command)
            write_text(tmp / "summary.json", dumps(summary))
            files.append(out / "summary.json")
            if log_file.parent == out:
                append_log(tmp / LOG_NAME, exp.diagnostics)
            _carry_user_files(out, tmp, keep)
            move_cache(out, tmp)
    if log_file.parent != out:
        problem = append_log(log_file, exp.diagnostics)
        if problem:
            exp.diagnostics.warn(None, problem, stage="output")
    if cache is not None and digest is not None:
        cache.remember(out, digest)
    return ReportResult(out_dir=out, analysis=analysis, summary=summary, files=files, log_file=log_file)


def _announce_user_files(exp: Experiment, out: Path, keep: CarryOver) -> None:
    """Say which files in the old report folder are the user's: they survive the swap."""
    for rel in keep.foreign:
        exp.diagnostics.warn(
            out / rel,
            f"{rel} in the report folder was not written by analyze-experiment: carried over into the new "
            "report folder unchanged",
            severity="info",
            stage="output",
        )
    for rel, copy in keep.edited.items():
        exp.diagnostics.warn(
            out / rel,
            f"{rel} was edited since analyze-experiment wrote it: the edited version is kept as {copy}, "
            f"{rel} is written afresh",
            severity="warning",
            stage="output",
        )


def _analyse(exp: Experiment, options: Options) -> Analysis:
    from analyze_experiment.conclude import analyze  # here: see write_report

    analysis = analyze(exp, options)
    exp.diagnostics.act(
        "ANALYSE",
        f"Statistics at {options.confidence:.0%} confidence",
        result=(
            f"{len(analysis.intervals)} intervals, {len(analysis.comparisons)} paired comparisons, "
            f"{len(analysis.findings)} findings"
        ),
    )
    return analysis


def _drawing_processes(formats: Sequence[str], svg: bool, cache: Cache | None) -> AbstractContextManager[Any]:
    """The figures' worker processes, started before the statistics when this report draws
    every figure: PNGs are wanted (report.md, ``--svg``) and the cache holds no figure (a
    first report, or ``--no-cache``). They import the drawing libraries on the idle cores
    while the statistics run (:func:`~analyze_experiment.report.plots.specs.drawing_pool`).
    Otherwise ``None``: the figures start their processes when they know what to draw."""
    if "md" not in formats and not svg:
        return nullcontext(None)
    if cache is not None:
        from analyze_experiment.report.plots.figure_cache import has_figures

        if has_figures(cache):
            return nullcontext(None)
    from analyze_experiment.report.plots.specs import drawing_pool

    return drawing_pool()


def _log_destination(exp: Experiment, out: Path) -> Path:
    """``analyze-experiment.log`` beside the experiment, or in the report folder when the
    experiment is read-only (inputs are never written; the log must still exist)."""
    log_file = log_path(exp.root)
    if writable(log_file.parent):
        return log_file
    exp.diagnostics.warn(
        None,
        f"{exp.root} is read-only: {LOG_NAME} is written to the output folder instead",
        severity="info",
        stage="output",
    )
    return out / LOG_NAME


def _write_documents(exp: Experiment, analysis: Analysis, tmp: Path, out: Path, *, command: str | None,
                     formats: Sequence[str], svg: bool, progress: Progress, cache: Cache | None = None,
                     pool: Executor | None = None) -> list[Path]:
    """Figures, report.md/.html, the retrospective and the tables into the staging folder
    ``tmp``; returns their final paths under ``out``. A failing optional part (a figure, the
    HTML page) is recorded in Data Quality and left out; the rest is written. With ``cache``,
    a figure whose input did not change is copied from it rather than drawn."""
    from analyze_experiment.export import write_tables
    from analyze_experiment.report.build import build_doc
    from analyze_experiment.report.figure_scope import leave_to_html, secondary_figures
    from analyze_experiment.report.html import render_html
    from analyze_experiment.report.markdown import render_markdown
    from analyze_experiment.report.plots.interactive import interactive_figures
    from analyze_experiment.report.plots.plan import plan_figures
    from analyze_experiment.report.plots.specs import start_plots

    files: list[Path] = []
    specs = _guard(exp, "the plots", lambda: plan_figures(exp, analysis), [])
    # report.md shows the primary metric's figures; the others' are report.html's charts only
    hidden = _guard(exp, "the plots", lambda: secondary_figures(specs, analysis), {}) if "md" in formats else {}
    if "md" in formats or svg:  # PNGs drawn in worker processes while this one builds the charts
        job = start_plots(specs, tmp / "plots", exp.diagnostics, svg=svg, progress=progress,
                          shown={s.interactive or s.name for s in specs if s.name in hidden}, cache=cache, pool=pool)
        figures = (_guard(exp, "the interactive charts", lambda: interactive_figures(exp, analysis, specs), {})
                   if "html" in formats else {})
    else:  # report.html alone: a PNG only for the figures it has no interactive chart of
        figures = _guard(exp, "the interactive charts", lambda: interactive_figures(exp, analysis, specs), {})
        job = start_plots(specs, tmp / "plots", exp.diagnostics, progress=progress, shown=set(figures), cache=cache,
                          pool=pool)
    link_prefix = os.path.relpath(exp.root, out)
    # a figure with nothing to show adds a note once the figures are in: no point building early
    early = (_documents_before_figures(exp, analysis, job.planned(), hidden, figures, formats, command, link_prefix)
             if all(s.skip is None for s in specs) else None)
    # the retrospective and the tables need no figure (and never add a warning): written while they are drawn
    later = _write_retrospective(exp, analysis, tmp, out)
    later += [out / p.relative_to(tmp) for p in write_tables(exp, analysis, tmp)]
    warned = len(exp.diagnostics.warnings)
    plots = _guard(exp, "the plots", job.result, [])
    if early is not None and len(exp.diagnostics.warnings) == warned == early.warned and \
            [p.name for p in plots] == [p.name for p in job.planned()]:
        md_text, html_text, doc = early.markdown, early.html, early.doc
    else:  # a figure failed or was skipped (Data Quality says so): the documents are built again
        md_text = html_text = None
        doc = build_doc(exp, analysis, plots, command=command, link_prefix=link_prefix)
        if hidden:
            leave_to_html(doc, hidden, analysis, html="html" in formats)
    if "md" in formats:
        write_text(tmp / "report.md", md_text if md_text is not None else render_markdown(doc))
        files.append(out / "report.md")
    if "html" in formats:
        html = html_text if html_text is not None else \
            _guard(exp, "report.html", lambda: render_html(doc, figures, tmp / "plots"), None)
        if html is not None:
            write_text(tmp / "report.html", html)
            files.append(out / "report.html")
    files += later
    files += [out / "plots" / f"{p.name}.png" for p in plots if (tmp / "plots" / f"{p.name}.png").is_file()]
    exp.diagnostics.act("WRITE", f"Report written to {out}", details=[str(f.relative_to(out)) for f in files])
    return files


@dataclass
class _Early:
    """The documents built while the figures are drawn, on the assumption that every planned
    figure is written (:func:`_documents_before_figures`)."""

    doc: Any
    markdown: str | None
    html: str | None
    """None when the page embeds a PNG not drawn yet: rendered once the figures are in."""
    warned: int
    """How many warnings the Data Quality section was built from."""


def _documents_before_figures(exp: Experiment, analysis: Analysis, planned: Sequence[Any],
                              hidden: Mapping[str, Any], figures: Mapping[str, Any], formats: Sequence[str],
                              command: str | None, link_prefix: str) -> _Early | None:
    """report.md and report.html built while the worker processes draw, as they will read if
    every planned figure is written — which the caller checks once the figures are in (same
    figures, no new warning), building them again otherwise. None when building failed here:
    the caller then builds them the plain way, where a failure is reported as usual. The page
    waits for the figures only when it embeds a PNG (a figure without an interactive chart)."""
    from analyze_experiment.report.build import build_doc
    from analyze_experiment.report.figure_scope import leave_to_html
    from analyze_experiment.report.html import render_html
    from analyze_experiment.report.markdown import render_markdown

    warned = len(exp.diagnostics.warnings)
    try:
        doc = build_doc(exp, analysis, planned, command=command, link_prefix=link_prefix)
        if hidden:
            leave_to_html(doc, hidden, analysis, html="html" in formats)
        md = render_markdown(doc) if "md" in formats else None
        charted = all(p.interactive is not None and figures.get(p.interactive) is not None for p in planned)
        html = render_html(doc, dict(figures), None) if "html" in formats and charted else None
    except Exception:  # built again after the figures, where the error is reported as usual
        return None
    if len(exp.diagnostics.warnings) != warned:
        return None
    return _Early(doc, md, html, warned)


def _write_retrospective(exp: Experiment, analysis: Analysis, tmp: Path, out: Path) -> list[Path]:
    """retrospective.md and the proposed next design, when the analysis proposes one."""
    if not analysis.next_design:
        return []
    from analyze_experiment.report.build import NEXT_DESIGN_FILE, RETROSPECTIVE_FILE, retrospective_doc
    from analyze_experiment.report.markdown import render_markdown
    from analyze_experiment.report.retrospective import yaml_text

    write_text(tmp / RETROSPECTIVE_FILE, render_markdown(retrospective_doc(exp, analysis)))
    reasons = [f for f in analysis.section("retrospective") if f.rule.startswith("next_")]
    write_text(tmp / NEXT_DESIGN_FILE, yaml_text(analysis.next_design, reasons))
    return [out / RETROSPECTIVE_FILE, out / NEXT_DESIGN_FILE]


def _carry_user_files(out: Path, tmp: Path, keep: CarryOver) -> None:
    """Carry the user's files into the new folder (looked at again now: a file saved while
    the report was being built is kept too) and write the manifest of what is ours."""
    late = find_user_files(out)
    keep.foreign += [f for f in late.foreign if f not in keep.foreign]
    keep.edited.update({k: v for k, v in late.edited.items() if k not in keep.edited})
    kept = carry_over(out, tmp, keep)
    write_manifest(tmp, exclude=kept)


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
