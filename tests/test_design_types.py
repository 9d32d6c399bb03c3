"""Design fields of the wrong type and duplicate YAML keys (issue 12): named, never a crash.

A run entry with a field of the wrong type is left out of the design with one warning naming
the field and the file; a YAML mapping that states a key twice is refused with the key and
both lines. The end-to-end tests run the real CLI on the bundled example with its real
design document edited.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyze_experiment.cli import analyze
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.design import read_design

GOOD = {"name": "rank8_lr1e-4", "type": "fine-tuned", "model": "Llama", "parameters": {"lora_rank": 8, "lr": "1e-4"}}


def _design(tmp_path: Path, text: str, name: str = "experiment_summary.yaml"):
    root = tmp_path / "exp"
    root.mkdir(exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")
    diag = Diagnostics(root=root)
    design, ok = read_design(root, diag)
    return design, ok, diag


def _yaml_with(bad: dict) -> str:
    return yaml.safe_dump({"experiment": {"name": "types"}, "runs": [GOOD, bad]}, sort_keys=False)


@pytest.mark.parametrize(
    ("bad", "field_phrase"),
    [
        ({"name": ["r1"]}, "runs[1]: 'name' is a list, not text"),
        ({"name": {"a": 1}}, "runs[1]: 'name' is a mapping, not text"),
        ({"name": 1.5}, "runs[1]: 'name' is a decimal number (1.5), not text; quote it"),
        ({"name": True}, "runs[1]: 'name' is true/false, not text"),
        ({"name": "r2", "type": ["control"]}, "run 'r2' (runs[1]): 'type' is a list, not text"),
        ({"name": "r2", "model": {"id": "x"}}, "run 'r2' (runs[1]): 'model' is a mapping, not text"),
        ({"name": "r2", "vis_label": [1]}, "run 'r2' (runs[1]): 'vis_label' is a list, not text"),
        ({"name": "r2", "parameters": [4, 16]}, "run 'r2' (runs[1]): 'parameters' is a list, not a mapping"),
        ({"name": "r2", "params": 8}, "run 'r2' (runs[1]): 'params' is a number, not a mapping"),
        ({"name": "r2", "parameters": {"lora_rank": [4, 16]}},
         "run 'r2' (runs[1]): parameter 'lora_rank' is a list, not a single value"),
        ({"name": "r2", "parameters": {"lr": {"value": 1e-4}}},
         "run 'r2' (runs[1]): parameter 'learning_rate' is a mapping, not a single value"),
        ({"name": "r2", "parameters": {"lora_rank": "eight"}},
         "run 'r2' (runs[1]): parameter 'lora_rank' is 'eight', not a number"),
        ({"name": "r2", "parameters": {"batch_size": True}},
         "run 'r2' (runs[1]): parameter 'batch_size' is True, not a number"),
        ({"name": "r2", "finetuned": "maybe"}, "run 'r2' (runs[1]): 'finetuned' is text, not true/false"),
    ],
)
def test_wrong_typed_run_field_is_named_and_the_run_skipped(tmp_path, bad, field_phrase):
    design, ok, diag = _design(tmp_path, _yaml_with(bad))
    assert ok
    assert [r.name for r in design.runs] == ["rank8_lr1e-4"]
    assert design.runs[0].params == {"lora_rank": 8, "learning_rate": 1e-4}
    assert [(w.file, w.severity, w.stage) for w in diag.warnings] == [("experiment_summary.yaml", "warning", "design")]
    assert diag.warnings[0].message == (
        f"{field_phrase}. The run was left out of the design (if it is on disk it is analysed with "
        "the parameters its directory name states)"
    )


def test_several_wrong_fields_in_one_run_are_named_together(tmp_path):
    bad = {"name": "r2", "type": {"x": 1}, "parameters": {"lora_rank": [1], "seed": "abc"}}
    _, _, diag = _design(tmp_path, _yaml_with(bad))
    assert diag.warnings[0].message.startswith(
        "run 'r2' (runs[1]): 'type' is a mapping, not text; parameter 'lora_rank' is a list, not a single "
        "value; parameter 'seed' is 'abc', not a number. The run was left out"
    )


def test_runs_as_a_mapping_and_entries_that_are_not_mappings(tmp_path):
    text = "runs:\n  r1: {parameters: {lora_rank: 4}}\n  r2: 5\n  r3:\n  r4: {name: [x]}\n"
    design, _, diag = _design(tmp_path, text)
    assert [(r.name, r.params) for r in design.runs] == [("r1", {"lora_rank": 4}), ("r3", {})]
    assert [w.message.split(". The run")[0] for w in diag.warnings] == [
        "runs.r2 is a number, not a mapping; ignored",
        "runs.r4: 'name' is a list, not text",
    ]


def test_other_fields_of_the_wrong_type_are_named(tmp_path):
    text = """
