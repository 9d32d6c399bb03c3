"""Benchmark: the whole report (``analyze-experiment EXP``) on synthetic sweeps of 10, 100
(and, on request, 1,000) runs, each with a 2 × 500-step training log and a 1,000-sample
evaluation log (``bench/sweep_build.py`` builds them once under ``bench/_work/sweep/``).

For each size the command line runs in a child process, as a user runs it, four times:

- **cold**: a new output folder, no cache;
- **warm**: again, nothing changed (the report is left as it was);
- **one changed**: one run's evaluation log rewritten with one sample's score flipped
  (inspect-ai's ``read_eval_log``/``write_eval_log``; the original is restored afterwards);
- **reference**: the path every run took before the incremental cache and the worker
  processes, in the same session on the same files: ``--no-cache`` with every reader in
  the calling process (``python -m bench.single_process``, which sets the process pools to
  run in-process and then calls the same ``main``).

CPU seconds are the child's user + system time from ``os.wait4`` (its worker processes
included), not wall time: on a shared machine the wall clock measures the neighbours. Peak
RSS is the largest resident set of the child or any of its workers. The fitted exponent is
the slope of log(cold CPU) against log(runs × samples) over the sizes measured.

Sizes: ``BENCH_SIZES=10,100,1000 make bench`` (default 10,100) or
``python -m bench.sweep --sizes 10,100,1000``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import sweep_build

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
WORK = sweep_build.WORK
DEFAULT_SIZES = (10, 100)
CLI = "import sys; from analyze_experiment.cli import main; sys.argv[0] = 'analyze-experiment'; main()"
GOALS_100 = {"cold_cpu_s": 20.0, "warm_cpu_s": 2.0, "one_changed_cpu_s": 5.0, "peak_rss_gib": 1.0}
GOALS_1000 = {"cold_cpu_s": 180.0, "peak_rss_gib": 2.0}


def _env() -> dict[str, str]:
    """The child's environment: this checkout's package, byte-code caching on (as installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    return env


def run_child(argv: list[str]) -> dict[str, float]:
    """Run ``argv``; its CPU seconds (user + system, waited-for workers included), peak RSS
    (bytes) and wall seconds, from ``os.wait4``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {proc.returncode}: {err.decode()[-2000:]}")
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "rss_bytes": ru.ru_maxrss * 1024, "wall_s": wall}


def _report(root: Path, out: Path, *extra: str, single: bool = False) -> dict[str, float]:
    entry = ["-m", "bench.single_process"] if single else ["-c", CLI]
    return run_child([sys.executable, *entry, str(root), "--out", str(out), "--quiet", *extra])


def _files_read(root: Path) -> int | None:
    """How many input files the last run read (the rest came from the cache): its log's CACHE line."""
    log = root / "analyze-experiment.log"
    try:
        hits = re.findall(r"(\d+) files from the cache, (\d+) read", log.read_text(encoding="utf-8"))
    except OSError:
        return None
    return int(hits[-1][1]) if hits else None


def flip_one_sample(path: Path) -> str:
    """Flip the first sample's ``match`` score of the log at ``path``, its metrics recomputed and
    the log written by inspect-ai (also the tests' "one log changed"); returns the log's task."""
    from inspect_ai.log import read_eval_log, recompute_metrics, write_eval_log

    log = read_eval_log(str(path))
    assert log.samples
    score = log.samples[0].scores["match"]  # type: ignore[index]
    score.value = "I" if score.value == "C" else "C"
    recompute_metrics(log)
    write_eval_log(log, str(path))
    return log.eval.task


def measure(n: int, *, reference: bool = True) -> dict[str, Any]:
    """Build (or reuse) the ``n``-run sweep and time the four runs."""
    t = time.perf_counter()
    root = sweep_build.build(n)
    built_s = time.perf_counter() - t
    out, ref_out = WORK / f"out-{n}", WORK / f"out-{n}-reference"
    for folder in (out, ref_out):
        shutil.rmtree(folder, ignore_errors=True)
    (root / "analyze-experiment.log").unlink(missing_ok=True)
    res: dict[str, Any] = {"runs": n, "samples_per_run": sweep_build.SAMPLES,
                           "run_samples": (n + 1) * sweep_build.SAMPLES, "build_s": round(built_s, 1)}
    cold = _report(root, out)
    res["cold"], res["cold_files_read"] = cold, _files_read(root)
    res["report_html_bytes"] = (out / "report.html").stat().st_size
    res["warm"] = _report(root, out)
    res["warm_files_read"] = _files_read(root)
    original = sorted((root / sweep_build.run_names(1)[1] / "eval").rglob("*.eval"))[0]
    backup = WORK / f"original-{n}.eval"
    shutil.copy2(original, backup)
    try:
        flip_one_sample(original)
        res["one_changed"] = _report(root, out)
        res["one_changed_files_read"] = _files_read(root)
    finally:
        shutil.copy2(backup, original)  # the sweep as built (bytes and modification time)
        backup.unlink()
    if reference:
        res["reference"] = _report(root, ref_out, "--no-cache", single=True)
        res["cold_vs_reference"] = round(res["reference"]["cpu_s"] / res["cold"]["cpu_s"], 2)
        res["warm_vs_reference"] = round(res["reference"]["cpu_s"] / res["warm"]["cpu_s"], 1)
        res["one_changed_vs_reference"] = round(res["reference"]["cpu_s"] / res["one_changed"]["cpu_s"], 1)
    return res


def exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(cost) on log(size)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    """The figures as a markdown table (docs/performance.md takes it as printed)."""
    head = ("| runs | cold CPU s | warm CPU s (files read) | one changed CPU s (files read) | peak RSS GiB | "
            "report.html MB | reference CPU s | reference / cold | reference / warm | reference / one changed |")
    lines = [head, "|" + "---:|" * 10]
    for r in results:
        ref = r.get("reference")
        lines.append(
            f"| {r['runs']:,} | {r['cold']['cpu_s']:.1f} | {r['warm']['cpu_s']:.2f} ({r['warm_files_read']}) | "
            f"{r['one_changed']['cpu_s']:.2f} ({r['one_changed_files_read']}) | "
            f"{_gib(max(r['cold']['rss_bytes'], r['one_changed']['rss_bytes']))} | "
            f"{r['report_html_bytes'] / 1e6:.1f} | "
            + (f"{ref['cpu_s']:.1f} | {r['cold_vs_reference']:.2f}× | {r['warm_vs_reference']:.0f}× | "
               f"{r['one_changed_vs_reference']:.0f}× |" if ref else "— | — | — | — |")
        )
    return "\n".join(lines)


def _sizes(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_SIZES
    return tuple(sorted({int(s) for s in text.replace(" ", "").split(",") if s}))


def main(sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Measure every size; print the table and the fitted exponent; return the figures."""
    sizes = sizes or _sizes(os.environ.get("BENCH_SIZES"))
    run_child([sys.executable, "-c", "import analyze_experiment.cli, analyze_experiment.write, "
               "analyze_experiment.conclude, analyze_experiment.report.plots.static"])  # byte-code compiled once
    results = []
    for n in sizes:
        print(f"sweep of {n} runs ...", flush=True)
        results.append(measure(n, reference=n <= 100 or os.environ.get("BENCH_REFERENCE_1000") == "1"))
        r = results[-1]
        print(f"  cold {r['cold']['cpu_s']:.1f} s CPU, warm {r['warm']['cpu_s']:.2f} s, one changed "
              f"{r['one_changed']['cpu_s']:.2f} s, peak RSS {_gib(r['cold']['rss_bytes'])} GiB"
              + (f", reference {r['reference']['cpu_s']:.1f} s" if "reference" in r else ""), flush=True)
    slope = exponent([(r["run_samples"], r["cold"]["cpu_s"]) for r in results])
    out = {"sizes": list(sizes), "results": results, "exponent_cold_cpu": None if slope is None else round(slope, 2),
           "load_average": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d"),
           "cpus": os.cpu_count()}
    print(table(results))
    if slope is not None:
        print(f"fitted exponent of cold CPU seconds vs runs × samples: {slope:.2f} (goal ≤ 1.1)")
    (WORK / "results.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="comma-separated run counts (default 10,100 or $BENCH_SIZES)")
    args = ap.parse_args()
    main(_sizes(args.sizes) if args.sizes else None)
