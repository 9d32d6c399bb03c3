"""``python -m tests.fuzz.run_full``: the whole CLI over experiments built from the corpus.

Each experiment is a small valid example (real torchtune output, real inspect-ai logs)
with many files replaced by mutants and a few mutated logs added; one fine-tuned run
(the *keeper*) stays intact, so every experiment has something readable and the CLI
must exit 0 with a report. For every experiment the runner checks: no traceback, exit
status 0, ``summary.json`` and ``report.md`` written, and every mutant no reader can take
whole named in ``summary.json["warnings"]``. Prints the figures; exits 1 on any failure.

Options: ``--seed N``, ``--per-base N`` (corpus size), ``--workers N``, ``--no-big``
(skip the 100 MB line and the zip bombs), ``--subprocess N`` (experiments also run
through the installed console script), ``--keep DIR`` (build in DIR and keep the
experiments and reports; a second run reuses the examples there, so it replays the same
corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.corpus import Mutant, fixture_bases, generate, role_of

KEEPER = "Llama-3.2-1B-Instruct_rank4_lr1e-5"
"""The fine-tuned run no mutant touches."""
N_SAMPLES = 10
EXTRA_EVALS = 8
EXTRA_JSON = 2
EXTRA_SLURM = 2


@dataclass
class Plan:
    """One experiment: a base example and the mutants placed in it (relative path -> mutant)."""

    layout: str
    placed: dict[str, Mutant] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one run of the CLI over one experiment gave."""

    index: int
    layout: str
    exit_code: int | None
    traceback: str | None
    report: bool
    named: list[str]
    """Mutated files named in the warnings."""
    unnamed_required: list[str]
    """``must_warn`` mutants missing from the warnings: each one is a bug."""
    unnamed_other: list[str]
    seconds: float
    n_mutants: int
    via: str = "CliRunner"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.traceback is None and self.report and not self.unnamed_required


def build_bases(work: Path, layouts: tuple[str, ...] = ("mid2026", "oct2025")) -> dict[str, Path]:
    """Build one small example per layout under ``work``."""
    from analyze_experiment import demo

    out = {}
    for layout in layouts:
        dest = work / f"base-{layout}"
        if not demo.is_example(dest):
            demo.build_example(dest, layout=layout, n_samples=N_SAMPLES, seed=1)
        out[layout] = dest
    return out


def _slots(base: Path) -> dict[str, list[str]]:
    """Files of ``base`` that mutants may replace, by role (the keeper run excluded)."""
    slots: dict[str, list[str]] = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if not p.is_file() or rel.parts[0] == KEEPER:
            continue
        role = role_of(rel)
        if role is not None:
            slots.setdefault(role, []).append(rel.as_posix())
    return slots


def _log_dirs(base: Path) -> list[str]:
    return sorted(
        p.relative_to(base).as_posix()
        for p in base.rglob("logs")
        if p.is_dir() and p.relative_to(base).parts[0] not in (KEEPER, "logs")
    )


def plan(mutants: list[Mutant], bases: dict[str, Path]) -> list[Plan]:
    """Pack the mutants into as few experiments as the slots allow (deterministic)."""
    queues: dict[str, list[Mutant]] = {}
    for m in mutants:
        queues.setdefault(m.role, []).append(m)
    slots = {layout: _slots(b) for layout, b in bases.items()}
    logs = {layout: _log_dirs(b) for layout, b in bases.items()}
    plans: list[Plan] = []
    while any(queues.values()):
        # a design_md mutant needs the markdown-era layout; everything else alternates
        layout = "oct2025" if queues.get("design_md") and "oct2025" in bases else "mid2026"
        if not queues.get("design_md") and len(plans) % 3 == 2 and "oct2025" in bases:
            layout = "oct2025"
        p = Plan(layout)
        for role, paths in slots[layout].items():
            for rel in paths:
                if queues.get(role):
                    p.placed[rel] = queues[role].pop(0)
        for role, n, suffix in (("eval", EXTRA_EVALS, ".eval"), ("json_log", EXTRA_JSON, ".json")):
            for i in range(n):
                if queues.get(role) and logs[layout]:
                    m = queues[role].pop(0)
                    p.placed[f"{logs[layout][i % len(logs[layout])]}/fuzz-{m.id}{suffix}"] = m
        # a second SLURM file in a run (a resubmitted job): which one is the run's must be decided
        for i, rel in enumerate(slots[layout].get("slurm", [])[:EXTRA_SLURM]):
            if queues.get("slurm"):
                m = queues["slurm"].pop(0)
                p.placed[f"{Path(rel).parent.as_posix()}/slurm-9{i}{len(plans):03d}.out"] = m
        if not p.placed:  # roles no layout has a slot for
            for role in list(queues):
                queues[role] = []
            break
        plans.append(p)
    return plans


def materialise(p: Plan, base: Path, dest: Path) -> None:
    """Copy the base example to ``dest`` and write the mutants into it."""
    shutil.copytree(base, dest, symlinks=True)
    for rel, m in p.placed.items():
        target = dest / rel
        if target.exists():
            target.unlink()
        if m.role.startswith("design"):  # the design goes where the layout expects it
            name = "experiment_summary.yaml" if m.role == "design_yaml" else "experiment_summary.md"
            for old in ("experiment_summary.yaml", "experiment_summary.md"):
                (dest / old).unlink(missing_ok=True)
            target = dest / name
        m.write(target)


def _named(summary: dict, placed: dict[str, Mutant]) -> tuple[list[str], list[str], list[str]]:
    files = {w.get("file") for w in summary.get("warnings", []) if w.get("message")}
    named, required, other = [], [], []
    for rel, m in placed.items():
        if m.role.startswith("design"):
            rel = "experiment_summary.yaml" if m.role == "design_yaml" else "experiment_summary.md"
        if rel in files:
            named.append(m.id)
        elif m.must_warn:
            required.append(f"{m.id} ({rel}, from {m.source})")
        else:
            other.append(m.id)
    return named, required, other


