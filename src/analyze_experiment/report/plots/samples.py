"""The per-sample view: which samples the runs agree on, and which flipped.

Binary scores (correct/wrong) give an agreement matrix, samples × candidates: a static PNG
for report.md and a plotly.js matrix for report.html whose hover names the sample, its target and
the candidate's answer. Beside it, the flipped samples — correct for one of the best run and
its comparison partner (the baseline, else the runner-up) and wrong for the other — are
listed with both answers, the drill-down a reader otherwise opens inspect's log viewer for.
Discrete scores (0/0.5/1, 1–5) give stacked proportion bars: box plots of a few levels draw
the same box for different distributions. Other scores keep box plots.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.report.plots import _select as sel
from analyze_experiment.report.plots.lazy import plt
from analyze_experiment.report.plots.plotly_json import FONT, PlotlyFigure, figure, values
from analyze_experiment.report.plots.specs import FigureSpec, NoData
from analyze_experiment.report.plots.style import CONTROL_COLOR
from analyze_experiment.textsafe import visible

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CORRECT, WRONG = "#0072B2", "#E69F00"
ELEMENT_ID = "agreement-matrix"
"""Id of the HTML container of the (first) agreement matrix; later ones get ``-2``, ``-3``."""

MAX_HOVER_CHARS = 120
MAX_MATRIX_ROWS = 20
"""Candidates in an agreement matrix: the best and the 19 next in rank (a 100-run sweep's full
matrix made report.html 30 MB; the table of intervals lists every candidate)."""
MAX_MATRIX_SAMPLES = 150
"""Samples in an agreement matrix: those on which most candidates differ from the best first."""
"""Answers and targets longer than this are cut in the hover box (the table has them whole)."""


def best_label(analysis: Analysis, t: sel.Target, iv: pd.DataFrame) -> str | None:
    best = next((b for b in analysis.best if (b.task, b.scorer, b.metric) == (t.task, t.scorer, t.metric)), None)
    if best is None or not len(iv):
        return None
    multi = iv.groupby("run")["epoch"].nunique(dropna=False).get(best.run, 1) > 1
    return sel.candidate_label(best.run, best.epoch, bool(multi))


def candidate_order(iv: pd.DataFrame) -> list[str]:
    """Candidate labels best first (the metric's direction respected)."""
    sign = -1.0 if "direction" in iv.columns and (iv["direction"] == "lower").any() else 1.0
    return list(iv.assign(_s=sign * iv["value"].astype(float)).sort_values("_s", ascending=False, kind="stable")["label"])


def partner(iv: pd.DataFrame, best: str, controls: list[str]) -> tuple[str, str] | None:
    """(label, role) the best is compared with sample by sample in the flipped-samples table:
    the runner-up, the closest contender (where the best's lead comes from); the best-scoring
    baseline (control run) when there is no other candidate."""
    order = [c for c in candidate_order(iv) if c != best]
    runs = dict(zip(iv["label"], iv["run"].astype(str), strict=False))
    if order:
        return order[0], ("baseline" if runs.get(order[0]) in set(controls) else "runner-up")
    return None


def samples_spec(t: sel.Target, iv: pd.DataFrame, samples: pd.DataFrame, analysis: Analysis,
                 colors: dict[str, str], controls: list[str]) -> FigureSpec:
    """The per-sample figure of target ``t``: agreement matrix (binary scores with a best
    candidate), stacked proportion bars (a few score levels) or box plots (other scores)."""
    name, title = f"samples_{t.slug}", f"Per-sample outcomes — {t.name}"
    if not len(samples):
        return FigureSpec(name, title, "evaluation", None, skip="no per-sample scores")
    order = candidate_order(iv)
    best = best_label(analysis, t, iv)
    levels = sel.discrete_levels(samples["score"])
    if levels is not None and set(levels) <= {0.0, 1.0} and best is not None:
        other = partner(iv, best, list(controls))
        return FigureSpec(
            name, title, "evaluation", plot_sample_agreement, samples,
            {"best": best, "order": order, "title": f"Samples that changed outcome vs the best run — {t.label}"},
            caption="Rows: candidates, best on top, with samples gained/lost against the best; columns: the samples "
                    "on which some candidate differs from the best (blue correct, orange wrong). In report.html, "
                    "hovering a cell shows the sample id, its target and the candidate's answer."
                    + (f" Samples that flipped between the best and the {other[1]} are listed below." if other else ""),
            interactive=f"samples_{t.slug}")
    ctl_labels = [lab for lab, r in zip(iv["label"], iv["run"].astype(str), strict=True) if r in set(controls)]
    shown = _kept_labels(order, ctl_labels, MAX_DISTRIBUTION_ROWS)
    more = (f" The best {MAX_DISTRIBUTION_ROWS} of {len(order) - len(ctl_labels)} candidates and the controls are "
            f"drawn; … {len(order) - len(shown)} more in report.html." if shown is not None else "")
    if levels is not None:
        return FigureSpec(name, f"Per-sample score distribution — {t.name}", "evaluation", plot_score_proportions,
                          samples, {"levels": levels, "order": order, "metric_label": f"per-sample {t.scorer} score",
                                    "title": f"Per-sample score distribution — {t.label}", "shown": shown},
                          caption="Share of samples at each score level per candidate (best on top)." + more,
                          interactive=f"samples_{t.slug}")
    return FigureSpec(name, f"Per-sample score distribution — {t.name}", "evaluation", plot_score_distribution,
                      samples, {"colors": colors, "order": order, "metric_label": f"per-sample {t.scorer} score",
                                "title": f"Per-sample score distribution — {t.label}", "shown": shown},
                      caption=more.strip() or None)


MAX_DISTRIBUTION_ROWS = 30
"""Most candidates a score-distribution figure draws (the best ones, and the controls): a row
each at 0.45 in, a hundred candidates made a figure 46 inches tall."""


def _kept_labels(order: list[str], controls: list[str], n: int) -> list[str] | None:
    """The best ``n`` candidate labels of ``order`` and every control's, in ``order``; None
    when all fit (nothing to leave out)."""
    contenders = [lab for lab in order if lab not in set(controls)]
    if len(contenders) <= n:
        return None
    keep = set(contenders[:n]) | set(controls)
    return [lab for lab in order if lab in keep]


# --- data ----------------------------------------------------------------------------------


def agreement_matrix(data: pd.DataFrame, best: str, order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, reference): candidates × flipped samples, the best first; samples ordered by how
    many candidates differ from the best, then by id. Raises :class:`NoData`.

    At most :data:`MAX_MATRIX_ROWS` candidates (best first, then by rank) and
    :data:`MAX_MATRIX_SAMPLES` samples are kept; ``scores.attrs`` says how many there were
    (``candidates``, ``flipped``) and each shown candidate's ``gained``/``lost`` samples against
    the best over every flipped sample, not only the shown ones.
    """
    mat = data.pivot_table(index="label", columns="sample_id", values="score", aggfunc="mean")
    if best not in mat.index:
        raise NoData(f"no per-sample scores for the best candidate {best}")
    rows = [best] + [r for r in (order or sorted(mat.index)) if r != best and r in mat.index]
    if len(rows) < 2:
        raise NoData("only one candidate has per-sample scores")
    n_candidates = len(rows)
    mat = mat.loc[rows[:MAX_MATRIX_ROWS]]
    # one pass over the candidates × samples array; per-column pandas lookups cost a
    # millisecond per thousand samples each
    m = mat.to_numpy(dtype=float)
    ref = m[0]
    differs = (m != ref) & ~np.isnan(m) & ~np.isnan(ref)
    changed = differs.any(axis=0)
    if not changed.any():
        raise NoData(f"no sample changed outcome between {best} and the other runs")
    mf, rf = m[:, changed], ref[changed]
    gained = dict(zip(mat.index, ((mf == 1) & (rf == 0)).sum(axis=1).tolist(), strict=True))
    lost = dict(zip(mat.index, ((mf == 0) & (rf == 1)).sum(axis=1).tolist(), strict=True))
    flipped = mat.columns[changed]
    n_differ = differs[:, changed].sum(axis=0).tolist()
    keep = sorted(range(len(flipped)), key=lambda i: (-n_differ[i], _id_key(flipped[i])))[:MAX_MATRIX_SAMPLES]
    cols = flipped[keep]
    shown = mat[cols].copy()
    shown.attrs.update(candidates=n_candidates, flipped=len(flipped), gained=gained, lost=lost)
    return shown, mat.loc[best][cols]


def matrix_note(m: pd.DataFrame, n_samples: int) -> str:
    """The axis title: how many samples changed outcome, and what the matrix leaves out."""
    text = f"{m.attrs['flipped']} of {n_samples} changed outcome vs the best"
    if m.shape[1] < m.attrs["flipped"]:
        text += f"; the {m.shape[1]} where most candidates differ are shown"
    if len(m.index) < m.attrs["candidates"]:
        text += f"; top {len(m.index)} of {m.attrs['candidates']} candidates"
    return text


def _id_key(sample_id: object) -> tuple[int, float, str]:
    try:
        return (0, float(str(sample_id)), str(sample_id))
    except ValueError:
        return (1, 0.0, str(sample_id))


def flipped_samples(data: pd.DataFrame, best: str, other: str) -> pd.DataFrame:
    """Samples scored differently by ``best`` and ``other``: sample id, target, both answers and
    which way it flipped (``gained``: the best is right, the other wrong; ``lost``: the reverse)."""
    cols = ["sample_id", "target", "best_answer", "other_answer", "flip"]
    d = data[data["label"].isin([best, other])]
    if not len(d):
        return pd.DataFrame(columns=cols)
    wide = d.pivot_table(index="sample_id", columns="label", values="score", aggfunc="mean")
    if best not in wide.columns or other not in wide.columns:
        return pd.DataFrame(columns=cols)
    wide = wide[wide[best].notna() & wide[other].notna() & (wide[best] != wide[other])]
    first = d.drop_duplicates(["label", "sample_id"])
    ids = sorted(wide.index, key=_id_key)
    wide = wide.loc[ids]
    return pd.DataFrame({
        "sample_id": ids, "target": _texts(first, best, ids, "target"),
        "best_answer": _texts(first, best, ids, "answer"), "other_answer": _texts(first, other, ids, "answer"),
        "flip": np.where(wide[best].to_numpy() > wide[other].to_numpy(), "gained", "lost").tolist(),
    }, columns=cols)


def _texts(first: pd.DataFrame, label: str, ids: list, col: str) -> list[str]:
    """``col`` of ``label``'s first row for each sample id, as text ('' when there is none, or
    it is None or NaN). Read as one column: the flipped-sample tables of a 100-run sweep hold
    ~1,000 samples, each looked up on its own before."""
    if col not in first.columns:
        return [""] * len(ids)
    rows = first[first["label"] == label]
    values = dict(zip(rows["sample_id"], rows[col], strict=True))
    return [_cell_text(values[sid]) if sid in values else "" for sid in ids]


def _cell_text(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


# --- static --------------------------------------------------------------------------------


def agreement_axes(data: pd.DataFrame, *, best: str, order: list[str] | None = None,
                   ax: plt.Axes | None = None, matrix: pd.DataFrame | None = None) -> plt.Axes:
    """The agreement matrix on one Axes (returned): blue correct, orange wrong, white not scored;
    each row label counts ``+gained/−lost`` samples against the best. ``matrix``: the
    :func:`agreement_matrix` of ``data`` when the caller has it already."""
    ax = ax if ax is not None else plt.gca()
    m = matrix if matrix is not None else agreement_matrix(data, best, order)[0]
    ylabels = []
    for r in m.index:
        if r == best:
            ylabels.append(f"{r} (best)")
            continue
        ylabels.append(f"{r}  +{m.attrs['gained'][r]}/−{m.attrs['lost'][r]}")
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([WRONG, CORRECT]).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(m.to_numpy(dtype=float)), cmap=cmap, vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(m.index)), ylabels)
    if m.shape[1] <= 40:
        ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_xlabel(f"Sample ({matrix_note(m, data['sample_id'].nunique())})")
    ax.grid(False)
    return ax


def plot_sample_agreement(data: pd.DataFrame, *, best: str, title: str, order: list[str] | None = None) -> Figure:
    """:func:`agreement_axes` in a figure sized to the matrix, with its colour key."""
    from matplotlib.patches import Patch

    m, _ = agreement_matrix(data, best, order)
    # the figure is written at exactly this size (constrained layout): the row names and the
    # colour key take their width beside the columns' 0.12 in each, not out of it, and the
    # title (centred over the matrix, about 0.095 in a character) must fit over the matrix
    names = 0.075 * (max((len(str(r)) for r in m.index), default=0) + 12)
    width = max(1.6 + 0.12 * m.shape[1], 1.4 + 0.095 * len(title)) + names
    fig, ax = plt.subplots(figsize=(min(18, width), 1.2 + 0.4 * len(m.index)))
    agreement_axes(data, best=best, order=order, ax=ax, matrix=m)
    ax.set_title(title)
    ax.legend(handles=[Patch(color=CORRECT, label="correct"), Patch(color=WRONG, label="wrong")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def proportions(data: pd.DataFrame, levels: list[float], order: list[str] | None = None) -> pd.DataFrame:
    """Candidate × score level: the share of the candidate's samples at that level (rows sum to 1)."""
    labels = [lab for lab in (order or list(dict.fromkeys(data["label"]))) if lab in set(data["label"])]
    score = pd.to_numeric(data["score"], errors="coerce").round(6)
    counts = pd.crosstab(data["label"], score).reindex(index=labels, columns=[round(v, 6) for v in levels],
                                                      fill_value=0)
    return counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)


