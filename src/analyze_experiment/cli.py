"""The command line: a thin layer over :func:`load` and :func:`write_report`.

``analyze-experiment [EXPERIMENT_DIR]`` writes the report; ``analyze-experiment export
EXPERIMENT_DIR --format …`` writes tables for papers and other tools.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from analyze_experiment import __version__
from analyze_experiment.metrics import DIRECTIONS, parse_assignments
from analyze_experiment.model import Options

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_STRICT = 3
EXIT_WRITE = 4
"""The report could not be written (disk full, quota, I/O error); the previous one is intact."""

EXPORT_FORMATS = ("csv", "latex", "json", "parquet", "markdown", "wandb")


def _command_line() -> str:
    return "analyze-experiment " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _console(stderr: bool):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _assignments(what: str, allowed):
    """A click callback: ``NAME=VALUE`` items to a dict (a bad item is a usage error)."""

    def parse(ctx, param, value):
        try:
            return parse_assignments(value or (), what, allowed)
        except ValueError as err:
            raise click.BadParameter(str(err)) from err

    return parse


def stats_options(fn):
    """Options shared by the report and export commands."""
    decorators = [
        click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True,
                     help="Confidence level of every interval."),
        click.option("--cluster-by", metavar="KEY", default=None,
                     help="Sample metadata field whose values are clusters (clustered standard errors)."),
        click.option("--baseline", "baselines", multiple=True, metavar="RUN",
                     help="Run to compare every other run against (repeatable; default: the design's control runs)."),
        click.option("--margin", type=click.FloatRange(min=0.0), default=None,
                     help="Equivalence / non-inferiority margin in the metric's own units (0.01 = 1 percentage "
                          "point of an accuracy); default: half the width of the best's CI."),
        click.option("--confirmatory", type=click.Choice(["primary", "all"]), default="primary", show_default=True,
                     help="Which metrics make significance claims: each task's primary metric, or all."),
        click.option("--metric-direction", "metric_directions", multiple=True, metavar="NAME=lower|higher|descriptive",
                     callback=_assignments("--metric-direction", DIRECTIONS),
                     help="Which way a metric is better (repeatable; NAME: metric, scorer/metric or scorer); wins "
                          "over the design's evaluation.metrics and the built-in registry."),
        click.option("--primary-metric", "primary_metrics", multiple=True, metavar="SCORER=METRIC",
                     callback=_assignments("--primary-metric", None),
                     help="The metric that decides 'best' for a scorer (repeatable; default: accuracy for C/I "
                          "scorers, mae for continuous, brier_score for risk scorers)."),
        click.option("--gpu-hour-cost", type=click.FloatRange(min=0.0), default=None, metavar="USD",
                     help="Price of one GPU-hour, to express training cost in dollars."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the permutation and bootstrap procedures."),
        click.option("--include-failed", is_flag=True,
                     help="Keep runs whose training failed (diverged, out of memory, cancelled, timed out) in the "
                          "choice of best and production and in every estimate; the report says so."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def _options(confidence, cluster_by, baselines, margin, gpu_hour_cost, seed, confirmatory="primary",
             metric_directions=None, primary_metrics=None, include_failed=False) -> Options:
    return Options(
        include_failed=include_failed,
        metric_directions=dict(metric_directions or {}),
        primary_metrics=dict(primary_metrics or {}),
        confidence=confidence,
        cluster_by=cluster_by,
        baselines=list(baselines),
        margin=margin,
        confirmatory=confirmatory,
        gpu_hour_cost=gpu_hour_cost,
        seed=seed,
    )


def _load(path: Path, quiet: bool, cache=None):
    """Load with a spinner on an interactive terminal; usage errors exit 2."""
    from analyze_experiment.pipeline import NotADirectory, load

    try:
        if not quiet and sys.stderr.isatty():
            with _console(True).status("Reading the experiment…"):
                return load(path, cache=cache)
        return load(path, cache=cache)
    except NotADirectory as exc:
        raise click.BadParameter(str(exc), param_hint="EXPERIMENT_DIR") from None


def _check_baselines(exp, options: Options) -> None:
    """``--baseline`` must name runs of the experiment: an unknown one would silently drop
    every baseline comparison (issue 11). A usage error listing the runs known."""
    known = [str(r) for r in exp.runs["run"]] if len(exp.runs) else []
    unknown = [b for b in options.baselines if b not in known]
    if unknown:
        from analyze_experiment.textsafe import visible

        names = ", ".join(visible(r) for r in known) or "none"
        raise click.BadParameter(
            f"no run named {', '.join(repr(visible(b)) for b in unknown)} in {exp.root}; the runs are: {names}",
            param_hint="--baseline",
        )


def _print_summary(con, result, exp, elapsed: float) -> None:
    from rich.markup import escape as rich_escape

    from analyze_experiment.report import fmt
    from analyze_experiment.textsafe import visible as v

    con.print(f"[bold]{rich_escape(v(exp.design.name))}[/bold]: {len(exp.runs)} runs, layout {exp.layout}")
    from analyze_experiment.stats.health import marks
    from analyze_experiment.stats.metric_findings import metric_direction, primary_best

    configs = {(f.data.get("task"), f.data.get("scorer")): f for f in result.analysis.findings
               if f.rule == "best_config"}

    failed = result.analysis.failed_runs
    for r in failed.to_dict(orient="records") if len(failed) else []:
        con.print(f"  FAILED {v(r['run'])}: {v(r['mark'])} — {v(str(r.get('evidence') or 'no evidence line'))}"
                  + (f" ({v(r['file'])})" if isinstance(r.get("file"), str) else ""), markup=False)
    if len(failed):
        con.print("  failed runs are included in every estimate (--include-failed)" if result.analysis.include_failed
                  else "  failed runs are never best or production and are left out of every estimate "
                  "(--include-failed keeps them)", markup=False)
    mark = marks(failed)
    metrics = result.analysis.metrics
    for b in primary_best(result.analysis.best, metrics):
        where = "" if fmt.is_missing(b.epoch) else f" (epoch {fmt.epoch(b.epoch)})"
        if b.run in mark:
            where += f" ({mark[b.run]}; best so far)"
        verdict = "clear winner" if b.clear_winner else "no clear winner"
        way = " (lower is better)" if metric_direction(metrics, b.task, b.scorer, b.metric) == "lower" else ""
        cf = configs.get((b.task, b.scorer))
        if cf is not None:  # seed replicates: the configuration is the unit, not its luckiest seed
            d = cf.data
            verdict = "clear winner" if d.get("clear_winner") else "no clear winner"
            con.print(
                f"  best configuration on {v(b.task)}/{v(b.scorer)}: {v(str(d.get('config')))} — {b.metric} mean "
                f"{fmt.ci(d.get('mean'), d.get('ci_low'), d.get('ci_high'))} over {d.get('n_seeds')} seeds{way} — {verdict}",
                markup=False,
            )
            continue
        con.print(
            f"  best on {v(b.task)}/{v(b.scorer)}: {v(b.run)}{where} "
            f"{b.metric}{way} {fmt.ci(b.value, b.ci_low, b.ci_high)} — {verdict}",
            markup=False,
        )
    if not result.analysis.best:
        con.print("  no evaluation results to rank")
    n_warn = len(exp.diagnostics.warnings)
    con.print(f"  {n_warn} warning{'s' if n_warn != 1 else ''} (see Data Quality in the report)")
    con.print(f"Report: {result.out_dir / 'report.md'}", markup=False)
    if (result.out_dir / "report.html").exists():
        con.print(f"        {result.out_dir / 'report.html'}", markup=False)
    con.print(
        f"Dig deeper: {result.out_dir / 'tables'} (CSV), summary.json, or in Python "
        f"analyze_experiment.load({str(exp.root)!r}). Done in {elapsed:.1f} s.",
        markup=False,
    )


def _cache_for(experiment_dir: Path, out_dir: Path | None, cache_dir: Path | None, no_cache: bool):
    """The cache to use: ``--cache-dir``, else ``.cache`` inside the output folder — unless that
    folder holds something that is not ours (the report is then refused, and nothing may be
    created inside it first)."""
    from analyze_experiment.api import _ours
    from analyze_experiment.cache import CACHE_DIR_NAME, Cache

    if no_cache:
        return None
    if cache_dir is not None:
        return Cache(cache_dir.expanduser().resolve())
    out = (out_dir if out_dir is not None else experiment_dir / "analysis").expanduser()
    if not experiment_dir.is_dir() or (out.is_dir() and any(out.iterdir()) and not _ours(out)):
        return None
    if out.exists() and not out.is_dir():
        return None
    from analyze_experiment.runlog import writable

    existing = out.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not writable(existing):  # a read-only experiment stays untouched, cache included
        return None
    return Cache(out.resolve() / CACHE_DIR_NAME)


def _report_once(experiment_dir, out_dir, fmts, as_json, quiet, options, cache_dir=None,
                 no_cache=False) -> tuple[int, int]:
    """Load, analyse, write and print once; return (exit status, warnings that are not info).

    Usage errors raise ``click.BadParameter``. When no report comes of it, an output folder
    that did not exist before is removed again (reading may have made it for the cache).
    """
    cache = _cache_for(experiment_dir, out_dir, cache_dir, no_cache)
    made = None
    if cache is not None and cache_dir is None and not cache.folder.parent.exists():
        made = cache.folder.parent
    code = EXIT_USAGE
    try:
        code, n = _report_cached(experiment_dir, out_dir, fmts, as_json, quiet, options, cache)
        return code, n
    finally:
        if made is not None and code != EXIT_OK and made.is_dir():
            from analyze_experiment.cache import CACHE_DIR_NAME

            if {p.name for p in made.iterdir()} <= {CACHE_DIR_NAME}:
                import shutil

                shutil.rmtree(made, ignore_errors=True)


def _report_cached(experiment_dir, out_dir, fmts, as_json, quiet, options, cache) -> tuple[int, int]:
    from analyze_experiment.api import UnsafeOutput, write_report
    from analyze_experiment.output import OutputError, OutputNotWritable

    start = time.perf_counter()
    exp = _load(experiment_dir, quiet, cache)
    con = _console(stderr=as_json)
    if not exp.analysable:
        msg = (
            f"Nothing to analyse in {exp.root}: no training output or evaluation logs were found "
            f"({len(exp.runs)} runs known, {len(exp.diagnostics.warnings)} warnings)."
        )
        from analyze_experiment.textsafe import visible

        for w in exp.diagnostics.warnings[:10]:
            msg += f"\n  {visible(w.file or '-')}: {visible(w.message)}"
        click.echo(msg, err=True)
        return EXIT_NOTHING, 0
    _check_baselines(exp, options)
    try:
        result = write_report(exp, out_dir, options=options, command=_command_line(), formats=fmts, cache=cache)
    except UnsafeOutput as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    except OutputError as exc:  # one line, no traceback: the user can act on it
        click.echo(f"Error: {exc.strerror or exc}", err=True)
        return (EXIT_USAGE if isinstance(exc, OutputNotWritable) else EXIT_WRITE), 0
    if not quiet:
        from analyze_experiment.textsafe import visible

        for w in exp.diagnostics.warnings:
            if w.severity != "info":
                click.echo(f"warning: {visible(w.file or '-')}: {visible(w.message)}", err=True)
        if result.unchanged:
            con.print(f"Nothing changed since the last report (same inputs, options and version): "
                      f"{result.out_dir / 'report.md'} left as it was. Done in {time.perf_counter() - start:.1f} s.",
                      markup=False)
        else:
            _print_summary(con, result, exp, time.perf_counter() - start)
    if as_json:
        from analyze_experiment.summary import dumps

        click.echo(dumps(result.summary), nl=False)
    from analyze_experiment.stats.health import failed_runs

    n_failed = len(failed_runs(exp.runs))  # from the runs table: the same with an unchanged report
    return EXIT_OK, sum(w.severity != "info" for w in exp.diagnostics.warnings) + n_failed


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Export tables for a paper: analyze-experiment export --help\n\n"
    "Example: analyze-experiment ~/scratch/ck-projects/cap/rank_sweep --out /tmp/rank_report",
)
@click.argument("experiment_dir", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: EXPERIMENT_DIR/analysis). Replaced atomically.")
@click.option("--format", "formats", type=click.Choice(["md", "html", "both"]), default="both",
              show_default=True, help="Which report to write.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--strict", is_flag=True,
              help="Exit with status 3 when any input produced a warning or any run's training failed (for CI).")
@click.option("--watch", is_flag=True,
              help="Keep running: re-analyse whenever the experiment's files change (Ctrl-C stops).")
@click.option("--no-cache", is_flag=True,
              help="Read every input again and rebuild the report even when nothing changed.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where parsed inputs are kept between runs (default: OUT/.cache).")
@stats_options
@click.version_option(__version__, "--version", prog_name="analyze-experiment")
def analyze(experiment_dir, out_dir, formats, as_json, quiet, strict, watch, no_cache, cache_dir,
            **stat_opts) -> None:
    """Analyse a fine-tuning sweep and write its report.

    EXPERIMENT_DIR holds experiment_summary.md or .yaml and one folder per run (default:
    the current directory). Writes report.md, report.html, plots/, tables/, data/ and
    summary.json to EXPERIMENT_DIR/analysis, and appends to analyze-experiment.log.

    Exit status: 0 report written (warnings allowed), 1 nothing analysable, 2 usage
    error (including a read-only destination), 3 warnings or failed runs with --strict, 4 the report
    could not be written (disk full; the previous report is left intact).
    """
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise click.BadParameter(f"{out_dir} exists and is not a folder", param_hint="--out")
    fmts = ("md", "html") if formats == "both" else (formats,)
    options = _options(**stat_opts)
    if watch:
        _watch(experiment_dir, out_dir, fmts, quiet, options, cache_dir, no_cache)
        return
    code, n_warnings = _report_once(experiment_dir, out_dir, fmts, as_json, quiet, options, cache_dir, no_cache)
    if code == EXIT_OK and strict and n_warnings:
        click.echo(f"--strict: {n_warnings} warnings or failed runs", err=True)
        sys.exit(EXIT_STRICT)
    if code != EXIT_OK:
        sys.exit(code)


def _watch(experiment_dir: Path, out_dir: Path | None, fmts, quiet: bool, options: Options,
           cache_dir: Path | None = None, no_cache: bool = False) -> None:
    """Re-run the analysis whenever inputs change (a sweep still running)."""
    from analyze_experiment.watch import watch

    root = experiment_dir.resolve()
    out = (out_dir or root / "analysis").resolve()

    def once() -> None:
        code, _ = _report_once(experiment_dir, out_dir, fmts, False, quiet, options, cache_dir, no_cache)
        if code == EXIT_NOTHING:
            click.echo("Nothing to analyse yet; waiting for files to appear.", err=True)
        click.echo(f"[{time.strftime('%H:%M:%S')}] watching {root} for changes (Ctrl-C to stop)", err=True)

    try:
        watch(root, once, exclude=(out, *((cache_dir.expanduser().resolve(),) if cache_dir else ())))
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True, help="Output format.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Folder to write into (default: stdout; required for parquet).")
@click.option("--metric", default=None, help="Keep only this metric (e.g. accuracy).")
@click.option("--task", default=None, help="Keep only this task.")
@click.option("--runs", default=None, metavar="A,B,…", help="Keep only these runs (comma-separated).")
@click.option("--project", default=None, help="W&B project of --format wandb (default: the experiment's name).")
@stats_options
def export(experiment_dir, fmt, out, metric, task, runs, project, **stat_opts) -> None:
    """Export the tables as CSV, LaTeX, JSON, Parquet or markdown, or the runs as offline W&B runs.

    Example: analyze-experiment export path/to/experiment --format latex --task capitalization
    """
    from analyze_experiment import stats
    from analyze_experiment.export import export_tables

    if fmt == "parquet" and out is None:
        raise click.BadParameter("parquet needs --out FOLDER", param_hint="--out")
    exp = _load(experiment_dir, quiet=True)
    if not exp.analysable:
        click.echo(f"Nothing to export from {exp.root}: no training output or evaluation logs.", err=True)
        sys.exit(EXIT_NOTHING)
    options = _options(**stat_opts)
    _check_baselines(exp, options)
    analysis = stats.analyze(exp, options)
    run_list = [r.strip() for r in runs.split(",") if r.strip()] if runs else None
    if fmt == "wandb":  # offline W&B runs under OUT/wandb/ (default: the experiment directory)
        from analyze_experiment.export_wandb import WandbExportError, export_wandb

        try:
            result = export_wandb(exp, analysis, out or exp.root, project=project, metric=metric, task=task,
                                  runs=run_list)
        except WandbExportError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        result = export_tables(exp, analysis, fmt, out, metric=metric, task=task, runs=run_list)
    if isinstance(result, str):
        click.echo(result, nl=not result.endswith("\n"))
    else:
        for p in result:
            click.echo(str(p), err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment_dir", type=click.Path(path_type=Path))
@click.argument("kind", metavar="KIND")
@click.option("--task", default=None, help="Task of an evaluation figure (default: the first).")
@click.option("--metric", default=None, help="Metric of an evaluation figure (default: the task's primary metric).")
@click.option("--runs", default=None, metavar="A,B,…", help="Draw only these runs (comma-separated).")
@click.option("--style", type=click.Choice(["paper", "paper-wide", "talk"]), default="paper", show_default=True,
              help="paper: one column (3.5 in); paper-wide: two columns (7 in); talk: a 16:9 slide.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="File to write, .pdf, .png or .svg (default: KIND-STYLE.pdf in the current folder).")
@stats_options
def plot(experiment_dir, kind, task, metric, runs, style, out, **stat_opts) -> None:
    """Draw one of the report's figures for a paper or a talk.

    KIND is one of loss, validation, lr, throughput, gpu, final, heatmap, samples, pareto,
    effects. The figure shows the report's own numbers (statistics over the whole sweep) in
    a publication size, with embedded fonts and colour-blind-safe colours.

    Example: analyze-experiment plot path/to/experiment final --style talk --out final.pdf
    """
    from analyze_experiment import stats
    from analyze_experiment.plots.presentation import KINDS, PlotRequestError, draw, save

    if kind not in KINDS:
        raise click.BadParameter(f"{kind!r} is not a figure kind; one of: {', '.join(KINDS)}", param_hint="KIND")
    exp = _load(experiment_dir, quiet=True)
    if not exp.analysable:
        click.echo(f"Nothing to plot from {exp.root}: no training output or evaluation logs.", err=True)
        sys.exit(EXIT_NOTHING)
    options = _options(**stat_opts)
    _check_baselines(exp, options)
    analysis = stats.analyze(exp, options)
    run_list = [r.strip() for r in runs.split(",") if r.strip()] if runs else None
    target = out if out is not None else Path.cwd() / f"{kind}-{style}.pdf"
    try:
        fig = draw(exp, analysis, kind, task=task, metric=metric, runs=run_list, style=style)
        written = save(fig, target, style)
    except PlotRequestError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        click.echo(f"Error: could not write {target}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_WRITE)
    click.echo(str(written))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``export`` or ``plot`` as first word selects that command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "export":
        export.main(args[1:], prog_name="analyze-experiment export")
    elif args and args[0] == "plot":
        plot.main(args[1:], prog_name="analyze-experiment plot")
    else:
        analyze.main(args, prog_name="analyze-experiment")
