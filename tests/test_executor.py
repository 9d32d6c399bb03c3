"""Reading on a Dask cluster gives the same experiment, byte for byte, as reading locally.

A real ``dask.distributed.LocalCluster`` (worker processes, a TCP scheduler) stands in for
the user's cluster; the scheduler's own records show the files were parsed there.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from analyze_experiment import load
from analyze_experiment.cli import analyze
from analyze_experiment.executor import ExecutorSpec

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _prefixes(address: str) -> set[str]:
    with distributed.Client(address, set_as_default=False) as client:
        return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


def test_dask_tables_equal_local_tables(example, cluster):
    root = example("mid2026", 40)
    local = load(root)
    remote = load(root, executor=ExecutorSpec("dask", cluster.scheduler_address))
    assert "read_one" in _prefixes(cluster.scheduler_address)  # the files were parsed on the cluster
    for name, df in local.tables().items():
        pd.testing.assert_frame_equal(df, remote.tables()[name], check_exact=True, obj=name)
    assert [w.message for w in local.diagnostics.warnings] == [w.message for w in remote.diagnostics.warnings]


def test_cli_report_on_dask_equals_local(analysed, example_copy, cluster):
    local = analysed("mid2026", 40)  # the report made locally, shared with other tests
    assert local.exit_code == 0, local.stderr
    a, b = local.root, example_copy("mid2026", 40)
    r = CliRunner().invoke(analyze, [str(b), "--quiet", "--no-cache", "--executor", "dask", "--scheduler",
                                     cluster.scheduler_address])
    assert r.exit_code == 0, r.output

    def strip(path):
        s = json.loads(path.read_text())
        s["generated_by"].pop("created")
        s["generated_by"].pop("command")
        return s

    assert strip(a / "analysis" / "summary.json") == strip(b / "analysis" / "summary.json")
    for t in ("intervals", "comparisons", "runs", "train_steps"):
        assert (a / "analysis" / "tables" / f"{t}.csv").read_bytes() == (b / "analysis" / "tables" / f"{t}.csv").read_bytes()
    # the per-sample scores are Parquet only in the report folder
    pd.testing.assert_frame_equal(pd.read_parquet(a / "analysis" / "data" / "eval_samples.parquet"),
                                  pd.read_parquet(b / "analysis" / "data" / "eval_samples.parquet"), check_exact=True)


def test_usage_errors():
    r = CliRunner().invoke(analyze, [".", "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and "--scheduler needs --executor dask" in r.output