def level_colors(n: int) -> list[str]:
    """A diverging ramp from the lowest score level (red) to the highest (blue)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["RdYlBu"]
    return [to_hex(cmap(0.1 + 0.8 * i / max(1, n - 1))) for i in range(n)]


def proportion_bars(data: pd.DataFrame, *, levels: list[float], order: list[str] | None = None,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal stacked bars, one per candidate (best on top): the share of samples at each
    score level, worst level on the left (returns the Axes)."""
    ax = ax if ax is not None else plt.gca()
    share = proportions(data, levels, order).iloc[::-1]  # best on top
    left = np.zeros(len(share))
    for level, color in zip(share.columns, level_colors(len(share.columns)), strict=True):
        w = share[level].to_numpy(dtype=float)
        ax.barh(np.arange(len(share)), w, left=left, color=color, edgecolor="white", linewidth=0.5,
                label=sel.level_text(float(level)), gid="level")
        left += w
    ax.set_yticks(np.arange(len(share)), list(share.index))
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(False, axis="y")
    return ax


def plot_score_proportions(data: pd.DataFrame, *, levels: list[float], title: str, metric_label: str,
                           order: list[str] | None = None, shown: list[str] | None = None) -> Figure:
    """:func:`proportion_bars` sized to the candidates, the level key beside it (``shown``:
    only these candidate labels, when there are too many to draw)."""
    if shown is not None:
        data = data[data["label"].isin(shown)]
        order = [lab for lab in (order or shown) if lab in set(shown)]
    if not len(data):
        raise NoData("no per-sample scores")
    n = len({lab for lab in data["label"]})
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * n + 1.2)))
    proportion_bars(data, levels=levels, order=order, ax=ax)
    ax.set_xlabel(f"Share of samples by {metric_label}")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="score")
    return fig


