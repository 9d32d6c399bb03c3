"""Reading the markdown design document of Oct–Nov 2025 (``experiment_summary.md``).

The document was written by hand or from a template, so every section is optional and a
table may be ragged. The tables are parsed with markdown-it-py (GFM table plugin) rather
than by splitting on ``|``: escaped pipes, inline code and emphasis in cells then read
the way any markdown viewer shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design, RunSpec
from analyze_experiment.ingest.design_checks import param_problem
from analyze_experiment.ingest.design_values import (
    normalize_param_name,
    normalize_run_type,
    parse_value,
)
from analyze_experiment.metrics import DIRECTIONS

try:  # the splitter markdown-it itself uses for table rows: counts cells exactly as it does
    from markdown_it.rules_block.table import escapedSplit as _split_row
except ImportError:  # pragma: no cover - older/newer markdown-it layouts

    def _split_row(string: str) -> list[str]:
        return re.split(r"(?<!\\)\|", string)


STAGE = "design"

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
"""Template placeholders such as ``{run_1}`` or ``{experiment_name}``."""

_ELLIPSIS = {"...", "…"}

RUN_COLUMNS = {"run_name", "run", "name"}
IGNORED_RUN_COLUMNS = {"est_time", "estimated_time", "time", "notes", "note", "status", "job_id", "comments"}
RUNS_HEADINGS = {"all runs", "runs", "run list"}
QUESTION_KEYS = {"question", "scientific_question", "research_question"}
DATE_KEYS = {"created", "date"}
SKIPPED_CONFIG_SUBSECTIONS = {"output"}
"""Configuration subsections that hold paths, not settings (``### Output``)."""

_CHECK = ("✓", "✔", "☑", "✅")
_EPOCHS = re.compile(r"epochs?\s*[:=]?\s*(?P<list>\d+(?:\s*(?:,|-|–|to|and)\s*\d+)*)", re.IGNORECASE)
_QUOTED = re.compile(r'^"(?P<text>[^"]*)"(?:\s*\(.*\))?$')


@dataclass
class _Table:
    heading_path: tuple[str, ...]
    header: list[str]
    rows: list[list[str]]
    row_lines: list[int]
    """0-based source line of each body row (for ragged-row warnings)."""
    ragged: list[tuple[int, int]] = field(default_factory=list)
    """(source line, cell count) of rows whose cell count differs from the header's."""


@dataclass
class _Bullet:
    heading_path: tuple[str, ...]
    levels: tuple[int, ...]
    depth: int
    key: str | None
    value: str


def _plain(children: list[Token] | None) -> str:
    """The visible text of inline tokens (emphasis markers dropped, code kept verbatim)."""
    out: list[str] = []
    for t in children or []:
        if t.type in ("text", "code_inline", "html_inline"):
            out.append(t.content)
        elif t.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif t.children:
            out.append(_plain(t.children))
    return "".join(out).strip()


def _key_value(children: list[Token] | None) -> tuple[str | None, str]:
    """``**Key:** value`` (or ``**Key**: value``, ``Key: value``) -> (key, value)."""
    kids = children or []
    if kids and kids[0].type == "text" and not kids[0].content.strip():
        kids = kids[1:]
    if kids and kids[0].type == "strong_open":
        depth, end = 0, len(kids)
        for pos, t in enumerate(kids):
            depth += t.type == "strong_open"
            depth -= t.type == "strong_close"
            if depth == 0:
                end = pos
                break
        key = _plain(kids[1:end]).rstrip(":").strip()
        value = _plain(kids[end + 1 :]).lstrip(":").strip()
        return key, value
    text = _plain(kids)
    if ":" in text:
        key, value = text.split(":", 1)
        return key.strip(), value.strip()
    return None, text


def _collect(tokens: list[Token], lines: list[str]) -> tuple[str | None, list[_Table], list[_Bullet]]:
    """Title, tables and bullets of the document, each tagged with its heading path."""
    title: str | None = None
    path: list[tuple[int, str]] = []
    tables: list[_Table] = []
    bullets: list[_Bullet] = []
    list_depth = 0
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            level = int(t.tag[1:])
            text = _plain(tokens[i + 1].children)
            if level == 1 and title is None:
                title = text
            path = [(lv, h) for lv, h in path if lv < level]
            path.append((level, text))
            i += 3
            continue
        if t.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif t.type == "inline" and list_depth and i >= 2 and tokens[i - 2].type == "list_item_open":
            key, value = _key_value(t.children)
            bullets.append(
                _Bullet(tuple(h for _, h in path), tuple(lv for lv, _ in path), list_depth, key, value)
            )
        elif t.type == "table_open":
            i = _read_table(tokens, i, lines, tuple(h for _, h in path), tables)
            continue
        i += 1
    return title, tables, bullets


def _read_table(
    tokens: list[Token], i: int, lines: list[str], heading: tuple[str, ...], out: list[_Table]
) -> int:
    header: list[str] = []
    rows: list[list[str]] = []
    row_lines: list[int] = []
    in_head = False
    current: list[str] | None = None
    while i < len(tokens) and tokens[i].type != "table_close":
        t = tokens[i]
        if t.type == "thead_open":
            in_head = True
        elif t.type == "thead_close":
            in_head = False
        elif t.type == "tr_open":
            current = []
            if not in_head and t.map:
                row_lines.append(t.map[0])
        elif t.type == "tr_close" and current is not None:
            if in_head:
                header = current
            else:
                rows.append(current)
            current = None
        elif t.type == "inline" and current is not None:
            current.append(_plain(t.children))
        i += 1
    table = _Table(heading, header, rows, row_lines)
    for line_no in row_lines:
        if 0 <= line_no < len(lines):
            cells = _split_row(lines[line_no].strip())
            if cells and cells[0] == "":
                cells.pop(0)
            if cells and cells[-1] == "":
                cells.pop()
            if len(cells) != len(header):
                table.ragged.append((line_no, len(cells)))
    out.append(table)
    return i + 1


def _norm_heading(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _is_placeholder(text: str | None) -> bool:
    return bool(text) and (bool(PLACEHOLDER.search(text)) or text.strip() in _ELLIPSIS)


def _clean(text: str | None) -> str | None:
    """Overview text, or None when it is empty or still a template placeholder."""
    if text is None or not text.strip() or _is_placeholder(text):
        return None
    return text.strip()


def _title_name(title: str | None) -> str | None:
    if not title:
        return None
    name = re.sub(r"^experiment(?:\s+summary)?\s*:\s*", "", title, flags=re.IGNORECASE).strip()
    return _clean(name)


def _find_table(tables: list[_Table], headings: set[str]) -> _Table | None:
    for t in tables:
        if t.heading_path and _norm_heading(t.heading_path[-1]) in headings:
            return t
    return None


def _warn_ragged(table: _Table, what: str, file: Path, diag: Diagnostics) -> None:
    for line_no, n in table.ragged:
        n_head = len(table.header)
        done = "the extra cells were ignored" if n > n_head else "the missing cells were read as empty"
        diag.warn(
            file,
            f"line {line_no + 1}: a row of the {what} table has {n} cells but the header has {n_head}; {done}",
            stage=STAGE,
        )


def _runs_table(tables: list[_Table]) -> _Table | None:
    found = _find_table(tables, RUNS_HEADINGS)
    if found is not None:
        return found
    for t in tables:
        cols = {normalize_param_name(h) for h in t.header}
        under_status = any("status" in _norm_heading(h) for h in t.heading_path)
        if cols & RUN_COLUMNS and "type" in cols and not under_status:
            return t
    return None


def _read_runs(table: _Table, file: Path, diag: Diagnostics) -> tuple[list[RunSpec], bool]:
    """Runs of the All Runs table, and whether the table is still a template."""
    cols = [normalize_param_name(h) for h in table.header]
    run_col = next((i for i, c in enumerate(cols) if c in RUN_COLUMNS), 0)
    model_col = cols.index("model") if "model" in cols else None
    type_col = cols.index("type") if "type" in cols else None
    param_cols = [
        i
        for i, c in enumerate(cols)
        if i not in (run_col, model_col, type_col) and c not in IGNORED_RUN_COLUMNS
    ]
    _warn_ragged(table, "All Runs", file, diag)
    runs: list[RunSpec] = []
    template = False
    for row_no, row in enumerate(table.rows):
        cells = row + [""] * (len(cols) - len(row))
        name = cells[run_col].strip()
        if not name or _is_placeholder(name):
            template = template or bool(name)
            continue
        problems = [
            f"the {table.header[i].strip()} cell {why}"
            for i in param_cols
            if not _is_placeholder(cells[i]) and (why := param_problem(cols[i], parse_value(cells[i])))
        ]
        if problems:
            line = table.row_lines[row_no] + 1 if row_no < len(table.row_lines) else None
            diag.warn(
                file,
                f"{f'line {line}: ' if line else ''}run '{name}' in the All Runs table: " + "; ".join(problems)
                + ". The run was left out of the design (if it is on disk it is analysed with the parameters "
                "its directory name states)",
                stage=STAGE,
            )
            continue
        if any(r.name == name for r in runs):
            diag.warn(
                file, f"run '{name}' appears twice in the All Runs table; the first row was used", stage=STAGE
            )
            continue
        params: dict[str, Any] = {}
        for i in param_cols:
            cell = cells[i]
            if _is_placeholder(cell):
                template = True
                continue
            value = parse_value(cell)
            if value is not None:
                params[cols[i]] = value
        model = _clean(cells[model_col]) if model_col is not None else None
        run_type = _run_type(cells[type_col] if type_col is not None else None, name, params, file, diag)
        runs.append(RunSpec(name=name, type=run_type, model=model, params=params))
    return runs, template


def _run_type(cell: str | None, name: str, params: dict[str, Any], file: Path, diag: Diagnostics) -> str:
    if cell is not None and cell.strip():
        kind = normalize_run_type(cell)
        if kind is not None:
            return kind
        diag.warn(file, f"run '{name}' has an unrecognised Type '{cell}'; treated as fine-tuned", stage=STAGE)
        return "fine-tuned"
    return "control" if not params and name.lower().endswith("_base") else "fine-tuned"


def _matrix_cell(cell: str) -> tuple[bool, list[int]]:
    """``✓ epoch 0,1`` -> (True, [0, 1]); ``✓`` -> (True, []); ``-`` -> (False, [])."""
    text = cell.strip()
    if parse_value(text) is None or text.lower() in ("no", "✗", "x", "none"):
        return False, []
    planned = text.startswith(_CHECK) or text.lower().startswith("yes") or bool(_EPOCHS.search(text))
    epochs: list[int] = []
    m = _EPOCHS.search(text)
    if m:
        for part in re.split(r"\s*(?:,|and)\s*", m.group("list")):
            bounds = re.split(r"\s*(?:-|–|to)\s*", part)
            if len(bounds) == 2 and all(b.isdigit() for b in bounds):
                lo, hi = int(bounds[0]), int(bounds[1])
                epochs.extend(range(lo, hi + 1) if hi >= lo else [lo, hi])
            elif part.isdigit():
                epochs.append(int(part))
    return planned, sorted(set(epochs))


def _read_matrix(
    table: _Table, runs: list[RunSpec], file: Path, diag: Diagnostics
) -> tuple[list[str], list[RunSpec]]:
    """Apply the Evaluation Matrix to ``runs``; returns the task columns and runs it adds.

    Runs are added only when the document has no All Runs table (``runs`` empty)."""
    _warn_ragged(table, "Evaluation Matrix", file, diag)
    cols = [h.strip() for h in table.header]
    task_cols = [
        i
        for i, c in enumerate(cols)
        if i > 0 and normalize_param_name(c) not in IGNORED_RUN_COLUMNS and not _is_placeholder(c)
    ]
    tasks = [cols[i] for i in task_cols]
    by_name = {r.name: r for r in runs}
    added: list[RunSpec] = []
    unknown: list[str] = []
    for row in table.rows:
        cells = row + [""] * (len(cols) - len(row))
        name = cells[0].strip()
        if not name or _is_placeholder(name):
            continue
        planned_tasks: list[str] = []
        epochs: set[int] = set()
        for i in task_cols:
            planned, eps = _matrix_cell(cells[i])
            if planned:
                planned_tasks.append(cols[i])
                epochs.update(eps)
        spec = by_name.get(name)
        if spec is None:
            if runs:
                unknown.append(name)
                continue
            spec = RunSpec(name=name, type="fine-tuned" if epochs else "control")
            by_name[name] = spec
            added.append(spec)
        spec.eval_tasks = planned_tasks
        spec.eval_epochs = sorted(epochs) if epochs else None
    if unknown:
        diag.warn(
            file,
            "the Evaluation Matrix lists runs that are not in the All Runs table ("
            + ", ".join(unknown)
            + "); those rows were ignored",
            stage=STAGE,
        )
    return tasks, added


def _read_tasks(table: _Table) -> list[str]:
    cols = [normalize_param_name(h) for h in table.header]
    col = next((i for i, c in enumerate(cols) if c in ("task_name", "task", "name")), 0)
    out: list[str] = []
    for row in table.rows:
        if col < len(row) and row[col].strip() and not _is_placeholder(row[col]):
            out.append(row[col].strip())
    return out


def _config_value(text: str) -> Any:
    m = _QUOTED.match(text.strip())
    if m:
        return m.group("text")
    return parse_value(text)


def _read_config(bullets: list[_Bullet]) -> tuple[dict[str, Any], list[str]]:
    """Settings under ``## Configuration`` (subsections included, ``### Output`` skipped)."""
    controls: dict[str, Any] = {}
    scorers: list[str] = []
    for b in bullets:
        # the level-2 "Configuration" section, not "### Configuration" under "Evaluation Plan"
        path = [_norm_heading(h) for h, lv in zip(b.heading_path, b.levels, strict=True) if lv >= 2]
        top = [_norm_heading(h) for h, lv in zip(b.heading_path, b.levels, strict=True) if lv == 2]
        if top != ["configuration"] or path[0] != "configuration" or b.key is None or b.depth != 1:
            continue
        if len(path) > 1 and path[1] in SKIPPED_CONFIG_SUBSECTIONS:
            continue
        quoted = _QUOTED.match(b.value)
        text = quoted.group("text") if quoted else b.value
        if PLACEHOLDER.fullmatch(text.strip()) or (not quoted and _is_placeholder(text)):
            continue
        key = normalize_param_name(b.key)
        if key in ("scorer", "scorers"):
            scorers.extend(s.strip() for s in b.value.split(",") if s.strip())
            continue
        if key in METRIC_KEYS:  # read by _read_metrics
            continue
        value = _config_value(b.value)
        if value is not None and key not in controls:
            controls[key] = value
    return controls, scorers


METRIC_KEYS = ("metrics", "metric_directions", "metric_direction")
"""Configuration bullets that declare metric directions (``- metrics: words=lower, mae=lower``)."""


def _read_metrics(bullets: list[_Bullet], file: Path, diag: Diagnostics) -> dict[str, str]:
    """``- metrics: NAME=lower, NAME=higher`` under ``## Configuration`` (the markdown form of the
    YAML design's ``evaluation.metrics``); a bad item is a warning naming the file."""
    out: dict[str, str] = {}
    for b in bullets:
        top = [_norm_heading(h) for h, lv in zip(b.heading_path, b.levels, strict=True) if lv == 2]
        if top != ["configuration"] or b.key is None or normalize_param_name(b.key) not in METRIC_KEYS:
            continue
        for item in (s.strip() for s in re.split(r"[,;]", b.value) if s.strip()):
            name, sep, value = item.replace(":", "=", 1).partition("=")
            value = value.strip().strip("`").lower()
            name = name.strip().strip("`")
            if not sep or not name or value not in DIRECTIONS:
                diag.warn(file, f"metrics: {item!r} is not NAME=lower|higher|descriptive; ignored", stage=STAGE)
                continue
            out[name] = value
    return out


def _read_overview(bullets: list[_Bullet], design: Design) -> None:
    kind: str | None = None
    for b in bullets:
        if not b.heading_path or _norm_heading(b.heading_path[-1]) != "overview" or b.key is None:
            continue
        key = normalize_param_name(b.key)
        value = _clean(b.value)
        if value is None:
            continue
        if key in QUESTION_KEYS and design.question is None:
            design.question = value
        elif key == "hypothesis":
            design.hypothesis = value
        elif key == "purpose":
            design.purpose = value
        elif key in DATE_KEYS:
            design.date = value
        elif key in ("type", "design_type"):
            kind = value
    if design.purpose is None and kind is not None:
        design.purpose = kind


def _read_variables(table: _Table, file: Path, diag: Diagnostics) -> tuple[dict[str, list[Any]], bool]:
    _warn_ragged(table, "Variables", file, diag)
    out: dict[str, list[Any]] = {}
    template = False
    for row in table.rows:
        if len(row) < 2 or not row[0].strip():
            continue
        if _is_placeholder(row[0]) or _is_placeholder(row[1]):
            template = True
            continue
        key = normalize_param_name(row[0])
        levels = [parse_value(v) for v in row[1].split(",")]
        for v in levels:
            if v is not None and (why := param_problem(key, v)) is not None:
                diag.warn(file, f"Variables table: a level of '{row[0].strip()}' {why}; that level was ignored",
                          stage=STAGE)
        out[key] = [v for v in levels if v is not None and param_problem(key, v) is None]
    return out, template


def derive_variables(runs: list[RunSpec]) -> dict[str, list[Any]]:
    """Parameters whose value differs between runs, with levels in order of appearance.

    Used when the document has no Variables table (the late-October example has none)."""
    levels: dict[str, list[Any]] = {}
    for r in runs:
        for k, v in r.params.items():
            seen = levels.setdefault(k, [])
            if v not in seen:
                seen.append(v)
    return {k: v for k, v in levels.items() if len(v) > 1}


def parse_markdown_design(text: str, *, file: Path, fallback_name: str, diag: Diagnostics) -> Design:
    """A :class:`Design` from the text of ``experiment_summary.md``.

    Never raises for odd content: sections that are missing stay empty, placeholders of
    a template are dropped (a document whose All Runs table is still a template yields
    no runs, with a warning), ragged table rows are warned about and read as far as
    they go."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    title, tables, bullets = _collect(tokens, text.splitlines())
    design = Design(name=_title_name(title) or fallback_name)
    _read_overview(bullets, design)
    template = _is_placeholder(title)

    runs: list[RunSpec] = []
    runs_table = _runs_table(tables)
    if runs_table is not None:
        runs, is_template = _read_runs(runs_table, file, diag)
        template = template or is_template

    var_table = _find_table(tables, {"variables"})
    if var_table is not None:
        design.variables, is_template = _read_variables(var_table, file, diag)
        template = template or is_template

    tasks: list[str] = []
    task_table = _find_table(tables, {"evaluation tasks"})
    if task_table is not None:
        tasks = _read_tasks(task_table)
    matrix = _find_table(tables, {"evaluation matrix"})
    if matrix is not None and not (template and not runs):
        matrix_tasks, added = _read_matrix(matrix, runs, file, diag)
        runs.extend(added)
        tasks.extend(t for t in matrix_tasks if t not in tasks)

    if template:
        diag.warn(
            file,
            "the design document is still a template (placeholders such as {run_1} are not filled in); "
            + ("its runs were ignored" if not runs else "placeholder entries were ignored"),
            stage=STAGE,
        )
    elif runs_table is None and not runs:
        diag.warn(
            file,
            "the design document has no All Runs table; runs are taken from the directories",
            stage=STAGE,
        )

    design.controls, design.scorers = _read_config(bullets)
    design.metrics = _read_metrics(bullets, file, diag)
    design.runs = runs
    design.tasks = tasks
    if not design.variables and runs:
        design.variables = derive_variables(runs)
    return design
