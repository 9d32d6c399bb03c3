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

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, RunSpec
from analyze_experiment.ingest.design_checks import describe, name_problem, param_problem, text_problem
from analyze_experiment.ingest.design_markdown import derive_variables
from analyze_experiment.ingest.design_values import (
    coerce_value,
    normalize_param_name,
    normalize_run_type,
    parse_value,
)
from analyze_experiment.metrics import DIRECTIONS

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


class DuplicateKey(YamlRefused):
    """A mapping of the YAML text states one key twice."""


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


MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_duplicate_keys(loader: yaml.SafeLoader, root: yaml.Node) -> None:
    """Refuse a mapping that states one key twice (PyYAML keeps the last one silently).

    A second ``runs:`` would replace the first list of runs without a word. Keys are
    compared as the values they construct to (``1`` and ``1.0`` collide as in Python);
    keys brought in by a ``<<`` merge may be overridden, as YAML intends. The node graph
    was already bounded by :func:`_check_expansion`, and each node is visited once.
    """
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        stack.extend(_children(node))
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the constructor refuses it below
                continue
            if earlier is not key_node:
                raise DuplicateKey(
                    f"the key '{key_node.value}' appears twice in one mapping (lines "
                    f"{earlier.start_mark.line + 1} and {key_node.start_mark.line + 1}); a repeated key "
                    "would silently replace the first, so duplicate keys are refused"
                )


def load_yaml(text: str, *, allow_duplicate_keys: bool = False) -> Any:
    """The document as Python data (safe loader only).

    ``allow_duplicate_keys`` lets a repeated key replace the earlier one, as PyYAML does;
    only used to recognise the annotated schema template, which repeats keys on purpose.

    Raises:
        YamlRefused: for syntax errors, unsafe tags, duplicate keys, alias bombs and
            recursive aliases.
    """
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already rejects control characters
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        if not allow_duplicate_keys:
            _check_duplicate_keys(loader, node)
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        if "tag" in (exc.problem or ""):
            raise YamlRefused(f"it uses a tag the safe YAML loader does not accept ({exc.problem}){where}") from None
        raise YamlRefused(f"the safe YAML loader cannot build it: {exc.problem}{where}") from None
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


def _levels(value: Any, name: str, file: Path, diag: Diagnostics) -> list[Any]:
    """The levels of variable ``name``; a level of the wrong type is named and left out."""
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for v in items:
        level = coerce_value(v)
        if level is None:
            continue
        if (why := param_problem(name, level)) is not None:
            diag.warn(file, f"variables: a level of '{name}' {why}; that level was ignored", stage=STAGE)
            continue
        out.append(level)
    return out


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
            key = normalize_param_name(str(k))
            out[key] = _levels(v, key, file, diag)
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            if isinstance(item, dict) and "name" in item and name_problem(item["name"]) is None:
                key = normalize_param_name(str(item["name"]))
                out[key] = _levels(item.get("values", item.get("levels", [])), key, file, diag)
            elif isinstance(item, dict) and "name" in item:
                diag.warn(file, f"variables[{i}]: 'name' {name_problem(item['name'])}; ignored", stage=STAGE)
            else:
                diag.warn(file, f"variables[{i}] ({describe(item)}) has no name; ignored", stage=STAGE)
    elif raw is not None:
        diag.warn(file, f"variables is {describe(raw)}, not a mapping; ignored", stage=STAGE)
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


RUN_TEXT_FIELDS = ("type", "model", "vis_label")
RUN_FLAG_FIELDS = ("finetuned", "is_finetuned", "fine_tuned")


def _run_problems(entry: dict[Any, Any], params: dict[str, Any]) -> list[str]:
    """Every field of one run entry whose type is wrong, as ``field is …`` phrases."""
    problems: list[str] = []
    for f in ("name", "run_name"):
        if f in entry and entry[f] is not None and (why := name_problem(entry[f])):
            problems.append(f"'{f}' {why}")
    for f in RUN_TEXT_FIELDS:
        if (why := text_problem(entry.get(f))) is not None:
            problems.append(f"'{f}' {why}")
    for f in RUN_FLAG_FIELDS:
        if entry.get(f) is not None and not isinstance(entry[f], bool):
            problems.append(f"'{f}' is {describe(entry[f])}, not true/false")
    raw_params = entry.get("parameters", entry.get("params"))
    if raw_params is not None and not isinstance(raw_params, dict):
        f = "parameters" if "parameters" in entry else "params"
        problems.append(f"'{f}' is {describe(raw_params)}, not a mapping")
    for key, value in params.items():
        if (why := param_problem(key, value)) is not None:
            problems.append(f"parameter '{key}' {why}")
    return problems


