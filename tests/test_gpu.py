"""nvidia-smi CSV samples and seff output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analyze_experiment.sources.gpu import parse_duration, read_gpu_metrics, read_seff

CSV = """timestamp, index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W]
2025/11/12 14:03:21.123, 0, NVIDIA A100-SXM4-80GB, 87 %, 40536 MiB, 81920 MiB, 301.52 W
2025/11/12 14:03:21.125, 1, NVIDIA A100-SXM4-80GB, 91 %, 40100 MiB, 81920 MiB, 298.00 W
timestamp, index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W]
2025/11/12 14:03:31.200, 0, NVIDIA A100-SXM4-80GB MIG 3g.40gb, [N/A], 20000 MiB, 40192 MiB, [N/A]
2025/11/12 14:03:41.200, 0, broken row
"""


def test_nvidia_smi_csv(tmp_path: Path) -> None:
    p = tmp_path / "gpu_metrics.csv"
    p.write_text(CSV)
    g = read_gpu_metrics(p)
    assert len(g.rows) == 3
    first = g.rows[0]
    assert first["time"] == pd.Timestamp("2025-11-12 14:03:21.123")
    assert (first["gpu"], first["utilization_pct"], first["memory_used_mib"], first["memory_total_mib"], first["power_w"]) == (
        0, 87.0, 40536.0, 81920.0, 301.52)
    mig = g.rows[2]
    assert mig["utilization_pct"] is None and mig["power_w"] is None and mig["memory_used_mib"] == 20000.0
    assert g.na_values == 2
    assert g.problems == ["1 row(s) with a wrong number of fields skipped"]


def test_nounits_and_other_order(tmp_path: Path) -> None:
    p = tmp_path / "gpu_metrics.csv"
    p.write_text("memory.used [MiB], utilization.gpu [%], index\n512, 3, 2\n")
    assert read_gpu_metrics(p).rows == [{"memory_used_mib": 512.0, "utilization_pct": 3.0, "gpu": 2}]


def test_no_header_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "gpu_metrics.csv"
    p.write_bytes(b"87, 40536\n\xff\xfe garbage\n")
    g = read_gpu_metrics(p)
    assert g.rows == [] and "no nvidia-smi header" in g.problems[0]


SEFF = """Job ID: 5123456
Cluster: della
User/Group: jdoe/jdoe
State: TIMEOUT (exit code 0)
Nodes: 1
Cores per node: 8
CPU Utilized: 01:10:00
CPU Efficiency: 12.50% of 09:20:00 core-walltime
Job Wall-clock time: 1-01:10:05
Memory Utilized: 12.50 GB
Memory Efficiency: 39.06% of 32.00 GB
"""


def test_seff(tmp_path: Path) -> None:
    p = tmp_path / "seff_5123456.txt"
    p.write_text(SEFF)
    s = read_seff(p)
    assert s is not None
    assert (s.job_id, s.state, s.exit_code, s.nodes, s.cores_per_node) == ("5123456", "TIMEOUT", 0, 1, 8)
    assert s.wall_s == 86400 + 3600 + 600 + 5
    assert s.memory_used_gib == 12.5 and s.memory_requested_gib == 32.0
    assert s.state_line == "State: TIMEOUT (exit code 0)"
    q = tmp_path / "seff_other.txt"
    q.write_text("hello\n")
    assert read_seff(q) is None
    assert parse_duration("05:07") == 307.0


def test_oversized_field_keeps_rows_before(tmp_path: Path) -> None:
    p = tmp_path / "gpu_metrics.csv"
    p.write_text("index, utilization.gpu [%]\n0, 5 %\n1, \"" + "x" * 200_000 + "\"\n")
    g = read_gpu_metrics(p)
    assert g.rows == [{"gpu": 0, "utilization_pct": 5.0}]
    assert g.problems[0].startswith("unreadable after 1 rows (field larger than field limit")
