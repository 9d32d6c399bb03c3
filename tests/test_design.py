"""Reading experiment_summary.md / .yaml into a Design (real cruijff_kit documents + variants)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design
from analyze_experiment.ingest.design import read_design

FIXTURES = Path(__file__).parent / "fixtures" / "design"


def _experiment(
    tmp_path: Path,
    fixture: str | None = None,
    *,
    name: str = "exp",
    text: str | None = None,
    target: str | None = None,
) -> Path:
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    if fixture is not None:
        suffix = Path(fixture).suffix
        shutil.copy(FIXTURES / fixture, root / f"experiment_summary{suffix}")
    if text is not None:
        (root / (target or "experiment_summary.yaml")).write_text(text, encoding="utf-8")
    return root


def _read(root: Path) -> tuple[Design, bool, Diagnostics]:
    diag = Diagnostics(root=root)
    design, ok = read_design(root, diag)
    return design, ok, diag


def _runs(design: Design) -> dict[str, tuple[str, dict[str, object]]]:
    return {r.name: (r.type, r.params) for r in design.runs}


# --- YAML 2026 -----------------------------------------------------------------------------


def test_yaml_fixture_from_cruijff_kit(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "workflow_test.yaml"))
    assert ok
    assert design.source == "experiment_summary.yaml"
    assert design.name == "workflow_test_2026-03-16"
    assert design.question == (
        "Verify that the complete workflow executes correctly for a minimal fine-tuning "
        "experiment with two LoRA ranks."
    )
    assert design.hypothesis == "Both LoRA ranks produce functional fine-tuned models."
    assert design.purpose == "Integration test to validate skills are working after architecture changes."
    assert design.date == "2026-03-16"
    assert design.variables == {"lora_rank": [4, 8]}
    assert design.controls["epochs"] == 1
    assert design.controls["batch_size"] == 4
    assert design.controls["validation_during_training"] is True
    assert design.controls["system_prompt"] == "You are a helpful assistant."
    assert _runs(design) == {
        "Llama-3.2-1B-Instruct_rank4": ("fine-tuned", {"lora_rank": 4}),
        "Llama-3.2-1B-Instruct_rank8": ("fine-tuned", {"lora_rank": 8}),
    }
    rank4 = design.run("Llama-3.2-1B-Instruct_rank4")
    assert rank4 is not None
    assert rank4.model == "Llama-3.2-1B-Instruct"
    assert (rank4.eval_tasks, rank4.eval_epochs, rank4.vis_label) == (["capitalization"], [0], "rank4")
    assert design.tasks == ["capitalization"]
    assert design.scorers == ["match"]
    assert diag.warnings == []


def test_yaml_legacy_keys(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "legacy_keys.yaml"))
    assert ok
    assert design.name == "acs_income_rank_sweep"
    assert design.question == "Does LoRA rank change income-threshold accuracy?"
    assert design.date == "2025-12-02"
    assert design.variables == {"lora_rank": [8, 32]}
    assert design.controls == {"epochs": 1, "learning_rate": 5e-05}
    assert _runs(design) == {
        "Llama-3.2-3B_rank8": ("fine-tuned", {"lora_rank": 8, "learning_rate": 5e-05}),
        "Llama-3.2-3B_rank32": ("fine-tuned", {"lora_rank": 32, "learning_rate": 5e-05}),
        "Llama-3.2-3B_base": ("control", {}),
        # the absolute checkpoint path of an eval-only run is not a swept parameter
        "Llama-3.2-3B_prior_rank8": ("eval-only", {}),
        "Llama-3.2-1B_base": ("control", {}),
    }
    assert design.scorers == ["risk_scorer"]
    assert design.tasks == ["acs_income"]
    r8, base = design.run("Llama-3.2-3B_rank8"), design.run("Llama-3.2-3B_base")
    assert r8 is not None and base is not None
    assert (r8.eval_tasks, r8.eval_epochs) == (["acs_income"], [0])
    assert (base.eval_tasks, base.eval_epochs) == (["acs_income"], None)
    assert diag.warnings == []


def test_yaml_template_has_no_runs(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "template_schema.yaml", name="my_exp"))
    assert ok
    assert design.name == "my_exp"
    assert design.runs == []
    assert [w.file for w in diag.warnings] == ["experiment_summary.yaml"]
    assert "template" in diag.warnings[0].message


def test_yaml_unknown_type_and_matrix_run_are_reported(tmp_path: Path) -> None:
    text = """
experiment: {name: odd}
runs:
  - {name: a, type: pretrained, parameters: {lr: "1e-4", lora_rank: "-"}}
  - {type: control}
  - {name: a, type: control}
