"""The command line: a thin layer over :func:`load` and :func:`write_report`.

``analyze-experiment [EXPERIMENT_DIR]`` writes the report; ``analyze-experiment export
EXPERIMENT_DIR --format …`` writes tables for papers and other tools.
"""

from __future__ import annotations

import gc
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from analyze_experiment import __version__
from analyze_experiment.metrics import DIRECTIONS, parse_assignments

if TYPE_CHECKING:  # experiment imports pandas (0.3 s): --help and a usage error need none of it
    from analyze_experiment.experiment import Options

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_STRICT = 3
EXIT_WRITE = 4
"""The report could not be written (disk full, quota, I/O error); the previous one is intact."""

EXPORT_FORMATS = ("csv", "latex", "json", "parquet", "markdown", "md", "wandb")


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
        click.option("--reference", "references", multiple=True, metavar="NAME=VALUE",
                     help="A number to compare against, e.g. \"Llama-3.2-1B paper=0.71\" (repeatable; "
                          "optional ,n=N ,ci=LOW:HIGH ,task=T ,metric=M ,source=S)."),
        click.option("--include-failed", is_flag=True,
                     help="Keep runs whose training failed (diverged, out of memory, cancelled, timed out) in the "
                          "choice of best and production and in every estimate; the report says so."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def _references(texts) -> list:
    from analyze_experiment.stats.references import ReferenceError_, parse_reference

    out = []
    for t in texts or ():
        try:
            out.append(parse_reference(t))
        except ReferenceError_ as err:
            raise click.BadParameter(str(err), param_hint="--reference") from None
    return out


def _options(confidence, cluster_by, baselines, margin, gpu_hour_cost, seed, confirmatory="primary",
             metric_directions=None, primary_metrics=None, references=(), include_failed=False) -> Options:
    from analyze_experiment.experiment import Options

    return Options(
        include_failed=include_failed,
        references=_references(references),
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


PROGRESS_AFTER_S = 2.0
"""The progress bar appears only once a run has taken this long (a quick run stays quiet)."""


class _Bar:
    """``progress(stage, done, total)`` drawn as a rich progress bar on stderr, with files/s;
    shown from :data:`PROGRESS_AFTER_S` on, removed when the run ends."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.bar = None
        self.tasks: dict[str, tuple[int, float]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.start < PROGRESS_AFTER_S:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=_console(True),
                                transient=True)
            self.bar.start()
        if stage not in self.tasks:
            self.tasks[stage] = (self.bar.add_task(stage, total=total, rate=""), time.perf_counter())
        task, t0 = self.tasks[stage]
        rate = done / max(1e-9, time.perf_counter() - t0)
        self.bar.update(task, completed=done, total=total, rate=f"{rate:.1f}/s")

    def close(self) -> None:
        """Remove the bar (before the summary is printed); safe to call twice."""
        if self.bar is not None:
            self.bar.stop()
        self.bar, self.enabled = None, False


def _load(path: Path, quiet: bool, cache=None, executor=None, progress=None):
    """Load, drawing a progress bar on an interactive terminal; usage errors exit 2."""
    from analyze_experiment.executor import LOCAL, ExecutorError
    from analyze_experiment.ingest.load import NotADirectory, load
    from analyze_experiment.progress import silent

    owner = _PROCESS["owned"]
    if owner and gc.get_freeze_count():  # --watch: the previous experiment, frozen below, is collected now
        gc.unfreeze()
        gc.collect()
    try:
        exp = load(path, cache=cache, executor=executor or LOCAL, progress=progress or silent)
    except NotADirectory as exc:
        raise click.BadParameter(str(exc), param_hint="EXPERIMENT_DIR") from None
    except ExecutorError as exc:
        raise click.UsageError(str(exc)) from None
    # The experiment's tables and records live until the command ends: frozen, the collector's
    # full passes during the statistics and the report never walk them again (on a 100-run
    # sweep read from the cache ~0.15 s of CPU), and forked drawing processes never touch
    # (and so never copy) their pages. Only the console command, which owns its process, makes
    # this choice: called from Python (a test, a notebook) the caller's collector is left alone.
    if owner:
        gc.freeze()
    return exp


_PROCESS = {"owned": False}
"""Whether this process is the console command (:func:`main` without arguments)."""


def _analysed(experiment_dir: Path, verb: str, stat_opts: dict):
    """Load and analyse for a subcommand (export, plot, show, compare): exit 1 when there is
    nothing to ``verb``, usage errors for bad options or baselines. Returns (experiment, analysis)."""
    from analyze_experiment.conclude import analyze

    exp = _load(experiment_dir, quiet=True)
    if not exp.analysable:
        click.echo(f"Nothing to {verb} in {exp.root}: no training output or evaluation logs.", err=True)
        sys.exit(EXIT_NOTHING)
    options = _options(**stat_opts)
    _check_baselines(exp, options)
    return exp, analyze(exp, options)


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

    from analyze_experiment import formatting as fmt
    from analyze_experiment.textsafe import visible as v

    con.print(f"[bold]{rich_escape(v(exp.design.name))}[/bold]: {len(exp.runs)} runs, layout {exp.layout}")
    from analyze_experiment.report.metric_findings import metric_direction, primary_best
    from analyze_experiment.stats.health import marks

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
    bottom = [f for f in result.analysis.section("bottom_line") if f.rule not in ("bottom_none", "bottom_failed")]
    if bottom:  # the report's bottom line (failed runs are listed above)
        con.print("Bottom line:", markup=False)
        for f in bottom:
            con.print(f"  {v(f.text)}", markup=False)
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
    from analyze_experiment.ingest.cache import CACHE_DIR_NAME, Cache
    from analyze_experiment.output import is_previous_report

    if no_cache:
        return None
    if cache_dir is not None:
        return Cache(cache_dir.expanduser().resolve())
    out = (out_dir if out_dir is not None else experiment_dir / "analysis").expanduser()
    if not experiment_dir.is_dir() or (out.is_dir() and any(out.iterdir()) and not is_previous_report(out)):
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
                 no_cache=False, executor=None, svg=False) -> tuple[int, int]:
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
        code, n = _report_cached(experiment_dir, out_dir, fmts, as_json, quiet, options, cache, executor, svg)
        return code, n
    finally:
        if made is not None and code != EXIT_OK and made.is_dir():
            from analyze_experiment.ingest.cache import CACHE_DIR_NAME

            if {p.name for p in made.iterdir()} <= {CACHE_DIR_NAME}:
                import shutil

                shutil.rmtree(made, ignore_errors=True)


def _report_cached(experiment_dir, out_dir, fmts, as_json, quiet, options, cache, executor=None, svg=False
                   ) -> tuple[int, int]:
    start = time.perf_counter()
    bar = _Bar(enabled=not quiet and not as_json and sys.stderr.isatty())
    try:
        return _report_with(experiment_dir, out_dir, fmts, as_json, quiet, options, cache, executor, svg, bar, start)
    finally:
        bar.close()


def _report_with(experiment_dir, out_dir, fmts, as_json, quiet, options, cache, executor, svg, bar, start
                 ) -> tuple[int, int]:
    from analyze_experiment.output import OutputError, OutputNotWritable, UnsafeOutput
    from analyze_experiment.write import write_report

    exp = _load(experiment_dir, quiet, cache, executor, bar)
    if not exp.analysable:
        bar.close()
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
        result = write_report(exp, out_dir, options=options, command=_command_line(), formats=fmts, cache=cache,
                              svg=svg, progress=bar)
    except UnsafeOutput as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    except OutputError as exc:  # one line, no traceback: the user can act on it
        click.echo(f"Error: {exc.strerror or exc}", err=True)
        return (EXIT_USAGE if isinstance(exc, OutputNotWritable) else EXIT_WRITE), 0
    finally:
        bar.close()
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
        from analyze_experiment.report.summary_json import dumps

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
@click.option("--svg", is_flag=True, help="Also write every figure as SVG (plots/*.svg); PNG only by default.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where input files are parsed: local processes, or a Dask cluster (same results).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Dask scheduler of --executor dask (e.g. tcp://host:8786; default: a local Dask cluster).")
@stats_options
@click.version_option(__version__, "--version", prog_name="analyze-experiment")
def analyze(experiment_dir, out_dir, formats, as_json, quiet, strict, watch, no_cache, cache_dir, svg, executor,
            scheduler, **stat_opts) -> None:
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
    from analyze_experiment.executor import ExecutorSpec

    if scheduler and executor != "dask":
        raise click.BadParameter("--scheduler needs --executor dask", param_hint="--scheduler")
    spec = ExecutorSpec(executor, scheduler)
    if watch:
        _watch(experiment_dir, out_dir, fmts, quiet, options, cache_dir, no_cache, spec, svg)
        return
    code, n_warnings = _report_once(experiment_dir, out_dir, fmts, as_json, quiet, options, cache_dir, no_cache,
                                    spec, svg)
    if code == EXIT_OK and strict and n_warnings:
        click.echo(f"--strict: {n_warnings} warnings or failed runs", err=True)
        sys.exit(EXIT_STRICT)
    if code != EXIT_OK:
        sys.exit(code)


def _watch(experiment_dir: Path, out_dir: Path | None, fmts, quiet: bool, options: Options,
           cache_dir: Path | None = None, no_cache: bool = False, executor=None, svg: bool = False) -> None:
    """Re-run the analysis whenever inputs change (a sweep still running)."""
    from analyze_experiment.ingest.watch import watch

    root = experiment_dir.resolve()
    out = (out_dir or root / "analysis").resolve()

    def once() -> None:
        code, _ = _report_once(experiment_dir, out_dir, fmts, False, quiet, options, cache_dir, no_cache, executor,
                               svg)
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
@click.option("--table", default=None, metavar="NAME",
              help="Only this table (needed for --format csv to stdout: one CSV per stream).")
@stats_options
def export(experiment_dir, fmt, out, metric, task, runs, project, table, **stat_opts) -> None:
    """Export the tables as CSV, LaTeX, JSON, Parquet or markdown, or the runs as offline W&B runs.

    Example: analyze-experiment export path/to/experiment --format latex --task capitalization
    """
    from analyze_experiment.export import export_tables

    if fmt == "parquet" and out is None:
        raise click.BadParameter("parquet needs --out FOLDER", param_hint="--out")
    exp, analysis = _analysed(experiment_dir, "export", stat_opts)
    run_list = [r.strip() for r in runs.split(",") if r.strip()] if runs else None
    if fmt == "wandb":  # offline W&B runs under OUT/wandb/ (default: the experiment directory)
        from analyze_experiment.export_wandb import WandbExportError, export_wandb

        try:
            result = export_wandb(exp, analysis, out or exp.root, project=project, metric=metric, task=task,
                                  runs=run_list)
        except WandbExportError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        from analyze_experiment.export import ExportError

        try:
            result = export_tables(exp, analysis, fmt, out, metric=metric, task=task, runs=run_list, table=table)
        except ExportError as exc:
            raise click.UsageError(str(exc)) from None
    if isinstance(result, str):
        click.echo(result, nl=not result.endswith("\n"))
    else:
        for p in result:
            click.echo(str(p), err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment_dir", type=click.Path(path_type=Path))
@click.argument("kind", metavar="KIND")
@click.option("--task", default=None, help="Task of an evaluation figure (default: the report's primary one).")
@click.option("--scorer", default=None, help="Scorer of an evaluation figure (default: the primary metric's).")
@click.option("--metric", default=None, help="Metric of an evaluation figure (default: the task's primary metric).")
@click.option("--runs", default=None, metavar="A,B,…", help="Draw only these runs (comma-separated).")
@click.option("--style", type=click.Choice(["paper", "paper-wide", "talk"]), default="paper", show_default=True,
              help="paper: one column (3.5 in); paper-wide: two columns (7 in); talk: a 16:9 slide.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="File to write, .pdf, .png or .svg (default: KIND-STYLE.pdf in the current folder).")
@stats_options
def plot(experiment_dir, kind, task, scorer, metric, runs, style, out, **stat_opts) -> None:
    """Draw one of the report's figures for a paper or a talk.

    KIND is one of loss, validation, lr, throughput, gpu, final, heatmap, samples, pareto,
    effects. The figure shows the report's own numbers (statistics over the whole sweep) in
    a publication size, with embedded fonts and colour-blind-safe colours.

    Example: analyze-experiment plot path/to/experiment final --style talk --out final.pdf
    """
    from analyze_experiment.report.plots.presentation import KINDS, PlotRequestError, draw, save

    if kind not in KINDS:
        raise click.BadParameter(f"{kind!r} is not a figure kind; one of: {', '.join(KINDS)}", param_hint="KIND")
    exp, analysis = _analysed(experiment_dir, "plot", stat_opts)
    run_list = [r.strip() for r in runs.split(",") if r.strip()] if runs else None
    target = out if out is not None else Path.cwd() / f"{kind}-{style}.pdf"
    try:
        fig = draw(exp, analysis, kind, task=task, scorer=scorer, metric=metric, runs=run_list, style=style)
        written = save(fig, target, style)
    except PlotRequestError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        click.echo(f"Error: could not write {target}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_WRITE)
    click.echo(str(written))


_CATALOG_OPTION = click.option(
    "--catalog", type=click.Path(path_type=Path), default=None,
    help="Catalog file (default: $ANALYZE_EXPERIMENT_CATALOG, else ~/.local/share/analyze-experiment/catalog.duckdb).")


@click.command("index", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@_CATALOG_OPTION
def index_cmd(roots, catalog) -> None:
    """Record every analysed experiment under ROOT... in the catalog, for `query`.

    An experiment is a folder holding analysis/summary.json (run analyze-experiment on it
    first). Indexing again refreshes it; experiments under ROOT whose report has gone are
    dropped.

    Example: analyze-experiment index ~/scratch/ck-projects
    """
    from analyze_experiment.catalog import CatalogError, default_catalog, index

    try:
        res = index(roots, catalog)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    for path, why in res.skipped:
        click.echo(f"warning: {path}: {why}", err=True)
    click.echo(f"{len(res.added)} added, {len(res.updated)} refreshed, {len(res.removed)} removed "
               f"({catalog or default_catalog()})", err=True)


@click.command("query", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sql")
@_CATALOG_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "md"]), default="table",
              show_default=True, help="How to print the result.")
def query_cmd(sql, catalog, fmt) -> None:
    """Answer SQL (DuckDB) over every indexed experiment.

    Tables: experiments, runs, train_steps, eval_samples, eval_scores, eval_logs, intervals,
    comparisons, effects, anova, seeds, pareto, … each with experiment and experiment_name
    columns (docs/catalog.md has example queries).

    Example: analyze-experiment query "SELECT task, max(value) FROM intervals GROUP BY task"
    """
    from analyze_experiment.catalog import CatalogError, query

    try:
        df, notes = query(sql, catalog)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    for n in notes:
        click.echo(f"note: {n}", err=True)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso"))
    elif fmt == "md":
        from analyze_experiment.report.markdown import markdown_table

        click.echo(markdown_table(df.astype(str)))
    else:
        from rich.table import Table

        t = Table(show_edge=False)
        for c in df.columns:
            t.add_column(str(c), overflow="fold")
        for row in df.itertuples(index=False):
            t.add_row(*["" if _isna(v) else str(v) for v in row])
        _console(stderr=False).print(t)
        click.echo(f"{len(df)} row(s)", err=True)


def _isna(v) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


@click.command("show", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment_dir", type=click.Path(path_type=Path))
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option("--md", "as_md", is_flag=True, help="Print a markdown table.")
@stats_options
def show_cmd(experiment_dir, as_csv, as_md, **stat_opts) -> None:
    """The sweep at a glance: runs × changed parameters × status × primary metrics.

    Parameters that are the same for every run are left out; each task's primary metric shows
    the run's best checkpoint (★: the best of the sweep).

    Example: analyze-experiment show path/to/experiment --md
    """
    from analyze_experiment.show import runs_overview

    exp, analysis = _analysed(experiment_dir, "show", stat_opts)
    table = runs_overview(exp, analysis)
    if as_csv:
        click.echo(table.to_csv(index=False), nl=False)
    elif as_md:
        from analyze_experiment.report.markdown import markdown_table

        click.echo(markdown_table(table))
    else:
        from rich.table import Table
        from rich.text import Text

        from analyze_experiment.report.plots.presentation import common_prefix

        prefix = common_prefix(list(table["run"])) if len(table) else ""
        t = Table(title=exp.design.name, show_edge=False,
                  caption=f"run names start with {prefix}" if prefix else None)
        for c in table.columns:
            t.add_column(str(c), overflow="fold", no_wrap=c == "run")
        for row in table.to_dict(orient="records"):
            failed = str(row.get("status", "")).startswith("FAILED")
            row["run"] = str(row["run"]).removeprefix(prefix)
            t.add_row(*[Text(str(v), style="red" if failed else "") for v in row.values()])
        _console(stderr=False).print(t)


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("experiment_dir", type=click.Path(path_type=Path))
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B")
@click.option("--html", "html_out", type=click.Path(path_type=Path), default=None,
              help="Write an HTML page to this file instead of markdown to stdout.")
@stats_options
def compare_cmd(experiment_dir, run_a, run_b, html_out, **stat_opts) -> None:
    """Two runs (or checkpoints, RUN@EPOCH) side by side.

    Parameters that differ, training status and loss, every metric's paired difference A − B
    with the report's own test, and the samples that flipped with input, target and both
    answers. Markdown to stdout, or --html FILE.

    Example: analyze-experiment compare path/to/experiment rank8_lr1e-4 rank32_lr1e-4@1
    """
    from analyze_experiment.compare import CompareError, compare, parse_side, to_html, to_markdown, write

    exp, analysis = _analysed(experiment_dir, "compare", stat_opts)
    try:
        sa, sb = parse_side(run_a, exp), parse_side(run_b, exp)
    except CompareError as exc:
        raise click.UsageError(str(exc)) from None
    if sa == sb:
        raise click.UsageError("A and B are the same run and checkpoint")
    c = compare(exp, analysis, sa, sb)
    if html_out is not None:
        click.echo(str(write(to_html(c, exp), html_out)))
    else:
        click.echo(to_markdown(c, exp), nl=False)


SUBCOMMANDS = {"export": export, "plot": plot, "index": index_cmd, "query": query_cmd, "show": show_cmd,
               "compare": compare_cmd}


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``export``, ``plot``, ``index`` or ``query`` as first word selects that command."""
    args = list(sys.argv[1:] if argv is None else argv)
    _PROCESS["owned"] = argv is None
    try:
        if args and args[0] in SUBCOMMANDS:
            SUBCOMMANDS[args[0]].main(args[1:], prog_name=f"analyze-experiment {args[0]}")
        else:
            analyze.main(args, prog_name="analyze-experiment")
    finally:
        if argv is None:  # the console command, about to end its process
            # Python's shutdown runs full collections over every object still alive; frozen, the
            # report's tables are left to the operating system: the bundled example's command
            # ends ~0.2 s sooner (docs/performance.md). Exit functions and flushing run as usual.
            gc.freeze()
