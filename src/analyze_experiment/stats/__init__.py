"""Statistics, numbers only: intervals, paired tests with multiplicity correction, seeds,
effects, cost (methods and references in docs/statistics.md).

Nothing here writes prose or imports the report: :mod:`analyze_experiment.conclude` runs these
procedures over an experiment and :mod:`analyze_experiment.report.findings` words the results.
"""
