"""The fast log reader against inspect-ai's own readers, on real logs made by inspect-ai."""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inspect_ai.analysis import evals_df, samples_df
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import value_to_float as inspect_value_to_float

from analyze_experiment.sources.inspect_log import (
    LogReadError,
    log_record,
    read_log,
    sample_records,
    score_records,
    value_to_float,
)

LOGS = Path(__file__).parent / "fixtures" / "evals" / "logs"
EVAL_LOGS = sorted(p.name for p in LOGS.glob("*.eval"))
ALL_LOGS = [*EVAL_LOGS, "legacy.json"]
to_float = inspect_value_to_float()


def _expected_sample_rows(path: Path) -> dict[tuple[str, int, str], tuple[float, str | None]]:
    """Per-sample scores as inspect-ai reads them (full samples), keyed (id, epoch, scorer)."""
    log = read_eval_log(str(path))
    out = {}
    for s in log.samples or []:
        for name, score in (s.scores or {}).items():
            values = score.value.items() if isinstance(score.value, dict) else [(None, score.value)]
            for sub, v in values:
                scorer = name if sub is None else f"{name}/{sub}"
                out[(str(s.id), s.epoch, scorer)] = (to_float(v), score.answer)
    return out


@pytest.mark.parametrize("name", ALL_LOGS)
def test_sample_scores_equal_read_eval_log(name: str) -> None:
    path = LOGS / name
    ours = {(r["sample_id"], r["sample_epoch"], r["scorer"]): (r["score"], r["answer"]) for r in
            sample_records(read_log(path))}  # fmt: skip
    expected = _expected_sample_rows(path)
    assert ours.keys() == expected.keys()
    assert ours == expected
    assert len(ours) > 0


@pytest.mark.parametrize("name", [n for n in EVAL_LOGS if n != "started.eval"])
def test_samples_equal_samples_df(name: str) -> None:
    """id, epoch, target, raw values and metadata as inspect-ai's samples_df has them."""
    path = LOGS / name
    df = samples_df(str(path), quiet=True)
    data = read_log(path)
    rows = sample_records(data)
    by_key = {(r["sample_id"], r["sample_epoch"], r["scorer"]): r for r in rows}
    checked = 0
    for rec in df.to_dict("records"):
        for col in [c for c in df.columns if c.startswith("score_")]:
            raw = rec[col]
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            scorer = col.removeprefix("score_")
            parts = json.loads(raw) if isinstance(raw, str) and raw.startswith("{") else {None: raw}
            for sub, v in parts.items():
                r = by_key[(str(rec["id"]), int(rec["epoch"]), scorer if sub is None else f"{scorer}/{sub}")]
                assert r["score"] == to_float(v)
                assert r["target"] == rec["target"]
                assert r["meta.word"] == rec["metadata_word"]
                assert r["meta.length"] == rec["metadata_length"]
                checked += 1
    assert checked == len(rows)


@pytest.mark.parametrize("name", [n for n in EVAL_LOGS if n != "started.eval"])
def test_metrics_equal_evals_df_and_results(name: str) -> None:
    path = LOGS / name
    rows = score_records(read_log(path))
    log = read_eval_log(str(path), header_only=True)
    if log.results is None:
        assert rows == []
        return
    edf = evals_df(str(path), quiet=True).iloc[0]
    expected_cols = {c for c in edf.index if c.startswith("score_") and not c.startswith("score_headline")}
    seen = set()
    for r in rows:
        col = f"score_{r['scorer'].split('/')[-1]}_{r['metric'].split('/')[-1]}"
        assert r["value"] == pytest.approx(float(edf[col]), rel=0, abs=0)
        seen.add(col)
    assert seen == expected_cols
    by_scorer = {s.name: s for s in log.results.scores}
    for r in rows:
        sc = by_scorer[r["scorer"].split("/")[-1]]
        assert r["n"] == sc.scored_samples
        if r["metric"] in ("accuracy", "mean") and "stderr" in sc.metrics:
            assert r["stderr"] == sc.metrics["stderr"].value


