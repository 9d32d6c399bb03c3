"""``--watch``: re-analysis after a change has settled, outputs ignored."""

from __future__ import annotations

from analyze_experiment.ingest.watch import snapshot, watch


def test_snapshot_skips_outputs_weights_and_hidden(tmp_path):
    (tmp_path / "run" / "artifacts").mkdir(parents=True)
    (tmp_path / "run" / "artifacts" / "slurm-1.out").write_text("x")
    (tmp_path / "run" / "model.safetensors").write_text("w")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "report.md").write_text("r")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "f").write_text("h")
    snap = snapshot(tmp_path, exclude=(tmp_path / "analysis",))
    assert [p.removeprefix(str(tmp_path)) for p in snap] == ["/run/artifacts/slurm-1.out"]


def test_reruns_once_per_settled_change(tmp_path):
    log = tmp_path / "slurm-1.out"
    log.write_text("1|1|Loss: 1.0")
    t = {"now": 0.0, "ticks": 0}
    runs = []

    def fake_sleep(seconds):
        t["now"] += seconds
        t["ticks"] += 1
        if t["ticks"] in (1, 2):  # the job writes twice in a row, then goes quiet
            with log.open("a") as fh:
                fh.write(f"\r1|{t['ticks'] + 1}|Loss: 0.9")

    n = watch(
        tmp_path, lambda: runs.append(t["now"]), interval=1.0, debounce=3.0, max_runs=2,
        sleep=fake_sleep, clock=lambda: t["now"],
    )
    assert n == 2
    # first run at start; the second only once the file had been quiet for the debounce time
    assert runs == [0.0, 5.0]
