"""Column dtypes declared once in tables.py: ``epoch`` is a nullable integer in every tidy table
(no float with NaN, no -1 sentinel to group it), built from real inspect-ai logs and read back
from the CSVs the report writes."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

import analyze_experiment as ae
from analyze_experiment import tables
from analyze_experiment.cli import analyze
from analyze_experiment.stats.candidates import reduce_samples


def test_frame_casts_declared_columns_even_without_rows():
    df = tables.frame(tables.EVAL_SCORES, [{"run": "a", "epoch": 1.0}, {"run": "base", "epoch": None}])
    assert str(df["epoch"].dtype) == "Int64"
    assert df["epoch"].tolist()[0] == 1 and df["epoch"].isna().tolist() == [False, True]
    assert str(tables.frame(tables.TRAIN_STEPS)["epoch"].dtype) == "Int64"
    assert str(tables.frame(tables.EVAL_SAMPLES)["sample_epoch"].dtype) == "Int64"


def test_by_epoch_keeps_the_base_model_as_its_own_group():
    df = pd.DataFrame({"run": ["base", "a", "a", None], "epoch": pd.array([None, 0, 1, 1], dtype="Int64"),
                       "v": [1.0, 2.0, 3.0, 4.0]})
    got = {(r, None if pd.isna(e) else int(e)): float(g["v"].sum()) for (r, e), g in tables.by_epoch(df, ["run", "epoch"])}
    # the row without a run is left out (as groupby does); the base model is not
    assert got == {("a", 0): 2.0, ("a", 1): 3.0, ("base", None): 1.0}
    assert tables.at_epoch(df["epoch"], None).tolist() == [True, False, False, False]
    assert tables.at_epoch(df["epoch"], 1.0).tolist() == [False, False, True, True]


def test_real_logs_give_integer_epochs_and_the_base_model_is_kept(example_copy, tmp_path):
    root = example_copy("mid2026", 40)  # a copy: the CLI writes its log beside the experiment
    exp = ae.load(root)
    for name in ("eval_logs", "eval_scores", "eval_samples", "train_steps", "train_epochs"):
        assert str(getattr(exp, name)["epoch"].dtype) == "Int64", name
    scores = exp.eval_scores
    base = scores[scores["run"].str.endswith("_base")]
    assert len(base) and base["epoch"].isna().all()
    assert set(scores["epoch"].dropna().astype(int)) == {0, 1}
    # the per-sample reduction keeps the base model's rows without a sentinel epoch
    red = reduce_samples(exp.eval_samples, None)
    assert red.loc[red["run"].str.endswith("_base"), "epoch"].isna().all()
    assert (red["epoch"].dropna() >= 0).all() and len(red[red["run"].str.endswith("_base")]) > 0
    out = tmp_path / "out"
    res = CliRunner().invoke(analyze, [str(root), "--out", str(out), "--format", "md", "--quiet", "--no-cache"])
    assert res.exit_code == 0, res.output
    for name in ("eval_scores", "eval_logs", "train_steps"):
        col = pd.read_csv(out / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)["epoch"]
        assert set(col) <= {"", "0", "1"} and "0" in set(col), name  # never "1.0"
    # the per-sample scores are Parquet only in the report folder, with the nullable integer epoch
    assert not (out / "tables" / "eval_samples.csv").exists()
    samples = pd.read_parquet(out / "data" / "eval_samples.parquet")
    assert str(samples["epoch"].dtype) == "Int64" and set(samples["epoch"].dropna()) == {0, 1}
