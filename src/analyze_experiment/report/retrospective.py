"""Retrospective: what the sweep cost, what it settled, and the design that would settle the rest.

Written from facts the report has already registered — the runs table (GPU-hours, status),
``Analysis.failed_runs``, and the findings with their claims — never from a new analysis, so
the retrospective cannot say anything the report does not. Each sentence names the finding it
rests on (``data["basis"]``) and carries that finding's claim.

The next design is a rule-based reading of those findings (docs/statistics.md,
"Retrospective"):

- a variable whose seed-level effect is significant keeps its levels; an ``edge_of_grid``
  finding extends it one step past the edge, an ``untested_level`` finding adds the midpoint;
- a variable with no detectable seed-level effect, or whose observed gap would need more than
  :data:`MAX_SEEDS` seeds per configuration to test, is fixed at the production pick's level
  (it moves to ``controls``);
- an untested variable (one run per configuration) keeps its levels, and seeds are added;
- seeds per configuration: what the findings' power calculations ask for, at least
  :data:`MIN_SEEDS` (two-sided Welch between two configurations needs 3 per group to have any
  power), at most :data:`MAX_SEEDS`;
- the evaluation set grows to the ``larger_eval_set`` finding's sample size when there is one.

The result is an ``experiment_summary.yaml`` skeleton in the upstream workflow's schema
(``experiment``, ``variables`` with torchtune's parameter names, ``controls``, ``runs``,
``evaluation``), with the reasons as comments, for the user to complete (paths, dataset).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import pandas as pd
import yaml

from analyze_experiment.analysis import Analysis, Finding
from analyze_experiment.experiment import Design
from analyze_experiment.formatting import fmt_hours, fmt_level, fmt_usd, gpu_unit

MIN_SEEDS = 3
MAX_SEEDS = 10
"""Seeds per configuration the next design asks for at most: a gap that needs more is too small
next to training noise to be worth a sweep; the variable is fixed instead."""

TORCHTUNE_NAMES = {"learning_rate": "lr"}
"""Our canonical parameter names -> the names torchtune configs (and the upstream design) use."""

RUN_TOKENS = {"lora_rank": "rank", "learning_rate": "lr", "batch_size": "bs", "seed": "seed",
              "gradient_accumulation_steps": "ga", "epochs": "ep"}
"""Short tokens for run names (``rank4_lr1e-4_seed1``), as the upstream workflow names runs."""


def _f(rule: str, text: str, basis: list[Finding] | None = None, **data: Any) -> Finding:
    claim = next((b.claim for b in basis or [] if b.claim is not None), None)
    data["basis"] = list(dict.fromkeys(b.rule for b in basis or []))
    return Finding(section="retrospective", text=text if text.endswith(".") else text + ".", rule=rule,
                   data=data, claim=claim)


def _confirmatory_pairs(a: Analysis) -> set[tuple[str, str]]:
    f = a.families
    if f is None or f.empty:
        return {(b.task, b.scorer) for b in a.best}
    f = f[f["confirmatory"].astype(bool) & (f["kind"] == "checkpoints")]
    return {(str(t), str(s)) for t, s in zip(f["task"], f["scorer"], strict=True)}


def _scorer_of(f: Finding) -> str | None:
    """The finding's scorer: its data, else the family of its claim (``kind: task/scorer/metric``)."""
    if f.data.get("scorer") is not None:
        return str(f.data["scorer"])
    if f.claim is not None and ": " in f.claim.family:
        parts = f.claim.family.split(": ", 1)[1].split("/")
        if len(parts) >= 3:
            return parts[-2]
    return None


def _primary_findings(a: Analysis) -> list[Finding]:
    """Findings about a confirmatory task × scorer (or about a task, when no scorer is known)."""
    keys = _confirmatory_pairs(a)
    tasks = {t for t, _ in keys}
    out = []
    for f in a.findings:
        if f.section == "retrospective" or f.data.get("task") is None:
            continue
        task, scorer = str(f.data["task"]), _scorer_of(f)
        if (task, scorer) in keys or (scorer is None and task in tasks):
            out.append(f)
    return out


