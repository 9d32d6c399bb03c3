"""Incremental cache: each input file's parsed result, and the fingerprint of the last report.

A re-run over a sweep where nothing changed should cost what it costs to notice that, not
what the first run cost. Two levels:

* **Per file.** The parsed result of each training output, DiskLogger file and evaluation
  log is stored under the cache folder, keyed by the file's absolute path, size,
  ``mtime_ns`` and the parser version (:func:`parser_version`: :data:`PARSER_VERSION`, the
  package version and a digest of the parsers' own source). An unchanged file is never
  read again; its warnings are stored with it and replayed, so a cached broken log still
  warns. Evaluation logs keep their per-sample scores as Arrow tables inside the entry, a
  run's training steps are kept by column (:mod:`analyze_experiment.ingest.records`), and the
  design document's parsed design is one entry keyed by the document and the package source.
* **Per report.** :func:`fingerprint` digests every input's path, size and ``mtime_ns``, the
  runs found, the warnings met, the options and the package version. When it equals the
  one stored for the output folder and that folder is intact, the statistics and report
  are skipped altogether and the folder stays byte for byte as it was.

An entry is one file: a magic line, the SHA-256 of the payload, then the payload (a
pickle written by this module). An entry whose digest or key does not match is discarded
with an info note and the input is read again: a cache is never trusted over the file.
The default folder is ``<output folder>/.cache`` (moved into each new report folder by
:mod:`analyze_experiment.write` and never listed in the manifest), or ``--cache-dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from analyze_experiment import __version__
from analyze_experiment.diagnostics import Diagnostics, Warning_

CACHE_DIR_NAME = ".cache"
"""The cache folder's name inside the output folder."""
PARSER_VERSION = 3
"""Bumped whenever a parser's output changes meaning or shape; every cached entry is then re-read
(2: a run's summary is a ``tables.RunTraining``, no longer a dict; 3: a run's steps are
``records.Records``, by column)."""
_MAGIC = b"analyze-experiment-cache 1\n"
_PARSER_SOURCES = (
    "sources/**/*.py",
    "ingest/eval_consistency.py",
    "ingest/evals.py",
    "ingest/records.py",
    "ingest/training.py",
    "tables.py",
)
"""The modules whose code decides a parsed result: a change to any invalidates every entry."""


@lru_cache(maxsize=1)
def _source_digest() -> str:
    base = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pattern in _PARSER_SOURCES:
        for path in sorted(base.glob(pattern)) or [base / pattern]:
            try:
                h.update(path.relative_to(base).as_posix().encode())
                h.update(path.read_bytes())
            except OSError:
                h.update(pattern.encode())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def package_digest() -> str:
    """Digest of the package version and every module's source: for results whose code reaches
    beyond the parsers (the design document's reading calls the metric registry, the design
    checks and the dataclasses), so that any edit or release reads the input again."""
    base = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for path in sorted(base.rglob("*.py")):
        h.update(path.relative_to(base).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:32]


def parser_version() -> str:
    """What a cached entry must have been written by: the explicit version, the package
    version and a digest of the parsers' source (an edited parser never reuses old results)."""
    return f"{PARSER_VERSION}-{__version__}-{_source_digest()}"