evaluation:
  matrix:
    - {run: a, tasks: [t1], epochs: [1, "x", 0]}
    - {run: ghost, tasks: [t1], epochs: [0]}
"""
    design, ok, diag = _read(_experiment(tmp_path, text=text))
    assert ok
    assert _runs(design) == {"a": ("fine-tuned", {"learning_rate": 0.0001})}
    a = design.run("a")
    assert a is not None and a.eval_epochs == [0, 1]
    messages = [w.message for w in diag.warnings]
    assert messages == [
        "run 'a' has an unrecognised type 'pretrained'; treated as fine-tuned",
        "runs[1] has no name; ignored",
        "run 'a' is listed twice; the first entry was used",
        "evaluation.matrix[0]: epoch 'x' is not a whole number; ignored",
        "evaluation.matrix names runs that are not in runs (ghost); those entries were ignored",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("experiment: {name: [unclosed\n", "not valid YAML"),
        (
            "experiment: !!python/object/apply:os.system ['echo hi']\n",
            "tag the safe YAML loader does not accept",
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "expands to more than",
        ),
        ("a: &a [1, *a]\n", "refers to itself"),
        ("- just\n- a list\n", "top level is a list"),
        ("", "top level is empty"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_bad_yaml_is_a_warning_not_a_crash(tmp_path: Path, text: str, reason: str) -> None:
    root = _experiment(tmp_path, text=text, name="bad")
    design, ok, diag = _read(root)
    assert not ok
    assert design == Design(name="bad")
    assert len(diag.warnings) == 1
    w = diag.warnings[0]
    assert (w.file, w.severity, w.stage) == ("experiment_summary.yaml", "error", "design")
    assert reason in w.message


def test_not_utf8_is_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "exp"
    root.mkdir()
    (root / "experiment_summary.md").write_bytes(b"# Experiment: x\n\xff\xfe\x00bad")
    design, ok, diag = _read(root)
    assert not ok and design.name == "exp"
    assert diag.warnings[0].file == "experiment_summary.md"
    assert "not UTF-8" in diag.warnings[0].message


# --- markdown 2025 -------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["template_913e7e3.md", "template_b75db17.md"])
def test_markdown_template_has_no_runs(tmp_path: Path, fixture: str) -> None:
    design, ok, diag = _read(_experiment(tmp_path, fixture, name="sweep_dir"))
    assert ok
    assert design.name == "sweep_dir"  # the title is a placeholder
    assert (design.runs, design.variables, design.tasks, design.question) == ([], {}, [], None)
    assert len(diag.warnings) == 1
    assert "still a template" in diag.warnings[0].message
    assert diag.warnings[0].file == "experiment_summary.md"


def test_markdown_example_004c274(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "example_004c274.md", name="oct30"))
    assert ok
    assert design.name == "oct30"  # the fragments have no H1 title
    assert _runs(design) == {
        "Llama-3.2-1B_rank8_lr1e-5": (
            "fine-tuned",
            {"lora_rank": 8, "learning_rate": 1e-05, "batch_size": 4},
        ),
        "Llama-3.2-1B_rank8_lr5e-5": (
            "fine-tuned",
            {"lora_rank": 8, "learning_rate": 5e-05, "batch_size": 4},
        ),
        "Llama-3.2-1B_rank16_lr1e-5": (
            "fine-tuned",
            {"lora_rank": 16, "learning_rate": 1e-05, "batch_size": 4},
        ),
        "Llama-3.2-1B_rank16_lr5e-5": (
            "fine-tuned",
            {"lora_rank": 16, "learning_rate": 5e-05, "batch_size": 4},
        ),
        "Llama-3.2-1B_base": ("control", {}),
    }
    assert all(r.model == "Llama-3.2-1B-Instruct" for r in design.runs)
    # no Variables table: the varied columns of All Runs
    assert design.variables == {"lora_rank": [8, 16], "learning_rate": [1e-05, 5e-05]}
    assert design.controls == {
        "recipe": "lora_finetune_single_device",
        "epochs": 2,
        "batch_size": 4,
        "lora_rank": 8,
        "learning_rate": 0.0003,
        "system_prompt": "",
        "temperature": 0.0,
    }
    assert design.scorers == ["exact_match"]
    assert design.tasks == ["capitalization", "generalization", "capitalization_task", "reasoning_task"]
    base = design.run("Llama-3.2-1B_base")
    assert base is not None and (base.eval_tasks, base.eval_epochs) == (
        ["capitalization_task", "reasoning_task"],
        None,
    )
    assert [w.message for w in diag.warnings] == [
        "the Evaluation Matrix lists runs that are not in the All Runs table "
        "(Llama-3.2-1B_rank4, Llama-3.2-3B_rank4); those rows were ignored"
    ]


def test_markdown_filled_913e7e3_ignores_status_tables(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "filled_913e7e3.md"))
    assert ok
    assert design.name == "cap_4L_rank_sweep_2025-10-24"
    assert design.question == "Is LoRA rank 16 better than rank 8 for 4-letter capitalization?"
    assert design.date == "2025-10-24 14:02"
    assert design.purpose == "parameter sweep"
    assert design.variables == {"lora_rank": [8, 16]}
    assert _runs(design) == {
        "Llama-3.2-1B_rank8": ("fine-tuned", {"lora_rank": 8, "batch_size": 4}),
        "Llama-3.2-1B_rank16": ("fine-tuned", {"lora_rank": 16, "batch_size": 4}),
        "Llama-3.2-1B_base": ("control", {}),
    }
    r8 = design.run("Llama-3.2-1B_rank8")
    assert r8 is not None and (r8.eval_tasks, r8.eval_epochs) == (["capitalization"], [0, 1])
    # only the level-2 Configuration section; "Epochs to evaluate" belongs to the Evaluation Plan
    assert "epochs_to_evaluate" not in design.controls
    assert design.controls["epochs"] == 2
    assert design.controls["gpus"] == 1
    assert design.controls["recipe"] == "lora_finetune_single_device"
    assert design.controls["system_prompt"] == ""
    assert diag.warnings == []


def test_markdown_and_yaml_of_one_sweep_agree(tmp_path: Path) -> None:
    md, ok_md, diag_md = _read(_experiment(tmp_path, "filled_b75db17.md", name="md"))
    ya, ok_ya, diag_ya = _read(_experiment(tmp_path, "same_sweep.yaml", name="yaml"))
    assert ok_md and ok_ya
    assert diag_md.warnings == [] and diag_ya.warnings == []
    assert md.name == ya.name == "cap_8L_lora_lr_sweep_2025-11-05"
    assert md.question == ya.question
    assert md.date == ya.date == "2025-11-05"
    assert md.variables == ya.variables == {"lora_rank": [4, 16], "learning_rate": [1e-05, 0.0001]}
    assert (
        _runs(md)
        == _runs(ya)
        == {
            "rank4_lr1e-5": ("fine-tuned", {"lora_rank": 4, "learning_rate": 1e-05}),
            "rank4_lr1e-4": ("fine-tuned", {"lora_rank": 4, "learning_rate": 0.0001}),
            "rank16_lr1e-5": ("fine-tuned", {"lora_rank": 16, "learning_rate": 1e-05}),
            "rank16_lr1e-4": ("fine-tuned", {"lora_rank": 16, "learning_rate": 0.0001}),
            "Llama-3.2-1B-Instruct_base": ("control", {}),
        }
    )
    assert [(r.eval_tasks, r.eval_epochs) for r in md.runs] == [
        (r.eval_tasks, r.eval_epochs) for r in ya.runs
    ]
    assert md.tasks == ya.tasks == ["capitalization"]
    assert md.scorers == ya.scorers == ["match"]
    for key in ("epochs", "batch_size", "system_prompt"):
        assert md.controls[key] == ya.controls[key]


def test_markdown_ragged_rows_warn_and_keep_what_parses(tmp_path: Path) -> None:
    design, ok, diag = _read(_experiment(tmp_path, "ragged.md"))
    assert ok
    assert _runs(design) == {
        "rank8": ("fine-tuned", {"lora_rank": 8, "batch_size": 4}),
        "rank16": ("fine-tuned", {"lora_rank": 16}),
        "rank32": ("fine-tuned", {"lora_rank": 32, "batch_size": 8}),
        "pipes | in name": ("fine-tuned", {"lora_rank": 64, "batch_size": 2}),
    }
    assert [w.message for w in diag.warnings] == [
        "line 10: a row of the All Runs table has 3 cells but the header has 6; the missing cells were read as empty",
        "line 11: a row of the All Runs table has 8 cells but the header has 6; the extra cells were ignored",
    ]


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("# Experiment: cap_sweep", "cap_sweep"),
        ("# Experiment Summary: cap_sweep", "cap_sweep"),
        ("# cap_sweep", "cap_sweep"),
        ("# Experiment: {experiment_name}", "dir_name"),
        ("## Overview", "dir_name"),
    ],
)
def test_markdown_title(tmp_path: Path, title: str, name: str) -> None:
    root = _experiment(tmp_path, text=f"{title}\n\ntext\n", target="experiment_summary.md", name="dir_name")
    assert _read(root)[0].name == name


def test_markdown_without_runs_table(tmp_path: Path) -> None:
    root = _experiment(tmp_path, text="# My sweep\n\nJust notes.\n", target="experiment_summary.md")
    design, ok, diag = _read(root)
    assert ok and design.name == "My sweep" and design.runs == []
    assert "no All Runs table" in diag.warnings[0].message


# --- choosing the document ------------------------------------------------------------------


def test_yaml_preferred_when_both_exist(tmp_path: Path) -> None:
    root = _experiment(tmp_path, "same_sweep.yaml")
    shutil.copy(FIXTURES / "filled_913e7e3.md", root / "experiment_summary.md")
    design, ok, diag = _read(root)
    assert ok and design.source == "experiment_summary.yaml"
    assert design.name == "cap_8L_lora_lr_sweep_2025-11-05"
    assert [(w.file, w.severity) for w in diag.warnings] == [("experiment_summary.md", "info")]
    assert "YAML document was used" in diag.warnings[0].message


def test_markdown_used_when_yaml_is_broken(tmp_path: Path) -> None:
    root = _experiment(tmp_path, "filled_913e7e3.md")
    (root / "experiment_summary.yaml").write_text("runs: [\n", encoding="utf-8")
    design, ok, diag = _read(root)
    assert ok and design.source == "experiment_summary.md"
    assert len(design.runs) == 3
    assert [w.file for w in diag.warnings] == ["experiment_summary.yaml", "experiment_summary.md"]


def test_no_document(tmp_path: Path) -> None:
    root = _experiment(tmp_path, name="plain")
    (root / "experiment_summary.yaml").mkdir()  # a directory is not a document
    design, ok, diag = _read(root)
    assert (design, ok) == (Design(name="plain"), False)
    assert diag.warnings == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(
            st.sampled_from(
                [
                    "# T",
                    "## All Runs",
                    "## Variables",
                    "### Evaluation Matrix",
                    "| Run Name | Type | x |",
                    "|---|---|---|",
                    "| a | Control | 1 |",
                    "| b |",
                    "- **Epochs:** 2",
                    "## Configuration",
                    "runs:",
                    "  - name: a",
                    "    parameters: {lr: 1e-5}",
                    "experiment: {name: x}",
                    "- {run: a}",
                    "evaluation:",
                    "  matrix: [{run: a, epochs: [0]}]",
                    "&a [*a]",
                    "{run_1}",
                    "| ✓ epoch 0,1 |",
                    "runs: {a: 1}",
                    "controls: [1]",
                    "variables: [1, {name: x}]",
                    "  - {name: 3, params: [1]}",
                    "| Factor | Levels |",
                ]
            ),
            max_size=25,
        ).map("\n".join),
    ),
    suffix=st.sampled_from([".md", ".yaml"]),
)
def test_read_design_never_raises(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / f"experiment_summary{suffix}").write_text(text, encoding="utf-8")
        design, ok = read_design(root, Diagnostics(root=root))
        assert isinstance(design, Design)
        assert all(r.name for r in design.runs)
        assert isinstance(ok, bool)


_RUN_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9.\-]{0,12}(_[a-z]+[0-9]{1,3})?", fullmatch=True)
_PARAM = st.one_of(
    st.integers(min_value=1, max_value=4096),
    st.floats(min_value=1e-8, max_value=10, allow_nan=False).map(lambda x: float(f"{x:.3g}")),
    st.none(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.dictionaries(
        _RUN_NAME,
        # a LoRA rank is a whole number (a fraction is refused as a typo: tests/test_design_types.py)
        st.tuples(st.one_of(st.integers(min_value=1, max_value=4096), st.none()), _PARAM,
                  st.sampled_from(["Fine-tuned", "Control"])),
        min_size=1,
        max_size=6,
    )
)
def test_markdown_all_runs_table_round_trip(runs: dict[str, tuple[object, object, str]]) -> None:
    """Compose an All Runs table from runs, parse it back: the same runs, types and parameters."""
    rows = [
        f"| {name} | Llama-3.2-1B-Instruct | {'-' if rank is None else rank} | "
        f"{'-' if lr is None else f'{lr:g}'} | {kind} | ~5min |"
        for name, (rank, lr, kind) in runs.items()
    ]
    text = "\n".join(
        [
            "# Experiment: round_trip",
            "",
            "## All Runs",
            "| Run Name | Model | LoRA Rank | Learning Rate | Type | Est. Time |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "experiment_summary.md").write_text(text, encoding="utf-8")
        diag = Diagnostics(root=root)
        design, ok = read_design(root, diag)
    assert ok and design.name == "round_trip" and diag.warnings == []
    expected = {
        name: (
            "fine-tuned" if kind == "Fine-tuned" else "control",
            {k: v for k, v in (("lora_rank", rank), ("learning_rate", lr)) if v is not None},
        )
        for name, (rank, lr, kind) in runs.items()
    }
    assert _runs(design) == expected