def cost_facts(a: Analysis, runs: pd.DataFrame, gpu_hour_cost: float | None,
               facts: pd.DataFrame | None = None) -> list[Finding]:
    """Total training cost, and the shares spent on failed and on redundant runs."""
    out: list[Finding] = []
    if runs is None or runs.empty or "gpu_hours" not in runs.columns:
        return out
    hours = pd.to_numeric(runs["gpu_hours"], errors="coerce")
    known = runs[hours.notna()]
    if known.empty:
        out.append(_f("cost_total", "The training cost is unknown: no run recorded its training time"))
        return out
    total = float(hours.sum())
    unit = gpu_unit([total])
    usd = f" ({fmt_usd(total * gpu_hour_cost)} at ${gpu_hour_cost:g} per GPU-hour)" if gpu_hour_cost else ""
    n_unknown = int((runs["type"] == "fine-tuned").sum() - (known["type"] == "fine-tuned").sum()) \
        if "type" in runs.columns else 0
    text = f"The sweep trained {len(known)} runs for {fmt_hours(total, unit)}{usd}"
    if n_unknown > 0:
        text += f"; {n_unknown} more fine-tuned run(s) have no recorded training time and are not counted"
    out.append(_f("cost_total", text, gpu_hours=total, usd=total * gpu_hour_cost if gpu_hour_cost else None,
                  n_runs=len(known)))
    failed = a.failed_runs
    if failed is not None and not failed.empty and "run" in failed.columns:
        names = [str(r) for r in failed["run"]]
        fh = float(pd.to_numeric(runs.loc[runs["run"].astype(str).isin(names), "gpu_hours"], errors="coerce").sum())
        share = fh / total if total > 0 else math.nan
        from analyze_experiment.stats.health import marks

        mark = marks(failed)  # the same mark every other sentence naming a failed run carries
        status = ", ".join(f"{r} ({mark.get(str(r)) or s})" for r, s in zip(failed["run"], failed["status"],
                                                                          strict=True))
        out.append(_f("cost_failed", f"{fmt_hours(fh, unit)} ({share:.0%} of the total) went to runs that failed: "
                      f"{status}; their checkpoints answer nothing", gpu_hours=fh, share=share, runs=names))
    else:
        out.append(_f("cost_failed", f"None of the {fmt_hours(total, unit)} went to failed runs (0 runs failed)",
                      gpu_hours=0.0, share=0.0, runs=[]))
    out += _redundant_cost(runs, facts, total, unit)
    return out


def _redundant_cost(runs: pd.DataFrame, facts: pd.DataFrame | None, total: float, unit: Any) -> list[Finding]:
    """GPU time of runs that repeated another's training: identical loss curves (all but the
    first of each group), and seed replicates that all used one seed (all but one per run set).
    From the design facts Data Quality states (``design_facts.py``)."""
    if facts is None or facts.empty or "kind" not in facts.columns:
        return []
    hours = pd.to_numeric(runs.set_index("run")["gpu_hours"], errors="coerce") if "run" in runs.columns else None
    out = []
    for kind, why in (("identical_curves", "have a loss curve identical to another run's"),
                      ("same_seed", "repeated another replicate's seed")):
        groups = [list(r) for r in facts.loc[facts["kind"] == kind, "runs"] if isinstance(r, list | tuple)]
        extra = sorted({str(r) for g in groups for r in g[1:]})
        if not extra or hours is None:
            continue
        h = float(hours.reindex(extra).sum())
        share = h / total if total > 0 else math.nan
        out.append(_f("cost_redundant", f"{fmt_hours(h, unit)} ({share:.0%} of the total) went to {len(extra)} "
                      f"run(s) that {why} ({', '.join(extra[:6])}{', …' if len(extra) > 6 else ''}): "
                      "they add no independent evidence", gpu_hours=h, share=share, runs=extra, fact=kind))
    return out


