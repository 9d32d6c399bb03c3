"""Property tests: compose a bar frame / Step line / SLURM line, parse it, get the values back."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyze_experiment.sources import slurm
from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources.torchtune import words

FIX = Path(__file__).parent / "fixtures" / "torchtune"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

float32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(float)
loss_values = st.one_of(float32, st.floats(allow_nan=False, allow_infinity=False),
                        st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e-05, 2.5e16]))


def frame(epoch: int, step: int, loss: float, n: int, total: int, elapsed: str) -> str:
    cells = ("█" * (10 * n // total)).ljust(10)
    return f"{epoch}|{step}|Loss: {loss!r}: {100 * n // total:3d}%|{cells}| {n}/{total} [{elapsed}<00:07,  1.03s/it]"


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@SETTINGS
@given(
    rows=st.lists(st.tuples(st.integers(1, 99), loss_values), min_size=1, max_size=30),
    prefix=st.sampled_from(["", "[rank0]:", "[trainer0|0]:"]),
    sep=st.sampled_from(["\r", "\n\r", "\r\x1b[A\n"]),
    total=st.integers(1, 50),
    glue=st.sampled_from(["", "Starting checkpoint save...", "Step 1 | loss:1.5 "]),
)
def test_bar_frames_roundtrip(rows, prefix, sep, total, glue) -> None:
    text = ""
    for i, (epoch, loss) in enumerate(rows, start=1):
        text += sep + prefix + frame(epoch, i, loss, min(i, total), total, "01:02")
    text += glue + "\n"
    out = tt.read_slurm_bytes(text.encode())
    assert out.bar_step.tolist() == list(range(1, len(rows) + 1))
    assert out.bar_epoch.tolist() == [e for e, _ in rows]
    for got, (_, want) in zip(out.bar_loss.tolist(), rows, strict=True):
        assert same(got, want)


@SETTINGS
@given(
    step=st.integers(0, 10**8),
    values=st.dictionaries(
        st.sampled_from(["loss", "lr", "tokens_per_second_per_gpu", "grad_norm", "kd_loss", "rewards/chosen"]),
        loss_values, min_size=1),
)
def test_step_line_roundtrip(step, values) -> None:
    line = f"Step {step} | " + "".join(f"{k}:{v!r} " for k, v in values.items())
    parsed = tt.parse_step_line(line)
    assert parsed is not None
    assert parsed[0] == step
    assert set(parsed[1]) == set(values)
    for k, v in values.items():
        assert same(parsed[1][k], v)


@SETTINGS
@given(
    job=st.integers(1, 10**8),
    node=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    prefix=st.sampled_from(["slurmstepd: error: ", "slurmstepd-{node}: error: ", "slurmstepd: ", "1|3|Loss: 2.0:  38%|"]),
    what=st.sampled_from(["JOB", "STEP"]),
    reason=st.sampled_from([("", "cancelled"), (" DUE TO TIME LIMIT", "timeout"), (" DUE TO PREEMPTION", "preempted"),
                            (" DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS", "node_failure")]),
)
def test_slurm_cancel_lines(job, node, prefix, what, reason) -> None:
    jid = f"{job}.0" if what == "STEP" else str(job)
    line = f"{prefix.format(node=node)}*** {what} {jid} ON {node} CANCELLED AT 2024-04-20T09:09:37{reason[0]} ***"
    ev = slurm.classify_line(line)
    assert ev is not None and ev.kind == reason[1] and ev.job == jid


@SETTINGS
@given(
    n=st.integers(1, 99),
    step=st.from_regex(r"(?:step |StepId=)[0-9]{1,9}\.(?:batch|extern|[0-9]{1,3})", fullmatch=True),
    node=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
)
def test_slurm_oom_lines(n, step, node) -> None:
    for line in (
        f"slurmstepd-{node}: error: Detected {n} oom-kill event(s) in {step} cgroup. Some of your processes may have been killed by the cgroup out-of-memory handler.",
        f"slurmstepd: error: Detected {n} oom_kill event{'s' if n > 1 else ''} in {step}. Some of the step tasks have been OOM Killed.",
    ):
        ev = slurm.classify_line(line)
        assert ev is not None and ev.kind == "oom"


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=3000))
def test_garbage_never_raises(data) -> None:
    out = tt.read_slurm_bytes(data)
    assert len(out.bar_step) == len(out.bar_loss)
    assert slurm.classify_line(data.decode("utf-8", "replace")) is None or True


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=400))
def test_text_lines_never_raise(text) -> None:
    slurm.classify_line(text)
    tt.parse_step_line(text)
    tt.read_slurm_bytes(text.encode("utf-8", "surrogatepass"))


def _summary(out: tt.SlurmOutput) -> tuple:
    return (
        out.bar_step.tolist(), out.bar_epoch.tolist(), [repr(x) for x in out.bar_loss.tolist()], out.bar_frames,
        {e: (i.total, i.elapsed_s, i.complete, i.last_n, i.last_elapsed_s) for e, i in out.epochs.items()},
        {s: {k: repr(v) for k, v in d.items()} for s, d in out.stdout_steps.items()},
        [(e.kind, e.line) for _, e in out.events], out.config, out.checkpoint_s,
        [(c.kind, c.path, c.epoch) for c in out.checkpoints], out.final_checkpoint, out.disk_log_names,
    )


FILES = ["local_v0.6.1_lora_cpu_slurm_completed.out", "local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_unbuffered.out",
         "local_v0.6.1_lora_cpu_slurm_timeout.out", "cruijff_slurm_training_output.txt"]
WHOLE = {name: _summary(tt.read_slurm_bytes((FIX / name).read_bytes())) for name in FILES}


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(FILES), chunk=st.integers(1, 5000))
def test_chunk_size_does_not_change_result(name, chunk) -> None:
    data = (FIX / name).read_bytes()
    assert _summary(tt.read_slurm_bytes(data, chunk_size=chunk)) == WHOLE[name]


def test_float32_reprs_parse_exactly() -> None:
    # every float32 in a stride of the bit space, as torchtune prints them (repr of the double)
    texts = [repr(struct.unpack("<f", struct.pack("<I", b))[0]) for b in range(0x30000000, 0x48000000, 104729)]
    text = "".join(f"\r1|{i}|Loss: {t}:  50%|#####     | 4/8 [00:01<00:01,  1.00it/s]" for i, t in enumerate(texts, 1))
    out = tt.read_slurm_bytes(text.encode() + b"\n")
    assert [repr(x) for x in out.bar_loss.tolist()] == texts


plain_decimals = st.from_regex(r"[0-9]{1,3}\.[0-9]{0,20}", fullmatch=True)


@SETTINGS
@given(texts=st.lists(st.one_of(float32.map(repr), plain_decimals), min_size=1, max_size=40),
       tail=st.sampled_from([":", ":  50%|", ": 100%|#", "::", ":9"]))
def test_parse_decimals_word_path_equals_float(texts, tail) -> None:
    """The 8-byte-word loss parser gives Python's float wherever it claims an exact result."""
    buf = "".join(f"\n{t}{tail}" for t in texts).encode() + b"\n" * 40
    a = np.frombuffer(buf, np.uint8)
    starts = np.flatnonzero(a == 10)[: len(texts)] + 1
    got, exact, term = tt.parse_decimals(a, starts)
    assert term.all()
    for t, g, ok in zip(texts, got.tolist(), exact.tolist(), strict=True):
        if ok:
            assert g == float(t), t
    plain = [bool(re.fullmatch(r"[0-9]\.[0-9]{0,17}", t)) for t in texts]
    assert exact.sum() >= 0.9 * sum(plain) - 1  # the word path takes the usual form