def plot_score_distribution(data: pd.DataFrame, *, colors: dict[str, str], title: str, metric_label: str,
                            order: list[str] | None = None, shown: list[str] | None = None) -> Figure:
    """Box plot of per-sample scores per candidate (continuous scores; ``shown``: only these
    candidate labels)."""
    if shown is not None:
        data = data[data["label"].isin(shown)]
        order = [lab for lab in (order or shown) if lab in set(shown)]
    if not len(data):
        raise NoData("no per-sample scores")
    labels = [lab for lab in (order or list(dict.fromkeys(data["label"]))) if lab in set(data["label"])][::-1]
    run_of = dict(zip(data["label"], data["run"].astype(str), strict=False))
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * len(labels) + 1.2)))
    box = ax.boxplot([data.loc[data["label"] == lab, "score"].astype(float) for lab in labels],
                     orientation="horizontal", patch_artist=True, tick_labels=labels)
    for patch, lab in zip(box["boxes"], labels, strict=True):
        patch.set_facecolor(colors.get(run_of[lab], CONTROL_COLOR))
        patch.set_alpha(0.7)
    ax.set_xlabel(metric_label)
    ax.set_title(title)
    return fig


# --- interactive ---------------------------------------------------------------------------


def _text(s: object, limit: int | None = None) -> str:
    t = visible(s)
    if limit is not None and len(t) > limit:
        t = t[: limit - 1] + "…"
    return html.escape(t, quote=True)