def run_one(index: int, p: Plan, base: Path, work: Path, via: str = "CliRunner", keep: bool = False) -> Outcome:
    """Build experiment ``index`` and run the CLI over it."""
    from click.testing import CliRunner

    from analyze_experiment.cli import analyze

    root = work / f"exp-{index:04d}"
    out = work / f"out-{index:04d}"
    for old in (root, out):  # a kept work folder is replayed from scratch
        shutil.rmtree(old, ignore_errors=True)
    materialise(p, base, root)
    t0 = time.perf_counter()
    tb = None
    if via == "subprocess":
        exe = Path(sys.executable).with_name("analyze-experiment")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "analyze_experiment"]
        proc = subprocess.run([*cmd, str(root), "--out", str(out), "-q"], capture_output=True, text=True)
        code = proc.returncode
        if "Traceback (most recent call last)" in proc.stderr:
            tb = proc.stderr[-4000:]
    else:
        res = CliRunner().invoke(analyze, [str(root), "--out", str(out), "-q"])
        code = res.exit_code
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            tb = "".join(traceback.format_exception(res.exception))[-4000:]
    seconds = time.perf_counter() - t0
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    report = summary_path.is_file() and (out / "report.md").is_file()
    named, required, other = _named(summary, p.placed)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    return Outcome(index, p.layout, code, tb, report, named, required, other, seconds, len(p.placed), via)


def load_one(index: int, p: Plan, base: Path, work: Path) -> list[str]:
    """Build experiment ``index`` and only *load* it (the fast subset): the required
    mutants that no warning names (an exception propagates: that is a crash)."""
    from analyze_experiment import load

    root = work / f"exp-{index:04d}"
    materialise(p, base, root)
    try:
        exp = load(root)
        summary = {"warnings": [{"file": w.file, "message": w.message} for w in exp.diagnostics.warnings]}
        return _named(summary, p.placed)[1]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def corpus_for(bases: dict[str, Path], **gen: object) -> list[Mutant]:
    """The corpus derived from the fixtures and the given example experiments."""
    files: dict[str, list[tuple[str, bytes]]] = {}
    for b in bases.values():
        for role, items in fixture_bases(b).items():
            files.setdefault(role, [])
            files[role] += [i for i in items if i not in files[role]]
    return generate(files, **gen)  # type: ignore[arg-type]


def _run_star(args: tuple) -> Outcome:
    return run_one(*args)


def run_corpus(
    work: Path,
    *,
    seed: int = 0,
    per_base: int = 13,
    big: bool = True,
    workers: int = 2,
    n_subprocess: int = 1,
    keep: bool = False,
    big_line_bytes: int | None = None,
    bomb_bytes: int | None = None,
) -> tuple[list[Mutant], list[Outcome]]:
    """Generate the corpus, build the experiments and run the CLI over each."""
    bases = build_bases(work)
    extra = {}
    if big_line_bytes is not None:
        extra["big_line_bytes"] = big_line_bytes
    if bomb_bytes is not None:
        extra["bomb_bytes"] = bomb_bytes
    mutants = corpus_for(bases, seed=seed, per_base=per_base, big=big, **extra)
    plans = plan(mutants, bases)
    jobs = [
        (i, p, bases[p.layout], work, "subprocess" if i < n_subprocess else "CliRunner", keep)
        for i, p in enumerate(plans)
    ]
    if workers <= 1:
        outcomes = [_run_star(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_run_star, jobs))
    return mutants, outcomes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.run_full", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-base", type=int, default=13)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-big", action="store_true")
    ap.add_argument("--subprocess", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    work = args.keep or Path(tempfile.mkdtemp(prefix="analyze-experiment-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        mutants, outcomes = run_corpus(
            work, seed=args.seed, per_base=args.per_base, big=not args.no_big, workers=args.workers,
            n_subprocess=args.subprocess, keep=args.keep is not None,
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - t0

    crashes = [o for o in outcomes if o.traceback is not None or o.exit_code != 0]
    no_report = [o for o in outcomes if not o.report]
    unnamed = [u for o in outcomes for u in o.unnamed_required]
    must = sum(m.must_warn for m in mutants)
    named = sum(len(o.named) for o in outcomes)
    print(f"inputs tried:            {len(mutants):,} mutants "
          f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(m.role for m in mutants).items()))})")
    print(f"experiments run:         {len(outcomes)} "
          f"({sum(o.via == 'subprocess' for o in outcomes)} through the console script)")
    print(f"crashes:                 {len(crashes)} (tracebacks or exit status other than 0)")
    print(f"files named in warnings: {named:,} of {len(mutants):,} mutated files; "
          f"{must - len(unnamed)} of {must} that no reader can take whole")
    print(f"reports produced:        {len(outcomes) - len(no_report)} of {len(outcomes)}")
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    if slowest is not None:
        print(f"time:                    {elapsed:.0f} s with {args.workers} worker(s); slowest experiment "
              f"{slowest.seconds:.1f} s (#{slowest.index})")
    for o in crashes:
        print(f"\nCRASH in experiment #{o.index} ({o.layout}): exit {o.exit_code}\n{o.traceback or ''}")
    for o in no_report:
        print(f"NO REPORT in experiment #{o.index} ({o.layout})")
    for u in unnamed:
        print(f"NOT NAMED: {u}")
    return 1 if crashes or no_report or unnamed else 0


if __name__ == "__main__":
    sys.exit(main())
