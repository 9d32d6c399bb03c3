"""``python -m analyze_experiment.demo DEST``: build the bundled example sweep."""

import sys

from analyze_experiment.demo import main

sys.exit(main())
