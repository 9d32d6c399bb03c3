"""Which per-metric figures report.md shows: the primary metric's, not one set per scorer.

A sweep scored by five scorers drew every per-metric figure (per-run bars, sweep heatmap,
per-sample matrix, cost front, main effects) five times, and report.md showed all of them,
though its story speaks of one metric per task (issue 15). report.md now shows those figures
for the metric the story and the bottom line are about (:func:`.story.lead_keys`, not
re-derived here); every other metric gets one line where its figures were, pointing to
report.html — which keeps an interactive chart of every metric behind its metric switch — and
to ``analyze-experiment plot``. Their PNGs are not drawn: only the figures the report shows
are (:func:`analyze_experiment.report.plots.specs.start_plots`, ``shown``).

With one metric per task nothing changes; without report.md (``--format html``) neither does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from analyze_experiment.analysis import Analysis
from analyze_experiment.report.doc import Figure, ReportDoc, Section
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.specs import FigureSpec
from analyze_experiment.report.story import lead_keys

PER_METRIC = ("final", "heatmap", "samples", "pareto", "effects")
"""The figure kinds drawn once per task × scorer × metric (``<kind>_<target slug>``)."""


def secondary_targets(analysis: Analysis) -> list[sel.Target]:
    """The figure targets report.md leaves to report.html: those the story does not speak of,
    on tasks where it speaks of another target (a task without a lead target keeps all)."""
    targets = sel.targets(analysis)
    keys = lead_keys(analysis)
    lead_tasks = {t.task for t in targets if (t.task, t.scorer, t.metric) in keys}
    return [t for t in targets if t.task in lead_tasks and (t.task, t.scorer, t.metric) not in keys]


def secondary_figures(specs: Sequence[FigureSpec], analysis: Analysis) -> dict[str, sel.Target]:
    """Figure name -> target of every per-metric figure of a secondary target that has data."""
    names = {f"{kind}_{t.slug}": t for t in secondary_targets(analysis) for kind in PER_METRIC}
    return {s.name: names[s.name] for s in specs if s.name in names and s.skip is None}


def _figures(section: Section) -> Iterator[tuple[Section, Figure]]:
    for b in section.blocks:
        if isinstance(b, Section):
            yield from _figures(b)
        elif isinstance(b, Figure):
            yield section, b


def leave_to_html(doc: ReportDoc, hidden: Mapping[str, sel.Target], analysis: Analysis, *, html: bool) -> ReportDoc:
    """Give the figures in ``hidden`` their report.md line instead of an image: the first of a
    target in a section gets one line naming its figures and where to see them, the others none.
    report.html still shows each (its interactive chart); returns ``doc``."""
    groups: dict[tuple[int, str], list[Figure]] = {}
    for doc_section in doc.sections:
        for section, f in _figures(doc_section):
            if f.name in hidden:
                groups.setdefault((id(section), hidden[f.name].slug), []).append(f)
    for figs in groups.values():
        t = hidden[figs[0].name]
        kinds = [f.name.removesuffix(f"_{t.slug}") for f in figs]
        figs[0].markdown = _line(t, kinds, html=html)
        for f in figs[1:]:
            f.markdown = ""
    return doc


KIND_WORDS = {"final": "per run", "heatmap": "over the sweep", "samples": "per sample",
              "pareto": "against training cost", "effects": "main effects"}


def _line(t: sel.Target, kinds: list[str], *, html: bool) -> str:
    """The one line report.md gives a secondary target's figures in a section."""
    what = f"{t.label} is not the primary metric: its figures ({', '.join(KIND_WORDS.get(k, k) for k in kinds)})"
    where = f"{what} are in report.html (choose it in the metric switch)" if html else f"{what} are not drawn"
    return (f"{where}; to draw one as a file: analyze-experiment plot DIR {kinds[0]} --task {t.task} "
            f"--scorer {t.scorer} --metric {t.metric}.")
