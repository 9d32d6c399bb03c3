"""Reading the YAML design document of 2026 (``experiment_summary.yaml``).

The schema grew over the year, so older shapes are accepted next to the current one
(``experiment.name`` or a top-level ``name``; ``parameters`` or ``params``; ``type`` in
any spelling or a ``finetuned`` boolean; ``lr`` or ``learning_rate``; scorers as names
or mappings). Parameter names are normalised exactly as for the markdown format, so
both give the same keys.

The text is loaded with PyYAML's *safe* loader only, after the node graph has been
checked: an alias ("billion laughs") bomb or a recursive alias is refused before any
object is built, and ``!!python/...`` tags are rejected by the safe constructor.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

from analyze_experiment._design_markdown import derive_variables
from analyze_experiment._design_values import (
    coerce_value,
    normalize_param_name,
    normalize_run_type,
    parse_value,
)
from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.model import Design, RunSpec

STAGE = "design"

MAX_NODES = 200_000
"""Largest document, in YAML nodes *after* alias expansion, that is read (a real design
has a few hundred)."""

EXPERIMENT_FIELDS = ("name", "question", "hypothesis", "purpose", "date")
NON_PARAMETERS = {"checkpoint_path"}
"""Run ``parameters`` entries that are not swept settings (an eval-only run's absolute
checkpoint path): left out of ``RunSpec.params``."""


TEMPLATE_VALUES = frozenset({"string", "int", "float", "bool", "[string]", "[int]", "dict", "list"})
"""Type names the annotated schema template has where a real document has values."""


class YamlRefused(ValueError):
    """The YAML text cannot be read safely or is not a design document."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse node graphs that would expand beyond :data:`MAX_NODES` or that loop.

    Sizes are memoised per node, so the check itself stays linear in the *written*
    document even for an alias bomb."""
    size: dict[int, int] = {}
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise YamlRefused(f"it expands to more than {MAX_NODES:,} nodes through aliases (refused)")
            size[key] = total
            state[key] = 2
            continue
        if state.get(key) == 2:
            continue
        if state.get(key) == 1:
            raise YamlRefused("an alias refers to itself (recursive structure refused)")
        state[key] = 1
        stack.append((node, True))
        for child in _children(node):
            if state.get(id(child)) == 1:
                raise YamlRefused("an alias refers to itself (recursive structure refused)")
            if state.get(id(child)) != 2:
                stack.append((child, False))


def load_yaml(text: str) -> Any:
    """The document as Python data (safe loader only).

    Raises:
        YamlRefused: for syntax errors, unsafe tags, alias bombs and recursive aliases.
    """
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already rejects control characters
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        raise YamlRefused(f"it uses a tag the safe YAML loader does not accept ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise YamlRefused(f"it is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise YamlRefused("it is nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _levels(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [coerce_value(v) for v in items if v is not None]


def _normalise_mapping(
    raw: dict[Any, Any], what: str, file: Path, diag: Diagnostics, *, drop: set[str] = frozenset()
) -> dict[str, Any]:
    """Keys normalised, numeric strings coerced, ``null``/``-`` values left out."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = normalize_param_name(str(k))
        if key in drop or v is None:
            continue
        value = coerce_value(v)
        if isinstance(value, str) and parse_value(value) is None and value.strip():
            continue  # "-" / "N/A": not applicable, as in the markdown tables
        if key in out and out[key] != value:
            diag.warn(
                file,
                f"{what}: '{k}' repeats '{key}' with another value; the first value was used",
                stage=STAGE,
            )
            continue
        out.setdefault(key, value)
    return out


def _variables(raw: Any, file: Path, diag: Diagnostics) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            out[normalize_param_name(str(k))] = _levels(v)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "name" in item:
                levels = item.get("values", item.get("levels", []))
                out[normalize_param_name(str(item["name"]))] = _levels(levels)
            else:
                diag.warn(file, f"variables: entry {item!r} has no name; ignored", stage=STAGE)
    elif raw is not None:
        diag.warn(file, f"variables is a {type(raw).__name__}, not a mapping; ignored", stage=STAGE)
    return out


def _run_type(entry: dict[str, Any], name: str, params: dict[str, Any], file: Path, diag: Diagnostics) -> str:
    raw = entry.get("type")
    if raw is not None:
        kind = normalize_run_type(str(raw))
        if kind is not None:
            return kind
        diag.warn(file, f"run '{name}' has an unrecognised type '{raw}'; treated as fine-tuned", stage=STAGE)
        return "fine-tuned"
    for flag in ("finetuned", "is_finetuned", "fine_tuned"):
        if isinstance(entry.get(flag), bool):
            return "fine-tuned" if entry[flag] else "control"
    return "control" if not params and name.lower().endswith("_base") else "fine-tuned"


def _runs(raw: Any, file: Path, diag: Diagnostics) -> list[RunSpec]:
    if isinstance(raw, dict):  # {run_name: {...}}
        raw = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in raw.items()]
    if raw is None:
        return []
    if not isinstance(raw, list):
        diag.warn(
            file,
            f"runs is a {type(raw).__name__}, not a list; no runs were read from the design",
            stage=STAGE,
        )
        return []
    runs: list[RunSpec] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or _text(entry.get("name", entry.get("run_name"))) is None:
            diag.warn(file, f"runs[{i}] has no name; ignored", stage=STAGE)
            continue
        name = _text(entry.get("name", entry.get("run_name"))) or ""
        if any(r.name == name for r in runs):
            diag.warn(file, f"run '{name}' is listed twice; the first entry was used", stage=STAGE)
            continue
        raw_params = entry.get("parameters", entry.get("params"))
        if raw_params is not None and not isinstance(raw_params, dict):
            diag.warn(file, f"run '{name}': parameters is not a mapping; ignored", stage=STAGE)
            raw_params = None
        params = _normalise_mapping(raw_params or {}, f"run '{name}'", file, diag, drop=NON_PARAMETERS)
        runs.append(
            RunSpec(
                name=name,
                type=_run_type(entry, name, params, file, diag),
                model=_text(entry.get("model")),
                params=params,
                vis_label=_text(entry.get("vis_label")),
            )
        )
    return runs


