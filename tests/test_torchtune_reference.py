"""The fast bar scanner against the plain-regex reference reader (the oracle).

Hypothesis writes progress-bar and log text the way torchtune and tqdm do — stale redraws,
frames joined by ``\\r`` or ``\\n\\r…ESC[A``, ``Step N |`` lines glued onto a frame, epochs of six
to nine digits, steps of eight and nine digits, frames whose description or loss cannot be
read, a frame cut by a kill — and the scanner must give, for every step, what
:func:`read_reference` gives: epoch and loss from the bar, loss/lr/tokens per second from the
``Step`` lines, and the same count (and first line) of frames it could not decode.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources.torchtune.reference import read_reference

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

losses = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda x: repr(float(x))),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e-05", "-1.5", "+2", ".5", "5.", "1_0", "0.000000000000000001",
                     "12345678901234567890.5", "4.921807289123535"]),
)
bad_losses = st.sampled_from(["abc", "1.2.3", "--1", "", "1e", "nan!", "0x10", "½"])
epochs = st.one_of(st.integers(1, 30), st.integers(100_000, 999_999_999))
huge = st.integers(10**9, 10**13)
separators = st.sampled_from(["\r", "\n\r", "\r\x1b[A\n", "\n", "\r\n"])
prefixes = st.sampled_from(["", "", "[rank0]:", "[trainer0|0]:"])


def tail(n: int, total: int) -> str:
    cells = ("█" * (10 * min(n, total) // total)).ljust(10)
    return f": {100 * min(n, total) // total:3d}%|{cells}| {min(n, total)}/{total} [00:{n % 60:02d}<00:07,  1.03s/it]"


def step_line(step: int, loss: str, lr: str, tps: str) -> str:
    return f"Step {step} | loss:{loss} lr:{lr} tokens_per_second_per_gpu:{tps} "


@st.composite
def captures(draw) -> str:
    """One attempt's capture: bar and ``Step`` steps only go forwards (a step backwards is a restart)."""
    step = draw(st.sampled_from([0, 0, 99_990, 9_999_990, 99_999_990, 123_456_780, 499_999_990]))
    line_step = 0
    epoch = draw(epochs)
    loss = "2.5"
    text = ""
    kinds = st.sampled_from(["frame", "frame", "frame", "stale", "jump", "epoch", "step", "glued", "log", "bad",
                             "cut", "huge"])
    readable = False  # the last tagged frame was read: a stale redraw may repeat it
    for kind in draw(st.lists(kinds, min_size=1, max_size=40)):
        sep, prefix = draw(separators), draw(prefixes)
        if kind == "stale" and not readable:
            kind = "frame"
        readable = kind in ("frame", "jump", "epoch", "glued", "stale") or (readable and kind in ("step", "log"))
        if kind in ("frame", "jump", "epoch", "glued", "stale"):
            if kind == "jump":
                step += 10 ** draw(st.integers(1, 8))
            if kind == "epoch":
                epoch = draw(epochs)
            if kind != "stale":  # a stale redraw repeats the description; its loss may differ
                step += 1
            loss = draw(losses)
            if step >= 10**9:
                continue
            text += f"{sep}{prefix}{epoch}|{step}|Loss: {loss}{tail(step, draw(st.integers(1, 50)))}"
            if kind == "glued":
                line_step += 1
                text += step_line(line_step, draw(losses), draw(losses), draw(losses)) + "\n"
        elif kind == "step":
            line_step += draw(st.integers(1, 3))
            logger = draw(st.sampled_from(["", "INFO:torchtune.utils._logging:"]))
            text += f"\n{logger}{step_line(line_step, draw(losses), draw(losses), draw(losses))}\n"
        elif kind == "log":
            text += draw(st.sampled_from([
                "\nINFO:torchtune.utils._logging:Model checkpoint of size 0.01 GiB saved to /o/epoch_0/m.safetensors\n",
                "\rLoading checkpoint shards: 100%|██████████| 2/2 [00:01<00:00,  1.50it/s]\n",
                "\n  0%|          | 0/8 [00:00<?, ?it/s]",
                "\nwandb: Run summary:\nwandb:   loss 1.234\n\n",
            ]))
        elif kind == "bad":  # a description or loss the format does not allow: counted, never read
            step += 1
            # each names its own step: the scanner folds a redraw of the same description (tested below)
            desc = draw(st.sampled_from([f"{epoch}|{step}", f"{draw(huge)}|{step}", f"{epoch}|{10**9 + step}",
                                         f"x|{step}", f"{epoch}|x{step}", f"{step}"]))
            text += f"{sep}{prefix}{desc}|Loss: {draw(bad_losses)}{tail(step, 8)}"
        elif kind == "cut":  # killed while writing the loss: the line ends inside it
            step += 1
            text += f"{sep}{prefix}{epoch}|{step}|Loss: {draw(losses)[:3]}\n"
        else:  # a long description that still reads: ok digits, loss too long for the window
            step += 1
            text += f"{sep}{prefix}{epoch}|{step}|Loss: {'1' * 30}.5{tail(step, 8)}"
    return text + draw(st.sampled_from(["", "\n"]))


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return repr(a) == repr(b) or (math.isnan(a) and math.isnan(b))
    return a == b