@SETTINGS
@given(epoch=st.integers(0, 10**11), step=st.integers(0, 10**11),
       lead=st.sampled_from(["\r", "\n", ":", "x", "12", "|"]), width=st.integers(0, 3))
def test_desc_ints_equal_column_loop(epoch, step, lead, width) -> None:
    """Step/epoch read with word operations equal the digit-by-digit reference (widths 10 and 10)."""
    text = f"{lead}{epoch:0{width}d}|{step}|Loss: 1.5:".encode()
    a = np.frombuffer(b"\n" * 40 + text + b"\n" * 40, np.uint8)
    q = np.array([40 + text.index(b"|Loss")])
    step_v, ks, epoch_v, ke, pipe = words._desc_ints(a, words._u64_view(a), q)
    ref_step, ref_ks = words._trailing_int(a, q, 10)
    ref_epoch, ref_ke = words._trailing_int(a, q - ref_ks - 1, words._EPOCH_DIGITS)
    assert (int(ks[0]), int(step_v[0])) == (int(ref_ks[0]), int(ref_step[0]))
    assert bool(pipe[0]) == (a[q - ref_ks - 1] == 124).all()
    if 0 < ref_ks[0] < 10:
        assert (int(ke[0]), int(epoch_v[0])) == (int(ref_ke[0]), int(ref_epoch[0]))


