"""Behaviour is unchanged unless a change says so: the bundled example's report.md, summary.json,
retrospective, next-experiment design and every CSV table equal the stored outputs byte for byte
(after removing the build's clock and random log ids, see ``tests/golden.py``).

An intended change to the report refreshes them with ``make golden``; the diff of
``tests/golden/`` then shows exactly what a reader of the report will see change.
"""

from __future__ import annotations

import difflib

import pytest

import golden

pytestmark = pytest.mark.slow


def test_example_outputs_equal_the_stored_ones(analysed):
    done = analysed("mid2026", 200, 0)  # the defaults of `make demo`, as golden.build_and_analyse builds it
    assert done.exit_code == 0, done.stderr
    got = golden.collect(done.out, done.root)
    stored = {str(p.relative_to(golden.GOLDEN)): p.read_text(encoding="utf-8")
              for p in golden.GOLDEN.rglob("*") if p.is_file()}
    assert stored, "no stored outputs: run `make golden`"
    assert sorted(got) == sorted(stored), "the set of output files changed: run `make golden` if intended"
    changed = []
    for name in sorted(stored):
        if got[name] != stored[name]:
            diff = difflib.unified_diff(stored[name].splitlines(True), got[name].splitlines(True),
                                        f"stored/{name}", f"now/{name}", n=1)
            changed.append("".join(list(diff)[:40]))
    assert not changed, ("outputs differ from tests/golden/ (run `make golden` if intended):\n"
                         + "\n".join(changed))


def test_normalising_keeps_the_numbers(tmp_path):
    """The normaliser removes only the clock, ids, version and location — a changed number,
    word or row is still a difference."""
    root = tmp_path / "x"
    text = ("| run | log | acc |\n| a | [log](a/2026-12-02T02-17-34-00-00_cap-a_xjJdWnWvoopT3CmcnDAmFA.eval) | 0.855 |\n"
            f"- command: analyze-experiment {root} --quiet\n")
    same = text.replace("02-17-34", "03-01-02").replace("xjJdWnWvoopT3CmcnDAmFA", "B99s2WU9WTnJkBhu24jfWq")
    assert golden.normalise_text(text, root) == golden.normalise_text(same, root)
    assert golden.normalise_text(text, root) != golden.normalise_text(text.replace("0.855", "0.856"), root)
    csv = "run,duration_s,accuracy\nr1,3.0,0.5\n"
    assert golden.normalise_csv(csv, root) == golden.normalise_csv(csv.replace("3.0", "5.0"), root)
    assert golden.normalise_csv(csv, root) != golden.normalise_csv(csv.replace("0.5", "0.6"), root)
