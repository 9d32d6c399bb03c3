"""The torchtune SLURM/stdout and DiskLogger readers against real captured output.

The ``local_*`` fixtures are real torchtune runs under a real Slurm (see
tests/fixtures/torchtune/README.md); expected values were read off the files by eye.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analyze_experiment.sources import torchtune as tt
from analyze_experiment.sources.torchtune import disklog as tt_disklog
from analyze_experiment.sources.torchtune import reader as tt_reader

FIX = Path(__file__).parent / "fixtures" / "torchtune"


def read(name: str) -> tt.SlurmOutput:
    return tt.read_slurm_output(FIX / name)


# name -> (distinct steps, bar frames with a description, last step, final loss, epochs complete)
SAMPLES = {
    "local_v0.3.1_lora_cpu.out": (16, 25, 16, 4.94819974899292, 2),
    "local_v0.4.0_lora_cpu.out": (16, 26, 16, 4.948200225830078, 2),
    "local_v0.5.0_lora_cpu.out": (16, 30, 16, 4.948200225830078, 2),
    "local_v0.6.1_lora_cpu_slurm_completed.out": (16, 26, 16, 4.952439785003662, 2),
    "local_v0.6.1_lora_cpu_slurm_nan.out": (8, 14, 8, math.nan, 1),
    "local_v0.6.1_lora_cpu_slurm_scancel.out": (67, 109, 67, 4.099761962890625, 8),
    "local_v0.6.1_lora_cpu_slurm_timeout.out": (171, 287, 171, 4.009335517883301, 21),
    "local_v0.6.1_lora_cpu_slurm_timeout_stdoutlogger_buffered.out": (219, 363, 219, 4.0372467041015625, 27),
    "local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_buffered.out": (8, 15, 8, 4.949013710021973, 1),
    "local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_unbuffered.out": (8, 15, 8, 4.949013710021973, 1),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_bar_steps_and_final_loss(name: str) -> None:
    n_steps, n_frames, last, final, complete = SAMPLES[name]
    out = read(name)
    assert len(out.bar_step) == n_steps
    assert out.bar_frames == n_frames
    assert out.bar_step.tolist() == list(range(1, last + 1))
    if math.isnan(final):
        assert math.isnan(out.bar_loss[-1])
    else:
        assert out.bar_loss[-1] == final
    assert sum(e.complete for e in out.epochs.values()) == complete
    assert out.recipe == "LoRAFinetuneRecipeSingleDevice"
    assert out.config["batch_size"] == 4
    assert out.config["gradient_accumulation_steps"] == 2


def test_epoch_timings_completed() -> None:
    out = read("local_v0.6.1_lora_cpu_slurm_completed.out")
    # first 100 % frame of each epoch: 1|8 … 8/8 [00:04<…] and 2|16 … 8/8 [00:00<…]; the later
    # redraws (1.89it/s, 12.45it/s) of the same frames are not used for timing
    assert {e: (i.total, i.elapsed_s, i.complete) for e, i in out.epochs.items()} == {
        1: (8, 4.0, True),
        2: (8, 0.0, True),
    }
    assert out.checkpoint_s == {0: 0.02, 1: 0.01}
    assert out.final_checkpoint == "Saving final epoch checkpoint."
    assert [(c.kind, c.epoch) for c in out.checkpoints] == [
        ("Model", 0), ("Adapter", 0), ("Recipe", 0), ("Model", 1), ("Adapter", 1),
    ]
    assert out.disk_log_names == ["/scratch/gpfs/jdoe/tt-run/slurm/out_1/logs/log_1795713941.txt"]
    assert out.events == []


def test_epoch_timings_versions() -> None:
    assert {e: i.elapsed_s for e, i in read("local_v0.3.1_lora_cpu.out").epochs.items()} == {1: 0.0, 2: 3.0}
    assert {e: i.elapsed_s for e, i in read("local_v0.4.0_lora_cpu.out").epochs.items()} == {1: 4.0, 2: 0.0}
    assert {e: i.elapsed_s for e, i in read("local_v0.5.0_lora_cpu.out").epochs.items()} == {1: 5.0, 2: 4.0}


def test_timeout_partial_epoch() -> None:
    out = read("local_v0.6.1_lora_cpu_slurm_timeout.out")
    last = out.epochs[22]
    assert (last.complete, last.last_n, last.total, last.last_elapsed_s) == (False, 3, 8, 2.0)
    assert [e.kind for _, e in out.events] == ["timeout"]
    assert out.events[0][1].line == (
        "slurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT 2026-11-26T17:26:55 DUE TO TIME LIMIT ***"
    )
    assert out.final_checkpoint is None


def test_scancel_event() -> None:
    out = read("local_v0.6.1_lora_cpu_slurm_scancel.out")
    assert [(e.kind, e.job) for _, e in out.events] == [("cancelled", "3")]


def test_versions_sizes_gb_vs_gib() -> None:
    v03 = read("local_v0.3.1_lora_cpu.out")
    assert [c.path.rsplit("/", 1)[1] for c in v03.checkpoints][:3] == [
        "torchtune_model_0.pt", "adapter_0.pt", "recipe_state.pt",
    ]
    assert v03.checkpoints[0].epoch == 0
    assert read("local_v0.5.0_lora_cpu.out").checkpoints[0].epoch == 0


@pytest.mark.parametrize(
    ("name", "disk"),
    [
        ("local_v0.3.1_lora_cpu.out", "local_v0.3.1_lora_cpu.disklogger.txt"),
        ("local_v0.4.0_lora_cpu.out", "local_v0.4.0_lora_cpu.disklogger.txt"),
        ("local_v0.5.0_lora_cpu.out", "local_v0.5.0_lora_cpu.disklogger.txt"),
        ("local_v0.6.1_lora_cpu_slurm_completed.out", "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt"),
        ("local_v0.6.1_lora_cpu_slurm_nan.out", "local_v0.6.1_lora_cpu_slurm_nan.disklogger.txt"),
        ("local_v0.6.1_lora_cpu_slurm_timeout.out", "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt"),
    ],
)
def test_disklogger_losses_equal_bar_losses(name: str, disk: str) -> None:
    out = read(name)
    log = tt.read_disk_log(FIX / disk)
    bar = dict(zip(out.bar_step.tolist(), out.bar_loss.tolist(), strict=True))
    assert sorted(log.steps) == sorted(bar)
    for step, values in log.steps.items():
        a, b = values["loss"], bar[step]
        assert (math.isnan(a) and math.isnan(b)) or a == b, step
    assert log.bad_lines == 0


def test_disklogger_values() -> None:
    log = tt.read_disk_log(FIX / "local_v0.6.1_lora_cpu_slurm_completed.disklogger.txt")
    assert log.steps[1] == {"loss": 4.921807289123535, "lr": 0.0015, "tokens_per_second_per_gpu": 107.27200317382812}
    assert log.steps[15]["lr"] == 3.760813172726457e-05
    assert log.steps[16]["lr"] == 0.0
    nan = tt.read_disk_log(FIX / "local_v0.6.1_lora_cpu_slurm_nan.disklogger.txt")
    assert math.isnan(nan.steps[5]["loss"]) and nan.steps[4]["loss"] == 4.852031230926514


def test_stdoutlogger_buffered_lags_bar() -> None:
    out = read("local_v0.6.1_lora_cpu_slurm_timeout_stdoutlogger_buffered.out")
    assert max(out.stdout_steps) == 216
    assert int(out.bar_step[-1]) == 219
    assert out.stdout_steps[216]["loss"] == 4.09381103515625 == float(out.bar_loss[out.bar_step == 216][0])


@pytest.mark.parametrize(
    "name",
    ["local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_buffered.out", "local_v0.6.1_lora_cpu_stdoutlogger_gradnorm_unbuffered.out"],
)
def test_stdoutlogger_grad_norm(name: str) -> None:
    out = read(name)
    assert sorted(out.stdout_steps) == list(range(1, 9))
    assert out.stdout_steps[1]["grad_norm"] == 0.05729099363088608
    assert out.stdout_steps[8]["lr"] == 0.0
    for s, v in out.stdout_steps.items():
        assert v["loss"] == float(out.bar_loss[out.bar_step == s][0])


def test_torchrun_failure() -> None:
    out = read("local_v0.6.1_full_distributed_cpu_torchrun_failure.out")
    assert len(out.bar_step) == 0
    assert out.recipe == "FullFinetuneRecipeDistributed"
    assert out.config["epochs"] == 1
    assert out.ranks == {0, 1}
    kinds = [e.kind for _, e in out.events]
    assert kinds.count("traceback") == 3
    assert "child_failed" in kinds
    assert next(e.line for _, e in out.events if e.kind == "exception") == (
        "[rank0]: ValueError: Logging memory stats is not supported on CPU devices"
    )


def test_cruijff_main_era_log() -> None:
    out = read("cruijff_slurm_training_output.txt")
    assert out.bar_frames == 18  # upstream's own test counts 18 loss matches
    assert int(out.bar_step[-1]) == 500 and out.bar_loss[-1] == 0.26427456736564636
    assert len(out.bar_step) == 16
    assert out.memory_init == {"active": 2.35, "alloc": 2.35, "reserved": 2.37}
    assert out.wandb_summary == {"global_step": 500.0, "loss": 0.26427, "lr": 0.0, "peak_memory_active": 18.77768}
    assert out.checkpoint_s == {0: 33.06, 1: 32.51}
    assert {e: (i.total, i.elapsed_s) for e, i in out.epochs.items()} == {1: (250, 115.0), 2: (250, 113.0)}
    assert out.config == {"batch_size": 32, "epochs": 2,
                          "model": {"_component_": "torchtune.models.llama3_2.lora_llama3_2_1b", "lora_rank": 16}}


# ---- lines in the formats of public excerpts (our own lines) --------------------------------
def test_prefixed_frames_and_logger_prefixes() -> None:
    data = (
        "[trainer0|0]:1|25|Loss: 1.2621808052062988:  26%|██▌       | 26/101 [06:45<17:27, 13.96s/it]\n"
        "[trainer0|0]:1|26|Loss: 1.2436443567276:  26%|██▌       | 26/101 [06:45<17:27, 13.96s/it]   [trainer0|0]:\n"
        "[rank0]:2|27|Loss: 3.5e-05:  27%|██▋       | 27/101 [1:07:00<17:31, 14.21s/it]\n"
        "INFO:torchtune.utils._logging:Model checkpoint of size 4.98 GB saved to /tmp/m/hf_model_0002_0.pt\n"
        "INFO:torchtune.utils._logging:Adapter checkpoint of size 0.37 GiB saved to /tmp/m/epoch_3/adapter_model.pt\n"
        "NFO:torchtune.utils._logging:Saving checkpoint took 0.37 secs\n"
    ).encode()
    out = tt.read_slurm_bytes(data)
    assert out.bar_step.tolist() == [25, 26, 27]
    assert out.bar_loss.tolist() == [1.2621808052062988, 1.2436443567276, 3.5e-05]
    assert out.bar_epoch.tolist() == [1, 1, 2]
    assert out.epochs[2].last_elapsed_s == 4020.0
    assert [(c.kind, c.epoch, round(c.size_gib, 4)) for c in out.checkpoints] == [
        ("Model", 0, round(4.98e9 / 2**30, 4)), ("Adapter", 3, 0.37),
    ]
    assert out.checkpoint_s == {3: 0.37}


def test_memory_block_wordings() -> None:
    for text, key in [
        ("Memory stats after model init:\n\tGPU peak memory allocation: 8.49 GiB\n", "alloc"),
        ("Memory stats after model init:\n\tXPU peak memory reserved: 8.64 GiB\n", "reserved"),
        ("Memory stats after model init:\n\tGPU peak memory active: 2.35 GiB\n", "active"),
    ]:
        out = tt.read_slurm_bytes(text.encode())
        assert list(out.memory_init) == [key]


def test_step_lines_recipes_and_legacy() -> None:
    data = (
        b"Step 1 | loss:2.0439305901527405 class_loss:2.2051808834075928 kd_loss:1.8826802968978882 "
        b"lr:2.9999999999999997e-06 tokens_per_second_per_gpu:149.5618896484375\n"
        b"Step 2 | loss:2.4555773735046387 lr:2e-05 tokens_per_second_per_gpu:46.73149108886719 "
        b"peak_memory_active:47.32469987869263 peak_memory_alloc:52.001708984375 peak_memory_reserved:52.001708984375 \n"
        b"Step 3 | rewards/chosen:0.5 rewards/margins:-0.25 loss:0.69 \n"
        b"Step 4 | val_loss:1.25 \n"
    )
    out = tt.read_slurm_bytes(data)
    assert out.stdout_steps[1]["kd_loss"] == 1.8826802968978882
    assert out.stdout_steps[1]["lr"] == 2.9999999999999997e-06
    assert out.stdout_steps[2]["peak_memory_reserved"] == 52.001708984375
    assert out.stdout_steps[3] == {"rewards/chosen": 0.5, "rewards/margins": -0.25, "loss": 0.69}
    assert out.stdout_steps[4] == {"val_loss": 1.25}


def test_cut_step_line_keeps_only_complete_values() -> None:
    out = tt.read_slurm_bytes(b"Step 7 | loss:4.5 lr:0.00029")
    assert out.stdout_steps == {7: {"loss": 4.5}}


def test_jsonl_disklogger(tmp_path: Path) -> None:
    p = tmp_path / "log_1795713941.jsonl"
    p.write_text('{"step": 1, "loss": 2.5, "lr": 2e-05}\n{"step": 2, "loss": NaN}\nnot json\n')
    log = tt.read_disk_log(p)
    assert log.fmt == "jsonl"
    assert log.steps[1] == {"loss": 2.5, "lr": 2e-05}
    assert math.isnan(log.steps[2]["loss"])
    assert log.bad_lines == 1


# ---- bad input ------------------------------------------------------------------------------
def test_bad_input_never_raises(tmp_path: Path) -> None:
    good = (FIX / "local_v0.6.1_lora_cpu_slurm_completed.out").read_bytes()
    cases = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "binary": bytes(range(256)) * 64,
        "latin1": "Loss é\xe9\n".encode("latin-1") + good[:3000],
        "other_program": b"Epoch 1/10\nloss: 0.5 - accuracy: 0.8\nDone.\n",
    }
    for name, data in cases.items():
        out = tt.read_slurm_bytes(data, name)
        assert isinstance(out, tt.SlurmOutput)
    assert not tt.read_slurm_bytes(cases["other_program"]).looks_like_torchtune
    trunc = tt.read_slurm_bytes(cases["truncated"])
    assert trunc.bar_step.tolist() == list(range(1, len(trunc.bar_step) + 1)) and len(trunc.bar_step) > 0


def test_long_line_without_newline_is_capped() -> None:
    data = b"1|1|Loss: 2.5:  12%|#| 1/8 [00:01<00:07,  1.00it/s]\n" + b"x" * (3 * tt.MAX_SEGMENT) + b"\n"
    data += b"1|2|Loss: 2.25:  25%|#| 2/8 [00:02<00:06,  1.00it/s]\n"
    out = tt.read_slurm_bytes(data, chunk_size=1 << 16)
    assert out.long_lines == 1
    assert out.bar_step.tolist() == [1, 2]
    assert out.bar_loss.tolist() == [2.5, 2.25]


def test_parse_decimals_exact_against_float() -> None:
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.random(20000) * 10, rng.random(2000).astype(np.float32).astype(float) * 1000])
    texts = [repr(float(v)) for v in vals] + ["0.30295905470848083", "5.0329413414001465", "12345678901234567.0"]
    buf = "".join(f"\n{t}:" for t in texts).encode() + b"\n" * 40
    a = np.frombuffer(buf, np.uint8)
    starts = np.array([i + 1 for i, c in enumerate(buf) if c == 10][: len(texts)])
    got, exact, term = tt.parse_decimals(a, starts)
    assert term.all()
    for t, g, ok in zip(texts, got.tolist(), exact.tolist(), strict=True):
        if ok:
            assert g == float(t), t
    assert exact.mean() > 0.99


@pytest.mark.parametrize("name", ["local_v0.6.1_lora_cpu_slurm_timeout_stdoutlogger_buffered.out",
                                  "local_v0.6.1_lora_cpu_slurm_completed.out"])
def test_parallel_ranges_equal_sequential(name: str, monkeypatch) -> None:
    seq = tt.read_slurm_output(FIX / name, workers=1)
    monkeypatch.setattr(tt_reader, "PARALLEL_MIN_BYTES", 1)
    par = tt.read_slurm_output(FIX / name, workers=3)
    assert par.bar_step.tolist() == seq.bar_step.tolist()
    assert par.bar_loss.tolist() == seq.bar_loss.tolist()
    assert par.bar_frames == seq.bar_frames
    assert {e: (i.total, i.elapsed_s, i.complete) for e, i in par.epochs.items()} == {
        e: (i.total, i.elapsed_s, i.complete) for e, i in seq.epochs.items()}
    assert par.stdout_steps == seq.stdout_steps
    assert [(o, e.kind) for o, e in par.events] == [(o, e.kind) for o, e in seq.events]
    assert par.config == seq.config and par.final_checkpoint == seq.final_checkpoint
    assert par.n_bytes == seq.n_bytes == (FIX / name).stat().st_size


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_disklogger_chunking_and_mixed_lines(tmp_path: Path, monkeypatch, chunk: int) -> None:
    text = (FIX / "local_v0.6.1_lora_cpu_slurm_timeout.disklogger.txt").read_bytes()
    extra = b"Step 172 | val_loss:3.5 \nnot a step line\nStep 173 | loss:4.25 lr:0.0029"
    p = tmp_path / "log_1795713954.txt"
    p.write_bytes(text + extra)
    monkeypatch.setattr(tt_disklog, "_DISK_CHUNK", chunk)
    log = tt.read_disk_log(p)
    assert sorted(log.steps) == list(range(1, 174))
    assert log.steps[171] == {"loss": 4.009335517883301, "lr": 0.002999174032095059,
                              "tokens_per_second_per_gpu": 93.19692993164062}
    assert log.steps[172] == {"val_loss": 3.5}
    assert log.steps[173] == {"loss": 4.25}  # the cut lr value is not trusted
    assert (log.bad_lines, log.first_bad) == (1, "not a step line")


# ---- the config banner: libyaml and pure-Python PyYAML read it alike -------------------------
def _banner(body: str) -> bytes:
    return ("Running LoRAFinetuneRecipeSingleDevice with resolved config:\n\n" + body + "\n\n"
            "1|1|Loss: 2.5:   1%|          | 1/100 [00:01<01:39,  1.00s/it]\n").encode()


@pytest.mark.parametrize("name", [*sorted(p.name for p in FIX.glob("*.out")), "cruijff_slurm_training_output.txt"])
def test_config_banner_same_with_and_without_libyaml(name, monkeypatch) -> None:
    from analyze_experiment.sources.torchtune import lines

    fast = read(name)
    monkeypatch.setattr(lines, "_FAST_LOADER", None)
    plain = read(name)
    assert (fast.config, fast.config_error) == (plain.config, plain.config_error)
    if name == "local_v0.6.1_lora_cpu_slurm_completed.out":
        assert fast.config["model"]["lora_rank"] == 4 and fast.config["checkpointer"]["checkpoint_files"] == ["model.pt"]


@pytest.mark.parametrize("body, error", [
    ("lr: 3.0e-4\nseed: null\nflag: yes\nwhen: 2026-01-02\nrank: 0o17", None),  # YAML 1.1 scalars, as PyYAML reads them
    ("model:\n  lora_rank: [8\n", "the resolved-config banner is not valid YAML (while parsing a flow sequence)"),
    ("a: 1\nb: \x07bell", "the resolved-config banner is not valid YAML (unacceptable character #x0007: special characters are not allowed)"),
])
def test_config_banner_values_and_errors_are_pure_pythons(body, error, monkeypatch) -> None:
    import yaml

    from analyze_experiment.sources.torchtune import lines

    fast = tt.read_slurm_bytes(_banner(body))
    monkeypatch.setattr(lines, "_FAST_LOADER", None)
    plain = tt.read_slurm_bytes(_banner(body))
    assert (fast.config, fast.config_error) == (plain.config, plain.config_error)
    assert fast.config_error == error
    if error is None:
        assert fast.config == yaml.safe_load(body) and fast.config["lr"] == 3.0e-4 and fast.config["flag"] is True


def _bar(epoch: int, step: int, loss: float) -> str:
    return f"\r{epoch}|{step}|Loss: {loss!r}:  50%|#####     | 4/8 [00:01<00:01,  1.00it/s]"


def test_curve_over_many_blocks_keeps_the_last_attempt() -> None:
    """Three attempts of steps 1-600 read in 4 KB blocks (hundreds of curve pieces): one point per
    step, the last attempt's loss; the pieces are compacted once steps go back, never before."""
    from analyze_experiment.sources.torchtune.blocks import _Curve, _keep_steps
    from analyze_experiment.sources.torchtune.scanner import _Block

    text = "".join(_bar(1, s, a + s / 1000) for a in range(3) for s in range(1, 601)) + "\n"
    out = tt.read_slurm_bytes(text.encode(), chunk_size=4096)
    assert out.bar_step.tolist() == list(range(1, 601))
    assert out.bar_loss.tolist() == [2 + s / 1000 for s in range(1, 601)]

    def block(steps: list[int]) -> _Block:
        s = np.array(steps)
        return _Block(s, s, np.ones(len(s), np.int64), s * 0.5, [], len(s), s, s, s)

    curve = _Curve()
    for i in range(200):  # growing steps: 200 pieces, never concatenated
        _keep_steps(block([2 * i + 1, 2 * i + 2]), curve)
    assert curve.ordered and len(curve.steps) == 200
    for i in range(200):  # a restart: compacted as it goes, one point per step
        _keep_steps(block([2 * i + 1, 2 * i + 2]), curve)
    assert not curve.ordered or len(curve.steps) < 200
    steps = np.concatenate(curve.steps)
    assert len(steps) < 2 * 400
    assert sorted(set(steps.tolist())) == list(range(1, 401))
