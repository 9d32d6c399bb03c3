"""Benchmark: eval-log ingest vs ``inspect_ai.analysis.samples_df`` on the same directory.

Builds (once, cached under ``bench/_work/evals/``) ``N_LOGS`` real logs of ``N_SAMPLES``
samples: ``N_BASE`` made by inspect-ai's ``eval`` with the offline mock model, the rest
produced by reading one of those with ``read_eval_log``, altering every sample's scores,
recomputing the metrics (``recompute_metrics``) and writing it with ``write_eval_log`` (the
real format, new eval ids and sample uuids). Then times, in the
same process, our ``collect_evals`` (2 worker processes) and ``samples_df`` over the same
files, checks that every per-sample score is identical, and prints the ratio.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "_work" / "evals"
N_LOGS = 20
N_BASE = 2
N_SAMPLES = 2000
VERSION = 3  # bump to rebuild the cached logs


def _make_logs_module() -> Any:
    path = ROOT.parent / "tests" / "fixtures" / "evals" / "make_logs.py"
    spec = importlib.util.spec_from_file_location("make_logs", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _base(i: int) -> str:
    out = WORK / "logs" / f"log{i:02d}.eval"
    _make_logs_module().make_log(out, n=N_SAMPLES, salt=i, metadata={"epoch": i, "is_finetuned": True})
    return str(out)


def _rewrites(src: str, indices: list[int]) -> list[str]:
    """Alter every sample's scores (seeded) and write a new log per index."""
    from inspect_ai.log import read_eval_log, recompute_metrics, write_eval_log
    from shortuuid import uuid

    log = read_eval_log(src)
    out = []
    for i in indices:
        rng = random.Random(i)
        for s in log.samples or []:
            s.uuid = uuid()  # samples_df de-duplicates samples by uuid across logs
            for name, score in (s.scores or {}).items():
                if name == "cip":
                    score.value = rng.choice("CCCIP")
                elif name == "closeness":
                    score.value = round(rng.random(), 3)
                elif name == "parts":
                    score.value = {"exact": rng.random() < 0.6, "length_ok": float(rng.random() < 0.8)}
        log.eval.eval_id = uuid()
        log.eval.run_id = uuid()
        log.eval.metadata = {"epoch": i, "is_finetuned": True}
        recompute_metrics(log)  # header metrics agree with the altered sample scores
        dest = WORK / "logs" / f"log{i:02d}.eval"
        write_eval_log(log, str(dest))
        out.append(str(dest))
    return out


def build() -> list[Path]:
    """The benchmark logs (made once; reused while ``VERSION`` is unchanged)."""
    stamp = WORK / "manifest.json"
    want = {"version": VERSION, "n_logs": N_LOGS, "n_samples": N_SAMPLES}
    logs = sorted((WORK / "logs").glob("*.eval"))
    if stamp.exists() and json.loads(stamp.read_text()) == want and len(logs) == N_LOGS:
        return logs
    if (WORK / "logs").exists():
        for p in (WORK / "logs").iterdir():
            p.unlink()
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2) as pool:
        bases = list(pool.map(_base, range(N_BASE)))
        rest = list(range(N_BASE, N_LOGS))
        shares = [(bases[k % N_BASE], rest[k::2]) for k in range(2)]
        list(pool.map(_rewrites, *zip(*shares, strict=True)))
    stamp.write_text(json.dumps(want))
    return sorted((WORK / "logs").glob("*.eval"))


def _check_identical(ours: Any, ref: Any) -> int:
    """Every per-sample score of samples_df (through inspect-ai's value_to_float) equals ours."""
    from inspect_ai.scorer import value_to_float

    to_float = value_to_float()
    mine = {
        (Path(r.log).stem, r.sample_id, int(r.sample_epoch), r.scorer): r.score
        for r in ours.itertuples(index=False)
    }
    n = 0
    score_cols = [c for c in ref.columns if c.startswith("score_")]
    for rec in ref.to_dict("records"):
        for col in score_cols:
            raw = rec[col]
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            scorer = col.removeprefix("score_")
            parts = json.loads(raw) if isinstance(raw, str) and raw.startswith("{") else {None: raw}
            for sub, v in parts.items():
                key = (Path(rec["log"]).stem, str(rec["id"]), int(rec["epoch"]), scorer if sub is None else f"{scorer}/{sub}")
                if mine.get(key) != to_float(v):
                    raise AssertionError(f"score differs at {key}: ours {mine.get(key)}, inspect-ai {to_float(v)}")
                n += 1
    if n != len(mine):
        raise AssertionError(f"{len(mine)} sample scores of ours, {n} from samples_df")
    return n


def main() -> dict:
    """Build, time both readers, check equality; print and return the figures."""
    t = time.perf_counter()
    logs = build()
    build_s = time.perf_counter() - t

    from inspect_ai.analysis import samples_df

    from analyze_experiment.diagnostics import Diagnostics
    from analyze_experiment.ingest.evals import EvalFile, collect_evals

    root = WORK / "logs"
    files = [EvalFile(p.stem, p, None) for p in logs]
    t = time.perf_counter()
    _, _, samples = collect_evals(root, files, Diagnostics(root), workers=2)
    ours_s = time.perf_counter() - t

    t = time.perf_counter()
    ref = samples_df(str(root), quiet=True)
    ref_s = time.perf_counter() - t

    n = _check_identical(samples, ref)
    result = {
        "logs": len(logs),
        "samples_per_log": N_SAMPLES,
        "sample_score_rows": len(samples),
        "identical_scores_checked": n,
        "ours_s": round(ours_s, 3),
        "samples_df_s": round(ref_s, 3),
        "ratio": round(ref_s / ours_s, 1),
        "target_ratio": 20,
        "build_s": round(build_s, 1),
    }
    print(
        f"eval ingest: {len(logs)} logs x {N_SAMPLES} samples: ours {ours_s:.2f} s (2 processes), "
        f"samples_df {ref_s:.2f} s -> {ref_s / ours_s:.1f}x faster; {n:,} per-sample scores identical"
    )
    return result


if __name__ == "__main__":
    main()
