"""``make bench``: every benchmark, each reported as a ratio to a reference run on the same
files in the same session (absolute seconds on a shared machine mean little).

``bench.sweep`` runs the whole report on synthetic sweeps (10 and 100 runs by default;
``BENCH_SIZES=10,100,1000 make bench`` adds the 1,000-run sweep). ``bench.demo`` (the
example's rendering speed) runs when it is present.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

BENCHES = ("bench.train", "bench.evals", "bench.stats", "bench.sweep")


def main() -> int:
    results = {}
    for name in BENCHES:
        print(f"== {name}", flush=True)
        results[name] = importlib.import_module(name).main()
    if importlib.util.find_spec("bench.demo") is not None:
        demo = importlib.import_module("bench.demo")
        if hasattr(demo, "demo_speed"):
            print("== bench.demo", flush=True)
            results["bench.demo"] = demo.demo_speed()
    print("== summary")
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