def check(text: str, chunk_size: int = tt.CHUNK_SIZE) -> None:
    data = text.encode()
    ref = read_reference(data)
    out = tt.read_slurm_bytes(data, chunk_size=chunk_size)
    assert not out.earlier_attempts, "generated text is one attempt"
    fast = {s: (e, lo) for s, e, lo in zip(out.bar_step.tolist(), out.bar_epoch.tolist(), out.bar_loss.tolist(),
                                          strict=True)}
    assert list(fast) == list(ref.bar), "the same steps, in order"
    for s, (e, lo) in ref.bar.items():
        assert fast[s][0] == e, (s, fast[s], e)
        assert same(fast[s][1], lo), (s, fast[s], lo)
    assert out.stdout_steps.keys() == ref.stdout_steps.keys()
    for s, values in ref.stdout_steps.items():
        assert out.stdout_steps[s].keys() == values.keys()
        assert all(same(out.stdout_steps[s][k], v) for k, v in values.items()), (s, out.stdout_steps[s], values)
    assert (out.undecoded_frames, out.first_undecoded) == (ref.undecoded, ref.first_undecoded)
    assert out.pending_cut == ref.pending_cut


@SETTINGS
@given(text=captures(), chunk=st.sampled_from([tt.CHUNK_SIZE, tt.CHUNK_SIZE, 7, 64, 1000]))
@example(text="\r1|123456789|Loss: 1.5: 10%|#| 1/8 [00:01<00:07,  1.03s/it]"
              "\r1|223456789|Loss: 2.5: 20%|#| 2/8 [00:02<00:06,  1.03s/it]\n", chunk=tt.CHUNK_SIZE)
@example(text="\r1000000|5|Loss: 1.5: 10%|#| 1/8 [00:01<00:07,  1.03s/it]\r1|6|Loss: 2.5\n:\n",
         chunk=tt.CHUNK_SIZE)
def test_scanner_agrees_with_reference(text: str, chunk: int) -> None:
    check(text, chunk)


def test_steps_that_end_in_the_same_eight_digits_are_both_kept() -> None:
    """Stale redraws are collapsed by the 8 bytes before ``|Loss``; 9-digit steps can share them."""
    out = tt.read_slurm_bytes(b"\r1|123456789|Loss: 1.5: 10%|#| 1/8 [00:01<00:07,  1.03s/it]"
                              b"\r1|223456789|Loss: 2.5: 20%|#| 2/8 [00:02<00:06,  1.03s/it]\n")
    assert out.bar_step.tolist() == [123456789, 223456789]
    assert out.bar_loss.tolist() == [1.5, 2.5]


def test_a_loss_cut_by_a_line_break_is_not_read_across_it() -> None:
    """``…|Loss: 2.5`` then a new line starting with ``:`` is a frame cut at the line end, not 2.5."""
    out = tt.read_slurm_bytes(b"\r1|5|Loss: 1.5: 10%|#| 1/8 [00:01<00:07,  1.03s/it]\r1|6|Loss: 2.5\n:x\n"
                              b"\r1|7|Loss: 3.5: 30%|#| 3/8 [00:03<00:05,  1.03s/it]\n")
    assert out.bar_step.tolist() == [5, 7]
    assert (out.undecoded_frames, out.first_undecoded) == (1, "1|6|Loss: 2.5")


@pytest.mark.parametrize("lead", [b"", b"x"])
def test_an_unreadable_frame_redrawn_at_once_is_still_named(lead: bytes) -> None:
    """The scanner folds a run of redraws that share the 8 bytes before ``|Loss`` before decoding
    (the last stands for them all), so an unreadable frame redrawn at once is counted once or per
    redraw depending on the bytes before it — but always counted and named. The reference counts
    every frame, which is why the generator above redraws only frames that can be read."""
    frame = b"1|6|Loss: abc: 10%|#| 1/8 [00:01<00:07,  1.03s/it]"
    out = tt.read_slurm_bytes(b"\r" + lead + frame + b"\r" + lead + frame + b"\n")
    assert 1 <= out.undecoded_frames <= 2
    assert out.first_undecoded == (lead + frame).decode()
    assert read_reference(b"\r" + lead + frame + b"\r" + lead + frame + b"\n").undecoded == 2


def test_reference_names_what_it_cannot_read() -> None:
    ref = read_reference(b"\r1|5|Loss: 1.5:\r12345678901|6|Loss: 2.5:\r1|7|Loss: abc:\r1|8|Loss: 4.5")
    assert ref.bar == {5: (1, 1.5)}
    assert (ref.undecoded, ref.first_undecoded, ref.pending_cut) == (2, "12345678901|6|Loss: 2.5:", "1|8|Loss: 4.5")


def test_stale_redraws_of_short_steps_are_folded_without_the_slow_comparison(monkeypatch) -> None:
    """Steps of up to 7 digits sit whole in the 8-byte key: their redraws fold by one compare (the
    digit-by-digit comparison is only for 8+ digits; running it per frame made reading 6× slower)."""
    from analyze_experiment.sources.torchtune import scanner

    def refuse(a, lpos):
        raise AssertionError("compared in full")

    monkeypatch.setattr(scanner, "_description", refuse)
    steps = [7, 12, 123, 1234, 12345, 123456, 1234567]
    frames = "".join(f"\r{e}|{s}|Loss: 1.5: 10%|#| 1/8 [00:01<00:07,  1.03s/it]" * 2
                     for s in steps for e in (3, 12345))
    out = tt.read_slurm_bytes(frames.encode() + b"\n")
    assert out.bar_step.tolist() == steps
    assert out.bar_frames == 4 * len(steps)