@dataclass
class Cache:
    """A cache folder. Picklable (worker processes read and write entries themselves)."""

    folder: Path
    hits: int = 0
    misses: int = 0
    discarded: list[tuple[str, str]] = field(default_factory=list)
    """(input path, reason) of entries found unusable; :meth:`report` turns them into notes."""

    def _entry(self, kind: str, path: Path) -> Path:
        digest = hashlib.sha256(f"{kind}\0{path}".encode()).hexdigest()[:32]
        return self.folder / kind / f"{digest}.bin"

    @staticmethod
    def _key(kind: str, path: Path) -> dict[str, Any] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return {"kind": kind, "path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "parser": parser_version()}

    def get(self, kind: str, path: Path) -> tuple[bool, Any, list[Warning_]]:
        """``(found, value, warnings)`` for an input file whose entry is valid."""
        path = Path(path).absolute()
        key = self._key(kind, path)
        entry = self._entry(kind, path)
        if key is None or not entry.exists():
            self.misses += 1
            return False, None, []
        try:
            data = _load_entry(entry)
            stored = data["key"]
        except Exception as exc:  # anything odd about an entry: read the input instead
            self.discarded.append((str(path), f"{type(exc).__name__}: {exc}"[:200]))
            _unlink(entry)
            self.misses += 1
            return False, None, []
        if stored != key:  # the file changed (or another parser wrote it): a plain miss
            self.misses += 1
            return False, None, []
        self.hits += 1
        return True, data["value"], list(data["warnings"])

    def put(self, kind: str, path: Path, value: Any, warnings: Iterable[Warning_] = ()) -> None:
        """Store a parsed result (atomically: a reader never sees half an entry). A cache that
        cannot be written is no error: the next run reads the file again."""
        path = Path(path).absolute()
        key = self._key(kind, path)
        if key is None:
            return
        self._write(self._entry(kind, path), {"key": key, "value": value, "warnings": list(warnings)})

    def _group_key(self, kind: str, name: str, paths: Iterable[Path], extra: Any) -> dict[str, Any] | None:
        files = []
        for p in paths:
            k = self._key(kind, Path(p).absolute())
            if k is None:
                return None
            files.append((k["path"], k["size"], k["mtime_ns"]))
        return {"kind": kind, "name": name, "files": files, "extra": extra, "parser": parser_version()}

    def get_group(self, kind: str, name: str, paths: list[Path], extra: Any = None
                  ) -> tuple[bool, Any, list[Warning_]]:
        """``(found, value, warnings)`` of a result derived from several files (one run's
        training output): valid only while every file keeps its size and ``mtime_ns``. The
        hit and miss counts are left to the caller (they count files, not groups)."""
        key = self._group_key(kind, name, paths, extra)
        entry = self._entry(kind, Path(name))
        if key is None or not entry.exists():
            return False, None, []
        try:
            data = _load_entry(entry)
            stored = data["key"]
        except Exception as exc:  # as in get(): never trusted, the files are used instead
            self.discarded.append((str(paths[0]) if paths else name, f"{type(exc).__name__}: {exc}"[:200]))
            _unlink(entry)
            return False, None, []
        if stored != key:
            return False, None, []
        return True, data["value"], list(data["warnings"])

    def put_group(self, kind: str, name: str, paths: list[Path], value: Any, warnings: Iterable[Warning_] = (),
                  extra: Any = None) -> None:
        """Store a result derived from several files (see :meth:`get_group`)."""
        key = self._group_key(kind, name, paths, extra)
        if key is not None:
            self._write(self._entry(kind, Path(name)), {"key": key, "value": value, "warnings": list(warnings)})

    def drop_group(self, kind: str, name: str) -> None:
        """Remove the entry of :meth:`put_group` (found unusable by its reader)."""
        _unlink(self._entry(kind, Path(name)))

    def _write(self, entry: Path, data: dict[str, Any]) -> None:
        try:
            payload = pickle.dumps(data, protocol=5)
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f"{entry.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            os.replace(tmp, entry)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return

    def cached_read(self, kind: str, path: Path, diag: Diagnostics, read: Callable[[Diagnostics], Any]) -> Any:
        """The parsed result of ``path``: from the cache when valid, else ``read(sub_diag)``
        (stored unless it returned None). Warnings go to ``diag`` either way."""
        found, value, warnings = self.get(kind, path)
        if found:
            diag.warnings.extend(warnings)
            return value
        sub = Diagnostics(root=diag.root)
        value = read(sub)
        diag.extend(sub)
        if value is not None:
            self.put(kind, path, value, sub.warnings)
        return value

    def merge(self, other: Cache) -> None:
        """Add a worker's counts to this one."""
        self.hits += other.hits
        self.misses += other.misses
        self.discarded.extend(other.discarded)

    def report(self, diag: Diagnostics) -> None:
        """Notes for discarded entries and one action line with the hit count."""
        for path, reason in self.discarded:
            diag.warn(path, f"cache entry for this file was unusable ({reason}): discarded, the file was read "
                      "again", severity="info", stage="cache")
        diag.act("CACHE", f"Cache {self.folder}", result=f"{self.hits} files from the cache, {self.misses} read")

    # --- the report's fingerprint ----------------------------------------------------------

    def _fingerprint_file(self, out: Path) -> Path:
        return self.folder / f"report-{hashlib.sha256(str(out).encode()).hexdigest()[:16]}.json"

    def unchanged(self, out: Path, digest: str) -> bool:
        """Whether the report in ``out`` was written from inputs and options with ``digest``
        and is still as written (every file its manifest lists is there, unedited)."""
        from analyze_experiment.output import read_manifest, sha256_file

        try:
            stored = json.loads(self._fingerprint_file(out).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(stored, dict) or stored.get("fingerprint") != digest:
            return False
        manifest = read_manifest(out)
        if not manifest:
            return False
        try:
            return all(sha256_file(out / rel) == sha for rel, sha in manifest.items())
        except OSError:
            return False

    def remember(self, out: Path, digest: str) -> None:
        """Record that ``out`` now holds the report of ``digest``."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self._fingerprint_file(out)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"fingerprint": digest, "out": str(out)}), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            return


def _load_entry(entry: Path) -> dict[str, Any]:
    """A cache entry's contents; raises on anything odd (wrong magic, checksum, pickle), so the
    caller discards it and reads the input instead."""
    raw = entry.read_bytes()
    if not raw.startswith(_MAGIC):
        raise ValueError("not a cache entry")
    digest, payload = raw[len(_MAGIC):len(_MAGIC) + 64], raw[len(_MAGIC) + 65:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError("checksum mismatch")
    return pickle.loads(payload)


def _unlink(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def fingerprint(exp: Any, settings: dict[str, Any]) -> str:
    """Digest of everything a report depends on: the inputs read (path, size, mtime_ns), the
    runs found and the warnings met, ``settings`` (options, formats, output folder) and the
    package version. Files still in the "running" window count too, so a run whose log goes
    quiet is re-analysed once it is no longer counted as running."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": __version__, "parser": parser_version(), "settings": settings},
                        sort_keys=True, default=_plain).encode())
    for p in sorted(exp.inputs):
        try:
            st = Path(p).stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0gone\n".encode())
    runs = exp.runs[["run", "run_dir", "status"]] if len(exp.runs) and "status" in exp.runs else exp.runs
    h.update(runs.to_csv(index=False).encode())
    for w in exp.diagnostics.warnings:
        h.update(f"{w.file}\0{w.severity}\0{w.stage}\0{w.message}\n".encode())
    return h.hexdigest()
