"""Allow ``python -m analyze_experiment``."""

from analyze_experiment.cli import main

main()
