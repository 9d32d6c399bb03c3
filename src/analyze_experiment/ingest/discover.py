"""Finding the runs of an experiment directory and the files that belong to each.

Three layouts exist (DESIGN.md §1) and are told apart by what is on disk, never by
asking:

* ``oct2025``: ``experiment_summary.md``; ``<run>/slurm-*.out``; ``<run>/eval/logs/*.eval``.
* ``early2026``: ``experiment_summary.yaml`` (skill logs in ``logs/``); training output in
  ``<run>/`` or the checkpoint dir ``ck-out-<run>/``; ``<run>/eval/logs/*.eval``.
* ``mid2026``: per-cell layout; ``<run>/artifacts/…``;
  ``<run>/eval/<task>_epoch<N>/logs/*.eval`` (controls: ``<run>/eval/<task>/logs/``).

Only directory listings are read (``os.scandir``, one level at a time), never checkpoint
contents: a run directory with thousands of shards or a 10,000-file folder costs one
listing. Symlinks are followed only while they stay inside the experiment and do not
loop; everything else is reported and skipped.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design

STAGE = "discover"

CK_OUT_PREFIX = "ck-out-"
"""Checkpoint/output directory of a run in the 2025/early-2026 scaffolding: ``ck-out-<run>``."""

EVAL_DIR = "eval"
ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
EVAL_SUFFIX = ".eval"
JSON_SUFFIX = ".json"

NON_LOG_JSON = frozenset({"logs.json", "eval-set.json", "listing.json"})
"""JSON files inspect-ai (or its bundles) keep next to logs that are not logs themselves."""

WEIGHT_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".gguf"})
"""Model weights: never opened, never walked into."""

# ---- what is never read: one set of rules for discovery, the training-file search and --watch
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", ".venv", ".git", "wandb", "mlruns", "tensorboard"})
"""Caches and tooling: they never hold a run's logs and may hold very many files (hidden
folders are skipped too)."""
BINARY_SUFFIXES = WEIGHT_SUFFIXES | {".npz", ".npy", ".model", ".arrow"}
"""Weights and the binary data kept beside them: never a log, never opened."""
OWN_FILES = frozenset({"analyze-experiment.log"})
"""Files this tool writes next to its inputs."""
OUTPUT_MARKERS = frozenset({"summary.json", "report.md"})
"""A folder holding both is a report of ours (wherever ``--output`` put it): never input."""
IGNORED_DIRS = SKIP_DIRS | {"analysis", LOGS_DIR}
"""Children of the experiment directory that are never runs: the skipped folders, our
default output folder, the skills' log folder."""


def skip_dir(name: str) -> bool:
    """A folder never looked into: hidden, a cache or tooling."""
    return name.startswith(".") or name in SKIP_DIRS


def skip_file(name: str) -> bool:
    """A file never read: hidden, weights or binary data, or one of our own."""
    return name.startswith(".") or name in OWN_FILES or os.path.splitext(name)[1].lower() in BINARY_SUFFIXES


def is_own_output(names: set[str]) -> bool:
    """Whether a folder listing (its names) is one of our reports."""
    return names >= OUTPUT_MARKERS


SCAFFOLD_FILES = frozenset({"finetune.yaml", "setup_finetune.yaml", "finetune.slurm"})
"""Files a scaffolded run holds before it has produced anything."""

_SLURM_OUT = re.compile(r"^slurm-.*\.out$")
_EPOCH_DIR = re.compile(r"^epoch_\d+$")
_DISK_LOG = re.compile(r"^log_\d+\.txt$")

MAX_EVAL_DEPTH = 4
"""``eval/<cell>/logs/<file>`` is depth 3; one more level tolerates an extra folder."""

JSON_SNIFF_BYTES = 4096


@dataclass
class RunLocation:
    """Where one run's files are."""

    name: str
    run_dir: Path | None
    """``<root>/<run>`` when it exists."""
    training_dirs: list[Path] = field(default_factory=list)
    """Other directories holding this run's training output (``ck-out-<run>`` at the root or
    inside an outputs folder of the experiment); never ``run_dir`` itself."""
    eval_files: list[Path] = field(default_factory=list)
    """Every ``*.eval`` under ``<run>/eval/`` and every inspect ``*.json`` log in a ``logs/``
    folder there, sorted."""


