"""analyze-experiment: read a torchtune + inspect-ai sweep and report on it.

Public API::

    import analyze_experiment as ae
    exp = ae.load("path/to/experiment")      # design + tidy DataFrames + warnings
    ae.write_report(exp, "path/to/out")      # report.md/.html, plots, tables, summary.json
"""

from analyze_experiment._version import __version__
from analyze_experiment.model import Design, Experiment, Options, RunSpec

__all__ = ["Design", "Experiment", "Options", "RunSpec", "__version__"]
