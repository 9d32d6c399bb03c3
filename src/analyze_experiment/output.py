"""Atomic replacement of the output folder.

The report is built in a temporary sibling folder and swapped in at the end, so a reader
(or a kill at any moment) only ever sees the previous complete report or the new complete
one. On Linux the swap is a single ``renameat2(RENAME_EXCHANGE)`` call; elsewhere two
renames with a short window in which the folder is absent (never half-written).
Leftover temporary folders of runs that were killed are removed on the next run.

Only files the tool wrote are ever replaced (issue 12): every report folder carries a
manifest (:data:`MANIFEST_NAME`) of the files written into it with their SHA-256. Anything
else found in the previous folder — a user's notes, a hand-made plot — is *carried over*
into the new folder (hard-linked when possible, else copied), and a tool-written file that
was edited since is kept beside the new one as ``<name>.edited-<time><suffix>``. A folder
without a manifest (written by an older version) counts the names this tool writes as its
own (:func:`is_tool_name`).

Write failures are turned into :class:`OutputError` with a message a user can act on: a
read-only destination (:class:`OutputNotWritable`, a usage error: choose ``--out``) or a
full disk / quota (:class:`OutputWriteFailed`); in both the previous report is untouched
and no temporary folder is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyze_experiment.experiment import Experiment

TMP_PREFIX = ".analyze-experiment-tmp-"
OLD_PREFIX = ".analyze-experiment-old-"
MANIFEST_NAME = ".analyze-experiment-manifest.json"
CACHE_NAME = ".cache"
"""The tool's cache folder inside a report folder (:mod:`analyze_experiment.ingest.cache`): the tool's own,
never listed in the manifest, never carried over as a user's file; moved into each new folder
(:func:`move_cache`)."""
"""Inside every report folder: ``{"files": {relative path: sha256}}`` of what the tool wrote."""
WRITE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG, errno.EIO}
"""Errors that mean "the disk cannot take the report" (full, over quota, file too big, I/O)."""
READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(OSError):
    """The report folder could not be written; the message says why and what to do."""


class OutputNotWritable(OutputError):
    """The destination does not accept writes (read-only file system, permissions)."""


class OutputWriteFailed(OutputError):
    """Writing stopped half-way (disk full, quota, I/O error); the previous report is intact."""


def as_output_error(exc: OSError, where: Path) -> OutputError | None:
    """The :class:`OutputError` an ``OSError`` raised while writing the report stands for
    (None when it is not about the destination: let it propagate as the bug it is)."""
    if isinstance(exc, OutputError):
        return exc
    reason = exc.strerror or str(exc)
    if exc.errno in WRITE_ERRNOS:
        return OutputWriteFailed(
            exc.errno, f"could not write the report to {where}: {reason}. The previous report (if any) is "
            "unchanged and no temporary folder was left; free some space or choose another folder with --out"
        )
    if exc.errno in READ_ONLY_ERRNOS:
        return OutputNotWritable(
            exc.errno, f"cannot write to {where}: {reason}; choose a writable folder with --out DIR"
        )
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path) -> list[Path]:
    """Remove temp/old folders left by runs that died (their pid is no longer alive)."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        if not entry.name.startswith((TMP_PREFIX, OLD_PREFIX)) or not entry.is_dir():
            continue
        try:
            pid = int(entry.name.split("-")[-2])
        except (ValueError, IndexError):
            pid = -1
        if pid > 0 and pid != os.getpid() and _pid_alive(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False when the call is unavailable."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL)):
        return False
    raise OSError(err, os.strerror(err), str(a))


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` in one step.

    On an exception the temporary folder is removed and ``target`` is untouched.
    An ``OSError`` meaning a full disk or a read-only destination is raised as the matching
    :class:`OutputError`.
    """
    target = Path(target)
    parent = target.parent
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target} exists and is not a folder; not replacing it")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent)
        tmp = parent / f"{TMP_PREFIX}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as exc:
        raise (as_output_error(exc, parent) or exc) from None
    try:
        yield tmp
        _swap(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        mapped = as_output_error(exc, target)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(tmp: Path, target: Path) -> None:
    """Put ``tmp`` in place of ``target`` (see the module docstring)."""
    if target.is_dir():
        if _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous report
            return
        old = target.parent / f"{OLD_PREFIX}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)


def write_text(path: Path, text: str) -> None:
    """Write a file inside the (temporary) output folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- manifest and carry-over -------------------------------------------------------------

_TOOL_FILES = {MANIFEST_NAME, ".analyze-experiment-output", "report.md", "report.html", "summary.json",
               "analyze-experiment.log"}
_TOOL_DIRS = {"tables": (".csv", ".tex"), "data": (".parquet",), "plots": (".png", ".svg")}


def is_tool_name(rel: str) -> bool:
    """Whether a path (relative to a report folder) is one this tool writes. Used only for
    folders without a manifest (written before manifests existed)."""
    parts = PurePosixPath(rel).parts
    if len(parts) == 1:
        return parts[0] in _TOOL_FILES
    return len(parts) == 2 and parts[1].endswith(_TOOL_DIRS.get(parts[0], ()))


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes (what the manifest records)."""
    return _sha256(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    """Every file (and symlink) under ``folder``, relative, POSIX-style, without following links
    (the cache folder left out: it is neither a report file nor a user's)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        d = Path(dirpath)
        if d == folder and CACHE_NAME in dirnames and not (d / CACHE_NAME).is_symlink():
            dirnames.remove(CACHE_NAME)
        for name in filenames + [n for n in dirnames if (d / n).is_symlink()]:
            out.append((d / name).relative_to(folder).as_posix())
    return sorted(out)


def read_manifest(folder: Path) -> dict[str, str] | None:
    """``relative path -> sha256`` of what the tool wrote into ``folder`` (None: no manifest)."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict):
        return None
    return {str(k): str(v) for k, v in files.items()}


def write_manifest(folder: Path, exclude: set[str] = frozenset()) -> dict[str, str]:
    """Record every file under ``folder`` (but ``exclude``: carried-over user files) as written
    by the tool; returns the manifest."""
    files = {rel: _sha256(folder / rel) for rel in _files(folder)
             if rel != MANIFEST_NAME and rel not in exclude and not (folder / rel).is_symlink()}
    write_text(folder / MANIFEST_NAME, json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
    return files


@dataclass
class CarryOver:
    """What the previous report folder held that the tool did not write (or that was edited)."""

    foreign: list[str] = field(default_factory=list)
    """Files the user put there: copied into the new folder under the same name."""
    edited: dict[str, str] = field(default_factory=dict)
    """Tool-written files changed since: original name -> name of the kept copy."""

    @property
    def kept(self) -> set[str]:
        """Every path in the new folder that holds a user's file."""
        return set(self.foreign) | set(self.edited.values())


def find_user_files(previous: Path, stamp: str | None = None) -> CarryOver:
    """Sort the previous folder's files into ours (replaced), the user's and edited ones."""
    result = CarryOver()
    if not previous.is_dir():
        return result
    manifest = read_manifest(previous)
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S")
    for rel in _files(previous):
        if rel == MANIFEST_NAME:
            continue
        if manifest is None:
            if not is_tool_name(rel):
                result.foreign.append(rel)
            continue
        if rel not in manifest:
            result.foreign.append(rel)
        elif (previous / rel).is_file() and not (previous / rel).is_symlink() and _sha256(previous / rel) != manifest[rel]:
            p = PurePosixPath(rel)
            result.edited[rel] = str(p.with_name(f"{p.stem}.edited-{stamp}{p.suffix}"))
    return result


def carry_over(previous: Path, new: Path, plan: CarryOver) -> set[str]:
    """Put the user's files of ``previous`` into ``new`` (hard links when the file system
    allows, else copies; symlinks are recreated as links, never followed). Returns their
    paths in ``new``."""
    kept: set[str] = set()
    pairs = [(rel, rel) for rel in plan.foreign] + list(plan.edited.items())
    for src_rel, dst_rel in pairs:
        src, dst = previous / src_rel, new / dst_rel
        if dst.exists() or dst.is_symlink():
            # a user's file named like one the tool writes now: keep both
            p = PurePosixPath(dst_rel)
            dst = new / str(p.with_name(f"{p.stem}.user{p.suffix}"))
        dst.parent.mkdir(parents=True, exist_ok=True)
        kept.add(dst.relative_to(new).as_posix())
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
            continue
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:
                raise
            shutil.copy2(src, dst)
    return kept


def move_cache(previous: Path, new: Path) -> None:
    """Move the cache folder of the previous report folder into the new one (a rename on the
    same file system). A cache that cannot be moved is simply rebuilt by the next run."""
    src = previous / CACHE_NAME
    if not src.is_dir() or src.is_symlink() or (new / CACHE_NAME).exists():
        return
    try:
        os.rename(src, new / CACHE_NAME)
    except OSError:
        return


# --- which folders may be replaced ------------------------------------------------------------
OUTPUT_MARKER = ".analyze-experiment-output"
"""Written into every output folder: only a folder holding it (or an empty one) is replaced."""


class UnsafeOutput(ValueError):
    """The output folder would replace something that is not ours (a usage error)."""


def is_previous_report(folder: Path) -> bool:
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
    if out.is_dir() and any(out.iterdir()) and not is_previous_report(out):
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UnsafeOutput(
            f"{out} is not empty ({shown}) and was not written by analyze-experiment; nothing was changed. "
            "Choose a new or empty folder"
        )
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    from analyze_experiment.runlog import writable

    if not writable(existing):
        where = "the experiment directory" if out.parent == root else "the folder"
        raise OutputNotWritable(
            13, f"{where} {existing} is read-only: cannot write the report to {out}; "
            "choose a writable folder with --out DIR"
        )