@dataclass
class Discovery:
    """The runs found, the layout, and how disk and design disagree."""

    layout: str
    """``oct2025`` | ``early2026`` | ``mid2026`` | ``unknown``."""
    runs: dict[str, RunLocation]
    """In design order, then runs found only on disk, sorted by name."""
    in_design_only: list[str]
    """Designed runs with no directory, checkpoint directory or eval log."""
    on_disk_only: list[str]
    """Runs found on disk that the design does not list (empty when the design lists no
    runs: then every run on disk is simply a run)."""


Problem = Callable[[str, Path, str], None]
"""``problem(kind, path, detail)``: a walker met something it could not read. Kinds:
``unlistable`` (detail: the reason), ``budget`` (the entry budget ran out), ``symlink`` (detail:
``loops``, ``is broken`` or ``points outside``), ``alias`` (a directory already read),
``unexaminable`` (an entry that could not be stat'ed; detail: the reason). Each caller words them."""


class Walker:
    """The one directory walker: listings under an experiment, with an entry budget, symlinks
    followed only inside ``boundary`` and never in a loop, and the skip rules above.

    Discovery lists level by level (:meth:`entries`); the training-file search and ``--watch``
    take every file below a folder (:meth:`files`). What cannot be read goes to ``problem``.
    """

    def __init__(self, root: Path, problem: Problem, *, max_entries: int, boundary: Path | None = None,
                 exclude: tuple[Path, ...] = ()) -> None:
        self.root = root
        self.real_root = boundary or root
        with contextlib.suppress(OSError, RuntimeError):
            self.real_root = self.real_root.resolve()
        self.problem = problem
        self.max_files = max_entries
        self.seen = 0
        self.exhausted = False
        self.visited: set[Path] = set()
        self.unlistable: set[Path] = set()
        """Directories already named as unreadable (listed again, they are not named twice)."""
        self.exclude = {Path(os.path.realpath(p)) for p in exclude}

    def entries(self, path: Path) -> list[os.DirEntry[str]]:
        """The entries of ``path`` sorted by name ([] after a problem when unreadable)."""
        if self.exhausted or path in self.unlistable:
            return []
        try:
            with os.scandir(path) as it:
                out: list[os.DirEntry[str]] = []
                for entry in it:
                    self.seen += 1
                    if self.seen > self.max_files:
                        self.exhausted = True
                        self.problem("budget", path, f"{self.max_files:,}")
                        break
                    out.append(entry)
        except OSError as exc:
            self.unlistable.add(path)
            self.problem("unlistable", path, str(exc.strerror or exc))
            return []
        return sorted(out, key=lambda e: e.name)

    def usable(self, entry: os.DirEntry[str]) -> bool:
        """False (with a problem) for symlinks that leave the experiment, dangle or loop."""
        if not entry.is_symlink():
            return True
        try:
            target = Path(entry.path).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            reason = "loops" if "loop" in str(exc).lower() or isinstance(exc, RuntimeError) else "is broken"
            self.problem("symlink", Path(entry.path), reason)
            return False
        if not target.is_relative_to(self.real_root):
            self.problem("symlink", Path(entry.path), "points outside")
            return False
        return True

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the root *without* resolving symlinks (names the link itself)."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).name

    def enter(self, path: Path) -> bool:
        """True the first time a (real) directory is entered: guards against symlink loops."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            return False
        if real in self.visited:
            return False
        self.visited.add(real)
        return True

    def excluded(self, path: Path) -> bool:
        """One of the folders the caller asked to leave out (our output folder, the cache)."""
        return bool(self.exclude) and Path(os.path.realpath(path)) in self.exclude

    def files(self, top: Path, *, max_depth: int, prune: Callable[[str], bool] = skip_dir) -> list[Path]:
        """Every file below ``top`` (depth-first, by name) that the skip rules let through.

        Folders ``prune`` names, folders deeper than ``max_depth``, excluded folders and our
        own reports are not entered; a folder reached a second time is a ``problem``."""
        found: list[Path] = []
        stack: list[tuple[Path, int]] = [(top, 0)]
        while stack:
            path, depth = stack.pop()
            if self.excluded(path):
                continue
            if not self.enter(path):
                if depth:
                    self.problem("alias", path, "")
                continue
            listing = self.entries(path)
            if depth and is_own_output({e.name for e in listing}):
                continue
            below: list[tuple[Path, int]] = []
            for e in listing:
                try:
                    if not self.usable(e):
                        continue
                    if e.is_dir():
                        if not prune(e.name) and depth + 1 <= max_depth:
                            below.append((Path(e.path), depth + 1))
                    elif e.is_file() and not skip_file(e.name):
                        found.append(Path(e.path))
                except OSError as exc:
                    self.problem("unexaminable", Path(e.path), str(exc.strerror or exc))
            stack.extend(reversed(below))
        return found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


@dataclass
class _DirKind:
    training: bool = False
    eval: bool = False
    scaffold: bool = False
    report: bool = False
    artifacts: bool = False

    @property
    def is_run(self) -> bool:
        return (self.training or self.eval or self.scaffold) and not self.report


def _classify(entries: list[os.DirEntry[str]]) -> _DirKind:
    """What one listing of a child of the root says about it."""
    kind = _DirKind()
    names = {e.name for e in entries}
    kind.report = is_own_output(names)
    for e in entries:
        if _is_dir(e):
            if e.name == ARTIFACTS_DIR:
                kind.training = kind.artifacts = True
            elif e.name == EVAL_DIR:
                kind.eval = True
            elif _EPOCH_DIR.match(e.name):
                kind.training = True
        elif _SLURM_OUT.match(e.name) or _DISK_LOG.match(e.name):
            kind.training = True
        elif e.name in SCAFFOLD_FILES:
            kind.scaffold = True
    return kind


def _looks_like_inspect_json(path: Path) -> bool:
    """An inspect-ai JSON log starts with its ``version``/``status``/``eval`` header.

    An empty file is kept (the log reader reports it as empty instead of it vanishing);
    an unreadable one too (the reader reports why)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(JSON_SNIFF_BYTES)
    except OSError:
        return True
    if not head.strip():
        return True
    return head.lstrip().startswith(b"{") and (b'"eval"' in head or b'"version"' in head)


