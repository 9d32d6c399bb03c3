"""Eval-level header objects of the wrong type (found by the fuzz corpus): the log is named, not a crash."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from analyze_experiment.sources.inspect_log import LogReadError, read_log

LOGS = Path(__file__).parent / "fixtures" / "evals" / "logs"


def _with_header(tmp_path: Path, key: str, value: object) -> Path:
    """A copy of a real inspect-ai log whose ``header.json`` has ``eval.<key>`` replaced."""
    src, dest = LOGS / "base.eval", tmp_path / f"{key}.eval"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "header.json":
                header = json.loads(data)
                header["eval"][key] = value
                data = json.dumps(header).encode()
            zout.writestr(item, data)
    return dest


@pytest.mark.parametrize("key", ["task_args", "model_args", "metadata", "config", "dataset"])
def test_non_object_eval_field_is_a_named_wrong_shape(tmp_path, key):
    path = _with_header(tmp_path, key, 5)
    with pytest.raises(LogReadError, match=rf"'eval\.{key}' is not an object \(wrong shape\)"):
        read_log(path)
    assert read_log(_with_header(tmp_path, key, {})).header["eval"][key] == {}  # an empty object still reads