def test_dict_metrics_flattened() -> None:
    rows = {(r["scorer"], r["metric"]): r for r in score_records(read_log(LOGS / "multi.eval"))}
    assert {"ci_wilson/lower", "ci_wilson/upper", "grouped/short", "grouped/long", "grouped/all"} <= {
        m for s, m in rows if s == "cip"
    }
    assert ("parts/exact", "accuracy") in rows and ("parts/length_ok", "mean") in rows
    assert rows[("cip", "accuracy")]["value"] == 0.75
    assert rows[("cip", "ci_wilson/lower")]["value"] == pytest.approx(0.4421814242785499, abs=0)
    assert math.isnan(rows[("cip", "ci_wilson/lower")]["stderr"])


def test_epochs_reducer_n_is_reduced_samples() -> None:
    data = read_log(LOGS / "epochs3.eval")
    rows = score_records(data)
    assert {r["n"] for r in rows} == {6}
    assert {r["reducer"] for r in rows} == {"mean"}
    assert sorted({r["sample_epoch"] for r in sample_records(data)}) == [1, 2, 3]
    assert len(sample_records(data)) == 18


@pytest.mark.parametrize("name", ALL_LOGS)
def test_log_record_equals_header(name: str) -> None:
    path = LOGS / name
    log = read_eval_log(str(path))
    rec = log_record(read_log(path))
    assert rec["status"] == log.status
    assert rec["model"] == log.eval.model
    assert rec["task_raw"] == log.eval.task
    assert rec["eval_metadata"] == (log.eval.metadata or {})
    assert rec["errored_samples"] == sum(1 for s in log.samples or [] if s.error)
    if log.results is not None:
        assert rec["total_samples"] == log.results.total_samples
        assert rec["completed_samples"] == log.results.completed_samples
    if log.stats and log.stats.model_usage:
        assert rec["total_tokens"] == sum(u.total_tokens for u in log.stats.model_usage.values())
        assert rec["input_tokens"] == sum(u.input_tokens for u in log.stats.model_usage.values())


def test_started_log_from_journal() -> None:
    path = LOGS / "started.eval"
    data = read_log(path)
    assert data.source == "journal"
    assert data.header["status"] == "started"
    log = read_eval_log(str(path))
    assert log.status == "started"
    assert len(data.samples) == len(log.samples) == 8
    assert log_record(data)["total_samples"] == 12


def test_deflate_and_zstd_read_equal() -> None:
    plain, deflate = read_log(LOGS / "plain.eval"), read_log(LOGS / "deflate.eval")
    with zipfile.ZipFile(LOGS / "deflate.eval") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    with zipfile.ZipFile(LOGS / "plain.eval") as z:
        assert {i.compress_type for i in z.infolist()} == {93}
    key = lambda r: (r["sample_id"], r["sample_epoch"], r["scorer"])  # noqa: E731
    assert sorted(sample_records(plain), key=key) == sorted(sample_records(deflate), key=key)
    assert len(sample_records(plain)) == 4
    assert score_records(plain) == score_records(deflate)


def test_samples_fallback_when_no_summaries(tmp_path: Path) -> None:
    """A zip without summaries.json: scores come from samples/*.json, same values."""
    src = LOGS / "multi.eval"
    dst = tmp_path / "nosummaries.eval"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != "summaries.json":
                zout.writestr(info.filename, read_member(src, info.filename))
    data = read_log(dst)
    assert data.source == "samples"
    key = lambda r: (r["sample_id"], r["sample_epoch"], r["scorer"])  # noqa: E731
    assert sorted(sample_records(data), key=key) == sorted(sample_records(read_log(src)), key=key)


def read_member(path: Path, name: str) -> bytes:
    """Read one member with inspect-ai's patched zipfile (zstd)."""
    import inspect_ai._util.zipfile  # noqa: F401  (installs zstd support into zipfile)

    with zipfile.ZipFile(path) as z:
        return z.read(name)


def test_nan_scores_parse() -> None:
    """inspect-ai writes bare NaN for undefined values; orjson rejects them."""
    from analyze_experiment.sources.inspect_log import loads

    assert math.isnan(loads(b'{"value": NaN}', "x")["value"])
    assert loads(b'{"value": Infinity}', "x")["value"] == math.inf
    with pytest.raises(LogReadError):
        loads(b"{oops", "x")


# --- bad input ------------------------------------------------------------------------------


