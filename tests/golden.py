"""The bundled example's report outputs, normalised so that two runs of the same code compare equal.

The example is built from real inspect-ai logs written at build time, so log names carry the
build's timestamp and a random id, the header says when and where the report was made, and the
logs' wall-clock durations differ. Everything else — every number, sentence, table row and
claim — must be byte-identical between two versions that are meant to behave the same; that is
what ``tests/test_golden.py`` checks and what ``make golden`` (``python -m tests.golden``)
refreshes when a change to the report is intended.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).parent / "golden" / "demo"
"""Where the normalised outputs of the bundled example live."""

TEXT_FILES = ("report.md", "summary.json", "retrospective.md", "next_experiment_summary.yaml")
"""The report's text outputs that are compared whole (report.html embeds figures: not compared)."""

VOLATILE_COLUMNS = frozenset({"duration_s", "created"})
"""Table columns that measure the build's clock, not the analysis."""

_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d[+-]\d\d-\d\d"), "TIMESTAMP"),
    (re.compile(r"_[A-Za-z0-9]{22}\.eval"), "_ID.eval"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d| UTC)?"), "DATETIME"),
    (re.compile(r"analyze-experiment \d+\.\d+\.\d+\S*"), "analyze-experiment VERSION"),
    (re.compile(r'"(tool_version|version)": "[^"]*"'), r'"\1": "VERSION"'),
    (re.compile(r"(command: )[^\n]*"), r"\1COMMAND"),
    (re.compile(r'"command": "[^"]*"'), '"command": "COMMAND"'),
)


def normalise_text(text: str, root: Path) -> str:
    """The text with the build's clock, random ids, version and location replaced by tokens."""
    for r in {str(root), str(root.resolve())}:
        text = text.replace(r, "<ROOT>")
    for pattern, token in _SUBS:
        text = pattern.sub(token, text)
    return text


def normalise_csv(text: str, root: Path) -> str:
    """A table without its clock columns, then normalised as text."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df = df.drop(columns=[c for c in df.columns if c in VOLATILE_COLUMNS])
    return normalise_text(df.to_csv(index=False, lineterminator="\n"), root)


def collect(analysis: Path, root: Path) -> dict[str, str]:
    """Relative name -> normalised content of every compared output under ``analysis``."""
    out: dict[str, str] = {}
    for name in TEXT_FILES:
        p = analysis / name
        if p.is_file():
            out[name] = normalise_text(p.read_text(encoding="utf-8"), root)
    for p in sorted((analysis / "tables").glob("*.csv")):
        out[f"tables/{p.name}"] = normalise_csv(p.read_text(encoding="utf-8"), root)
    return out


def build_and_analyse(work: Path) -> tuple[Path, Path]:
    """Build the bundled example (the defaults of ``make demo``) under ``work`` and analyse it
    with the real CLI; returns (experiment root, analysis folder)."""
    from click.testing import CliRunner

    from analyze_experiment import demo
    from analyze_experiment.cli import analyze

    root = demo.build_example(work / "demo-experiment")
    res = CliRunner().invoke(analyze, [str(root), "--quiet", "--no-cache"], catch_exceptions=False)
    if res.exit_code != 0:
        raise RuntimeError(f"analyze-experiment exited {res.exit_code}: {res.output}")
    return root, root / "analysis"


def write_golden(files: dict[str, str]) -> None:
    """Replace the stored outputs with ``files`` (stale ones removed)."""
    for old in GOLDEN.rglob("*"):
        if old.is_file():
            old.unlink()
    for name, text in files.items():
        dest = GOLDEN / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    """``python -m tests.golden [ANALYSIS_DIR ROOT]``: refresh the stored outputs, from a fresh
    build of the example or from an existing analysis folder."""
    import tempfile

    if len(argv) == 2:
        files = collect(Path(argv[0]), Path(argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root, analysis = build_and_analyse(Path(tmp))
            files = collect(analysis, root)
    write_golden(files)
    print(f"wrote {len(files)} files to {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
