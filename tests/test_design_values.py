"""Parameter names, values and run names: the normalisation both design formats share."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyze_experiment.ingest.design import (
    normalize_param_name,
    normalize_run_type,
    params_from_run_name,
    parse_value,
)

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("LoRA Rank", "lora_rank"),
        ("lora_rank", "lora_rank"),
        ("Learning Rate", "learning_rate"),
        ("lr", "learning_rate"),
        ("LR", "learning_rate"),
        ("Batch Size", "batch_size"),
        ("Batch sizes", "batch_size"),
        ("batch_size", "batch_size"),
        ("**Epochs**", "epochs"),
        ("num_epochs", "epochs"),
        ("LoRA alpha", "lora_alpha"),
        ("loraRank", "lora_rank"),
        ("learningRate", "learning_rate"),
        ("Time (min)", "time"),
        ("Est. Time", "est_time"),
        ("Weight Decay", "weight_decay"),
        ("System prompt", "system_prompt"),
        ("1st factor", "p_1st_factor"),
        ("???", "param"),
    ],
)
def test_normalize_param_name(label: str, expected: str) -> None:
    assert normalize_param_name(label) == expected


@given(st.text(max_size=40))
def test_normalize_param_name_is_an_identifier_and_idempotent(label: str) -> None:
    name = normalize_param_name(label)
    assert IDENT.match(name), name
    assert normalize_param_name(name) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-5", 1e-05),
        ("5e-05", 5e-05),
        ("3e-4", 0.0003),
        ("0.0001", 0.0001),
        ("8", 8),
        (" 16 ", 16),
        ("-3", -3),
        ("`64`", 64),
        ("true", True),
        ("False", False),
        ("-", None),
        ("—", None),
        ("N/A", None),
        ("", None),
        ("~10min", "~10min"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1_000", "1_000"),
        ("Llama-3.2-1B-Instruct", "Llama-3.2-1B-Instruct"),
    ],
)
def test_parse_value(text: str, expected: object) -> None:
    got = parse_value(text)
    assert got == expected
    assert type(got) is type(expected)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_parse_value_reads_integers_back(n: int) -> None:
    assert parse_value(str(n)) == n
    assert isinstance(parse_value(str(n)), int)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_value_reads_floats_back(x: float) -> None:
    text = repr(x)
    got = parse_value(text)
    assert isinstance(got, float)
    assert got == x


@given(st.text(max_size=30))
def test_parse_value_never_raises_and_keeps_unparsed_text(text: str) -> None:
    got = parse_value(text)
    assert got is None or isinstance(got, (int, float, bool, str))
    if isinstance(got, str):
        assert got == text.strip().strip("`").strip()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rank8_lr1e-5", {"lora_rank": 8, "learning_rate": 1e-05}),
        ("Llama-3.2-1B_rank16", {"lora_rank": 16}),
        ("Llama-3.2-1B-Instruct_base", {}),
        ("Llama-3.2-1B_rank8_lr5e-5", {"lora_rank": 8, "learning_rate": 5e-05}),
        ("rank4-lr0.0001-bs8", {"lora_rank": 4, "learning_rate": 0.0001, "batch_size": 8}),
        (
            "cap_alpha32_wd0.01_seed42_epochs3",
            {"lora_alpha": 32, "weight_decay": 0.01, "seed": 42, "epochs": 3},
        ),
        ("Rank16_LR1e-4", {"lora_rank": 16, "learning_rate": 0.0001}),
        ("income_rank8_epoch1", {"lora_rank": 8}),
        ("frank8_clr1", {}),
        ("rank8x", {}),
    ],
)
def test_params_from_run_name(name: str, expected: dict[str, object]) -> None:
    assert params_from_run_name(name) == expected


@given(
    model=st.sampled_from(["Llama-3.2-1B", "Llama-3.2-1B-Instruct", "Qwen2.5-0.5B", ""]),
    rank=st.integers(min_value=1, max_value=512),
    lr_mantissa=st.integers(min_value=1, max_value=9),
    lr_exp=st.integers(min_value=1, max_value=8),
    sep=st.sampled_from(["_", "-"]),
)
def test_params_from_run_name_round_trip(
    model: str, rank: int, lr_mantissa: int, lr_exp: int, sep: str
) -> None:
    name = sep.join(p for p in (model, f"rank{rank}", f"lr{lr_mantissa}e-{lr_exp}") if p)
    assert params_from_run_name(name) == {
        "lora_rank": rank,
        "learning_rate": float(f"{lr_mantissa}e-{lr_exp}"),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fine-tuned", "fine-tuned"),
        ("fine-tuned", "fine-tuned"),
        ("finetuned", "fine-tuned"),
        ("Control", "control"),
        ("control", "control"),
        ("base", "control"),
        ("eval-only", "eval-only"),
        ("eval_only", "eval-only"),
        ("Eval Only", "eval-only"),
        ("something", None),
        (None, None),
    ],
)
def test_normalize_run_type(text: str | None, expected: str | None) -> None:
    assert normalize_run_type(text) == expected
