"""Eval logs → run/epoch mapping, duplicates, statuses and the three tables."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.analysis import samples_df
from inspect_ai.log import read_eval_log

from analyze_experiment import tables
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.ingest.evals import EvalFile, collect_evals, epoch_of, task_name

FIXTURES = Path(__file__).parent / "fixtures" / "evals"
LOGS = FIXTURES / "logs"


def place(root: Path, rel: str, fixture: str) -> Path:
    dst = root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LOGS / fixture, dst)
    return dst


def collect(root: Path, entries: list[tuple[str, str, str]], **kw):
    """entries: (run, relative path, fixture name) → the three tables + diagnostics."""
    files = [EvalFile(run, place(root, rel, fx), root / run) for run, rel, fx in entries]
    diag = Diagnostics(root)
    return (*collect_evals(root, files, diag, **kw), diag)


def row(df: pd.DataFrame, log: str) -> pd.Series:
    (i,) = df.index[df["log"] == log]
    return df.loc[i]


def test_oct_2025_layout_hf_local_logs_never_collapse(tmp_path: Path) -> None:
    """Both runs' logs say model hf/local; the run comes from the directory."""
    logs, scores, samples, _ = collect(
        tmp_path,
        [
            ("rank8_lr1e-5", "rank8_lr1e-5/eval/logs/a.eval", "hf_local.eval"),
            ("rank16_lr1e-5", "rank16_lr1e-5/eval/logs/a.eval", "hf_local.eval"),
        ],
    )
    assert set(logs["model"]) == {"hf/local"}
    assert logs["used"].tolist() == [True, True]
    assert logs["epoch"].tolist() == [0.0, 0.0]
    assert logs["epoch_source"].tolist() == ["model_path", "model_path"]
    assert samples.groupby("run").size().to_dict() == {"rank16_lr1e-5": 4, "rank8_lr1e-5": 4}
    acc = scores[scores["metric"] == "accuracy"].set_index("run")["value"]
    expected = read_eval_log(str(LOGS / "hf_local.eval"), header_only=True).results.scores[0].metrics["accuracy"]
    assert acc.to_dict() == {"rank8_lr1e-5": expected.value, "rank16_lr1e-5": expected.value}


def test_early_2026_layout_metadata_and_model_name(tmp_path: Path) -> None:
    logs, _, _, _ = collect(
        tmp_path,
        [
            ("r4", "r4/eval/logs/2026-01-01_capitalization.eval", "multi.eval"),
            ("Llama-3.2-1B_rank4", "Llama-3.2-1B_rank4/eval/logs/x.eval", "hf_named.eval"),
            ("Llama-3.2-1B_base", "Llama-3.2-1B_base/eval/logs/x.eval", "base.eval"),
        ],
    )
    assert row(logs, "r4/eval/logs/2026-01-01_capitalization.eval")[["epoch", "epoch_source"]].tolist() == [
        1.0,
        "metadata",
    ]
    assert row(logs, "Llama-3.2-1B_rank4/eval/logs/x.eval")[["epoch", "epoch_source"]].tolist() == [1.0, "model_name"]
    base = row(logs, "Llama-3.2-1B_base/eval/logs/x.eval")
    assert pd.isna(base["epoch"]) and pd.isna(base["epoch_source"]) and base["finetuned"] is False


