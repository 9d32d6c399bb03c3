"""A deterministic corpus of broken inputs derived from the real fixtures.

Every mutant starts from a real file (captured torchtune output and DiskLogger files,
inspect-ai ``.eval``/``.json`` logs, both design formats, the example's
``gpu_metrics.csv``) and breaks it the way disks, nodes and colleagues do: truncation at
a random offset, bit flips, deleted or duplicated lines, non-UTF-8 and NUL bytes, a
100 MB line, empty files; for ``.eval`` zips a bad CRC, a truncated central directory,
size fields that lie, a zip bomb and members of the wrong JSON shape, and readable logs
whose content lies (duplicate or colliding sample ids, records of an extra epoch,
non-finite or odd score values, an Infinity header metric, samples contradicting the
header); for YAML anchor
bombs and ``!!python/object`` tags; for markdown ragged table rows.

``generate(bases, seed)`` is pure: the same bases and seed give the same mutants, so a
failure found by ``make fuzz`` reproduces by its mutant id.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

# inspect-ai writes .eval members with zstd (method 93); its patch teaches Python 3.11's
# zipfile to read them, so the members of real logs can be rewritten here.
import inspect_ai._util.zipfile  # noqa: F401

ROLES = ("slurm", "disklog", "gpu", "eval", "json_log", "design_yaml", "design_md")
"""Where a mutant goes in an experiment: the kind of file it replaces."""

BIG_LINE_BYTES = 100 * 1024 * 1024
BOMB_BYTES = (1 << 30) + (1 << 20)
"""Inflated size of the zip bomb: just past ``inspect_log.MAX_MEMBER_BYTES`` (1 GiB)."""

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


@dataclass(frozen=True)
class Mutant:
    """One broken input file."""

    id: str
    """``<role>-<kind>-<n>``: stable for a given seed."""
    role: str
    kind: str
    source: str
    """Name of the real file it was derived from."""
    must_warn: bool
    """True when no reader can take the file whole: it must be named in the warnings."""
    data: bytes | None = None
    stream: Callable[[BinaryIO], None] | None = field(default=None, compare=False)
    """Writes the content in pieces (the 100 MB line, the zip bomb) instead of ``data``."""

    def write(self, path: Path) -> None:
        """Write the mutant at ``path`` (parents created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            if self.stream is not None:
                self.stream(fh)
            else:
                fh.write(self.data or b"")


# --- the real files ----------------------------------------------------------------------


def fixture_bases(example: Path | None = None) -> dict[str, list[tuple[str, bytes]]]:
    """The real files to mutate, by role (sorted, so the corpus is deterministic).

    Args:
        example: a built example experiment; its logs, DiskLogger files, SLURM output,
            ``gpu_metrics.csv`` and design join the fixtures.
    """
    bases: dict[str, list[tuple[str, bytes]]] = {r: [] for r in ROLES}
    tt = FIXTURES / "torchtune"
    if not tt.is_dir():
        tt = REPO / "src" / "analyze_experiment" / "data" / "torchtune"
    for p in sorted(tt.iterdir()):
        if p.name.endswith(".disklogger.txt"):
            bases["disklog"].append((p.name, p.read_bytes()))
        elif p.suffix in (".out", ".txt"):
            bases["slurm"].append((p.name, p.read_bytes()))
    for p in sorted((FIXTURES / "evals" / "logs").iterdir()):
        bases["eval" if p.suffix == ".eval" else "json_log"].append((p.name, p.read_bytes()))
    for p in sorted((FIXTURES / "design").iterdir()):
        if p.suffix == ".yaml":
            bases["design_yaml"].append((p.name, p.read_bytes()))
        elif p.suffix == ".md" and p.name != "README.md":
            bases["design_md"].append((p.name, p.read_bytes()))
    if example is not None:
        for p in sorted(example.rglob("*")):
            if not p.is_file():
                continue
            role = role_of(p.relative_to(example))
            if role is not None:
                bases[role].append((f"example:{p.relative_to(example).as_posix()}", p.read_bytes()))
    return bases


def role_of(rel: Path) -> str | None:
    """The role of a file of an experiment, from its path relative to the root."""
    name = rel.name
    if name == "experiment_summary.yaml":
        return "design_yaml"
    if name == "experiment_summary.md":
        return "design_md"
    if name == "gpu_metrics.csv":
        return "gpu"
    if name.startswith("slurm-") and name.endswith(".out") and "eval" not in rel.parts:
        return "slurm"
    if name.startswith("log_") and name.endswith(".txt"):
        return "disklog"
    if name.endswith(".eval"):
        return "eval"
    if name.endswith(".json") and "logs" in rel.parts:
        return "json_log"
    return None


# --- byte-level operators ----------------------------------------------------------------


def truncate(rng: random.Random, b: bytes) -> bytes:
    return b[: rng.randrange(0, max(1, len(b)))]


def bit_flips(rng: random.Random, b: bytes) -> bytes:
    out = bytearray(b)
    for _ in range(rng.randint(1, 8)):
        if out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _lines(b: bytes) -> list[bytes]:
    return b.splitlines(keepends=True)


def delete_lines(rng: random.Random, b: bytes) -> bytes:
    lines = _lines(b)
    for _ in range(rng.randint(1, max(1, len(lines) // 4))):
        if lines:
            del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def duplicate_lines(rng: random.Random, b: bytes) -> bytes:
    lines = _lines(b)
    for _ in range(rng.randint(1, 10)):
        if lines:
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.randint(1, 5)
    return b"".join(lines)


def _insert(rng: random.Random, b: bytes, junk: bytes, times: int) -> bytes:
    out = b
    for _ in range(times):
        i = rng.randrange(len(out) + 1)
        out = out[:i] + junk + out[i:]
    return out


def non_utf8(rng: random.Random, b: bytes) -> bytes:
    junk = rng.choice([b"\xff\xfe", b"\x80\x81\x82", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
    return _insert(rng, b, junk, rng.randint(1, 6))


def nul_bytes(rng: random.Random, b: bytes) -> bytes:
    return _insert(rng, b, b"\x00" * rng.choice([1, 7, 4096]), rng.randint(1, 4))


def empty(rng: random.Random, b: bytes) -> bytes:
    return b""


TEXT_OPS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "truncate": truncate,
    "bitflip": bit_flips,
    "delete_lines": delete_lines,
    "duplicate_lines": duplicate_lines,
    "non_utf8": non_utf8,
    "nul": nul_bytes,
}


# --- zip (.eval) operators -----------------------------------------------------------------


def _members(b: bytes) -> list[tuple[str, bytes]]:
    import io

    with zipfile.ZipFile(io.BytesIO(b)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:  # fixed dates: the same mutant byte for byte on every run
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _eocd(b: bytes) -> int:
    return b.rfind(b"PK\x05\x06")


def _central_entries(b: bytes) -> Iterator[int]:
    """Offsets of the central directory file headers."""
    end = _eocd(b)
    if end < 0:
        return
    n, _size, start = struct.unpack("<HII", b[end + 10 : end + 20])
    pos = start
    for _ in range(n):
        if b[pos : pos + 4] != b"PK\x01\x02":
            return
        yield pos
        name_len, extra_len, comment_len = struct.unpack("<HHH", b[pos + 28 : pos + 34])
        pos += 46 + name_len + extra_len + comment_len


def _pick_entry(rng: random.Random, b: bytes, prefer: tuple[str, ...] = ("header.json", "summaries.json")) -> int:
    entries = list(_central_entries(b))
    named = [p for p in entries if _entry_name(b, p) in prefer]
    return rng.choice(named or entries)


def _entry_name(b: bytes, pos: int) -> str:
    name_len = struct.unpack("<H", b[pos + 28 : pos + 30])[0]
    return b[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace")


def bad_crc(rng: random.Random, b: bytes) -> bytes:
    """A CRC-32 that does not match the member (both headers, as a rewritten file would)."""
    out = bytearray(b)
    pos = _pick_entry(rng, b)
    crc = struct.unpack("<I", out[pos + 16 : pos + 20])[0] ^ (1 + rng.randrange(1 << 31))
    out[pos + 16 : pos + 20] = struct.pack("<I", crc)
    local = struct.unpack("<I", out[pos + 42 : pos + 46])[0]
    out[local + 14 : local + 18] = struct.pack("<I", crc)
    return bytes(out)


def truncated_central_directory(rng: random.Random, b: bytes) -> bytes:
    """Cut inside the central directory (a copy or an upload stopped there)."""
    entries = list(_central_entries(b))
    start = entries[0] if entries else len(b) // 2
    return b[: rng.randrange(start, max(start + 1, _eocd(b)))]


def size_lie(rng: random.Random, b: bytes) -> bytes:
    """Uncompressed/compressed size fields that disagree with the data."""
    out = bytearray(b)
    pos = _pick_entry(rng, b)
    field_off = rng.choice([20, 24])  # compressed size | uncompressed size
    real = struct.unpack("<I", out[pos + field_off : pos + field_off + 4])[0]
    lie = rng.choice([0, 1, max(0, real // 2), real * 2 + 17, 0xFFFF_FFF0])
    out[pos + field_off : pos + field_off + 4] = struct.pack("<I", lie)
    if rng.random() < 0.5:
        local = struct.unpack("<I", out[pos + 42 : pos + 46])[0]
        out[local + field_off - 2 : local + field_off + 2] = struct.pack("<I", lie)
    return bytes(out)


_WRONG = [None, 0, -1, 1e308, "", "x", [], [1, "a"], {}, {"a": {"b": []}}, True]


def _paths(obj: object, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:20]):
            yield from _paths(v, (*prefix, i))


def _replace(obj: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, *rest = path
    obj[head] = _replace(obj[head], tuple(rest), value)  # type: ignore[index]
    return obj


def wrong_shape_json(rng: random.Random, text: bytes) -> bytes:
    """Valid JSON whose values have the wrong type somewhere (or the root itself)."""
    obj = json.loads(text)
    paths = list(_paths(obj))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        try:
            obj = _replace(obj, path, copy.deepcopy(rng.choice(_WRONG)))  # a copy: later edits must not change _WRONG
        except (KeyError, IndexError, TypeError):
            continue
        paths = list(_paths(obj))
    return json.dumps(obj).encode()


def zip_wrong_shape(rng: random.Random, b: bytes) -> bytes:
    """A valid zip whose header/summaries/sample JSON has the wrong shape."""
    members = _members(b)
    names = [n for n, _ in members if n.endswith(".json")]
    prefer = [n for n in names if n in ("header.json", "summaries.json", "reductions.json")]
    target = rng.choice(prefer if prefer and rng.random() < 0.8 else names)
    return _zip([(n, wrong_shape_json(rng, d) if n == target else d) for n, d in members])


def zip_member_missing(rng: random.Random, b: bytes) -> bytes:
    members = _members(b)
    drop = rng.choice([n for n, _ in members])
    return _zip([(n, d) for n, d in members if n != drop])


def zip_member_garbage(rng: random.Random, b: bytes) -> bytes:
    """A valid zip whose JSON member is not JSON (truncated, bit-flipped, NUL)."""
    members = _members(b)
    target = rng.choice([n for n, _ in members if n in ("header.json", "summaries.json")] or [members[0][0]])
    op = rng.choice([truncate, bit_flips, nul_bytes, non_utf8])
    return _zip([(n, op(rng, d) if n == target else d) for n, d in members])


# --- semantic faults of a readable log (issue 12): the zip is fine, the content lies --------


def _edit_summaries(b: bytes, edit: Callable[[list[dict]], bool]) -> tuple[bytes, bool]:
    """Apply ``edit`` to the sample summaries (summaries.json, else the journal's);
    ``(new bytes, whether anything changed)``."""
    members = _members(b)
    names = [n for n, _ in members if n == "summaries.json"] or [
        n for n, _ in members if n.startswith("_journal/summaries/") and n.endswith(".json")]
    changed = False
    out = []
    for n, d in members:
        if n in names:
            data = json.loads(d)
            if isinstance(data, list) and data and edit(data):
                changed = True
                d = json.dumps(data).encode()
        out.append((n, d))
    return (_zip(out), True) if changed else (b, False)


def _scored(data: list[dict]) -> list[dict]:
    return [s for s in data if isinstance(s, dict) and isinstance(s.get("scores"), dict) and s["scores"]]


def duplicate_ids(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    """Two scored summaries share one id (the same id, or 1 and "1")."""

    def edit(data: list[dict]) -> bool:
        scored = _scored(data)
        if len(scored) < 2:
            return False
        a, c = rng.sample(scored, 2)
        c["epoch"] = a.get("epoch")
        if rng.random() < 0.5:
            a["id"], c["id"] = 1, "1"
        else:
            c["id"] = a["id"]
        return True

    return _edit_summaries(b, edit)


def extra_epoch(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    """Copies of scored records in an epoch past every epoch the log holds."""

    def edit(data: list[dict]) -> bool:
        scored = _scored(data)
        epochs = [s.get("epoch") for s in data if isinstance(s.get("epoch"), int)]
        if not scored or not epochs:
            return False
        top = max(epochs) + rng.randint(1, 3)
        data.extend({**s, "epoch": top} for s in rng.sample(scored, min(len(scored), 3)))
        return True

    return _edit_summaries(b, edit)


def _set_values(rng: random.Random, b: bytes, values: list[object]) -> tuple[bytes, bool]:
    def edit(data: list[dict]) -> bool:
        scored = _scored(data)
        if not scored:
            return False
        for s in rng.sample(scored, min(len(scored), rng.randint(1, 3))):
            key = rng.choice(sorted(s["scores"]))
            if isinstance(s["scores"][key], dict):
                s["scores"][key]["value"] = rng.choice(values)
        return True

    return _edit_summaries(b, edit)


def non_finite_scores(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    return _set_values(rng, b, [float("inf"), float("-inf"), float("nan"), "1e999", "Infinity"])


def odd_values(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    return _set_values(rng, b, [None, [1, 2], {"a": [1]}, "maybe", ""])


def header_infinity(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    """A header metric set to Infinity."""
    members = _members(b)
    out, changed = [], False
    for n, d in members:
        if n == "header.json":
            h = json.loads(d)
            metrics = [m for sc in ((h.get("results") or {}).get("scores") or []) for m in (sc.get("metrics") or {}).values()
                       if isinstance(m, dict) and isinstance(m.get("value"), int | float)]
            if metrics:
                rng.choice(metrics)["value"] = float("inf")
                d, changed = json.dumps(h).encode(), True
        out.append((n, d))
    return (_zip(out), True) if changed else (b, False)


def all_incorrect(rng: random.Random, b: bytes) -> tuple[bytes, bool]:
    """Every text score "I" while the header keeps its metrics: named only where the header
    then disagrees with the samples, so never a must."""

    def edit(data: list[dict]) -> bool:
        changed = False
        for s in _scored(data):
            for sc in s["scores"].values():
                if isinstance(sc, dict) and isinstance(sc.get("value"), str) and sc["value"] != "I":
                    sc["value"], changed = "I", True
        return changed

    return _edit_summaries(b, edit)[0], False


SEMANTIC_OPS: dict[str, Callable[[random.Random, bytes], tuple[bytes, bool]]] = {
    # name: operator -> (mutant, whether it must be named: False when the fault could not be planted)
    "duplicate_ids": duplicate_ids,
    "extra_epoch": extra_epoch,
    "non_finite_scores": non_finite_scores,
    "odd_values": odd_values,
    "header_infinity": header_infinity,
    "all_incorrect": all_incorrect,
}


ZIP_OPS: dict[str, tuple[Callable[[random.Random, bytes], bytes], bool]] = {
    # name: (operator, must be named in the warnings)
    "zip_truncate": (truncate, True),
    "zip_bitflip": (bit_flips, False),
    "zip_bad_crc": (bad_crc, False),
    "zip_truncated_cd": (truncated_central_directory, True),
    "zip_size_lie": (size_lie, False),
    "zip_wrong_shape": (zip_wrong_shape, False),
    "zip_member_missing": (zip_member_missing, False),
    "zip_member_garbage": (zip_member_garbage, False),
    "zip_nul": (nul_bytes, False),
}


def zip_bomb_stream(inflated: int = BOMB_BYTES, declared: int | None = None) -> Callable[[BinaryIO], None]:
    """A small ``.eval`` whose ``header.json`` inflates to ``inflated`` bytes of spaces.

    Written with a raw deflate stream so building it never holds the inflated data.
    ``declared`` is the uncompressed size its headers claim (default: the truth); a
    small lie makes a reader that trusts the headers inflate it all. (A partial, so
    mutants can be sent to worker processes.)
    """
    return functools.partial(_write_zip_bomb, inflated=inflated, declared=declared)


def _write_zip_bomb(fh: BinaryIO, *, inflated: int, declared: int | None) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b" " * (1 << 20)
    crc = 0
    parts = []
    left = inflated
    while left > 0:
        piece = chunk[: min(left, len(chunk))]
        crc = zlib.crc32(piece, crc)
        parts.append(comp.compress(piece))
        left -= len(piece)
    parts.append(comp.flush())
    data = b"".join(parts)
    name = b"header.json"
    size = min(inflated if declared is None else declared, 0xFFFF_FFFF)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0)
    fh.write(local + name + data)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0
    )
    cd_start = len(local) + len(name) + len(data)
    cd = central + name
    fh.write(cd)
    fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), cd_start, 0))


# --- YAML / markdown / CSV operators ----------------------------------------------------


YAML_HOSTILE = {
    "yaml_anchor_bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
               f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
               f"*{chr(97 + i)}]\n".encode() for i in range(8))
    + b"experiment:\n  name: bomb\n  runs: *i\n",
    "yaml_python_object": b"experiment: !!python/object/apply:os.system ['touch /tmp/analyze-experiment-pwned']\n"
    b"runs:\n  - name: !!python/object:builtins.object {}\n",
    "yaml_python_name": b"experiment:\n  name: !!python/name:os.system\nvariables: !!python/tuple [1, 2]\n",
    "yaml_recursive_alias": b"a: &a\n  b: *a\nexperiment: *a\n",
    "yaml_not_a_mapping": b"- just\n- a\n- list\n",
    "yaml_scalar": b"42\n",
    "yaml_tabs": b"experiment:\n\tname: tabs\n",
    "yaml_many_docs": b"a: 1\n---\nb: 2\n---\n- c\n",
}


def yaml_wrong_shape(rng: random.Random, b: bytes) -> bytes:
    """The real design with a value of the wrong type somewhere."""
    import yaml

    obj = yaml.safe_load(b)
    if not isinstance(obj, dict | list):
        return b
    return yaml.safe_dump(json.loads(wrong_shape_json(rng, json.dumps(obj, default=str).encode()))).encode()


def ragged_rows(rng: random.Random, b: bytes) -> bytes:
    """Table rows with cells removed, added, or pipes/newlines inside cells."""
    lines = _lines(b)
    rows = [i for i, ln in enumerate(lines) if ln.lstrip().startswith(b"|")]
    for _ in range(rng.randint(1, max(1, len(rows)))):
        if not rows:
            break
        i = rng.choice(rows)
        cells = lines[i].rstrip(b"\r\n").split(b"|")
        how = rng.randrange(4)
        if how == 0 and len(cells) > 2:
            del cells[rng.randrange(1, len(cells) - 1)]
        elif how == 1:
            cells.insert(rng.randrange(1, len(cells) + 1), b" extra ")
        elif how == 2:
            cells[rng.randrange(len(cells))] += b" a \\| b "
        else:
            cells = cells[: max(1, len(cells) // 2)]
        lines[i] = b"|".join(cells) + b"\n"
    return b"".join(lines)


def csv_garbage(rng: random.Random, b: bytes) -> bytes:
    """gpu_metrics.csv with junk cells, ragged rows, a wrong header or random bytes."""
    lines = _lines(b)
    how = rng.randrange(6)
    if how == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    if how == 1 and lines:
        lines[0] = b"what,ever,columns\n"
    elif how == 2:
        for _ in range(rng.randint(1, 10)):
            if len(lines) > 1:
                i = rng.randrange(1, len(lines))
                lines[i] = rng.choice([b"nan,nan,inf,-inf\n", b",,,,,,,,,,,,\n", b"a,b\n", b"1e999,-1e999,x\n"])
    elif how == 3:
        lines = lines[:1]
    elif how == 4:
        lines.insert(rng.randrange(len(lines) + 1), b'"unterminated,quote\n')
    else:
        return nul_bytes(rng, b)
    return b"".join(lines)


# --- issue 12/16 operators: attempts, ranks, unknown bar formats, field types ---------------

_DESC = re.compile(rb"(\d+)\|(\d+)\|Loss: ([0-9.naif]+):")
_CANCELLED = (FIXTURES / "torchtune" / "local_v0.6.1_lora_cpu_slurm_scancel.out")


def requeued(rng: random.Random, b: bytes) -> bytes:
    """A preempted first attempt, then this file appended, as Slurm ``--requeue`` writes it."""
    first = _CANCELLED.read_bytes() if _CANCELLED.is_file() else b
    return first[: rng.randrange(len(first) // 2, len(first) + 1)] + b


def rank_prefixed(rng: random.Random, b: bytes) -> bytes:
    """Every line with torchrun's ``[rank0]:`` prefix, another rank's copy interleaved."""
    lines = b.split(b"\n")
    other = [b"[rank1]:" + ln for ln in reversed(lines)]
    out = []
    for ln in lines:
        out.append(b"[rank0]:" + ln)
        if other and rng.random() < 0.5:
            out.append(other.pop())
    return b"\n".join(out)


def newer_bar(rng: random.Random, b: bytes) -> bytes:
    """The progress-bar descriptions rewritten in a format the reader does not know."""
    form = rng.choice([rb"Epoch \1 | Step \2 | Loss: \3:", rb"\1|\2|loss=\3:", rb"\1|\2|Loss: \3, lr: 0.1:"])
    return _DESC.sub(form, b)


def long_epochs(rng: random.Random, b: bytes) -> bytes:
    """Epoch numbers pushed past 99,999 (issue 16) or past what can be read (10+ digits)."""
    offset = rng.choice([99_999, 123_456, 999_999_000, 10**10])
    return _DESC.sub(lambda m: b"%d|%s|Loss: %s:" % (int(m.group(1)) + offset, m.group(2), m.group(3)), b)


def restarted_disklog(rng: random.Random, b: bytes) -> bytes:
    """A DiskLogger file whose step counter goes backwards (a second attempt appended)."""
    lines = _lines(b)
    return b"".join(lines[: rng.randrange(1, len(lines) + 1)]) + b if lines else b


def yaml_wrong_type(rng: random.Random, b: bytes) -> bytes:
    """One field of one run given a value of the wrong type (a list as name, text as rank …)."""
    import yaml

    try:
        obj = yaml.safe_load(b)
    except yaml.YAMLError:
        return b
    runs = obj.get("runs") if isinstance(obj, dict) else None
    if not isinstance(runs, list) or not runs or not isinstance(runs[0], dict):
        return b
    run = runs[rng.randrange(len(runs))]
    if not isinstance(run, dict):
        return b
    field_, value = rng.choice([("name", [run.get("name")]), ("name", {"a": 1}), ("name", 1.5), ("type", ["x"]),
                                ("model", {"m": 1}), ("parameters", [1, 2]), ("lora_rank", "eight"),
                                ("lora_rank", [4, 8]), ("finetuned", "maybe")])
    if field_ == "lora_rank":
        params = run.get("parameters") if isinstance(run.get("parameters"), dict) else {}
        run["parameters"] = {**params, "lora_rank": value}
    else:
        run[field_] = value
    return yaml.safe_dump(obj, sort_keys=False).encode()


def yaml_duplicate_key(rng: random.Random, b: bytes) -> bytes:
    """A top-level key stated twice (the second would silently replace the first)."""
    lines = _lines(b)
    tops = [ln for ln in lines if re.match(rb"^[A-Za-z_]+:", ln)]
    if not tops:
        return b + b"runs: []\nruns: []\n"
    key = rng.choice(tops).split(b":", 1)[0]
    return b + (b"\n" if not b.endswith(b"\n") else b"") + key + b": {}\n"


def md_wrong_cell(rng: random.Random, b: bytes) -> bytes:
    """A numeric cell of the All Runs table replaced by text (``eight``, ``1e-5 (default)``)."""
    lines = _lines(b)
    rows = [i for i, ln in enumerate(lines) if re.match(rb"^\|.*\|\s*\d", ln)]
    if not rows:
        return b
    i = rng.choice(rows)
    lines[i] = re.sub(rb"\|\s*(\d[\d.e-]*)\s*\|", rb"| \1 (default) |", lines[i], count=1)
    return b"".join(lines)


ISSUE12_OPS: dict[str, tuple[str, Callable[[random.Random, bytes], bytes], bool]] = {
    "requeued": ("slurm", requeued, False),
    "rank_prefixed": ("slurm", rank_prefixed, False),
    "newer_bar": ("slurm", newer_bar, False),
    "long_epochs": ("slurm", long_epochs, False),
    "restarted": ("disklog", restarted_disklog, False),
    "yaml_wrong_type": ("design_yaml", yaml_wrong_type, False),
    "yaml_duplicate_key": ("design_yaml", yaml_duplicate_key, True),
    "md_wrong_cell": ("design_md", md_wrong_cell, False),
}
"""kind -> (role, operator, must be named). A wrong-typed field is named unless the chosen
run is not in the document; a newer bar is named only when the file has frames to rewrite."""


# --- the corpus --------------------------------------------------------------------------


def _big_line_stream(prefix: bytes, size: int = BIG_LINE_BYTES) -> Callable[[BinaryIO], None]:
    """``prefix``, then ``size`` bytes without a line break, then ``prefix`` again."""
    return functools.partial(_write_big_line, prefix=prefix, size=size)


def _write_big_line(fh: BinaryIO, *, prefix: bytes, size: int) -> None:
    fh.write(prefix)
    block = b"0|1|Loss: 1.0 " * 4096
    left = size
    while left > 0:
        fh.write(block[: min(left, len(block))])
        left -= len(block)
    fh.write(b"\n" + prefix)


def generate(
    bases: dict[str, list[tuple[str, bytes]]],
    *,
    seed: int = 0,
    per_base: int = 8,
    design_per_base: int = 2,
    big: bool = True,
    big_line_bytes: int = BIG_LINE_BYTES,
    bomb_bytes: int = BOMB_BYTES,
) -> list[Mutant]:
    """Mutants of every base file, in a stable order.

    Args:
        bases: real files by role (:func:`fixture_bases`).
        seed: seeds every random choice.
        per_base: mutants per base file and operator family (scales the corpus).
        design_per_base: the same for design documents (one experiment holds one design,
            so these set how many experiments are run).
        big: include the 100 MB line and the zip bomb (written on the fly, never held).
        big_line_bytes: length of the long line (smaller in the fast subset).
        bomb_bytes: inflated size of the zip bomb.

    Returns:
        The mutants; ``must_warn`` marks those no reader may take without a warning.
    """
    rng = random.Random(seed)
    out: list[Mutant] = []

    def add(role: str, kind: str, source: str, must: bool, data: bytes | None = None, stream=None) -> None:
        out.append(Mutant(f"{role}-{kind}-{len(out):04d}", role, kind, source, must, data, stream))

    for role in ("slurm", "disklog", "gpu", "json_log", "design_yaml", "design_md"):
        design = role.startswith("design")
        for i, (name, b) in enumerate(bases.get(role, [])):
            if not design or i == 0:
                add(role, "empty", name, role in ("gpu", "json_log", "design_yaml", "design_md"), b"")
            for _ in range(design_per_base if design else per_base):
                kind = rng.choice(sorted(TEXT_OPS))
                add(role, kind, name, False, TEXT_OPS[kind](rng, b))
    for name, b in bases.get("eval", []):
        add("eval", "empty", name, True, b"")
        for _ in range(per_base):
            kind = rng.choice(sorted(ZIP_OPS))
            op, must = ZIP_OPS[kind]
            add("eval", kind, name, must, op(rng, b))
    semantic = sorted(SEMANTIC_OPS)
    for i, (name, b) in enumerate(bases.get("eval", [])):
        for j in range(max(1, per_base // 4)):  # round robin: every kind is planted in turn
            kind = semantic[(i + j * 7) % len(semantic)]
            data, planted = SEMANTIC_OPS[kind](rng, b)
            add("eval", kind, name, planted, data)
    for name, b in bases.get("json_log", []):
        for _ in range(per_base // 2):
            add("json_log", "wrong_shape", name, False, wrong_shape_json(rng, b))
    for name, b in bases.get("gpu", []):
        for _ in range(per_base):
            add("gpu", "garbage", name, False, csv_garbage(rng, b))
    for name, b in bases.get("design_yaml", []):
        for _ in range(max(1, design_per_base // 2)):
            add("design_yaml", "wrong_shape", name, False, yaml_wrong_shape(rng, b))
    for kind, data in YAML_HOSTILE.items():
        add("design_yaml", kind, "hostile", kind in ("yaml_anchor_bomb", "yaml_python_object",
                                                     "yaml_python_name", "yaml_not_a_mapping",
                                                     "yaml_scalar", "yaml_tabs"), data)
    for name, b in bases.get("design_md", []):
        for _ in range(max(1, design_per_base // 2)):
            add("design_md", "ragged_rows", name, False, ragged_rows(rng, b))
    for kind, (role, op, must) in ISSUE12_OPS.items():
        picks = bases.get(role, [])
        for name, b in picks[: max(1, per_base // 4) if role in ("slurm", "disklog") else 1]:
            add(role, kind, name, must, op(rng, b))
    if big:
        first = {r: (bases[r][0] if bases.get(r) else ("none", b"")) for r in ("slurm", "disklog")}
        for role in ("slurm", "disklog"):
            name, b = first[role]
            add(role, "line_100mb", name, True, stream=_big_line_stream(b[:2000], big_line_bytes))
        add("eval", "zip_bomb", "synthetic", True, stream=zip_bomb_stream(bomb_bytes))
        add("eval", "zip_bomb_lying", "synthetic", True, stream=zip_bomb_stream(bomb_bytes, declared=1000))
    return out