def _eval_files(walker: Walker, eval_dir: Path) -> tuple[list[Path], bool]:
    """Logs under ``<run>/eval`` and whether any sits in a per-cell ``eval/<cell>/logs``."""
    found: list[Path] = []
    per_cell = False
    for p in sorted(walker.files(eval_dir, max_depth=MAX_EVAL_DEPTH, prune=_not_eval_dir)):
        in_logs = p.parent.name == LOGS_DIR
        per_cell = per_cell or (in_logs and p.parent.parent.parent == eval_dir)
        if p.suffix == EVAL_SUFFIX:
            found.append(p)
        elif p.suffix == JSON_SUFFIX and in_logs and p.name not in NON_LOG_JSON:
            if _looks_like_inspect_json(p):
                found.append(p)
            else:
                walker.problem("not_a_log", p, "")
    return found, per_cell


def _not_eval_dir(name: str) -> bool:
    """Folders under ``eval/`` never holding logs: the skipped ones and checkpoint ``epoch_N``."""
    return skip_dir(name) or _EPOCH_DIR.match(name) is not None


def _discovery_walker(root: Path, diag: Diagnostics, max_files: int) -> Walker:
    """A walker whose problems become discovery warnings naming the path."""

    def problem(kind: str, path: Path, detail: str) -> None:
        rel = walker.rel(path)
        if kind == "budget":
            diag.warn(path, f"stopped looking for files after {detail} directory entries; runs or logs beyond "
                      "this point were not analysed", stage=STAGE)
        elif kind == "unlistable":
            diag.warn(path, f"the directory could not be listed ({detail}); skipped", severity="error", stage=STAGE)
        elif kind == "symlink":
            what = "points outside the experiment directory" if detail == "points outside" else detail
            diag.warn(path, f"the symlink '{rel}' {what}; not followed", stage=STAGE)
        elif kind == "alias":
            diag.warn(path, f"'{rel}' leads to a directory already read (symlink loop or alias); not read again",
                      stage=STAGE)
        elif kind == "not_a_log":
            diag.warn(path, "JSON file in an eval logs folder is not an inspect-ai log; skipped", severity="info",
                      stage=STAGE)
        else:
            diag.warn(path, f"'{rel}' could not be examined ({detail}); skipped", stage=STAGE)

    walker = Walker(root, problem, max_entries=max_files)
    return walker