def test_mid_2026_per_cell_layout(tmp_path: Path) -> None:
    logs, scores, samples, _ = collect(
        tmp_path,
        [
            ("rank8", "rank8/eval/capitalization_epoch0/logs/a.eval", "plain.eval"),
            ("rank8", "rank8/eval/capitalization_epoch1/logs/a.eval", "plain.eval"),
            ("base", "base/eval/capitalization/logs/a.eval", "plain.eval"),
            ("rank4", "rank4/eval/capitalization_rank4_epoch2/logs/a.eval", "vis_label.eval"),
        ],
    )
    got = logs.set_index("log")[["run", "task", "epoch", "epoch_source", "used"]]
    assert got.loc["rank8/eval/capitalization_epoch0/logs/a.eval"].tolist() == [
        "rank8", "capitalization", 0.0, "cell_dir", True]  # fmt: skip
    assert got.loc["rank8/eval/capitalization_epoch1/logs/a.eval"].tolist() == [
        "rank8", "capitalization", 1.0, "cell_dir", True]  # fmt: skip
    b = got.loc["base/eval/capitalization/logs/a.eval"]
    assert pd.isna(b["epoch"]) and pd.isna(b["epoch_source"])
    # vis_label suffix mapped back to the base task; metadata epoch wins over the cell name
    assert got.loc["rank4/eval/capitalization_rank4_epoch2/logs/a.eval"].tolist() == [
        "rank4", "capitalization", 2.0, "metadata", True]  # fmt: skip
    assert sorted(samples.groupby(["run", "epoch"], dropna=False).size().to_dict().values()) == [4, 4, 4, 4]
    assert set(scores["task"]) == {"capitalization"}


def test_epoch_rules_in_order(tmp_path: Path) -> None:
    p = tmp_path / "run" / "eval" / "cap_epoch3" / "logs" / "job_epoch5.eval"
    rd = tmp_path / "run"
    assert epoch_of(p, rd, {"epoch": 1}, {"model_path": "/x/epoch_2"}, "hf/r_epoch_4") == (1, "metadata")
    assert epoch_of(p, rd, {}, {"model_path": "/x/epoch_2"}, "hf/r_epoch_4") == (3, "cell_dir")
    q = tmp_path / "run" / "eval" / "logs" / "job_epoch5.eval"
    assert epoch_of(q, rd, {}, {"model_path": "/x/epoch_2/"}, "hf/r_epoch_4") == (2, "model_path")
    assert epoch_of(q, rd, {}, {}, "hf/r_epoch_4") == (4, "model_name")
    assert epoch_of(q, rd, {}, {}, "hf/local") == (5, "file_name")
    assert epoch_of(q, rd, {"finetuned": False, "epoch": 1}, {}, "hf/r_epoch_4") == (None, None)
    assert epoch_of(tmp_path / "run" / "eval" / "logs" / "x.eval", rd, {}, {}, "hf/local") == (None, None)


def test_task_name_namespace_and_vis_label() -> None:
    assert task_name("tasks/cap.py@capitalization", {}, {}) == "capitalization"
    assert task_name("inspect_evals/gsm8k", {}, {}) == "gsm8k"
    assert task_name("capitalization_rank4", {}, {"vis_label": "rank4"}) == "capitalization"
    assert task_name("capitalization_rank4", {}, {}) == "capitalization_rank4"
    assert task_name("rank4", {"vis_label": "rank4"}, {}) == "rank4"


def test_duplicates_newest_success_wins(tmp_path: Path) -> None:
    """multi (metadata epoch 1) and model_path (model_path epoch_1) are the same cell; model_path is newer.
    errored is newer than epochs3 (both epoch 0) but failed: the older success wins."""
    created = {n: read_eval_log(str(LOGS / n), header_only=True).eval.created for n in
               ("multi.eval", "model_path.eval", "epochs3.eval", "errored.eval")}  # fmt: skip
    assert created["model_path.eval"] > created["multi.eval"]
    assert created["errored.eval"] > created["epochs3.eval"]
    logs, scores, samples, diag = collect(
        tmp_path,
        [
            ("r", "r/eval/logs/multi.eval", "multi.eval"),
            ("r", "r/eval/logs/model_path.eval", "model_path.eval"),
            ("r", "r/eval/logs/epochs3.eval", "epochs3.eval"),
            ("r", "r/eval/logs/errored.eval", "errored.eval"),
        ],
    )
    used = logs.set_index("log")["used"].to_dict()
    assert used == {
        "r/eval/logs/multi.eval": False,
        "r/eval/logs/model_path.eval": True,
        "r/eval/logs/epochs3.eval": True,
        "r/eval/logs/errored.eval": False,
    }
    assert row(logs, "r/eval/logs/multi.eval")["note"].startswith("duplicate of r/eval/logs/model_path.eval")
    assert set(scores["log"]) == set(samples["log"]) == {"r/eval/logs/model_path.eval", "r/eval/logs/epochs3.eval"}
    info = [w for w in diag.warnings if w.severity == "info" and "more than once" in w.message]
    assert {w.file for w in info} == {"r/eval/logs/multi.eval", "r/eval/logs/errored.eval"}