def _variable_status(findings: list[Finding], variables: list[str]) -> dict[str, tuple[str, list[Finding]]]:
    """variable -> (``matters`` | ``no_effect`` | ``untested`` | ``too_small`` | ``unknown``, basis)."""
    out: dict[str, tuple[str, list[Finding]]] = {}
    for v in variables:
        eff = [f for f in findings if f.rule == "anova_effect" and f.data.get("term") == v]
        null = [f for f in findings if f.rule == "anova_no_effect" and v in (f.data.get("terms") or [])]
        conf = [f for f in findings if f.rule == "effect_confounded" and f.data.get("variable") == v]
        if eff:
            out[v] = ("matters", eff)
        elif null:
            out[v] = ("no_effect", null)
        elif conf:
            need, gap = conf[0].data.get("seeds_needed"), conf[0].data.get("diff")
            too_small = (gap is not None and float(gap) == 0.0) or (
                need is not None and not (isinstance(need, float) and math.isnan(need)) and need > MAX_SEEDS)
            out[v] = ("too_small" if too_small else "untested", conf)
        else:
            out[v] = ("unknown", [])
    return out


def _extend(levels: list[float], edge: float) -> float | None:
    """One step past ``edge``: geometric when the levels are (ratio ≥ 2 apart), else arithmetic."""
    levels = sorted(levels)
    if len(levels) < 2:
        return None
    up = edge == levels[-1]
    a, b = (levels[-2], levels[-1]) if up else (levels[0], levels[1])
    if a > 0 and b / a >= 2:
        r = b / a
        return float(f"{(edge * r if up else edge / r):.3g}")
    step = b - a
    nxt = edge + step if up else edge - step
    return float(f"{nxt:.3g}") if nxt > 0 or not up else None


def next_design(a: Analysis, runs: pd.DataFrame, design: Design, variables: list[str],
                seed_var: str | None) -> tuple[dict[str, Any], list[Finding]]:
    """The next sweep as an upstream ``experiment_summary.yaml`` mapping, and one sentence per choice."""
    findings = _primary_findings(a)
    status = _variable_status(findings, variables)
    info = runs.set_index("run") if runs is not None and not runs.empty and "run" in runs.columns else pd.DataFrame()
    prod = next((f for f in findings if f.rule == "production_config"), None)
    pick = str(prod.data.get("run")) if prod is not None else (a.best[0].run if a.best else None)
    sentences: list[Finding] = []
    new_vars: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for v in variables:
        if v == seed_var:
            continue
        levels = list(design.variables.get(v) or [])
        if not levels and v in info.columns:
            levels = sorted(set(info[v].dropna()), key=lambda x: (str(type(x)), x))
        st, basis = status[v]
        pick_level = info.loc[pick, v] if pick in info.index and v in info.columns else None
        if st in ("no_effect", "too_small") and pick_level is not None and not pd.isna(pick_level):
            fixed[v] = plain(pick_level)
            why = ("no detectable seed-level effect" if st == "no_effect" else
                   f"its observed gap is too small to test with {MAX_SEEDS} seeds per configuration or fewer")
            sentences.append(_f("next_fixed", f"Fix {v} at {fmt_level(pick_level)} (the production pick's level): {why}",
                                basis, variable=v, level=pick_level, status=st))
            continue
        new_vars[v] = plain(_new_levels(v, levels, findings, sentences))
        if st == "matters":
            sentences.append(_f("next_keep", f"Keep varying {v} over {_levels_text(new_vars[v])}: it matters across "
                                "training runs", basis, variable=v, status=st))
        elif st == "untested":
            sentences.append(_f("next_keep", f"Keep varying {v} over {_levels_text(new_vars[v])} with seeds: its effect "
                                "could not be tested with 1 run per configuration", basis, variable=v, status=st))
    seeds = _seeds(a, findings, status)
    sentences.append(_f("next_seeds", f"Train {seeds} seeds per configuration: " + _seed_reason(a, findings, seeds),
                        [f for f in findings if f.rule in ("effect_confounded", "more_seeds", "seed_variation")],
                        seeds=seeds))
    n_eval = _eval_set_size(findings, sentences)
    doc = _yaml_mapping(design, runs, new_vars, fixed, seeds, n_eval, seed_var)
    return doc, sentences


