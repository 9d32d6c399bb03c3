"""Which task x scorer x metric each evaluation plot shows, and the file names they get.

Shared by the static and the interactive figures so that ``PlotInfo.interactive`` keys and
``interactive_figures()`` keys always agree.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analyze_experiment.analysis import Analysis
from analyze_experiment.experiment import Experiment
from analyze_experiment.tables import by_epoch


@dataclass(frozen=True)
class Target:
    """One task x scorer x metric that gets its own evaluation figures."""

    task: str
    scorer: str
    metric: str
    slug: str
    """File-name-safe suffix (task names are untrusted and may hold ``/`` or ``<``)."""
    name: str = ""
    """Short display name: the task, plus the scorer/metric when the task has several targets."""

    @property
    def label(self) -> str:
        """Human-readable name used in titles."""
        return f"{self.task} · {self.scorer} · {self.metric}"


def safe_stem(text: str) -> str:
    """A file-name-safe version of ``text`` (no separators, no leading dot).

    >>> safe_stem("../my task<x>")
    'my-task-x'
    """
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-_")
    return s or "x"


def targets(analysis: Analysis) -> list[Target]:
    """The headline metric of every task x scorer: those the statistics stage ranked.

    Falls back to every task x scorer x metric in ``analysis.intervals`` when no best
    candidate was chosen.
    """
    keys: list[tuple[str, str, str]] = [(b.task, b.scorer, b.metric) for b in analysis.best]
    if not keys and len(analysis.intervals):
        iv = analysis.intervals
        keys = list(dict.fromkeys(zip(iv["task"].astype(str), iv["scorer"].astype(str),
                                      iv["metric"].astype(str), strict=True)))
    keys = list(dict.fromkeys(keys))
    tasks = [k[0] for k in keys]
    out: list[Target] = []
    used: set[str] = set()
    for task, scorer, metric in keys:
        unique = tasks.count(task) == 1
        base = safe_stem(task) if unique else safe_stem(f"{task}_{scorer}_{metric}")
        slug, i = base, 2
        while slug in used:
            slug, i = f"{base}-{i}", i + 1
        used.add(slug)
        scorers = {k[1] for k in keys if k[0] == task}
        name = task if unique else (f"{task} ({scorer})" if len(scorers) > 1 else f"{task} ({metric})")
        out.append(Target(task, scorer, metric, slug, name))
    return out


def target_references(analysis: Analysis, t: Target) -> list[tuple[str, float]]:
    """(name, value) of the reference numbers compared with target ``t`` (drawn as lines)."""
    r = analysis.references
    if r is None or r.empty:
        return []
    r = r[(r["task"] == t.task) & (r["scorer"] == t.scorer) & (r["metric"] == t.metric)]
    return [(str(n), float(v)) for n, v in r[["reference", "reference_value"]].drop_duplicates().itertuples(index=False)]


def candidate_label(run: str, epoch: object, multi_epoch: bool) -> str:
    """``run`` or ``run @ epoch N`` when the run has several evaluated checkpoints."""
    if multi_epoch and epoch is not None and not (isinstance(epoch, float) and math.isnan(epoch)):
        return f"{run} @ epoch {int(float(epoch))}"  # type: ignore[arg-type]
    return str(run)


def target_intervals(analysis: Analysis, t: Target) -> pd.DataFrame:
    """Rows of ``analysis.intervals`` for one target, with a ``label`` column per candidate."""
    iv = analysis.intervals
    if not len(iv):
        return iv.assign(label=pd.Series(dtype=str))
    df = iv[(iv["task"] == t.task) & (iv["scorer"] == t.scorer) & (iv["metric"] == t.metric)].copy()
    df = df[pd.to_numeric(df["value"], errors="coerce").notna()]
    counts = df.groupby("run")["epoch"].nunique(dropna=False)
    df["label"] = [candidate_label(r, e, counts.get(r, 1) > 1) for r, e in zip(df["run"], df["epoch"], strict=True)]
    return df


def control_runs(experiment: Experiment) -> list[str]:
    """Runs the design calls controls/baselines (grey and marked in every figure)."""
    runs = experiment.runs
    if not len(runs):
        return [r.name for r in experiment.design.runs if r.type == "control"]
    return [str(r) for r in runs.loc[runs["type"] == "control", "run"]]


def all_runs(experiment: Experiment) -> list[str]:
    """Every run name in a stable order: the runs table, then any found only in data tables."""
    names: list[str] = [str(r) for r in experiment.runs["run"]] if len(experiment.runs) else []
    for df in (experiment.train_steps, experiment.eval_scores, experiment.eval_samples, experiment.gpu):
        if len(df):
            names.extend(str(r) for r in df["run"].dropna().unique())
    return list(dict.fromkeys(names))


# --- data preparation shared by static and interactive figures ---------------------------


def smoothing_span(n_points: int) -> int:
    """EMA span for a loss curve: ~1/20 of its length, at least 2, at most 100 steps."""
    return int(min(100, max(2, n_points // 20)))


def smooth(values: pd.Series) -> pd.Series:
    """Exponential moving average over finite values (NaN/inf steps stay NaN, not bridged)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    finite = v.where(v.abs() != math.inf)
    return finite.ewm(span=smoothing_span(int(finite.notna().sum())), ignore_na=True).mean().where(finite.notna())