def test_partial_logs_used_when_scored(tmp_path: Path) -> None:
    logs, scores, samples, diag = collect(
        tmp_path,
        [
            ("a", "a/eval/logs/errored.eval", "errored.eval"),
            ("b", "b/eval/logs/cancelled.eval", "cancelled.eval"),
            ("c", "c/eval/logs/started.eval", "started.eval"),
        ],
    )
    assert logs["used"].tolist() == [True, True, True]
    assert logs["status"].tolist() == ["error", "cancelled", "started"]
    assert row(logs, "a/eval/logs/errored.eval")["note"] == "status error: partial results, 4 of 8 samples scored"
    assert row(logs, "c/eval/logs/started.eval")["note"] == "status started: partial results, 8 of 12 samples scored"
    # the partial metric is the mean of the scored samples, from inspect-ai's own reading
    for run, name in (("a", "errored.eval"), ("c", "started.eval")):
        log = read_eval_log(str(LOGS / name))
        vals = [s.scores["cip"].value for s in log.samples if s.scores]
        expected = sum({"C": 1.0, "P": 0.5, "I": 0.0}[v] for v in vals) / len(vals)
        got = scores[scores["run"] == run].iloc[0]
        assert (got["metric"], got["n"], bool(got["partial"])) == ("mean", len(vals), True)
        assert got["value"] == pytest.approx(expected, abs=1e-15)
        assert len(samples[samples["run"] == run]) == len(vals)
    assert sum("partial results" in w.message for w in diag.warnings) == 3


def test_unscored_partial_not_used(tmp_path: Path) -> None:
    """An errored log with a successful sibling is set aside; a bad file is a warning only."""
    (tmp_path / "r" / "eval" / "logs").mkdir(parents=True)
    (tmp_path / "r" / "eval" / "logs" / "broken.eval").write_bytes(b"PK\x03\x04 truncated")
    files = [
        EvalFile("r", place(tmp_path, "r/eval/logs/a.eval", "errored.eval"), tmp_path / "r"),
        EvalFile("r", tmp_path / "r" / "eval" / "logs" / "broken.eval", tmp_path / "r"),
        EvalFile("r", place(tmp_path, "r/eval/logs/b.eval", "partial_errors.eval"), tmp_path / "r"),
    ]
    diag = Diagnostics(tmp_path)
    logs, scores, samples = collect_evals(tmp_path, files, diag)
    assert logs["used"].tolist() == [False, False, True]
    assert row(logs, "r/eval/logs/broken.eval")["note"].startswith("unreadable:")
    errors = [w for w in diag.warnings if w.severity == "error"]
    assert [w.file for w in errors] == ["r/eval/logs/broken.eval"]
    # partial_errors: 1 errored sample left out of the denominator, as inspect-ai does
    acc = scores[(scores["metric"] == "accuracy")].iloc[0]
    res = read_eval_log(str(LOGS / "partial_errors.eval"), header_only=True).results.scores[0]
    assert (acc["value"], acc["n"]) == (res.metrics["accuracy"].value, res.scored_samples) == (acc["value"], 7)
    assert len(samples) == 7