def _new_levels(v: str, levels: list[Any], findings: list[Finding], sentences: list[Finding]) -> list[Any]:
    """The variable's levels for the next sweep: the tested ones, plus one beyond the edge the
    best sits at, plus one between levels that could not be told apart (each with its sentence)."""
    nums = [float(x) for x in levels if isinstance(x, int | float) and not isinstance(x, bool)]
    new = list(levels)
    for f in findings:
        if f.rule == "edge_of_grid" and f.data.get("variable") == v and nums:
            ext = _extend(nums, float(f.data["edge"]))
            if ext is not None and ext not in new:
                new.append(ext)
                sentences.append(_f("next_extend", f"Extend {v} to {fmt_level(ext)}: the best run sits at the "
                                    f"edge of the tested range ({fmt_level(f.data['edge'])})", [f], variable=v,
                                    level=ext))
        if f.rule == "untested_level" and f.data.get("variable") == v and f.data.get("level") is not None:
            mid = float(f"{float(f.data['level']):.3g}")
            if mid not in new:
                new.append(mid)
                sentences.append(_f("next_between", f"Add {v} = {fmt_level(mid)}: the levels around the best "
                                    "could not be told apart and nothing between them was tested", [f],
                                    variable=v, level=mid))
    if all(isinstance(x, int | float) and not isinstance(x, bool) for x in new):
        new = sorted(new)
    return new


def _eval_set_size(findings: list[Finding], sentences: list[Finding]) -> int | None:
    """Samples per task the power analysis asks for, with its sentence (None: no such advice)."""
    n_eval = next((f.data.get("n_needed") for f in findings if f.rule == "larger_eval_set"
                   and f.data.get("n_needed") is not None and not math.isnan(float(f.data["n_needed"]))), None)
    if n_eval is None:
        return None
    basis = [f for f in findings if f.rule == "larger_eval_set"]
    sentences.append(_f("next_eval_set", f"Evaluate on at least {int(n_eval):,} samples per task", basis,
                        n_samples=int(n_eval)))
    return n_eval


def _levels_text(levels: list[Any]) -> str:
    return ", ".join(fmt_level(x) for x in levels)


def _seeds(a: Analysis, findings: list[Finding], status: dict[str, tuple[str, list[Finding]]]) -> int:
    """Seeds per configuration: the largest need the findings state for a testable variable, clamped."""
    needs = [float(f.data["seeds_needed"]) for f in findings if f.rule == "effect_confounded"
             and f.data.get("seeds_needed") is not None and not math.isnan(float(f.data["seeds_needed"]))
             and float(f.data["seeds_needed"]) <= MAX_SEEDS]
    current = int(a.seeds["n_seeds"].max()) if a.seeds is not None and len(a.seeds) else 1
    want = max([MIN_SEEDS, *[math.ceil(n) for n in needs]])
    if any(s == "matters" for s, _ in status.values()):
        want = max(want, current)
    return int(min(MAX_SEEDS, want))


def _seed_reason(a: Analysis, findings: list[Finding], seeds: int) -> str:
    conf = [f for f in findings if f.rule == "effect_confounded"]
    if conf:
        return ("the sweep trained each configuration once, so no effect of a variable could be told from "
                f"training noise; {seeds} seeds give a seed-level test")
    if a.seeds is not None and len(a.seeds):
        return f"as many as this sweep used per configuration (at least {MIN_SEEDS} for a seed-level test)"
    return f"at least {MIN_SEEDS} for a seed-level test of each variable"


