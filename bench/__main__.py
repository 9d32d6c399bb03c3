"""``make bench``: every benchmark, each reported as a ratio to a reference run on the same
files in the same process (absolute seconds on a shared machine mean little)."""

from __future__ import annotations

import importlib
import json
import sys

BENCHES = ("bench.train", "bench.evals", "bench.stats")


def main() -> int:
    results = {}
    for name in BENCHES:
        print(f"== {name}", flush=True)
        results[name] = importlib.import_module(name).main()
    print("== summary")
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
