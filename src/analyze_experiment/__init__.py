"""analyze-experiment: read a torchtune + inspect-ai sweep and report on it.

Public API::

    import analyze_experiment as ae
    exp = ae.load("path/to/experiment")      # design + tidy DataFrames + warnings
    result = ae.write_report(exp)            # report.md/.html, plots, tables, summary.json
    analysis = ae.analyze(exp)               # the statistics alone

``load`` and ``write_report`` are imported on first use so that ``import
analyze_experiment`` stays cheap (the CLI's ``--help`` does not pay for pandas/matplotlib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyze_experiment._version import __version__

if TYPE_CHECKING:
    from analyze_experiment.analysis import Analysis
    from analyze_experiment.conclude import analyze
    from analyze_experiment.experiment import Design, Experiment, Options, RunSpec
    from analyze_experiment.ingest.load import load
    from analyze_experiment.write import ReportResult, write_report

__all__ = [
    "Analysis",
    "Design",
    "Experiment",
    "Options",
    "ReportResult",
    "RunSpec",
    "__version__",
    "analyze",
    "load",
    "write_report",
]

_LAZY = {
    "load": "analyze_experiment.ingest.load",
    "write_report": "analyze_experiment.write",
    "ReportResult": "analyze_experiment.write",
    "analyze": "analyze_experiment.conclude",
    "Analysis": "analyze_experiment.analysis",
    "Design": "analyze_experiment.experiment",
    "Experiment": "analyze_experiment.experiment",
    "Options": "analyze_experiment.experiment",
    "RunSpec": "analyze_experiment.experiment",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'analyze_experiment' has no attribute {name!r}")