# decimals whose quotient in x87 extended precision lands exactly on a float64 midpoint (the
# 11 bits dropped when rounding to float64 are 10000000000); for the first six, rounding the
# extended result gives a different float64 than rounding the decimal itself
MIDPOINT_DECIMALS = ["2.79600073564427265", "2.11612993618221501", "4.58028122131686688", "6.53240052404258309",
                     "9.53869698675619393", "2.51164602082897237", "5.42265607360138846", "1.11168801832861186"]


@pytest.mark.parametrize("kind", ["x87", "wide", "double"])
def test_round_exact_never_claims_a_double_rounding(kind, monkeypatch) -> None:
    """Each way of rounding (by what numpy's longdouble is) gives Python's float wherever it
    claims an exact result, midpoint cases included, and the reader's losses are exact."""
    if kind == "x87" and words._longdouble_kind() != "x87":
        pytest.skip("this platform's longdouble is not x87 extended precision")
    if kind == "wide" and np.finfo(np.longdouble).nmant < 63:
        pytest.skip("this platform's longdouble is float64")
    monkeypatch.setattr(words, "_LONGDOUBLE", kind)
    rng = np.random.default_rng(7)
    f32 = [repr(float(x)) for x in rng.random(300).astype(np.float32)]
    texts = MIDPOINT_DECIMALS + f32 + ["0.5", "1.0", "9.99999999999999999", "0.00000000000000001"]
    buf = "".join(f"\n{t}:" for t in texts).encode() + b"\n" * 40
    a = np.frombuffer(buf, np.uint8)
    starts = np.flatnonzero(a == 10)[: len(texts)] + 1
    got, exact, _ = tt.parse_decimals(a, starts)
    wrong = [t for t, g, ok in zip(texts, got.tolist(), exact.tolist(), strict=True) if ok and g != float(t)]
    assert wrong == []
    if kind == "x87":
        assert not exact[:6].any()  # the double roundings are caught
        rest = [bool(re.fullmatch(r"[0-9]\.[0-9]{0,17}", t)) for t in texts[len(MIDPOINT_DECIMALS):]]
        claimed = exact[len(MIDPOINT_DECIMALS):]
        assert claimed[rest].mean() > 0.99  # the usual form is rarely sent to float()
    text = "".join(f"\r1|{i}|Loss: {t}:  50%|#####     | 4/8 [00:01<00:01,  1.00it/s]" for i, t in enumerate(texts, 1))
    out = tt.read_slurm_bytes(text.encode() + b"\n")
    assert out.bar_loss.tolist() == [float(t) for t in texts]


@SETTINGS
@given(size=st.integers(0, 5000), hits=st.lists(st.integers(0, 4999), max_size=200))
def test_sparse_flatnonzero_equals_flatnonzero(size, hits) -> None:
    """The argmax walk used for rare bytes gives np.flatnonzero's answer, past its hit budget too."""
    from analyze_experiment.sources.torchtune.scanner import _sparse_flatnonzero

    m = np.zeros(size, bool)
    m[[h for h in hits if h < size]] = True
    assert _sparse_flatnonzero(m).tolist() == np.flatnonzero(m).tolist()