def _ck_out_dirs(walker: Walker, entries: list[os.DirEntry[str]]) -> Iterator[tuple[str, Path]]:
    for e in entries:
        if (
            e.name.startswith(CK_OUT_PREFIX)
            and len(e.name) > len(CK_OUT_PREFIX)
            and _is_dir(e)
            and walker.usable(e)
        ):
            yield e.name[len(CK_OUT_PREFIX) :], Path(e.path)


def _layout(
    design: Design,
    root_names: set[str],
    kinds: dict[str, _DirKind],
    per_cell: bool,
    flat_eval: bool,
    has_ck_out: bool,
) -> tuple[str, str]:
    """The layout and the evidence that decided it."""
    if any(k.artifacts for k in kinds.values()):
        return "mid2026", "a run directory holds artifacts/"
    if per_cell:
        return "mid2026", "evaluation logs sit in per-cell folders <run>/eval/<cell>/logs/"
    source = design.source or ""
    if source.endswith(".yaml"):
        return "early2026", "the design document is experiment_summary.yaml"
    if source.endswith(".md"):
        return "oct2025", "the design document is experiment_summary.md"
    if (LOGS_DIR in root_names or has_ck_out) and flat_eval:
        return "early2026", "no design document; a logs/ folder or ck-out-* directories with <run>/eval/logs/"
    return "unknown", "no design document and no layout-specific folders"


def discover(root: Path, design: Design, diag: Diagnostics, *, max_files: int = 200_000) -> Discovery:
    """Runs and their files in the experiment directory ``root``.

    A run is a child directory holding training output (``slurm-*.out``, ``artifacts/``,
    ``epoch_N/``, DiskLogger ``log_N.txt``), evaluation output (``eval/``) or a scaffold
    (``finetune.yaml``), or any child directory the design names; and any run whose only
    trace is a ``ck-out-<run>`` directory. Design names are only ever matched against
    names listed on disk, so a hostile name cannot reach outside ``root``.

    Args:
        root: the experiment directory.
        design: the design (possibly without runs).
        diag: receives unreadable directories, skipped symlinks and near-miss names.
        max_files: directory entries to look at before giving up (with a warning).

    Returns:
        The layout, the runs in design order then on-disk-only runs sorted, and the
        mismatches between design and disk.
    """
    root = Path(root)
    walker = _discovery_walker(root, diag, max_files)
    walker.enter(root)
    designed = [r.name for r in design.runs]
    top = _read_top(walker, root, set(designed), diag)
    evals, per_cell, flat_eval = _find_evals(walker, top)
    runs, in_design_only, on_disk_only = _locations(designed, top, evals)
    _warn_mismatches(design, diag, in_design_only, set(top.run_dirs) | set(top.ck_out), top.stray_slurm)
    layout, why = _layout(design, top.names, top.kinds, per_cell, flat_eval, bool(top.ck_out))
    _log(diag, root, walker, top, runs, f"layout: {layout} ({why})", bool(designed))
    return Discovery(layout=layout, runs=runs, in_design_only=in_design_only, on_disk_only=on_disk_only)


@dataclass
class _Top:
    """What the listing of the experiment directory and of each child says."""

    names: set[str]
    run_dirs: dict[str, Path] = field(default_factory=dict)
    kinds: dict[str, _DirKind] = field(default_factory=dict)
    ck_out: dict[str, list[Path]] = field(default_factory=dict)
    """Run → its ``ck-out-<run>`` directories (at the top or in an outputs folder)."""
    ignored: list[str] = field(default_factory=list)
    others: list[tuple[str, Path]] = field(default_factory=list)
    """Folders that are neither runs nor ignored (outputs folders holding ``ck-out-*``)."""
    stray_slurm: list[str] = field(default_factory=list)


