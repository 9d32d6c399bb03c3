"""The experiment's design: what was meant to run, with which parameters.

Two document formats exist: ``experiment_summary.md`` (Oct–Nov 2025, markdown tables)
and ``experiment_summary.yaml`` (from late Nov 2025 on). Both are read into the same
:class:`~analyze_experiment.experiment.Design`, with parameter names normalised so that runs
of either era carry the same keys (``LoRA Rank`` and ``lora_rank`` -> ``lora_rank``,
``Learning Rate`` and ``lr`` -> ``learning_rate``). Run-directory names are the
fallback source of parameters (:func:`params_from_run_name`).

Nothing here raises for bad input: a missing, unreadable or malformed document gives a
warning naming the file and the reason, and a design that only knows the directory name.
"""

from __future__ import annotations

from pathlib import Path

from analyze_experiment.diagnostics import Diagnostics
from analyze_experiment.experiment import Design
from analyze_experiment.ingest.design_markdown import parse_markdown_design
from analyze_experiment.ingest.design_values import (
    NOT_APPLICABLE,
    PARAM_ALIASES,
    RUN_NAME_TOKENS,
    normalize_param_name,
    normalize_run_type,
    params_from_run_name,
    parse_value,
)
from analyze_experiment.ingest.design_yaml import (
    DuplicateKey,
    YamlRefused,
    is_template,
    load_yaml,
    parse_yaml_design,
)

__all__ = [
    "MARKDOWN_NAME",
    "NOT_APPLICABLE",
    "PARAM_ALIASES",
    "RUN_NAME_TOKENS",
    "YAML_NAME",
    "normalize_param_name",
    "normalize_run_type",
    "params_from_run_name",
    "parse_value",
    "read_design",
]

YAML_NAME = "experiment_summary.yaml"
MARKDOWN_NAME = "experiment_summary.md"
MAX_DESIGN_BYTES = 5_000_000
"""A design document is a few KiB; anything this large is not one and is not read."""

STAGE = "design"


def _read_text(path: Path, diag: Diagnostics) -> str | None:
    """The file's text, or None after a warning saying why it could not be read."""
    try:
        size = path.stat().st_size
        if size > MAX_DESIGN_BYTES:
            diag.warn(
                path,
                f"the design document is {size:,} bytes (more than {MAX_DESIGN_BYTES:,}); not read",
                severity="error",
                stage=STAGE,
            )
            return None
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        diag.warn(
            path,
            f"the design document is not UTF-8 text ({exc.reason}); not read",
            severity="error",
            stage=STAGE,
        )
    except OSError as exc:
        diag.warn(
            path,
            f"the design document could not be read ({exc.strerror or exc}); not read",
            severity="error",
            stage=STAGE,
        )
    return None


def _read_yaml(path: Path, root: Path, diag: Diagnostics) -> Design | None:
    text = _read_text(path, diag)
    if text is None:
        return None
    try:
        try:
            data = load_yaml(text)
        except DuplicateKey:
            # the annotated schema template repeats keys on purpose: say it is the template
            data = load_yaml(text, allow_duplicate_keys=True)
            if not is_template(data):
                raise
        design = parse_yaml_design(data, file=path, fallback_name=root.name, diag=diag)
    except YamlRefused as exc:
        diag.warn(path, f"the design document could not be used: {exc}", severity="error", stage=STAGE)
        return None
    design.source = YAML_NAME
    return design


def _read_markdown(path: Path, root: Path, diag: Diagnostics) -> Design | None:
    text = _read_text(path, diag)
    if text is None:
        return None
    try:
        design = parse_markdown_design(text, file=path, fallback_name=root.name, diag=diag)
    except RecursionError:  # pathological nesting; markdown-it itself is otherwise total
        diag.warn(
            path, "the design document is nested too deeply to parse; not used", severity="error", stage=STAGE
        )
        return None
    design.source = MARKDOWN_NAME
    return design


def read_design(root: Path, diag: Diagnostics) -> tuple[Design, bool]:
    """The design of the experiment in ``root`` and whether a design document was used.

    ``experiment_summary.yaml`` is preferred when both documents exist (the markdown one
    is then noted as ignored); when the preferred one cannot be used the other is tried.
    Without a usable document: ``(Design(name=root.name), False)``.

    Args:
        root: the experiment directory.
        diag: receives a warning for every problem and an action for what was read.

    Returns:
        The design (parameter names normalised, numbers parsed) and True when it came
        from a document.
    """
    root = Path(root)
    yaml_path, md_path = root / YAML_NAME, root / MARKDOWN_NAME
    has_yaml, has_md = yaml_path.is_file(), md_path.is_file()
    if has_yaml:
        design = _read_yaml(yaml_path, root, diag)
        if design is not None:
            if has_md:
                diag.warn(
                    md_path,
                    f"both {YAML_NAME} and {MARKDOWN_NAME} exist; the YAML document was used and "
                    "the markdown one ignored",
                    severity="info",
                    stage=STAGE,
                )
            return design, True
    if has_md:
        design = _read_markdown(md_path, root, diag)
        if design is not None:
            if has_yaml:
                diag.warn(
                    md_path,
                    f"{YAML_NAME} could not be used (see above); the design was read from {MARKDOWN_NAME}",
                    stage=STAGE,
                )
            return design, True
    return Design(name=root.name), False
