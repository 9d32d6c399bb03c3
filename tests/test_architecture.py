"""The dependency rule of docs/architecture.md, enforced on the import graph.

Stages import only downward: base ← sources ← ingest ← stats ← report ← top (the CLI, the
report writer, the orchestration and the other commands). Imports inside functions count too
— a lazy import is still a dependency. A module that no layer claims fails the test, so a
new top-level module has to be placed deliberately.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "analyze_experiment"

BASE = {"_version", "analysis", "diagnostics", "executor", "experiment", "formatting", "metrics",
        "output", "progress", "runlog", "tables", "textsafe"}
"""Records, tables and small utilities every stage may use; they import nothing above them."""
TOP = {"__init__", "__main__", "catalog", "cli", "compare", "conclude", "demo", "export",
       "export_wandb", "show", "write"}
LAYERS = {"base": 0, "sources": 1, "ingest": 2, "stats": 3, "report": 4, "top": 5}


def layer_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "analyze_experiment"
    if len(parts) == 1:
        return "top"
    head = parts[1]
    if head in BASE:
        return "base"
    if head in TOP:
        return "top"
    if head in LAYERS:
        return head
    raise AssertionError(f"{module}: no layer claims this module; add it to docs/architecture.md "
                         "and to BASE/TOP in tests/test_architecture.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 2:
        parts = parts[:-1]
    return ".".join(parts)


def imported(tree: ast.AST) -> list[tuple[str, int]]:
    """Every analyze_experiment module a file imports (top-level or inside a function)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "analyze_experiment"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "analyze_experiment":  # from analyze_experiment import tables, __version__
                out += [("analyze_experiment." + ("_version" if a.name == "__version__" else a.name), node.lineno)
                        for a in node.names]
            elif node.module.split(".")[0] == "analyze_experiment":
                out.append((node.module, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"line {node.lineno}: relative import; the project imports absolutely")
    return out


def edges() -> list[tuple[str, str, int]]:
    return [(module_name(f), target, line) for f in sorted(PACKAGE.rglob("*.py"))
            for target, line in imported(ast.parse(f.read_text(encoding="utf-8")))]


def test_every_module_has_a_layer():
    for f in PACKAGE.rglob("*.py"):
        layer_of(module_name(f))


def test_nothing_imports_upward():
    upward = [f"{src} ({layer_of(src)}) imports {dst} ({layer_of(dst)}) at line {line}"
              for src, dst, line in edges()
              if LAYERS[layer_of(dst)] > LAYERS[layer_of(src)]
              # the package's lazy public API (__init__) and the version are for users, not stages
              and dst not in ("analyze_experiment",)]
    assert not upward, "imports against the dependency rule:\n" + "\n".join(upward)


def test_stats_never_imports_the_report():
    """The numbers do not know how they are worded (the old stats.findings did)."""
    bad = [(s, d) for s, d, _ in edges() if s.startswith("analyze_experiment.stats") and
           (d.startswith("analyze_experiment.report") or d == "analyze_experiment.conclude")]
    assert bad == []


@pytest.mark.parametrize("src,dst,expect", [
    ("analyze_experiment.stats.seeds", "analyze_experiment.report.findings", True),
    ("analyze_experiment.sources.gpu", "analyze_experiment.ingest.load", True),
    ("analyze_experiment.report.build", "analyze_experiment.stats.seeds", False),
    ("analyze_experiment.ingest.load", "analyze_experiment.tables", False),
])
def test_the_rule_itself(src, dst, expect):
    """The check can fail: an upward edge is one, a downward edge is not."""
    assert (LAYERS[layer_of(dst)] > LAYERS[layer_of(src)]) is expect