def _runs(raw: Any, file: Path, diag: Diagnostics) -> list[RunSpec]:
    entries: list[tuple[str, Any]]
    if isinstance(raw, dict):  # {run_name: {...}}
        entries = [
            (f"runs.{k}", {"name": k, **v} if isinstance(v, dict) else {"name": k} if v is None else v)
            for k, v in raw.items()
        ]
    elif isinstance(raw, list):
        entries = [(f"runs[{i}]", entry) for i, entry in enumerate(raw)]
    elif raw is None:
        return []
    else:
        diag.warn(
            file,
            f"runs is {describe(raw)}, not a list; no runs were read from the design",
            stage=STAGE,
        )
        return []
    runs: list[RunSpec] = []
    for where, entry in entries:
        if not isinstance(entry, dict):
            diag.warn(file, f"{where} is {describe(entry)}, not a mapping; ignored", stage=STAGE)
            continue
        raw_name = entry.get("name", entry.get("run_name"))
        label = where if name_problem(raw_name) else f"run '{_text(raw_name)}' ({where})"
        raw_params = entry.get("parameters", entry.get("params"))
        params = (
            _normalise_mapping(raw_params, label, file, diag, drop=NON_PARAMETERS)
            if isinstance(raw_params, dict)
            else {}
        )
        problems = _run_problems(entry, params)
        if problems:
            diag.warn(
                file,
                f"{label}: " + "; ".join(problems) + ". The run was left out of the design (if it is on "
                "disk it is analysed with the parameters its directory name states)",
                stage=STAGE,
            )
            continue
        name = _text(raw_name)
        if name is None:
            diag.warn(file, f"{where} has no name; ignored", stage=STAGE)
            continue
        if any(r.name == name for r in runs):
            diag.warn(file, f"run '{name}' is listed twice; the first entry was used", stage=STAGE)
            continue
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