def _names(raw: Any) -> list[str]:
    """``[{name: x}, "y"]`` or ``"x"`` -> names in order."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        name = _text(item.get("name")) if isinstance(item, dict) else _text(item)
        if name is not None and name not in out:
            out.append(name)
    return out


def _epochs(raw: Any, where: str, file: Path, diag: Diagnostics) -> list[int] | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("all", "null", "none", "")):
        return None
    items = raw if isinstance(raw, list) else [raw]
    out: list[int] = []
    for item in items:
        value = coerce_value(item)
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(value)
        else:
            diag.warn(file, f"{where}: epoch {item!r} is not a whole number; ignored", stage=STAGE)
    return sorted(set(out)) if out else None


def _matrix(raw: Any, runs: list[RunSpec], file: Path, diag: Diagnostics) -> list[str]:
    """Apply ``evaluation.matrix`` to ``runs`` (adds runs only when none are listed)."""
    if isinstance(raw, dict):  # {run_name: {...}}
        raw = [{"run": k, **(v if isinstance(v, dict) else {})} for k, v in raw.items()]
    if not isinstance(raw, list):
        if raw is not None:
            diag.warn(file, "evaluation.matrix is not a list; ignored", stage=STAGE)
        return []
    by_name = {r.name: r for r in runs}
    had_runs = bool(runs)
    unknown: list[str] = []
    seen: set[str] = set()
    tasks: list[str] = []
    for i, entry in enumerate(raw):
        name = _text(entry.get("run")) if isinstance(entry, dict) else None
        if name is None:
            diag.warn(file, f"evaluation.matrix[{i}] names no run; ignored", stage=STAGE)
            continue
        spec = by_name.get(name)
        epochs = _epochs(entry.get("epochs"), f"evaluation.matrix[{i}]", file, diag)
        if spec is None:
            if had_runs:
                unknown.append(name)
                continue
            spec = RunSpec(name=name, type="fine-tuned" if epochs else "control")
            by_name[name] = spec
            runs.append(spec)
        cell_tasks = _names(entry.get("tasks")) if entry.get("tasks") is not None else []
        if name in seen:  # one entry per (run, task) cell: merge
            spec.eval_tasks += [t for t in cell_tasks if t not in spec.eval_tasks]
            if epochs:
                spec.eval_epochs = sorted(set(spec.eval_epochs or []) | set(epochs))
        else:
            spec.eval_tasks = cell_tasks
            spec.eval_epochs = epochs
        seen.add(name)
        spec.vis_label = _text(entry.get("vis_label")) or spec.vis_label
        tasks += [t for t in cell_tasks if t not in tasks]
    if unknown:
        diag.warn(
            file,
            "evaluation.matrix names runs that are not in runs ("
            + ", ".join(unknown)
            + "); those entries were ignored",
            stage=STAGE,
        )
    return tasks


def parse_yaml_design(data: Any, *, file: Path, fallback_name: str, diag: Diagnostics) -> Design:
    """A :class:`Design` from loaded YAML data (current schema and its older shapes).

    Raises:
        YamlRefused: when the top level is not a mapping (nothing can be read).
    """
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise YamlRefused(f"its top level is {kind}, not a mapping")
    exp = data.get("experiment")
    meta: dict[str, Any] = {}
    if isinstance(exp, dict):
        meta = exp
    elif exp is not None:
        meta = {"name": exp}
    fields = {f: _text(meta.get(f, data.get(f))) for f in EXPERIMENT_FIELDS}
    design = Design(
        name=fields["name"] or _text(data.get("experiment_name")) or fallback_name,
        question=fields["question"],
        hypothesis=fields["hypothesis"],
        purpose=fields["purpose"],
        date=fields["date"],
    )
    raw_runs = data.get("runs")
    run_names = [r.get("name") for r in raw_runs if isinstance(r, dict)] if isinstance(raw_runs, list) else []
    if fields["name"] in TEMPLATE_VALUES or any(n in TEMPLATE_VALUES for n in run_names):
        diag.warn(
            file,
            "the design document is still the annotated schema template (values such as 'string'); "
            "its runs and settings were ignored",
            stage=STAGE,
        )
        return Design(name=fallback_name)
    design.variables = _variables(data.get("variables"), file, diag)
    controls = data.get("controls")
    if isinstance(controls, dict):
        design.controls = _normalise_mapping(controls, "controls", file, diag)
    elif controls is not None:
        diag.warn(file, "controls is not a mapping; ignored", stage=STAGE)
    design.runs = _runs(data.get("runs"), file, diag)

    evaluation = data.get("evaluation")
    if not isinstance(evaluation, dict):
        evaluation = {k: data[k] for k in ("tasks", "scorers", "scorer", "matrix") if k in data}
    design.tasks = _names(evaluation.get("tasks")) if evaluation.get("tasks") is not None else []
    scorers = evaluation.get("scorers", evaluation.get("scorer"))
    design.scorers = _names(scorers) if scorers is not None else []
    matrix_tasks = _matrix(evaluation.get("matrix"), design.runs, file, diag)
    design.tasks += [t for t in matrix_tasks if t not in design.tasks]
    if not design.variables and design.runs:
        design.variables = derive_variables(design.runs)
    return design