experiment: {name: [not, text], question: {a: 1}}
variables:
  lora_rank: [4, [8], {x: 1}, "sixteen", 16]
  - ignored
""".replace("  - ignored\n", "")
    text += """runs:
  - {name: r1, parameters: {lora_rank: 4}}
evaluation:
  tasks: [{name: [t]}, cap, 7.5]
  scorers: [{name: match}, {other: 1}]
  matrix:
    - {run: [r1], tasks: [cap]}
    - {run: r1, tasks: [cap], vis_label: [a], epochs: [0]}
"""
    design, ok, diag = _design(tmp_path, text)
    assert ok
    assert design.name == "exp"
    assert design.question is None
    assert design.variables == {"lora_rank": [4, 16]}
    assert design.tasks == ["cap"]
    assert design.scorers == ["match"]
    r1 = design.run("r1")
    assert r1 is not None and r1.vis_label is None and r1.eval_epochs == [0]
    assert [w.message for w in diag.warnings] == [
        "experiment.name is a list, not text; ignored",
        "experiment.question is a mapping, not text; ignored",
        "variables: a level of 'lora_rank' is a list, not a single value; that level was ignored",
        "variables: a level of 'lora_rank' is a mapping, not a single value; that level was ignored",
        "variables: a level of 'lora_rank' is 'sixteen', not a number; that level was ignored",
        "evaluation.tasks[0] name is a list, not text; ignored",
        "evaluation.tasks[2] is a decimal number (7.5), not text; quote it; ignored",
        "evaluation.scorers[1] has no name; ignored",
        "evaluation.matrix[0]: 'run' is a list, not text; ignored",
        "evaluation.matrix[1]: 'vis_label' is a list, not text; ignored",
    ]


# --- duplicate keys ----------------------------------------------------------------------------


def test_duplicate_runs_key_is_refused_with_key_and_lines(tmp_path):
    text = (
        "experiment: {name: dup}\n"
        "runs:\n"
        "  - {name: r1, type: fine-tuned}\n"
        "runs:\n"
        "  - {name: r1, type: control}\n"
    )
    design, ok, diag = _design(tmp_path, text)
    assert not ok and design.runs == []
    assert [(w.file, w.severity) for w in diag.warnings] == [("experiment_summary.yaml", "error")]
    assert diag.warnings[0].message == (
        "the design document could not be used: the key 'runs' appears twice in one mapping (lines 2 and 4); "
        "a repeated key would silently replace the first, so duplicate keys are refused"
    )


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("runs:\n  - name: r1\n    parameters:\n      lr: 1e-4\n      lr: 1e-5\n", "lr", (4, 5)),
        ("a: 1\nb: 2\n'a': 3\n", "a", (1, 3)),
        ("1: x\n1.0: y\n", "1.0", (1, 2)),
        ("runs: [{name: r1, name: r2}]\n", "name", (1, 1)),
    ],
)
def test_duplicate_keys_anywhere_are_refused(tmp_path, text, key, lines):
    _, ok, diag = _design(tmp_path, text)
    assert not ok
    assert f"the key '{key}' appears twice in one mapping (lines {lines[0]} and {lines[1]})" in diag.warnings[0].message


def test_merge_keys_may_be_overridden_and_bombs_stay_refused(tmp_path):
    text = (
        "defaults: &d {type: fine-tuned, parameters: {lora_rank: 4}}\n"
        "runs:\n"
        "  - {<<: *d, name: r1}\n"
        "  - {<<: *d, name: r2, parameters: {lora_rank: 16}}\n"
    )
    design, ok, diag = _design(tmp_path, text)
    assert ok and not diag.warnings
    assert [(r.name, r.params) for r in design.runs] == [("r1", {"lora_rank": 4}), ("r2", {"lora_rank": 16})]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    _, ok, diag = _design(tmp_path, bomb)
    assert not ok and "expands to more than 200,000 nodes" in diag.warnings[0].message


def test_the_schema_template_still_reads_as_the_template(tmp_path):
    template = (Path(__file__).parent / "fixtures" / "design" / "template_schema.yaml").read_text()
    assert len(re.findall(r"^\s+split_ratio:", template, re.M)) == 2  # it repeats keys on purpose
    design, ok, diag = _design(tmp_path, template)
    assert ok and design.runs == []
    assert [w.message.split(" (")[0] for w in diag.warnings] == [
        "the design document is still the annotated schema template"
    ]


# --- markdown ------------------------------------------------------------------------------------

MD = """# Experiment: md_types

## All Runs