def _names(raw: Any, where: str, file: Path, diag: Diagnostics) -> list[str]:
    """``[{name: x}, "y"]`` or ``"x"`` -> names in order; an entry of the wrong type is named."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for i, item in enumerate(items):
        value = item.get("name") if isinstance(item, dict) else item
        if value is None or (why := name_problem(value)) is not None:
            shown = "has no name" if value is None else f"{'name ' if isinstance(item, dict) else ''}{why}"
            diag.warn(file, f"{where}[{i}] {shown}; ignored", stage=STAGE)
            continue
        name = _text(value)
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
        raw_run = entry.get("run") if isinstance(entry, dict) else None
        if raw_run is not None and (why := name_problem(raw_run)) is not None:
            diag.warn(file, f"evaluation.matrix[{i}]: 'run' {why}; ignored", stage=STAGE)
            continue
        name = _text(raw_run)
        if name is None or not isinstance(entry, dict):
            diag.warn(file, f"evaluation.matrix[{i}] names no run; ignored", stage=STAGE)
            continue
        if (why := text_problem(entry.get("vis_label"))) is not None:
            diag.warn(file, f"evaluation.matrix[{i}]: 'vis_label' {why}; ignored", stage=STAGE)
            entry = {k: v for k, v in entry.items() if k != "vis_label"}
        spec = by_name.get(name)
        epochs = _epochs(entry.get("epochs"), f"evaluation.matrix[{i}]", file, diag)
        if spec is None:
            if had_runs:
                unknown.append(name)
                continue
            spec = RunSpec(name=name, type="fine-tuned" if epochs else "control")
            by_name[name] = spec
            runs.append(spec)
        tasks_raw = entry.get("tasks")
        cell_tasks = _names(tasks_raw, f"evaluation.matrix[{i}].tasks", file, diag) if tasks_raw is not None else []
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


def is_template(data: Any) -> bool:
    """True for the annotated schema template (type names such as ``string`` as values)."""
    if not isinstance(data, dict):
        return False
    exp = data.get("experiment")
    name = exp.get("name", data.get("name")) if isinstance(exp, dict) else data.get("name")
    raw_runs = data.get("runs")
    run_names = [r.get("name") for r in raw_runs if isinstance(r, dict)] if isinstance(raw_runs, list) else []
    return any(isinstance(n, str) and n in TEMPLATE_VALUES for n in [name, *run_names])


def metric_directions(raw: Any, where: str, file: Path, diag: Diagnostics) -> dict[str, str]:
    """``evaluation.metrics``: ``{NAME: lower|higher|descriptive}`` (or a list of ``NAME=lower``);
    a bad entry is a warning naming the file, and is ignored."""
    if raw is None:
        return {}
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [tuple(str(x).partition("=")[::2]) for x in raw]
    else:
        diag.warn(file, f"{where} is not a mapping of metric names to lower|higher|descriptive; ignored", stage=STAGE)
        return {}
    out: dict[str, str] = {}
    for name, value in items:
        d = str(value).strip().lower() if value is not None else ""
        if not str(name).strip() or d not in DIRECTIONS:
            diag.warn(file, f"{where}.{name}: {value!r} is not lower, higher or descriptive; ignored", stage=STAGE)
            continue
        out[str(name).strip()] = d
    return out


def _experiment_fields(data: dict[str, Any], meta: dict[str, Any], file: Path, diag: Diagnostics
                       ) -> dict[str, str | None]:
    """Name, question, hypothesis, purpose and date: under ``experiment:`` or at the top level
    (older shapes); a value that is not plain text is named and ignored."""
    fields: dict[str, str | None] = {}
    for f in EXPERIMENT_FIELDS:
        value = meta.get(f, data.get(f))
        if (why := text_problem(value)) is not None:
            where = f"experiment.{f}" if f in meta else f
            diag.warn(file, f"{where} {why}; ignored", stage=STAGE)
            value = None
        fields[f] = _text(value)
    return fields


def _evaluation(design: Design, data: dict[str, Any], file: Path, diag: Diagnostics) -> None:
    """Tasks, scorers, metric directions and the run × task matrix, from ``evaluation:`` or
    the older top-level keys (in place on ``design``)."""
    evaluation = data.get("evaluation")
    if not isinstance(evaluation, dict):
        evaluation = {k: data[k] for k in ("tasks", "scorers", "scorer", "matrix") if k in data}
    raw_tasks = evaluation.get("tasks")
    design.tasks = _names(raw_tasks, "evaluation.tasks", file, diag) if raw_tasks is not None else []
    scorers = evaluation.get("scorers", evaluation.get("scorer"))
    design.scorers = _names(scorers, "evaluation.scorers", file, diag) if scorers is not None else []
    design.metrics = metric_directions(evaluation.get("metrics"), "evaluation.metrics", file, diag)
    matrix_tasks = _matrix(evaluation.get("matrix"), design.runs, file, diag)
    design.tasks += [t for t in matrix_tasks if t not in design.tasks]


def parse_yaml_design(data: Any, *, file: Path, fallback_name: str, diag: Diagnostics) -> Design:
    """A :class:`Design` from loaded YAML data (current schema and its older shapes).

    Raises:
        YamlRefused: when the top level is not a mapping (nothing can be read).
    """
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise YamlRefused(f"its top level is {kind}, not a mapping")
    exp = data.get("experiment")
    meta: dict[str, Any] = exp if isinstance(exp, dict) else ({"name": exp} if exp is not None else {})
    fields = _experiment_fields(data, meta, file, diag)
    design = Design(
        name=fields["name"] or _text(data.get("experiment_name")) or fallback_name,
        question=fields["question"],
        hypothesis=fields["hypothesis"],
        purpose=fields["purpose"],
        date=fields["date"],
    )
    if is_template(data):
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
    from analyze_experiment.ingest.references import design_references

    design.references, problems = design_references(data.get("references"))
    for problem in problems:
        diag.warn(file, problem, stage=STAGE)

    _evaluation(design, data, file, diag)
    if not design.variables and design.runs:
        design.variables = derive_variables(design.runs)
    from analyze_experiment.ingest.design_hypotheses import structured

    raw_h = data.get("hypotheses", meta.get("hypotheses"))
    design.hypotheses, problems = structured(raw_h, design.variables)
    for problem in problems:
        diag.warn(file, problem, stage=STAGE)
    return design