def smooth_by(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """:func:`smooth` of each group of ``values`` (rows grouped by ``keys``, in row order), as
    one array aligned with the rows; rows whose key is missing come back NaN.

    The same numbers as calling :func:`smooth` on every group, in one grouped pass per
    smoothing span: a hundred runs smoothed one by one cost a pandas window each."""
    v = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    finite = np.where(np.abs(v) != math.inf, v, np.nan)
    codes, _ = pd.factorize(keys, sort=False)
    out = np.full(len(v), np.nan)
    known = codes >= 0
    if not known.any():
        return out
    counts = np.bincount(codes[known], weights=~np.isnan(finite[known]))
    spans = np.array([smoothing_span(int(n)) for n in counts])[np.where(known, codes, 0)]
    for span in np.unique(spans[known]):
        rows = np.flatnonzero(known & (spans == span))
        part = pd.Series(finite[rows])
        smoothed = part.groupby(codes[rows], sort=False).ewm(span=int(span), ignore_na=True).mean()
        out[rows[smoothed.index.get_level_values(-1)]] = smoothed.to_numpy()
    return np.where(np.isnan(finite), np.nan, out)


def minmax_downsample(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``4 · buckets`` points that draw the same line at that width: the first, the
    smallest, the largest and the last point of each bucket of consecutive x (in x order).

    A 2,000-step curve drawn 1,350 pixels wide shows no more than this; a divergence spike
    is a bucket's maximum, so it is never dropped (unlike every-k-th-point thinning).
    """
    n = len(x)
    if n <= 4 * buckets:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        finite = np.isfinite(seg)
        idx = {lo, hi - 1}
        if finite.any():
            idx |= {lo + int(np.nanargmin(np.where(finite, seg, np.nan))),
                    lo + int(np.nanargmax(np.where(finite, seg, np.nan)))}
        keep.extend(sorted(idx))
    k = np.asarray(keep)
    return x[k], y[k]


def curve_groups(experiment: Experiment, runs: list[str], max_panels: int) -> dict[str, str]:
    """Run -> panel label for small multiples of many curves: the configuration (every swept
    parameter but the seed, so a configuration's seeds share a panel) when there are at most
    ``max_panels`` of them, else the level of the first swept parameter that has few enough
    levels, else consecutive blocks of runs."""
    from analyze_experiment.stats.seeds import seed_variable

    info = experiment.runs.set_index("run") if len(experiment.runs) and "run" in experiment.runs.columns else None
    params = [p for p in experiment.param_names if info is not None and p in info.columns]
    seed = seed_variable(params)
    swept = [p for p in params if p != seed and info is not None and info.loc[info.index.isin(runs), p].nunique() > 1]

    rows = info[~info.index.duplicated()][swept].to_dict("index") if info is not None and swept else {}

    def label(run: str, cols: list[str]) -> str:  # a run's first row in the runs table, read once for all runs
        if info is None or run not in info.index:
            return "other"
        return ", ".join(f"{c} = {level_text(rows[run][c])}" for c in cols)

    if swept:
        by_config = {r: label(r, swept) for r in runs}
        if len(set(by_config.values())) <= max_panels:
            return by_config
        for p in swept:
            by_level = {r: label(r, [p]) for r in runs}
            if len(set(by_level.values())) <= max_panels:
                return by_level
    size = math.ceil(len(runs) / max_panels)
    return {r: f"runs {i // size * size + 1}–{min(len(runs), (i // size + 1) * size)}" for i, r in enumerate(runs)}


def series_frame(steps: pd.DataFrame, y: str) -> pd.DataFrame:
    """``run, epoch, step, <y>`` rows with a numeric ``y`` and ``step``, sorted by run and step."""
    if not len(steps) or y not in steps.columns:
        return pd.DataFrame(columns=["run", "epoch", "step", y])
    df = steps[["run", "epoch", "step", y]].copy()
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df[y] = pd.to_numeric(df[y], errors="coerce").astype(float)
    df = df[df["step"].notna() & df[y].abs().lt(math.inf)]  # NaN/inf (a diverged run) cannot be drawn
    return df.sort_values(["run", "step"], kind="stable").reset_index(drop=True)


def epoch_boundaries(steps: pd.DataFrame) -> dict[str, list[float]]:
    """Per run, the last global step of every epoch but the final one (where a new epoch begins)."""
    out: dict[str, list[float]] = {}
    if not len(steps):
        return out
    df = steps[["run", "epoch", "step"]].copy()
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce")
    df = df.dropna()
    last: dict[object, list[float]] = {}
    for (run, _), step in df.groupby(["run", "epoch"], sort=True)["step"].max().items():  # one grouping for all runs
        last.setdefault(run, []).append(float(step))
    for run in df["run"].unique():  # runs in the order they first appear
        out[str(run)] = last[run][:-1]
    return out


def gpu_frame(gpu: pd.DataFrame) -> pd.DataFrame:
    """Per run and sample time: minutes since the run's first sample, max memory (GiB), mean util."""
    cols = ["run", "minutes", "memory_gib", "utilization_pct"]
    if not len(gpu):
        return pd.DataFrame(columns=cols)
    df = gpu.copy()
    df["time"] = pd.to_datetime(df["time"], errors="coerce", utc=True)
    df = df[df["time"].notna()]
    if not len(df):
        return pd.DataFrame(columns=cols)
    df["memory_gib"] = pd.to_numeric(df["memory_used_mib"], errors="coerce") / 1024.0
    df["utilization_pct"] = pd.to_numeric(df["utilization_pct"], errors="coerce")
    agg = df.groupby(["run", "time"], sort=True).agg(memory_gib=("memory_gib", "max"),
                                                      utilization_pct=("utilization_pct", "mean"))
    agg = agg.reset_index()
    start = agg.groupby("run")["time"].transform("min")
    agg["minutes"] = (agg["time"] - start).dt.total_seconds() / 60.0
    return agg[cols]


def sort_levels(values: list[object]) -> list[object]:
    """Levels in numeric order when they are all numbers, else in string order."""
    uniq = list(dict.fromkeys(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))))
    try:
        return sorted(uniq, key=float)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return sorted(uniq, key=str)


def level_text(v: object) -> str:
    """A parameter level as shown on an axis (``1e-05`` not ``1.0000000000000001e-05``)."""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def with_params(experiment: Experiment, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with one column per varying parameter, joined from the runs table by ``run``."""
    params = [p for p in experiment.param_names if p in experiment.runs.columns]
    if not params or not len(df):
        return df.copy()
    extra = experiment.runs[["run", *params]].drop_duplicates("run")
    return df.drop(columns=[p for p in params if p in df.columns]).merge(extra, on="run", how="left")


def _seed_var(experiment: Experiment) -> str | None:
    from analyze_experiment.stats.seeds import seed_variable

    return seed_variable(list(experiment.param_names))


def pool_seeds(experiment: Experiment, df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration × epoch: seed replicates pooled (mean, t interval across seeds).

    A seed is never an axis of a sweep figure: a cell is a configuration, and its value is
    the mean of its seeds (``n_seeds`` > 1) with the interval across seeds; a configuration
    trained once keeps its own value and interval.
    """
    seed = _seed_var(experiment)
    params = [p for p in experiment.param_names if p in df.columns and p != seed]
    if not len(df) or not params:
        return df
    from analyze_experiment.stats.intervals import t_interval

    d = df.assign(_ep=pd.to_numeric(df["epoch"], errors="coerce") if "epoch" in df.columns else math.nan)
    # groups as row positions (a pandas group per configuration cost ~0.3 ms each: 100 runs,
    # two targets, a twentieth of the report's figure work); each group's first row as a dict,
    # as ``g.iloc[0].to_dict()`` gives it
    ids = d.groupby([*params, "_ep"], sort=True, dropna=False).ngroup().to_numpy()
    order = np.argsort(ids, kind="stable")
    ends = np.cumsum(np.bincount(ids[ids >= 0]))
    records = d.to_dict("records")
    value = pd.to_numeric(d["value"], errors="coerce").to_numpy(float)
    names = d["run"].astype(str).tolist()
    rows = []
    for k, end in enumerate(ends):
        pos = order[(ends[k - 1] if k else 0):end]
        vals = value[pos][~np.isnan(value[pos])]
        r = dict(records[pos[0]])
        if len(vals) >= 2:
            ti = t_interval(vals, confidence)
            r.update(value=float(vals.mean()), ci_low=ti.ci_low, ci_high=ti.ci_high)
        r["n_seeds"] = len(pos)
        r["run"] = ", ".join(sorted(names[i] for i in pos))
        rows.append(r)
    out = pd.DataFrame(rows).drop(columns=["_ep"])
    return out.drop(columns=[seed]) if seed and seed in out.columns else out


def heatmap_axes(experiment: Experiment, df: pd.DataFrame) -> tuple[str, str, list[str]] | None:
    """(x variable, y variable, facet variables) for a heatmap, or None when < 2 vary.

    The seed is never an axis or a facet: replicates are pooled into their configuration
    (:func:`pool_seeds`)."""
    seed = _seed_var(experiment)
    varying = [p for p in experiment.param_names
               if p != seed and p in df.columns and df[p].dropna().nunique() > 1]
    if len(varying) < 2:
        return None
    facets = varying[2:]
    ep = pd.to_numeric(df["epoch"], errors="coerce") if "epoch" in df.columns else pd.Series(dtype=float)
    if ep.dropna().nunique() > 1:
        facets = [*facets, "epoch"]
    return varying[1], varying[0], facets


def reduced_samples(experiment: Experiment, t: Target, labels: pd.DataFrame) -> pd.DataFrame:
    """Per candidate x sample: the mean score over inspect's sample epochs, with its label, and
    the first sample epoch's answer and target (what the per-sample view shows on hover).

    ``labels`` is :func:`target_intervals` output; it fixes which candidates exist and their
    names.
    """
    s = experiment.eval_samples
    cols = ["label", "run", "epoch", "sample_id", "score", "answer", "target"]
    if not len(s) or not len(labels):
        return pd.DataFrame(columns=cols)
    s = s[(s["task"] == t.task) & (s["scorer"] == t.scorer)].copy()
    s["score"] = pd.to_numeric(s["score"], errors="coerce")
    s = s[s["score"].notna()]
    if not len(s):
        return pd.DataFrame(columns=cols)
    s["epoch"] = pd.to_numeric(s["epoch"], errors="coerce").astype(float)
    s["sample_id"] = s["sample_id"].astype(str)
    for c in ("answer", "target"):
        if c not in s.columns:
            s[c] = None
    keys = ["run", "epoch", "sample_id"]
    if all(_text_column(s[c]) for c in ("answer", "target")) and not s.duplicated(keys).any():
        # one row per candidate × sample (a single inspect epoch, the usual case): the mean and
        # the first answer of each group are the row itself, without grouping 100,000 rows
        red = s.dropna(subset=["run", "sample_id"])[[*keys, "score", "answer", "target"]].reset_index(drop=True)
    else:
        red = by_epoch(s, keys, sort=False).agg(
            score=("score", "mean"), answer=("answer", "first"), target=("target", "first")).reset_index()
    lab = labels[["run", "epoch", "label"]].copy()
    lab["epoch"] = pd.to_numeric(lab["epoch"], errors="coerce").astype(float)
    if isinstance(red["run"].dtype, pd.CategoricalDtype) and _text_column(lab["run"]):
        red["run"] = red["run"].astype(lab["run"].dtype)  # what the merge makes of it, at half the cost
    return red.merge(lab, on=["run", "epoch"], how="inner")[cols]  # (a missing epoch matches a missing one)


def _text_column(column: pd.Series) -> bool:
    """A column of pandas' string dtype (not object: a group's first non-missing value of an
    object column can differ from its only row)."""
    return isinstance(column.dtype, pd.StringDtype)


EVENT_STATUSES = {"diverged": "loss not finite", "timeout": "time limit"}
"""Run statuses marked on the training curves, with their legend wording."""


def run_events(experiment: Experiment) -> pd.DataFrame:
    """``run, step, kind, value`` of what ended a run early, to mark on its curves.

    ``diverged``: the first global step whose loss is NaN/inf (``first_nonfinite_step``), at the
    last finite loss before it — the curve stops there and the marker says why. ``timeout``:
    the last step the run reached before the time limit stopped it.
    """
    cols = ["run", "step", "kind", "value"]
    runs, steps = experiment.runs, experiment.train_steps
    if not len(runs) or "status" not in runs.columns:
        return pd.DataFrame(columns=cols)
    loss = series_frame(steps, "loss")
    rows = []
    for r in runs[runs["status"].isin(list(EVENT_STATUSES))].itertuples(index=False):
        run, status = str(r.run), str(r.status)
        at = getattr(r, "first_nonfinite_step", None) if status == "diverged" else getattr(r, "steps", None)
        g = loss[loss["run"].astype(str) == run]
        if at is None or pd.isna(at):
            if not len(g):
                continue
            at = g["step"].max()
        before = g[g["step"] <= float(at)]
        value = float(before["loss"].iloc[-1]) if len(before) else math.nan
        rows.append({"run": run, "step": float(at), "kind": status, "value": value})
    return pd.DataFrame(rows, columns=cols)


def scale_floor(samples: pd.DataFrame, metric: str) -> float:
    """Where a metric's axis starts: 0, or the lowest score a rubric can give (1 on a 1–5 scale).

    A bar drawn from 0 on a 1–5 scale shows a fifth of its length for nothing; the floor is the
    smallest per-sample score when every score is a whole number of at least 1 (a rubric), and
    the metric is a mean of those scores (not a share, count or spread)."""
    if not len(samples) or metric.lower() in {"accuracy", "stderr", "std", "var", "count"}:
        return 0.0
    s = pd.to_numeric(samples["score"], errors="coerce").dropna()
    if not len(s) or (s != s.round()).any() or s.min() < 1 or s.nunique() > 11:
        return 0.0
    return float(s.min())


def discrete_levels(scores: pd.Series, max_levels: int = 11) -> list[float] | None:
    """The score levels when a scorer gives a few fixed values (0/0.5/1, 1–5), else None."""
    s = pd.to_numeric(scores, errors="coerce").dropna()
    levels = sorted(s.unique().tolist())
    if not levels or len(levels) > max_levels:
        return None
    if not all(float(v * 2).is_integer() for v in levels):  # halves at most: 0/0.5/1, 1–5, 1–10
        return None
    return [float(v) for v in levels]


def complete_grid(df: pd.DataFrame, x: str, y: str,
                  facets: list[str]) -> tuple[pd.DataFrame, tuple[str, str, list[str]], str]:
    """The heatmap rows restricted to panels whose x × y grid is complete, and a note on what was left out.

    A panel with a hole reads as a missing configuration when the run simply was not evaluated
    at that checkpoint. When some checkpoint epoch was evaluated for every configuration, the
    panels are those epochs; when none was, each configuration's last evaluated checkpoint
    makes the panel. Any panel still holding a hole (a sweep that did not run every
    combination) is left out; with none complete the frame comes back empty and the note
    says why.
    """
    cells = df[x].dropna().nunique() * df[y].dropna().nunique()
    other = [f for f in facets if f != "epoch"]
    notes = []
    if "epoch" in facets:
        d = df.assign(_ep=pd.to_numeric(df["epoch"], errors="coerce"))
        per_epoch = d.groupby("_ep")[[x, y]].apply(lambda g: len(g.drop_duplicates()))
        full = [e for e, n in per_epoch.items() if n == cells]
        if full:
            dropped = sorted(set(per_epoch.index) - set(full))
            df = d[d["_ep"].isin(full)].drop(columns="_ep")
            if dropped:
                notes.append(f"Epoch {', '.join(str(int(e)) for e in dropped)} left out: not every configuration "
                             "was evaluated there.")
        else:
            df = d.sort_values("_ep").groupby([x, y, *other], dropna=False).tail(1).drop(columns="_ep")
            facets = other
            notes.append("Each configuration at its last evaluated checkpoint (no checkpoint was evaluated for all).")
    if len(df) and facets:
        sizes = df.groupby(facets, dropna=False)[[x, y]].apply(lambda g: len(g.drop_duplicates()))
        keep = [k for k, n in sizes.items() if n == cells]
        if len(keep) < len(sizes):
            df = df[df.set_index(facets).index.isin(keep)]
            notes.append(f"{len(sizes) - len(keep)} of {len(sizes)} panels left out: their {x} × {y} grid has holes.")
    elif len(df) and len(df[[x, y]].drop_duplicates()) < cells:
        df = df.iloc[0:0]
    if not len(df):
        return df, (x, y, facets), f"no complete {x} × {y} grid: the sweep did not run every combination"
    return df, (x, y, facets), " ".join(notes)


# --- many runs: colour by a swept variable instead of a legend per run ---------------------


MAX_FACETS = 6
"""Most panels a many-run figure is split into by a swept variable (more levels: no facets)."""


@dataclass(frozen=True)
class Encoding:
    """How a figure of many runs tells them apart without a legend entry per run.

    A reader of a 100-run sweep asks how the curves move with the swept variables, not which
    of 100 names a line has: each run is coloured by its level of ``hue`` (the swept variable
    with the most levels) and, when a second one varies, the runs are split into one panel per
    level of ``facet``. Controls are grey and named; the report's winner is named too.
    """

    hue: str
    """The swept variable that colours the runs."""
    levels: dict[str, object]
    """Run -> its level of ``hue`` (controls and runs without a level are absent)."""
    order: tuple[object, ...]
    """The levels of ``hue`` in order (numeric when they are numbers)."""
    numeric: bool
    """Levels are numbers: a sequential colour map (log-spaced when they span > 10×)."""
    facet: str | None = None
    panels: dict[str, str] = field(default_factory=dict)
    """Run -> panel label (``facet = level``); empty without a facet."""
    panel_order: tuple[str, ...] = ()
    """The panel labels in the order of the facet's levels."""
    controls: tuple[str, ...] = ()
    best: str | None = None
    """The report's winner (the first target's best run), highlighted and named."""

    @property
    def log(self) -> bool:
        """Log-spaced colours: positive numeric levels spanning more than a factor of 10."""
        if not self.numeric:
            return False
        vals = [float(v) for v in self.order]  # type: ignore[arg-type]
        return min(vals) > 0 and max(vals) / min(vals) > 10


def best_run(analysis: Analysis) -> str | None:
    """The run the report names best for its first target (None when no target was ranked)."""
    return str(analysis.best[0].run) if analysis.best else None


def sweep_encoding(experiment: Experiment, runs: list[str], controls: list[str] | tuple[str, ...],
                   best: str | None, max_facets: int = MAX_FACETS) -> Encoding | None:
    """The colour (and panel) encoding for a figure of many ``runs``, or None when no swept
    variable varies across them (the seed never counts: replicates share a colour).

    ``hue`` is the variable with the most levels (a colour scale reads many levels, a row of
    panels does not); ``facet`` is the one with the most levels among the rest that has at
    most ``max_facets`` of them."""
    from analyze_experiment.stats.seeds import seed_variable

    info = experiment.runs
    if not len(info) or "run" not in info.columns:
        return None
    info = info.drop_duplicates("run").set_index(info.drop_duplicates("run")["run"].astype(str))
    contenders = [r for r in runs if r not in set(controls) and r in info.index]
    params = [p for p in experiment.param_names if p in info.columns]
    seed = seed_variable(params)
    counts = {p: info.loc[contenders, p].dropna().nunique() for p in params if p != seed}
    swept = sorted((p for p, n in counts.items() if n > 1), key=lambda p: -counts[p])
    if not swept:
        return None
    hue = swept[0]
    column = info.loc[contenders, hue].dropna()
    numeric = bool(pd.to_numeric(column, errors="coerce").notna().all())
    order = tuple(sort_levels(column.tolist()))
    facet = next((p for p in swept[1:] if counts[p] <= max_facets), None)
    panels: dict[str, str] = {}
    panel_order: tuple[str, ...] = ()
    if facet is not None:
        values = info.loc[contenders, facet].dropna()
        panels = {str(r): f"{facet} = {level_text(v)}" for r, v in values.items()}
        panel_order = tuple(f"{facet} = {level_text(v)}" for v in sort_levels(values.tolist()))
    return Encoding(hue=hue, levels={str(r): v for r, v in column.items()}, order=order, numeric=numeric,
                    facet=facet, panels=panels, panel_order=panel_order,
                    controls=tuple(c for c in controls if c in runs), best=best if best in runs else None)