def agreement_figure(data: pd.DataFrame, *, best: str, title: str, order: list[str] | None = None) -> PlotlyFigure:
    """The agreement matrix for report.html: hover shows sample id, target, answer and outcome."""
    m, _ = agreement_matrix(data, best, order)
    # only the shown samples' rows (in their order): the first row of a sample, and of a
    # candidate × sample, is the same there as in the whole table, without pivoting every answer
    shown = data[data["sample_id"].isin(m.columns)]
    first = shown[shown["label"].isin(m.index)].drop_duplicates(["label", "sample_id"])
    answers = first.pivot(index="label", columns="sample_id", values="answer").reindex(index=m.index, columns=m.columns)
    targets = shown.drop_duplicates("sample_id").set_index("sample_id")["target"].reindex(m.columns)
    target_text = {sid: _text("" if pd.isna(v) else v, MAX_HOVER_CHARS) for sid, v in targets.items()}
    outcome = np.where(np.isnan(m.to_numpy(dtype=float)), "not scored",
                       np.where(m.to_numpy(dtype=float) >= 0.5, "correct", "wrong"))
    heads = [f"sample {_text(sid)}<br>target: {target_text[sid]}<br>answer: " for sid in m.columns]
    hover = [[f"{head}{_text('' if pd.isna(a) else a, MAX_HOVER_CHARS)}<br>{o}"
              for head, a, o in zip(heads, row, outcome[i], strict=True)]
             for i, row in enumerate(answers.to_numpy(dtype=object))]
    ylabels = [_text(f"{r} (best)" if r == best else r) for r in m.index]
    fig = figure({
        "type": "heatmap", "z": m.to_numpy(dtype=float), "x": [_text(c) for c in m.columns], "y": ylabels,
        "customdata": hover, "hovertemplate": "%{y}<br>%{customdata}<extra></extra>", "zmin": 0, "zmax": 1,
        "showscale": False, "colorscale": [[0.0, WRONG], [0.5, WRONG], [0.5, CORRECT], [1.0, CORRECT]],
        "xgap": 1, "ygap": 1})
    fig.update_axis("x", type="category", title=f"sample ({matrix_note(m, data['sample_id'].nunique())})",
                    showticklabels=m.shape[1] <= 60)
    fig.update_axis("y", type="category", autorange="reversed")
    fig.layout.update(title={"text": _text(title)}, height=max(260, 34 * len(m.index) + 150),
                      margin={"l": 60, "r": 20, "t": 60, "b": 60}, font=FONT)
    return fig