def _name_token(var: str, value: Any) -> str:
    """``rank16``, ``lr1e-4`` (exponents without padding, as sweeps name runs)."""
    if isinstance(value, float) and 0 < abs(value) < 0.01:
        mant, exp = f"{value:e}".split("e")
        text = f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    else:
        text = re.sub(r"e([+-])0*(\d)", r"e\1\2", fmt_level(value)).replace("e+", "e")
    return f"{RUN_TOKENS.get(var, var)}{text}"


def _yaml_mapping(design: Design, runs: pd.DataFrame, variables: dict[str, list[Any]], fixed: dict[str, Any],
                  seeds: int, n_eval: float | None, seed_var: str | None) -> dict[str, Any]:
    model = None
    if runs is not None and not runs.empty and "model" in runs.columns:
        models = runs.loc[runs["type"] == "fine-tuned", "model"].dropna().astype(str)
        model = models.mode().iloc[0] if len(models) else None
    tt = {**{TORCHTUNE_NAMES.get(k, k): v for k, v in variables.items()}, "seed": list(range(1, seeds + 1))}
    controls = {TORCHTUNE_NAMES.get(k, k): v for k, v in {**design.controls, **fixed}.items()
                if k != seed_var and k != "seed"}
    run_list: list[dict[str, Any]] = []
    keys = [*variables, "seed"]
    grids = [variables[k] for k in variables] + [tt["seed"]]
    for combo in itertools.product(*grids):
        params = dict(zip(keys, combo, strict=True))
        name = "_".join(_name_token(k, v) for k, v in params.items())
        run_list.append({"name": f"{model}_{name}" if model else name, "type": "fine-tuned", "model": model,
                         "parameters": {TORCHTUNE_NAMES.get(k, k): v for k, v in params.items()}})
    for r in design.runs:
        if r.type == "control":
            run_list.append({"name": r.name, "type": "control", "model": r.model, "parameters": {}})
    evaluation: dict[str, Any] = {"tasks": [{"name": t} for t in design.tasks],
                                  "scorers": [{"name": s} for s in design.scorers]}
    if n_eval is not None:
        evaluation["min_samples_per_task"] = int(n_eval)
    return {
        "experiment": {"name": f"{design.name}_next", "question": design.question, "hypothesis": None,
                       "purpose": f"Follow-up of {design.name}: settle what it left open."},
        "tools": {"preparation": "torchtune", "evaluation": "inspect-ai"},
        "variables": tt,
        "controls": controls,
        "runs": run_list,
        "evaluation": evaluation,
    }


def plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers (whole floats as ints) and anything else
    YAML cannot represent as text, recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) >= 1 else value
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def yaml_text(doc: dict[str, Any], reasons: list[Finding]) -> str:
    """The skeleton as YAML with the reasons as a comment header (one line each: a reason is
    our own sentence, but it quotes run and variable names, so line breaks are flattened)."""
    head = ["# Next experiment, drafted by analyze-experiment from the registered findings of this sweep.",
            "# Complete the paths (models, data, evaluation scripts) before scaffolding. Why each choice:"]
    head += ["#  - " + " ".join(r.text.split()) for r in reasons]
    return "\n".join(head) + "\n\n" + _dump(plain(doc))


_DUMPED: dict[str, str] = {}
"""YAML already written, by the ``repr`` of the plain mapping (which fixes the text: the same
keys in the same order, the same scalars of the same types). One report writes its next
design three times: the report's section, retrospective.md and the YAML file."""


def _dump(value: dict[str, Any]) -> str:
    key = repr(value)
    if key not in _DUMPED:
        if len(_DUMPED) >= 4:
            _DUMPED.clear()
        _DUMPED[key] = yaml.dump(value, Dumper=_dumper(value), sort_keys=False, allow_unicode=True,
                                 default_flow_style=False, width=100)
    return _DUMPED[key]


LIBYAML_KEY_CHARS = 64
"""libyaml and PyYAML's own emitter decide differently whether a long key may be written as a
simple key (``key: value``); up to this many characters they agree."""