| Run Name | Model | LoRA Rank | Learning Rate | Type |
|---|---|---|---|---|
| rank4_lr1e-5 | Llama | 4 | 1e-5 | Fine-tuned |
| rank8_lr1e-5 | Llama | eight | 1e-5 | Fine-tuned |
| rank16_lr1e-5 | Llama | 16 | 1e-5 (default) | Fine-tuned |
| base | Llama | - | - | Control |

## Variables

| Variable | Values |
|---|---|
| LoRA Rank | 4, eight, 16 |
"""


def test_markdown_cells_of_the_wrong_type_are_named_with_their_line(tmp_path):
    design, ok, diag = _design(tmp_path, MD, "experiment_summary.md")
    assert ok
    assert [(r.name, r.params) for r in design.runs] == [
        ("rank4_lr1e-5", {"lora_rank": 4, "learning_rate": 1e-5}),
        ("base", {}),
    ]
    assert design.variables == {"lora_rank": [4, 16]}
    tail = ". The run was left out of the design (if it is on disk it is analysed with the parameters its " \
           "directory name states)"
    assert [w.message for w in diag.warnings] == [
        "line 8: run 'rank8_lr1e-5' in the All Runs table: the LoRA Rank cell is 'eight', not a number" + tail,
        "line 9: run 'rank16_lr1e-5' in the All Runs table: the Learning Rate cell is '1e-5 (default)', "
        "not a number" + tail,
        "Variables table: a level of 'LoRA Rank' is 'eight', not a number; that level was ignored",
    ]


# --- properties ----------------------------------------------------------------------------------

_wrong = st.one_of(
    st.lists(st.integers(), min_size=0, max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["name", "type", "model", "vis_label", "parameters", "lora_rank"]), value=_wrong)
def test_any_wrong_value_in_any_run_field_skips_only_that_run(tmp_path, field, value):
    bad: dict = {"name": "r2", "parameters": {"lora_rank": 16}}
    if field == "lora_rank":
        bad["parameters"]["lora_rank"] = value
    else:
        bad[field] = value
    if (field in ("type", "model", "vis_label") and isinstance(value, float)) or (
        field == "parameters" and isinstance(value, dict)
    ):
        bad[field] = [value]  # a number is a fine label, a mapping fine parameters
    design, ok, diag = _design(tmp_path, _yaml_with(bad))
    assert ok
    assert [r.name for r in design.runs] == ["rank8_lr1e-4"]
    assert len(diag.warnings) == 1 and "The run was left out of the design" in diag.warnings[0].message
    shown = "parameter 'lora_rank'" if field == "lora_rank" else f"'{field}'"
    assert shown in diag.warnings[0].message


# --- end to end -----------------------------------------------------------------------------------


def _cli(root: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(analyze, [str(root), "--json", "--quiet", "--format", "html"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.slow
def test_cli_run_name_of_the_wrong_type(example_copy):
    root = example_copy("mid2026", 40)
    path = root / "experiment_summary.yaml"
    text = path.read_text()
    target = '  - name: "Llama-3.2-1B-Instruct_rank4_lr1e-5"\n'
    assert text.count(target) == 1
    path.write_text(text.replace(target, '  - name: ["Llama-3.2-1B-Instruct_rank4_lr1e-5"]\n'))
    code, summary = _cli(root)
    assert code == 0
    warned = [w for w in summary["warnings"] if w["file"] == "experiment_summary.yaml"]
    assert [w["message"].split(". The run")[0] for w in warned] == [
        "runs[0]: 'name' is a list, not text",
        "evaluation.matrix names runs that are not in runs (Llama-3.2-1B-Instruct_rank4_lr1e-5); those entries "
        "were ignored",
    ]
    runs = {r["name"]: r for r in summary["runs"]}
    # the run is still analysed, from its directory, with the parameters its name states
    r = runs["Llama-3.2-1B-Instruct_rank4_lr1e-5"]
    assert r["params"] == {"lora_rank": 4, "learning_rate": 1e-5}
    assert r["training"]["status"] == "completed"
    assert any("was found on disk but is not in the design" in w["message"] for w in summary["warnings"])


@pytest.mark.slow
def test_cli_duplicate_runs_key(example_copy):
    root = example_copy("mid2026", 40)
    path = root / "experiment_summary.yaml"
    text = path.read_text()
    path.write_text(text + "\nruns:\n  - name: \"Llama-3.2-1B-Instruct_base\"\n    type: \"fine-tuned\"\n")
    line = text.splitlines().index("runs:") + 1
    code, summary = _cli(root)
    assert code == 0
    w = next(w for w in summary["warnings"] if w["file"] == "experiment_summary.yaml")
    assert w["severity"] == "error"
    assert f"the key 'runs' appears twice in one mapping (lines {line} and " in w["message"]
    assert len(summary["runs"]) == 5  # taken from the directories