def proportions_figure(data: pd.DataFrame, *, levels: list[float], title: str, metric_label: str,
                       order: list[str] | None = None, **_: object) -> PlotlyFigure:
    """The stacked proportion bars for report.html: every candidate (the page scrolls; the
    PNG's ``shown`` cap does not apply)."""
    share = proportions(data, levels, order).iloc[::-1]
    fig = figure()
    for level, color in zip(share.columns, level_colors(len(share.columns)), strict=True):
        name = sel.level_text(float(level))
        fig.add_trace({"type": "bar", "x": values(share[level]), "y": [_text(i) for i in share.index],
                       "orientation": "h", "name": name, "marker": {"color": color},
                       "hovertemplate": f"%{{y}}<br>score {name}: %{{x:.0%}}<extra></extra>"})
    fig.layout.update(barmode="stack", title={"text": _text(title)},
                      xaxis={"tickformat": ".0%", "range": [0, 1],
                             "title": {"text": _text(f"share of samples by {metric_label}")}},
                      legend={"title": {"text": "score"}}, height=max(300, 40 * len(share) + 150))
    return fig


INTERACTIVE = {plot_sample_agreement: agreement_figure, plot_score_proportions: proportions_figure}
"""Static builder -> its plotly.js twin, called with the same prepared data and options."""


def interactive_samples(spec: FigureSpec) -> PlotlyFigure | None:
    """The plotly.js version of a per-sample spec, or None (box plots stay static)."""
    fn = INTERACTIVE.get(spec.builder)  # type: ignore[arg-type]
    if fn is None or spec.skip is not None:
        return None
    try:
        return fn(spec.data, **spec.options)
    except NoData:
        return None