def _dumper(value: Any) -> type[yaml.SafeDumper] | type[yaml.CSafeDumper]:
    """libyaml's emitter (C, several times faster) when it writes exactly the text PyYAML's own
    would: every string printable ASCII, every key a non-empty string of at most
    :data:`LIBYAML_KEY_CHARS` characters. Elsewhere the two differ (how they fold escaped,
    non-ASCII or astral text, empty and long keys), so anything else goes through PyYAML's."""
    if getattr(yaml, "__with_libyaml__", False) and _libyaml_safe(value):
        return yaml.CSafeDumper
    return yaml.SafeDumper


def _libyaml_safe(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() and value.isprintable()
    if isinstance(value, dict):
        return all(isinstance(k, str) and 0 < len(k) <= LIBYAML_KEY_CHARS and _libyaml_safe(k)
                   and _libyaml_safe(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_libyaml_safe(v) for v in value)
    return value is None or isinstance(value, bool | int | float)


def planned_facts(runs: pd.DataFrame, design: Design, planned: pd.DataFrame | None = None) -> list[Finding]:
    """Runs the design planned against the runs found on disk, and evaluations (run × task ×
    epoch) planned but missing or found but not planned (``Experiment.planned_vs_found``)."""
    if not design.runs:
        n = int(runs["run"].nunique()) if runs is not None and not runs.empty and "run" in runs.columns else 0
        return [_f("planned_vs_ran", f"No design document listed the planned runs; all {n} runs found were analysed",
                   planned=0, missing=[], unplanned=[])]
    planned_runs = [r.name for r in design.runs]
    on_disk = set()
    if runs is not None and not runs.empty and "on_disk" in runs.columns:
        on_disk = {str(r) for r, d in zip(runs["run"], runs["on_disk"], strict=True) if bool(d)}
    missing = [r for r in planned_runs if r not in on_disk]
    extra = sorted(on_disk - set(planned_runs))
    text = f"The design planned {len(planned_runs)} runs; {len(planned_runs) - len(missing)} were found"
    if missing:
        text += f"; missing: {', '.join(missing)}"
    if extra:
        text += f"; found but not planned: {', '.join(extra)}"
    out = [_f("planned_vs_ran", text, planned=len(planned_runs), missing=missing, unplanned=extra)]
    if planned is not None and "status" in planned.columns and any(r.eval_tasks for r in design.runs):
        st = planned["status"].astype(str)
        n_missing, n_unplanned = int((st == "missing").sum()), int((st == "unplanned").sum())
        out.append(_f("planned_evals", f"{n_missing} evaluation(s) the design's matrix planned (run × task × epoch) "
                      f"are missing and {n_unplanned} found were not planned (Data Quality lists them)",
                      missing=n_missing, unplanned=n_unplanned))
    return out


def variable_facts(a: Analysis, variables: list[str], seed_var: str | None) -> list[Finding]:
    """What the sweep settled about each variable, from the effect findings."""
    findings = _primary_findings(a)
    status = _variable_status(findings, [v for v in variables if v != seed_var])
    out = []
    words = {"matters": "mattered", "no_effect": "showed no detectable effect",
             "untested": "could not be tested (1 run per configuration)",
             "too_small": "could not be tested, and its observed gap is too small to be worth testing",
             "unknown": "was not assessed"}
    for v, (st, basis) in status.items():
        out.append(_f("variable_verdict", f"{v} {words[st]}", basis, variable=v, status=st))
    return out


def retrospective(a: Analysis, runs: pd.DataFrame, design: Design, variables: list[str], seed_var: str | None,
                  gpu_hour_cost: float | None, facts: pd.DataFrame | None = None,
                  planned: pd.DataFrame | None = None) -> tuple[list[Finding], dict[str, Any]]:
    """Every retrospective sentence and the next design's mapping (``facts`` and ``planned``:
    the experiment's design facts and planned-vs-found table)."""
    out = cost_facts(a, runs, gpu_hour_cost, facts)
    out += variable_facts(a, variables, seed_var)
    out += planned_facts(runs, design, planned)
    doc, reasons = next_design(a, runs, design, variables, seed_var)
    return out + reasons, doc