def _read_top(walker: Walker, root: Path, designed: set[str], diag: Diagnostics) -> _Top:
    """Classify every child of the experiment directory: run, ignored, or another folder."""
    entries = walker.entries(root)
    top = _Top(names={e.name for e in entries},
               stray_slurm=[e.name for e in entries if _SLURM_OUT.match(e.name) and _is_file(e)])
    for name, path in _ck_out_dirs(walker, entries):
        top.ck_out.setdefault(name, []).append(path)
    for e in entries:
        if e.name.startswith(".") or e.name in IGNORED_DIRS or e.name.startswith(CK_OUT_PREFIX):
            if _is_dir(e) and not e.name.startswith(CK_OUT_PREFIX):
                top.ignored.append(e.name)
            continue
        linked_dir = e.is_symlink() and (_is_dir(e) or not os.path.exists(e.path))
        if (linked_dir and not walker.usable(e)) or not _is_dir(e):
            continue
        path = Path(e.path)
        if not walker.enter(path):
            diag.warn(path, f"'{walker.rel(path)}' is a symlink to a directory already read; not read again",
                      stage=STAGE)
            continue
        kind = _classify(walker.entries(path))
        if kind.report:
            top.ignored.append(e.name)
        elif kind.is_run or e.name in designed:
            top.run_dirs[e.name] = path
            top.kinds[e.name] = kind
        else:
            top.others.append((e.name, path))
    for _name, path in top.others:  # outputs folders holding ck-out-<run> directories
        for run, ck in _ck_out_dirs(walker, walker.entries(path)):
            top.ck_out.setdefault(run, []).append(ck)
    return top


def _find_evals(walker: Walker, top: _Top) -> tuple[dict[str, list[Path]], bool, bool]:
    """Each run's eval logs; whether any sit in per-cell folders, and any in ``<run>/eval/logs``."""
    evals: dict[str, list[Path]] = {}
    per_cell = flat_eval = False
    for name, path in top.run_dirs.items():
        if top.kinds[name].eval:
            files, cell = _eval_files(walker, path / EVAL_DIR)
            evals[name] = files
            per_cell = per_cell or cell
            flat_eval = flat_eval or any(p.parent == path / EVAL_DIR / LOGS_DIR for p in files)
    return evals, per_cell, flat_eval


def _locations(designed: list[str], top: _Top, evals: dict[str, list[Path]]
               ) -> tuple[dict[str, RunLocation], list[str], list[str]]:
    """The runs in design order then on-disk-only runs sorted; the designed runs with nothing on
    disk; the runs on disk the design does not list."""
    extra = sorted((set(top.run_dirs) | set(top.ck_out)) - set(designed))
    runs: dict[str, RunLocation] = {}
    for name in [*designed, *extra]:
        if name not in runs:
            runs[name] = RunLocation(name=name, run_dir=top.run_dirs.get(name),
                                     training_dirs=sorted(top.ck_out.get(name, [])), eval_files=evals.get(name, []))
    in_design_only = [n for n in designed
                      if runs[n].run_dir is None and not runs[n].training_dirs and not runs[n].eval_files]
    return runs, in_design_only, extra if designed else []


def _warn_mismatches(design: Design, diag: Diagnostics, in_design_only: list[str], on_disk: set[str],
                     stray_slurm: list[str]) -> None:
    """Near-miss names between design and disk, and SLURM files outside any run."""
    for name in in_design_only:
        close = difflib.get_close_matches(name, sorted(on_disk), n=1, cutoff=0.85)
        if close:
            diag.warn(
                design.source,
                f"designed run '{name}' has no directory, but '{close[0]}' on disk has a similar name; "
                "they were not matched (names must be equal)",
                severity="info",
                stage=STAGE,
            )
    if stray_slurm:
        diag.warn(
            None,
            f"{len(stray_slurm)} SLURM output file(s) at the top of the experiment directory "
            f"({', '.join(stray_slurm[:5])}{', …' if len(stray_slurm) > 5 else ''}) are not inside a run "
            "directory; not attributed to any run",
            severity="info",
            stage=STAGE,
        )


def _log(diag: Diagnostics, root: Path, walker: Walker, top: _Top, runs: dict[str, RunLocation], layout: str,
         designed: bool) -> None:
    """The discovery's entry in the action log: layout, each run's files, what was left aside."""
    details = [layout]
    if not designed:
        details.append("the design lists no runs: every directory with training or evaluation output is a run")
    details += [
        f"{n}: run dir {'yes' if loc.run_dir else 'no'}, {len(loc.training_dirs)} checkpoint dir(s), "
        f"{len(loc.eval_files)} eval log(s)"
        for n, loc in runs.items()
    ]
    if top.ignored:
        details.append(f"ignored folders: {', '.join(top.ignored)}")
    if top.others:
        details.append(f"folders without run output: {', '.join(n for n, _ in top.others)}")
    diag.act(
        "DISCOVER_FILES",
        f"Looked for runs in {root.name}",
        details=details,
        result=f"{len(runs)} runs, {sum(len(r.eval_files) for r in runs.values())} eval logs, "
        f"{walker.seen:,} directory entries listed",
    )
