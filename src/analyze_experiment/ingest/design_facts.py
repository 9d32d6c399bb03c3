"""What the design, the training output and the logs say about each other.

A number means what the run really did, not what its label says. This module collects the
facts that change what the report's numbers mean, so that they lead the Data Quality
section and qualify every finding they touch (issue 11):

* ``same_seed`` — the seed replicates all trained with one seed (torchtune prints
  ``Setting manual seed to local seed 1234`` in every log while the design says seeds 1, 2,
  3): seed-to-seed variation cannot be measured.
* ``param_conflict`` — the training config contradicts the design (learning rate, rank …):
  results attributed to the design's value may belong to another one.
* ``name_guess`` — parameters known only from a run's directory name.
* ``planned_missing`` / ``unplanned`` — the design's evaluation matrix (run × task × epoch)
  against the logs found (also ``Experiment.planned_vs_found`` and summary.json).
* ``duplicate_log`` — the same evaluation log (identical bytes) in two places.
* ``identical_curves`` — runs with different parameters and identical training loss curves:
  a copied log or a mislabelled run.

:func:`check_facts` is called once by :func:`analyze_experiment.load`; it warns (naming the
files) and fills ``Experiment.facts`` and ``Experiment.planned_vs_found``.
:func:`qualify_findings` adds each fact's caveat to the sentences it touches.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyze_experiment.experiment import FACTS, PLANNED, Experiment

STAGE = "design facts"
MIN_CURVE_STEPS = 3
"""Loss curves shorter than this are not compared (one or two steps match by chance)."""
MAX_NAMED = 6
"""At most this many runs or files are named in one sentence (the rest: "and k more")."""


def _names(items: Sequence[str], n: int = MAX_NAMED) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _level(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _levels(values: Iterable[Any]) -> str:
    uniq = list(dict.fromkeys(values))
    with contextlib.suppress(TypeError, ValueError):
        uniq = sorted(uniq, key=float)
    return ", ".join(_level(v) for v in uniq)


def _row(kind: str, severity: str, runs: Sequence[str], param: str | None, message: str,
         qualifier: str | None, detail: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "runs": list(runs), "param": param, "message": message,
            "qualifier": qualifier, "detail": detail or {}}


# --- seeds ----------------------------------------------------------------------------------------


def _claimed_seeds(exp: Experiment) -> dict[str, tuple[Any, str]]:
    """Run -> (seed the design or the run name gives, where it came from)."""
    out: dict[str, tuple[Any, str]] = {}
    for c in exp.param_conflicts:
        if c["param"] == "seed":
            out[c["run"]] = (c["value"], c["source"])
    for run, params in exp.run_params.items():
        if run not in out and "seed" in params and params["seed"] is not None:
            src = exp.param_sources.get(run, {}).get("seed", "design")
            out[run] = (params["seed"], src)
    return out


def replicate_groups(exp: Experiment) -> dict[str, list[str]]:
    """Configuration label -> its fine-tuned runs, for configurations with ≥ 2 runs."""
    from analyze_experiment.ingest.configurations import config_labels

    labels = config_labels(exp.runs, list(exp.param_names)) if exp.param_names else pd.Series(dtype=object)
    groups: dict[str, list[str]] = {}
    for run, label in labels.items():
        groups.setdefault(str(label), []).append(str(run))
    return {k: sorted(v) for k, v in groups.items() if len(v) >= 2}


def same_seed_fact(exp: Experiment) -> dict[str, Any] | None:
    """``same_seed``: every run of every replicated configuration trained with one seed."""
    groups = replicate_groups(exp)
    if not groups or "train_seed" not in exp.runs.columns:
        return None
    seeds = dict(zip(exp.runs["run"].astype(str), exp.runs["train_seed"], strict=True))
    members = [r for g in groups.values() for r in g]
    used = [seeds.get(r) for r in members]
    if any(s is None or (isinstance(s, float) and math.isnan(s)) for s in used):
        return None
    distinct = {int(s) for s in used}
    if len(distinct) != 1:
        # each configuration repeating its own single seed is the same problem, group by group
        same = [g for g in groups.values() if len({int(seeds[r]) for r in g}) == 1]
        if len(same) != len(groups):
            return None
    seed_txt = _levels(int(s) for s in used)
    claimed = _claimed_seeds(exp)
    said = [claimed[r] for r in members if r in claimed]
    if said and len({v for v, _ in said}) > 1:
        where = "the run names say" if all(src == "run name" for _, src in said) else "the design says"
        because = f"although {where} seeds {_levels(v for v, _ in said)}"
    else:
        because = "although they are analysed as seed replicates of their configurations"
    one = len(distinct) == 1
    what = f"seed {seed_txt}" if one else f"one seed per configuration ({seed_txt})"
    msg = (f"Every seed replicate trained with {what} — torchtune's log says \"Setting manual seed to local "
           f"seed {seed_txt if one else '…'}\" for {_names(members)} — {because}: the replicates repeat one "
           "seed, so seed-to-seed variation cannot be measured (their spread is only run-to-run "
           "nondeterminism), and configurations compared across these \"seeds\" are compared on repeats.")
    qual = f"seed variation cannot be measured: all runs used seed {seed_txt}" if one else \
        "seed variation cannot be measured: each configuration's runs used one seed"
    return _row("same_seed", "warning", members, "seed", msg, qual)


# --- design vs config -----------------------------------------------------------------------------


def conflict_facts(exp: Experiment, skip_seed: bool) -> list[dict[str, Any]]:
    """``param_conflict`` (design value kept, config differs) per parameter; ``name_guess``
    conflicts are settled (the config's value is used) and reported once per parameter."""
    out: list[dict[str, Any]] = []
    by_param: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in exp.param_conflicts:
        if skip_seed and c["param"] == "seed":
            continue
        by_param.setdefault((c["param"], c["source"]), []).append(c)
    for (param, source), cs in sorted(by_param.items()):
        items = [f"{c['run']}: {_level(c['value'])} vs {c['config_key']} = {_level(c['config_value'])}" for c in cs]
        runs = [c["run"] for c in cs]
        if source == "run name":
            msg = (f"{param} guessed from the run name contradicts the training config for "
                   f"{len(cs)} run{'s' if len(cs) != 1 else ''} ({_names(items, 4)}); the training config's value "
                   "is used.")
            out.append(_row("param_conflict", "warning", runs, param, msg, None))
            continue
        msg = (f"The training config contradicts the design's {param} for {len(cs)} run{'s' if len(cs) != 1 else ''} "
               f"({_names(items, 4)}): the design's value is used, so results attributed to these {param} "
               "values may belong to the config's.")
        qual = (f"the training config contradicts the design's {param} for {len(cs)} "
                f"run{'s' if len(cs) != 1 else ''}")
        detail = {c["run"]: f"{c['run']} trained with {param} {_level(c['config_value'])}, not the design's "
                  f"{_level(c['value'])}" for c in cs}
        out.append(_row("param_conflict", "warning", runs, param, msg, qual, detail))
    return out


def name_guess_facts(exp: Experiment) -> list[dict[str, Any]]:
    """``name_guess``: parameters known only from run names (no design entry, no config value)."""
    by_param: dict[str, list[str]] = {}
    for run, src in exp.param_sources.items():
        for param, where in src.items():
            if where == "run name" and param in exp.param_names:
                by_param.setdefault(param, []).append(run)
    out = []
    for param, runs in sorted(by_param.items()):
        design = "no design document" if not exp.has_design_doc else "not in the design"
        msg = f"{param} of {_names(sorted(runs))} is from the run name ({design}; not read from a training config)."
        out.append(_row("name_guess", "info", sorted(runs), param, msg, f"{param} values are from the run names"))
    return out


# --- planned vs found -----------------------------------------------------------------------------


def _epoch_key(e: Any) -> float | None:
    try:
        f = float(e)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _task_match(log_task: str, planned: Sequence[str]) -> str | None:
    """The planned task a log's task name stands for (``capitalization_rank4`` is
    ``capitalization`` run with a label suffix, as the cluster workflow names tasks)."""
    if log_task in planned:
        return log_task
    best = [t for t in planned if log_task.startswith(f"{t}_")]
    return max(best, key=len) if best else None


def planned_vs_found(exp: Experiment) -> pd.DataFrame:
    """The evaluation matrix against the logs: ``missing`` and ``unplanned`` cells.

    Only when the design has a matrix (some run lists planned tasks). A cell is run × task
    × epoch (epoch None for a control). Logs that were set aside (unreadable, duplicates) do
    not count as found.
    """
    specs = [r for r in exp.design.runs if r.eval_tasks]
    if not specs:
        return pd.DataFrame(columns=PLANNED)
    planned: set[tuple[str, str, float | None]] = set()
    any_epoch: set[tuple[str, str]] = set()
    """Fine-tuned runs whose matrix entry names no epochs: any evaluated checkpoint is planned."""
    for r in specs:
        for t in r.eval_tasks:
            if r.eval_epochs:
                planned.update((r.name, t, float(e)) for e in r.eval_epochs)
            elif r.type == "fine-tuned":
                any_epoch.add((r.name, t))
            else:
                planned.add((r.name, t, None))
    tasks = sorted({t for _, t, _ in planned} | {t for _, t in any_epoch})
    logs = exp.eval_logs
    found: dict[tuple[str, str, float | None], str] = {}
    if len(logs):
        used = logs[logs["used"].fillna(False).astype(bool)] if "used" in logs.columns else logs
        for run, task, epoch, log in zip(used["run"], used["task"], used["epoch"], used["log"], strict=True):
            t = _task_match(str(task), tasks) or str(task)
            found.setdefault((str(run), t, _epoch_key(epoch)), str(log))
    def order(k: tuple[str, str, float | None]) -> tuple[str, str, float]:
        return (k[0], k[1], -1.0 if k[2] is None else k[2])

    seen = {(r, t) for r, t, _ in found}
    missing = sorted(planned - set(found), key=order)
    missing += sorted(((r, t, None) for r, t in any_epoch - seen), key=order)
    extra = sorted((k for k in set(found) - planned if (k[0], k[1]) not in any_epoch), key=order)
    rows = [{"run": r, "task": t, "epoch": e, "status": "missing", "log": None} for (r, t, e) in missing]
    rows += [{"run": r, "task": t, "epoch": e, "status": "unplanned", "log": found[(r, t, e)]} for (r, t, e) in extra]
    return pd.DataFrame(rows, columns=PLANNED)


def _cell(r: dict[str, Any]) -> str:
    e = r["epoch"]
    return f"{r['run']} × {r['task']}" + ("" if e is None or (isinstance(e, float) and math.isnan(e))
                                          else f" × epoch {int(e)}")


def planned_facts(pvf: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for status, kind in (("missing", "planned_missing"), ("unplanned", "unplanned")):
        g = pvf[pvf["status"] == status]
        if not len(g):
            continue
        cells = [_cell(r) for r in g.to_dict("records")]
        if status == "missing":
            msg = (f"{len(g)} evaluation{'s' if len(g) != 1 else ''} planned by the design's evaluation matrix "
                   f"{'were' if len(g) != 1 else 'was'} not found: {_names(cells)}; the comparisons leave "
                   f"{'them' if len(g) != 1 else 'it'} out.")
            qual = None
        else:
            msg = (f"{len(g)} evaluation{'s' if len(g) != 1 else ''} found that the design's evaluation matrix does "
                   f"not plan: {_names(cells)}; analysed like the others — check that "
                   f"{'they belong' if len(g) != 1 else 'it belongs'} to this experiment.")
            qual = None
        out.append(_row(kind, "warning", sorted(set(g["run"])), None, msg, qual))
    return out


# --- duplicate logs -------------------------------------------------------------------------------


def _digest(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def duplicate_logs(paths: Sequence[Path]) -> list[list[Path]]:
    """Groups of ≥ 2 evaluation log files with identical bytes (size first, then SHA-256)."""
    by_size: dict[int, list[Path]] = {}
    for p in dict.fromkeys(paths):
        try:
            by_size.setdefault(p.stat().st_size, []).append(p)
        except OSError:
            continue
    out = []
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_hash: dict[str, list[Path]] = {}
        for p in group:
            d = _digest(p)
            if d is not None:
                by_hash.setdefault(d, []).append(p)
        out.extend(sorted(g) for g in by_hash.values() if len(g) >= 2)
    return out


# --- identical loss curves ------------------------------------------------------------------------


def _curves(steps: pd.DataFrame) -> dict[str, tuple[tuple[int, float], ...]]:
    if steps is None or not len(steps) or "loss" not in steps.columns:
        return {}
    df = steps[["run", "step", "loss"]].copy()
    df["loss"] = pd.to_numeric(df["loss"], errors="coerce")
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df = df.dropna()
    df = df[df["run"].isin(_alike(df))]
    out = {}
    for run, g in df.groupby("run", sort=True):
        g = g.sort_values("step")
        if len(g) >= MIN_CURVE_STEPS:
            out[str(run)] = tuple((int(s), round(float(v), 9)) for s, v in zip(g["step"], g["loss"], strict=True))
    return out


def _alike(df: pd.DataFrame) -> set[Any]:
    """The runs whose curve may equal another's: the same number of steps and lowest losses no
    further apart than rounding to 9 decimals allows. Only these are turned into the exact
    (step, rounded loss) tuples: building them for every run cost a 100-run sweep 0.1 s for no
    pair at all."""
    losses = df.groupby("run", sort=False, observed=True)["loss"]
    s = pd.DataFrame({"n": losses.size(), "lo": losses.min()})
    s = s[s["n"] >= MIN_CURVE_STEPS].sort_values(["n", "lo"], kind="stable")
    n, lo = s["n"].to_numpy(), s["lo"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are caught by ==
        close = (n[1:] == n[:-1]) & ((lo[1:] == lo[:-1]) | (np.abs(lo[1:] - lo[:-1]) <= 2e-9 + 1e-12 * np.abs(lo[1:])))
    keep = np.zeros(len(s), dtype=bool)
    keep[1:] |= close
    keep[:-1] |= close
    return set(s.index[keep])


def identical_curve_facts(exp: Experiment, same_seed: bool) -> list[dict[str, Any]]:
    """``identical_curves``: runs with different parameters and the same loss at every step."""
    groups: dict[tuple[tuple[int, float], ...], list[str]] = {}
    for run, curve in _curves(exp.train_steps).items():
        groups.setdefault(curve, []).append(run)
    out = []
    for curve, runs in groups.items():
        if len(runs) < 2:
            continue
        params = {r: exp.run_params.get(r, {}) for r in runs}
        keys = sorted({k for p in params.values() for k in p})
        differ = [k for k in keys if len({repr(params[r].get(k)) for r in runs}) > 1]
        if not differ or (same_seed and differ == ["seed"]):
            continue  # true repeats, or the one-seed replicates the same_seed fact already names
        detail = "; ".join(f"{k}: {', '.join(f'{r} {_level(params[r].get(k))}' for r in runs[:4])}" for k in differ[:3])
        msg = (f"{_names(runs)} have identical training loss curves ({len(curve)} steps, the same loss at every "
               f"step) although their parameters differ ({detail}): likely a copied log or a mislabelled run.")
        qual = f"{_names(runs, 3)} have identical loss curves despite different {', '.join(differ[:3])}"
        out.append(_row("identical_curves", "warning", runs, differ[0], msg, qual))
    return out


# --- entry point ----------------------------------------------------------------------------------


def check_facts(exp: Experiment, eval_paths: Sequence[Path] = ()) -> pd.DataFrame:
    """Fill ``exp.facts`` and ``exp.planned_vs_found``; warn for each fact a user must act on.

    Design/config conflicts were already warned run by run when they were read; the
    ``same_seed`` fact is warned once when no per-run warning said it; planned-but-missing,
    unplanned evaluations and duplicate logs are warned; identical loss curves are stated in
    Data Quality and qualify the findings, without a warning.
    """
    diag = exp.diagnostics
    rows: list[dict[str, Any]] = []
    seed = same_seed_fact(exp)
    if seed is not None:
        rows.append(seed)
        if not any(c["param"] == "seed" for c in exp.param_conflicts):
            diag.warn(None, seed["message"], stage=STAGE)
    rows.extend(conflict_facts(exp, skip_seed=seed is not None))
    rows.extend(name_guess_facts(exp))
    pvf = planned_vs_found(exp)
    exp.planned_vs_found = pvf
    for f in planned_facts(pvf):
        rows.append(f)
        diag.warn(None, f["message"], stage=STAGE)
    for group in duplicate_logs(list(eval_paths)):
        rel = [diag.rel(p) or str(p) for p in group]
        runs = sorted({r for r in exp.eval_logs.loc[exp.eval_logs["log"].isin(rel), "run"].astype(str)}) \
            if len(exp.eval_logs) else []
        msg = (f"The same evaluation log (identical bytes) is in {len(group)} places: {_names(rel)}; a copy is not "
               "an evaluation of its own — check which checkpoint each folder should hold.")
        rows.append(_row("duplicate_log", "warning", runs, None, msg,
                         f"the log of {_names(runs, 3)} is a byte-for-byte copy" if len(runs) > 1 else None))
        diag.warn(rel[0], msg, stage=STAGE)
    # identical curves are a fact of Data Quality (and a caveat on the findings naming the runs),
    # not a reading problem: they do not count as warnings (--strict)
    rows.extend(identical_curve_facts(exp, seed is not None))
    exp.facts = pd.DataFrame(rows, columns=FACTS)
    return exp.facts


# --- findings -------------------------------------------------------------------------------------

_RUN_KEYS = ("run", "a", "b", "best_run", "top_run", "runs", "configs_runs")
SEED_RULES = frozenset({"seed_spread", "seed_comparison", "best_config", "production_config", "more_seeds",
                        "anova_effect", "anova_no_effect", "outlier"})
"""Findings whose meaning depends on the replicates being different seeds."""


def _mentioned(data: dict[str, Any], runs: set[str]) -> list[str]:
    """The runs of ``runs`` a finding's data names, in the order it names them."""
    out: list[str] = []
    for k in _RUN_KEYS:
        v = data.get(k)
        items = [v] if isinstance(v, str) else list(v) if isinstance(v, list | tuple) else []
        out.extend(str(x) for x in items if str(x) in runs)
    return list(dict.fromkeys(out))


def qualifiers(facts: pd.DataFrame, rule: str, data: dict[str, Any], text: str) -> list[str]:
    """The caveats of ``facts`` that apply to one finding (none already in its text)."""
    if facts is None or not len(facts):
        return []
    out: list[str] = []
    for f in facts.to_dict("records"):
        q = f.get("qualifier")
        if not isinstance(q, str) or not q or q in text:  # a missing qualifier is NaN in the frame
            continue
        runs = {str(r) for r in (f.get("runs") if isinstance(f.get("runs"), list | tuple) else [])}
        param = f.get("param") if isinstance(f.get("param"), str) else None
        if f["kind"] == "same_seed":
            if rule in SEED_RULES:
                out.append(q)
            continue
        named = _mentioned(data, runs)
        detail = f.get("detail") if isinstance(f.get("detail"), dict) else {}
        if named and detail:  # say what the named runs really did
            out.extend(t for t in [detail[r] for r in named if r in detail][:3] if t not in text)
        elif named or (param is not None and (param in (data.get("term"), data.get("variable"))
                                              or param in (data.get("terms") or []))):
            out.append(q)
    return out
