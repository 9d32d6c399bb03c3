"""summary.json as pydantic models: the committed JSON Schema is the one the models generate,
unknowns (NaN, inf, NA) are written as null by the serialisers, table rows keep their column
order, and a real analysis validates against the schema and reads back into the model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pydantic
import pytest

import analyze_experiment
from analyze_experiment import formatting as fmt
from analyze_experiment.conclude import analyze
from analyze_experiment.experiment import Options
from analyze_experiment.report import summary_model as sm
from analyze_experiment.report.summary_json import build_summary, dumps, summary_model
from stats_synth import grid, make_experiment

SCHEMA_FILE = Path(analyze_experiment.__file__).parent / "schema" / "summary.schema.json"
FAST = Options(n_permutations=1000, n_bootstrap=200)


def test_committed_schema_is_the_one_the_models_generate():
    # `make schema` rewrites it; a model change without it fails here
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sm.schema_text()
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) >= {"schema_version", "experiment", "runs", "comparisons", "best", "warnings"}
    # optional keys (absent from older files or only for some sweeps) are not required
    assert not set(schema["required"]) & {"failed_runs", "risk", "classification", "subgroups", "design_facts",
                                           "planned_vs_found", "best_configurations"}


def test_table_rows_write_unknowns_as_null_and_keep_their_column_order():
    row = sm.Row.model_validate({"z": float("nan"), "b": np.float64("inf"), "c": pd.NA, "d": np.int64(3),
                                 "e": [np.bool_(True)], "a": pd.Timestamp("2026-01-02T03:04:05Z"),
                                 "x": np.float64(0.26427456736564636)})
    out = row.model_dump(mode="json")
    assert list(out) == ["z", "b", "c", "d", "e", "a", "x"]
    assert out == {"z": None, "b": None, "c": None, "d": 3, "e": [True], "a": "2026-01-02T03:04:05+00:00",
                   "x": 0.26427456736564636}
    assert type(out["d"]) is int and type(out["e"][0]) is bool


def test_typed_fields_nan_is_kept_in_the_model_and_written_as_null():
    v = sm.Validation(evaluations=np.int64(4), final_loss=float("nan"), best_loss=np.float64(1.25), best_step=40.0,
                      gap_to_training=float("-inf"), overfitting=np.bool_(False), patience=3, source="slurm")
    assert math.isnan(v.final_loss)  # the model holds what was found ...
    assert v.model_dump(mode="json") == {"evaluations": 4, "final_loss": None, "best_loss": 1.25, "best_step": 40,
                                         "gap_to_training": None, "overfitting": False, "patience": 3,
                                         "source": "slurm"}  # ... the file says unknown
    # an epoch read from a float column is an integer; a fractional one is refused, not rounded
    assert sm.PlannedVsFound(run="r", task="t", epoch=1.0, status="missing", log=None).epoch == 1
    assert sm.PlannedVsFound(run="r", task="t", epoch=float("nan"), status="missing", log=None).epoch is None
    with pytest.raises(pydantic.ValidationError):
        sm.PlannedVsFound(run="r", task="t", epoch=1.5, status="missing", log=None)
    with pytest.raises(pydantic.ValidationError):
        sm.FailedRun(run="r", status="completed", evidence=None, file=None, step=None, steps=None,
                     planned_steps=None, excluded=True)  # a completed run is not a failed run


def test_a_real_summary_validates_reads_back_and_leaves_optional_keys_out():
    accs, params = grid([8, 16], [1e-4], lambda r, lr: 0.6 if r == 8 else 0.75, seeds=3)
    exp = make_experiment(accs, params=params, n=200, seed=5)
    model = summary_model(exp, analyze(exp, FAST), command="analyze-experiment x")
    text = dumps(model)
    doc = json.loads(text)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    assert "risk" not in doc and "classification" not in doc and "subgroups" not in doc
    assert doc["best_configurations"][0]["config"] == "lora_rank=16" and doc["best_configurations"][0]["n_seeds"] == 3
    assert dumps(sm.Summary.model_validate(doc)) == text  # the file reads back into the model unchanged
    assert dumps(build_summary(exp, analyze(exp, FAST), command="analyze-experiment x")).split('"created"')[0] == \
        text.split('"created"')[0]
    bad = json.loads(text)
    assert bad["runs"][0]["training"]["status"] == "completed"
    bad["runs"][0]["training"]["status"] = "exploded"  # not a RunStatus: the schema is not vacuous
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_formatting():
    assert fmt.ci(0.8534, 0.80123, 0.894) == "0.853 [0.801, 0.894]"
    assert fmt.ci(0.5, None, math.nan) == "0.500"
    assert fmt.pp(0.0412) == "+4.1 pp"
    assert fmt.pvalue(0.0004) == "< 0.001"
    assert fmt.pvalue(0.034) == "0.034"
    assert fmt.pvalue(0.62) == "0.62"
    assert fmt.seconds(3725) == "1h 02m"
    assert fmt.seconds(200) == "3m 20s"
    assert fmt.value(1e-05) == "1e-05"
    assert fmt.epoch(float("nan")) == "—"


def test_one_formatter_reads_a_value_the_same_in_sentences_and_tables():
    """A p-value differs only by its "p" label; a missing value is "—" in both (issue 14)."""
    for p in (0.0004, 0.0012, 0.0342, 0.05, 0.62, 1.0):
        cell, sentence = fmt.pvalue(p), "p " + fmt.fmt_p(p)
        assert sentence in (f"p = {cell}", f"p {cell}"), (p, cell, sentence)
    assert [fmt.pvalue(p) for p in (0.0012, 0.1, 1.0)] == ["0.0012", "0.1", "1"]
    missing = [fmt.num(None), fmt.pvalue(math.nan), fmt.ci(None, 0, 1), fmt.fmt_value("accuracy", None),
               fmt.fmt_diff("accuracy", math.nan), fmt.fmt_usd(math.nan), fmt.fmt_hours(math.nan)]
    assert set(missing) == {"—"}
    assert fmt.fmt_ci("accuracy", None, 0.5, 0.95).endswith("CI —")