def test_tables_have_contract_columns_and_match_samples_df(tmp_path: Path) -> None:
    logs, scores, samples, _ = collect(tmp_path, [("r", "r/eval/logs/multi.eval", "multi.eval")])
    for df, cols in ((logs, tables.EVAL_LOGS), (scores, tables.EVAL_SCORES), (samples, tables.EVAL_SAMPLES)):
        assert df.columns.tolist()[: len(cols)] == cols
    ref = samples_df(str(LOGS / "multi.eval"), quiet=True)
    cip = samples[samples["scorer"] == "cip"].set_index("sample_id")
    for rec in ref.to_dict("records"):
        assert cip.loc[rec["id"], "value_raw"] == rec["score_cip"]
        assert cip.loc[rec["id"], "target"] == rec["target"]
        assert cip.loc[rec["id"], "meta.group"] == rec["metadata_group"]
    assert samples["sample_id"].map(type).eq(str).all()
    assert row(logs, "r/eval/logs/multi.eval")["created"] == pd.Timestamp(
        read_eval_log(str(LOGS / "multi.eval"), header_only=True).eval.created
    )
    assert str(logs["created"].dtype).startswith("datetime64") or isinstance(logs["created"].iloc[0], pd.Timestamp)


def test_pool_gives_the_same_tables(tmp_path: Path) -> None:
    entries = [(f"run{i}", f"run{i}/eval/logs/a.eval", n) for i, n in enumerate(sorted(p.name for p in LOGS.glob("*.eval")))]
    serial = collect(tmp_path, entries, workers=1)
    pooled = collect(tmp_path, entries, workers=2)
    assert len(entries) >= 8
    for a, b in zip(serial[:3], pooled[:3], strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_legacy_json_log(tmp_path: Path) -> None:
    logs, scores, samples, _ = collect(tmp_path, [("r", "r/eval/logs/old.json", "legacy.json")])
    assert logs[["format", "status", "used", "epoch"]].iloc[0].tolist() == ["json", "success", True, 0.0]
    log = read_eval_log(str(LOGS / "legacy.json"))
    assert scores.set_index("metric").loc["accuracy", "value"] == log.results.scores[0].metrics["accuracy"].value
    assert len(samples) == len(log.samples)


def test_generator_still_makes_a_log(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_logs", FIXTURES / "make_logs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.make_log(tmp_path / "r" / "eval" / "logs" / "new.eval", n=3, scorers="cip", metadata={"epoch": 0})
    logs, scores, samples = collect_evals(tmp_path, [EvalFile("r", path, tmp_path / "r")], Diagnostics(tmp_path))
    log = read_eval_log(str(path))
    assert logs["status"].tolist() == ["success"]
    assert len(samples) == 3
    assert scores.set_index("metric").loc["accuracy", "value"] == log.results.scores[0].metrics["accuracy"].value


def test_no_logs_gives_empty_tables_with_columns(tmp_path: Path) -> None:
    logs, scores, samples = collect_evals(tmp_path, [], Diagnostics(tmp_path))
    assert (len(logs), len(scores), len(samples)) == (0, 0, 0)
    assert logs.columns.tolist()[: len(tables.EVAL_LOGS)] == tables.EVAL_LOGS
    assert samples.columns.tolist() == tables.EVAL_SAMPLES


def test_blocks_with_mixed_metadata_types_are_kept() -> None:
    """Metadata mixing numbers and text cannot be an Arrow column: kept as objects, values intact."""
    import pyarrow as pa

    from analyze_experiment.ingest import evals

    base = {"sample_id": ["1", "2"], "sample_epoch": [1, 1], "scorer": ["m", "m"], "score": [1.0, 0.0],
            "value_raw": ["C", "I"], "answer": ["a", "b"], "target": ["a", "a"]}  # fmt: skip
    mixed = evals._block({**base, "meta.x": [1, "one"]})
    typed = evals._block({**base, "meta.x": [2, 3], "meta.y": [True, False]})
    assert isinstance(mixed, pd.DataFrame) and isinstance(typed, pa.Table)
    ident = {"run": "r", "task": "t", "epoch": None, "log": "l"}
    df = evals._ordered(tables.EVAL_SAMPLES, [evals._with_ident(mixed, ident, 2), evals._with_ident(typed, ident, 2)])
    assert df.columns.tolist() == [*tables.EVAL_SAMPLES, "meta.x", "meta.y"]
    assert df["meta.x"].tolist() == [1, "one", 2, 3]
    assert df["score"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert df["epoch"].isna().all()
