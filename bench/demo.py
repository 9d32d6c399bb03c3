"""How much faster the bundled example's report is written than with the plain single-process render.

``python -m bench.demo`` builds the example (``python -m analyze_experiment.demo``, once, under
``bench/_work/demo``) and times the whole command ``analyze-experiment DEMO --no-cache`` in
three versions, interleaved, in the same run on the same files:

* ``today``: the code of :data:`BASELINE`, the version the report issue was measured on and
  filed against — every figure drawn in one process, one after another, each as PNG and SVG
  (extracted with ``git archive``; skipped outside a git checkout). It had no cache, so it runs
  without ``--no-cache``;
* ``single``: this code with the figures drawn in this process
  (``ANALYZE_EXPERIMENT_PLOT_WORKERS=1``) — the plain single-process render;
* ``parallel``: this code as shipped (figures in worker processes while the charts are built).

Each is reported as wall seconds and CPU seconds (user + system of the command and the
processes it waited for, from ``getrusage``), the median of :data:`REPEATS` runs, and as the
ratio of ``today`` and ``single`` to ``parallel``. On a shared machine absolute seconds mean
little; the ratios, measured side by side, are the result.

Every version runs with its byte-code cached (under ``bench/_work/pycache-demo``), as it is once
installed with pip: otherwise each run would also compile its own modules, a cost no user pays.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
BASELINE = "8b516fd"
"""The head when the report issue was filed ("≥ 3× faster than today"): the plain
single-process render, 14 figures as PNG and SVG."""
REPEATS = 5
WORKERS_ENV = "ANALYZE_EXPERIMENT_PLOT_WORKERS"


def _demo() -> Path:
    """The bundled example, built once (rebuilt when the folder is missing)."""
    demo = WORK / "demo"
    if not (demo / "experiment_summary.yaml").is_file():
        shutil.rmtree(demo, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "analyze_experiment.demo", str(demo)], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, stdout=subprocess.DEVNULL)
    return demo


def _baseline_src() -> Path | None:
    """``src/`` of :data:`BASELINE`, extracted once; None outside a git checkout."""
    dest = WORK / f"baseline-{BASELINE}"
    if (dest / "src" / "analyze_experiment").is_dir():
        return dest / "src"
    try:
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", BASELINE, "src"], check=True,
                              capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        fh.write(blob)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(dest, filter="data")
    return dest / "src"


def _run(src: Path, demo: Path, workers: str | None) -> tuple[float, float]:
    """(wall s, CPU s) of one ``analyze-experiment DEMO --no-cache -q`` into a fresh folder
    (``--no-cache`` only where the version has a cache: :data:`BASELINE` had none)."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": str(WORK / "pycache-demo")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code cached, as installed
    env.pop(WORKERS_ENV, None)
    if workers is not None:
        env[WORKERS_ENV] = workers
    out = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    cached = (src / "analyze_experiment" / "ingest" / "cache.py").is_file()
    cmd = [sys.executable, "-c", "from analyze_experiment.cli import main; main()", str(demo),
           *(["--no-cache"] if cached else []), "-q", "--out", str(out / "analysis")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out, ignore_errors=True)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def demo_speed(repeats: int = REPEATS) -> dict[str, float]:
    """Time the three versions (module docstring) and return medians and ratios.

    Keys: ``<version>_wall_s``, ``<version>_cpu_s`` for each version measured, and
    ``speedup_wall_vs_single``, ``speedup_cpu_vs_single`` (and ``…_vs_today`` when the
    baseline could be extracted): how many times faster ``parallel`` is.
    """
    demo = _demo()
    versions: dict[str, tuple[Path, str | None]] = {"single": (ROOT / "src", "1"), "parallel": (ROOT / "src", None)}
    base = _baseline_src()
    if base is not None:
        versions = {"today": (base, None), **versions}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in versions}
    _run(ROOT / "src", demo, None)  # warm the file cache and the byte-code of both trees
    if base is not None:
        _run(base, demo, None)
    for _ in range(repeats):
        for name, (src, workers) in versions.items():
            times[name].append(_run(src, demo, workers))
    out: dict[str, float] = {}
    for name, ts in times.items():
        out[f"{name}_wall_s"] = round(statistics.median(t[0] for t in ts), 2)
        out[f"{name}_cpu_s"] = round(statistics.median(t[1] for t in ts), 2)
    for ref in ("single", "today"):
        if f"{ref}_wall_s" in out:
            out[f"speedup_wall_vs_{ref}"] = round(out[f"{ref}_wall_s"] / out["parallel_wall_s"], 2)
            out[f"speedup_cpu_vs_{ref}"] = round(out[f"{ref}_cpu_s"] / out["parallel_cpu_s"], 2)
    return out


def main() -> dict[str, float]:
    """Print the table and return the figures (``make bench`` collects them)."""
    res = demo_speed()
    print(f"{'version':<10} {'wall s':>8} {'CPU s':>8}")
    for name in ("today", "single", "parallel"):
        if f"{name}_wall_s" in res:
            print(f"{name:<10} {res[f'{name}_wall_s']:>8.2f} {res[f'{name}_cpu_s']:>8.2f}")
    for ref in ("today", "single"):
        if f"speedup_wall_vs_{ref}" in res:
            print(f"parallel vs {ref}: {res[f'speedup_wall_vs_{ref}']:.2f}x wall, "
                  f"{res[f'speedup_cpu_vs_{ref}']:.2f}x CPU")
    return res


if __name__ == "__main__":
    main()