def _stored_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def _patch_central_size(blob: bytes, size: int) -> bytes:
    """Lie about the first member's uncompressed size in the central directory."""
    i = blob.index(b"PK\x01\x02")
    return blob[: i + 24] + struct.pack("<L", size) + blob[i + 28 :]


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = (LOGS / "plain.eval").read_bytes()
    header = read_member(LOGS / "plain.eval", "header.json")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", b"{" + b" " * (3 << 20) + b"}")
    stored = _stored_zip({"header.json": header})
    flip = stored.index(b'"task"') + 2
    files = {
        "empty.eval": b"",
        "notzip.eval": b"this is not a zip file at all",
        "truncated.eval": good[: len(good) // 2],
        "badcrc.eval": stored[:flip] + b"X" + stored[flip + 1 :],
        "bomb_declared.eval": bomb.getvalue(),
        "bomb_actual.eval": _patch_central_size(bomb.getvalue(), 10),
        "wrongshape.eval": _stored_zip({"header.json": b"[1, 2, 3]"}),
        "wrongsummaries.eval": _stored_zip({"header.json": header, "summaries.json": b'{"a": 1}'}),
        "nojson.json": b"[1, 2, 3]",
    }
    out = {}
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
        out[name] = tmp_path / name
    return out


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.eval", "empty file"),
        ("notzip.eval", "not a zip"),
        ("truncated.eval", "not a readable zip"),
        ("badcrc.eval", "CRC"),
        ("bomb_declared.eval", "declares"),
        ("bomb_actual.eval", "inflates past"),
        ("wrongshape.eval", "wrong shape"),
        ("wrongsummaries.eval", "wrong shape"),
        ("nojson.json", "neither a zip nor a JSON object"),
    ],
)
def test_bad_input_raises_log_read_error(tmp_path: Path, name: str, reason: str) -> None:
    path = bad_files(tmp_path)[name]
    with pytest.raises(LogReadError, match=reason):
        read_log(path, limit=1 << 20)


def test_limit_refuses_real_log_by_declared_size() -> None:
    with pytest.raises(LogReadError, match="zip bomb"):
        read_log(LOGS / "multi.eval", limit=100)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255), cut=st.booleans())
def test_corrupted_real_log_never_crashes(tmp_path: Path, pos: int, byte: int, cut: bool) -> None:
    """Any single-byte change or truncation gives a result or a LogReadError, nothing else."""
    blob = bytearray((LOGS / "plain.eval").read_bytes())
    pos %= len(blob)
    if cut:
        blob = blob[:pos]
    else:
        blob[pos] = byte
    path = tmp_path / "mutated.eval"
    path.write_bytes(bytes(blob))
    try:
        data = read_log(path)
    except LogReadError:
        return
    sample_records(data)
    score_records(data)
    log_record(data)


@given(
    st.one_of(
        st.sampled_from(["C", "I", "P", "N", "yes", "no", "true", "False", "0.25", "-3", "1e-3"]),
        st.booleans(),
        st.integers(min_value=-(10**6), max_value=10**6),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_value_to_float_matches_inspect(value: object) -> None:
    assert value_to_float(value) == to_float(value)


def test_value_to_float_unknown_is_nan_not_zero() -> None:
    assert math.isnan(value_to_float("maybe"))
    assert math.isnan(value_to_float([1, 2]))
    assert math.isnan(value_to_float(None))


def test_bad_files_warn_and_the_rest_is_read(tmp_path: Path) -> None:
    """Through collect_evals: one error warning per bad file, naming it; good logs still used."""
    from analyze_experiment.diagnostics import Diagnostics
    from analyze_experiment.ingest.evals import EvalFile, collect_evals

    bad = bad_files(tmp_path)
    good = tmp_path / "good.eval"
    good.write_bytes((LOGS / "multi.eval").read_bytes())
    files = [EvalFile("r", p, tmp_path) for p in [*bad.values(), good]]
    diag = Diagnostics(tmp_path)
    logs, scores, samples = collect_evals(tmp_path, files, diag, workers=2)
    errors = {w.file: w.message for w in diag.warnings if w.severity == "error"}
    # the 3 MB "bomb" is within the default 1 GiB limit: it is refused for its wrong shape instead
    assert set(errors) == set(bad)
    assert all(m.startswith("evaluation log not read: ") and m.endswith("; skipped") for m in errors.values())
    assert logs.set_index("log")["used"].to_dict() == {**dict.fromkeys(bad, False), "good.eval": True}
    assert set(samples["log"]) == set(scores["log"]) == {"good.eval"}
    assert len(samples) == 40
