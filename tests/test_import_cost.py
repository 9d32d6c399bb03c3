"""The heavy libraries are imported only by the work that needs them.

scipy.stats, statsmodels, matplotlib, seaborn, plotly and inspect-ai each take a tenth of a
second to most of a second to import; together they were a quarter of a demo report's CPU
time, and ``--help`` paid for them too. Each check runs a fresh interpreter (``sys.modules``
of the test process is full of everything) and lists which of them got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analyze_experiment.report.plots.husl import husl_hex, husl_to_rgb
from analyze_experiment.report.plots.style import OKABE_ITO, level_palette, run_colors

SRC = str(Path(__file__).resolve().parent.parent / "src")
HEAVY = ("scipy.stats", "scipy.optimize", "statsmodels", "matplotlib", "seaborn", "plotly", "inspect_ai")
"""Never needed to start the CLI, read an experiment or plan the figures."""

PROBE = """
import json, sys
{body}
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)))
"""


def imported_after(body: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``body``."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=heavy)], capture_output=True,
                         text=True, env=env, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def roots(modules: list[str]) -> set[str]:
    return {m if m in ("scipy.stats", "scipy.optimize") else m.split(".")[0] for m in modules}


def test_the_probe_sees_an_import():
    """The check itself works: importing pyplot shows up as matplotlib."""
    assert "matplotlib" in roots(imported_after("import matplotlib.pyplot"))


def test_importing_the_cli_imports_no_heavy_library():
    assert imported_after("import analyze_experiment.cli") == []


HELP = """
from analyze_experiment.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0
"""


def test_help_imports_no_heavy_library_and_not_even_pandas():
    """``--help`` and a usage error answer in a twentieth of a second: no table is built."""
    assert imported_after(HELP, heavy=(*HEAVY, "pandas", "numpy", "pyarrow")) == []


def test_the_report_modules_import_no_plotting_library_and_no_model_fitting():
    """Analysing and planning every figure needs none of them at import: the figures are drawn
    in worker processes and statsmodels is imported when a model is fitted."""
    body = """
import analyze_experiment.conclude, analyze_experiment.write, analyze_experiment.report.build
import analyze_experiment.report.plots.plan, analyze_experiment.report.plots.presentation
import analyze_experiment.report.summary_json, analyze_experiment.show, analyze_experiment.catalog
"""
    assert imported_after(body) == []


def test_show_analyses_with_none_of_them(example):
    """``show`` runs the whole analysis and prints a table: no plotting library, no
    inspect-ai, and the statistics need only scipy.special (no scipy.stats, scipy.optimize
    or statsmodels: stats/distributions.py, stats/roots.py)."""
    root = example("mid2026", 40)
    body = f"""
from analyze_experiment.cli import main
try:
    main(["show", {str(root)!r}, "--csv"])
except SystemExit as exc:
    assert exc.code == 0
"""
    assert imported_after(body) == []


def test_pyplot_stand_in_imports_on_first_use_with_the_agg_backend():
    body = """
from analyze_experiment.report.plots.lazy import plt
assert "not imported yet" in repr(plt)
import sys
assert "matplotlib" not in sys.modules
fig, ax = plt.subplots()
import matplotlib
assert matplotlib.get_backend().lower() == "agg", matplotlib.get_backend()
assert "imported" in repr(plt) and "not" not in repr(plt)
"""
    assert "matplotlib" in roots(imported_after(body))


# --- the palette beyond eight runs, without seaborn -------------------------------------------------


def test_husl_palette_is_seaborns_to_the_hex_digit():
    sns = pytest.importorskip("seaborn")
    for n in range(1, 65):
        assert husl_hex(n) == sns.color_palette("husl", n).as_hex(), n


def test_husl_conversion_is_seaborns_to_the_last_bit():
    """The floats before rounding to 0–255 too, so no hex code sits on a rounding edge by luck."""
    from seaborn.external import husl

    rng = np.random.default_rng(7)
    for h, s, lightness in zip(rng.uniform(0, 360, 500), rng.uniform(0, 100, 500), rng.uniform(0, 100, 500),
                               strict=True):
        assert husl_to_rgb(h, s, lightness) == husl.husl_to_rgb(h, s, lightness)
    for lightness in (0.0, 1e-9, 99.99999999, 100.0):
        assert husl_to_rgb(30.0, 50.0, lightness) == husl.husl_to_rgb(30.0, 50.0, lightness)


def test_runs_beyond_eight_get_distinct_husl_colours_after_okabe_ito():
    runs = [f"r{i:02d}" for i in range(20)]
    colors = run_colors(runs, controls=["r05"])
    contenders = [r for r in runs if r != "r05"]
    assert [colors[r] for r in contenders[:8]] == OKABE_ITO
    assert [colors[r] for r in contenders[8:]] == husl_hex(11)
    assert colors["r05"] == "#7F7F7F"
    assert len({colors[r] for r in contenders}) == 19


def test_many_text_levels_get_the_husl_palette():
    """A swept variable with more text levels than Okabe–Ito has colours (level_palette)."""
    levels = [f"level{i}" for i in range(11)]
    palette, cmap, norm = level_palette(levels, numeric=False, log=False)
    assert list(palette.values()) == husl_hex(11) and cmap is None and norm is None
