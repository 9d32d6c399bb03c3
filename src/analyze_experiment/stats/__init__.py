"""Statistics: intervals, paired tests with multiplicity correction, seeds, effects, cost
and the findings the report states (methods and references in docs/statistics.md).

    from analyze_experiment.stats import analyze
    analysis = analyze(experiment, Options(confidence=0.95, margin=0.01))
"""

from analyze_experiment.stats._analyze import analyze

__all__ = ["analyze"]
