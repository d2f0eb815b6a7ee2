"""The report's figures: pure functions from result tables to matplotlib Figures.

Figures are drawn on plain ``Figure`` objects with an Agg canvas (no pyplot, no global figure
state, no display needed) under one rc style, so every figure of a report looks alike and
repeated runs write identical files. The caller loads the tables and hands them over; every
number drawn was computed by its own stage and written to its result file (the curves:
results/fit/curves/, the Pareto fronts: results/select/); nothing here reads files or
computes a law.
Which figures a report has, and under what names, is ``infscale.outputs.FIGURES``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from infscale.errors import InputError
from infscale.grid import CANDIDATES
from infscale.io import atomic_write

FitKey = tuple[str, str]
P = ParamSpec("P")

# One style for every figure; the fixed SVG hash salt makes SVG output byte-reproducible.
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.markersize": 5,
    "svg.hashsalt": "infscale",
    "svg.fonttype": "none",  # text stays text: smaller files, searchable, quicker to write
}
DPI = 150
PANEL_SIZE = (4.2, 3.3)
MAX_COLUMNS = 3
LOSS_LABEL = "loss (paper's EMA training loss, nats/token)"
LATENCY_LABEL = "generation latency (s)"
CANDIDATE_STYLE = {"color": "C3", "marker": "*", "s": 80}


def _styled(draw: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw under :data:`STYLE` without touching the caller's rcParams. Constrained layout runs
    once and is then frozen, so that every format saved shows the same layout and saving
    (the costly part of a report) does not redo it."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with mpl.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            fig.draw_without_rendering()
            fig.set_layout_engine("none")
            return fig

    return wrapper


def _panels(
    n: int, title: str, size: tuple[float, float] = PANEL_SIZE, columns: int = MAX_COLUMNS
) -> tuple[Figure, list[Axes]]:
    """A figure with exactly ``n`` panels on a grid of ``columns`` (unused cells removed)."""
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in grid[n:]:
        ax.remove()
    fig.suptitle(title)
    return fig, list(grid[:n])


def _log_axis(ax: Axes, axis: str = "x") -> None:
    """A log axis with short plain labels (20k, 1.5M: the default 2x10^4 labels overlap on
    short ranges), at 1, 2, 5 x 10^k, or denser where the data span less than 3x.
    Call it after plotting, since the labels depend on the data range."""
    getattr(ax, f"set_{axis}scale")("log")
    low, high = getattr(ax, f"get_{axis}lim")()
    subs = (1.0, 2.0, 5.0) if high / low >= 3 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    scale = getattr(ax, f"{axis}axis")
    scale.set_major_locator(LogLocator(subs=subs))
    scale.set_major_formatter(FuncFormatter(lambda x, _: human(x)))
    scale.set_minor_formatter(NullFormatter())


def _shared_legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend below the panels, each label once (panels share colours and markers), so
    no legend hides data."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(len(handles), 6),
        )


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def human(x: float) -> str:
    """1.23M-style short numbers for titles and labels."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _group_order(frame: pd.DataFrame) -> list[str]:
    """Size groups from smallest to largest median N, the trained candidates last."""
    order = frame.groupby("size_group")["N"].median().sort_values().index.astype(str).tolist()
    return [g for g in order if g != CANDIDATES] + ([CANDIDATES] if CANDIDATES in order else [])


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` atomically in the format its suffix names (png, svg). No date in an SVG,
    so an unchanged figure rewrites an identical file."""
    fmt = Path(path).suffix.lstrip(".")
    metadata = {"Date": None} if fmt == "svg" else None
    with mpl.rc_context(STYLE):
        return atomic_write(path, lambda p: fig.savefig(p, format=fmt, dpi=DPI, metadata=metadata))


# ---------------------------------------------------------------- latency (paper Figs 3, 4)

SWEEP_PANELS = (
    ("layers", "n_layers", "n_layers (depth)"),
    ("width", "d_model", "d_model (width)"),
    ("ratio", "R", "R = d_model / n_layers (log)"),
)


@_styled
def fig_latency_sweeps(sweeps: pd.DataFrame, fits: Mapping[str, Any]) -> Figure:
    """Paper Fig. 3: decoding runs the layers one after another, so at batch 1 latency grows
    linearly with depth, hardly with width, and falls as R grows at about fixed N.

    ``sweeps``: results/latency/sweeps.csv (one row per sweep and shape); ``fits``: its
    sweep_fits.json, whose least-squares lines (and R²) are drawn on the depth and width panels.
    Measurements flagged for a CV above the bound are ringed in red.
    """
    fig, axes = _panels(3, "Generation latency vs model shape (paper Fig. 3)")
    for ax, (sweep, x, xlabel) in zip(axes, SWEEP_PANELS, strict=True):
        rows = sweeps[sweeps["sweep"] == sweep].sort_values(x)
        ax.set(xlabel=xlabel, ylabel=LATENCY_LABEL)
        if rows.empty:
            ax.set_title(f"{sweep} sweep")
            _empty(ax, "not measured")
            continue
        ax.plot(rows[x], rows["median_s"], marker="o", color="C0", label="median of trials")
        flagged = rows[rows["flagged"].astype(bool)]
        if len(flagged):
            ax.scatter(
                flagged[x],
                flagged["median_s"],
                s=110,
                facecolors="none",
                edgecolors="C3",
                zorder=3,
                label="flagged: CV above the bound",
            )
        fit = fits.get(sweep)
        if sweep in ("layers", "width") and fit:
            xs = np.array([rows[x].min(), rows[x].max()], dtype=float)
            unit = "ms/layer" if sweep == "layers" else "ms per unit of d_model"
            ax.plot(
                xs,
                fit["intercept"] + fit["slope"] * xs,
                "k--",
                lw=1,
                label=f"least squares ({sweep}): {fit['slope'] * 1e3:.3g} {unit}, "
                f"R² = {fit['r2']:.3f}",
            )
        if sweep == "layers":
            ax.set_title(f"vs depth at d_model = {_single(rows['d_model'])}")
        elif sweep == "width":
            ax.set_title(f"vs width at n_layers = {_single(rows['n_layers'])}")
        else:
            ax.set_title(
                f"vs aspect ratio at N ≈ {human(rows['N'].median())} "
                f"({human(rows['N'].min())}-{human(rows['N'].max())})"
            )
            fastest = rows.loc[rows["median_s"].idxmin()]
            ax.annotate(
                f"fastest: {fastest['shape']}",
                (fastest["R"], fastest["median_s"]),
                xytext=(0, 10),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
            _log_axis(ax)
    _shared_legend(fig, axes)
    return fig


def _name_points(
    ax: Axes, names: Iterable[object], x: Iterable[float], y: Iterable[float], offset: tuple
) -> None:
    """Each point's name, ``offset`` points above and to the right of it."""
    for name, xi, yi in zip(names, x, y, strict=True):
        ax.annotate(
            str(name), (xi, yi), xytext=offset, textcoords="offset points", fontsize=7, va="bottom"
        )


def _front_line(ax: Axes, x: np.ndarray, y: np.ndarray, where: str, zorder: int) -> None:
    """A Pareto front through the points (x, y), as steps in x order (``where``: which way a
    step turns, so that the line stays on the dominated side)."""
    order = np.argsort(x)
    ax.step(x[order], y[order], where=where, color="k", lw=1, zorder=zorder, label="Pareto front")


def _single(values: pd.Series) -> str:
    """The one value a sweep holds fixed (all of them, should a table mix several)."""
    return ", ".join(str(v) for v in sorted(pd.unique(values)))


@_styled
def fig_throughput(throughput: pd.DataFrame) -> Figure:
    """Paper Fig. 4: batching buys throughput, up to where the machine is saturated.

    ``throughput``: results/latency/throughput.csv (one shape, one row per batch size). Left:
    generated tokens per second with the ideal (linear in the batch from batch 1); right: the
    time of one generate call.
    """
    rows = throughput.sort_values("batch_size")
    shape = _single(rows["shape"])
    fig, (tokens, call) = _panels(
        2, f"Throughput vs batch size, {shape} (N = {human(rows['N'].iloc[0])}; paper Fig. 4)"
    )
    batch = rows["batch_size"].to_numpy(float)
    tokens.plot(batch, rows["tokens_per_s"], marker="o", label="measured")
    first = rows.iloc[0]
    tokens.plot(
        batch,
        first["tokens_per_s"] * batch / first["batch_size"],
        ":",
        color="0.4",
        label=f"linear from batch {first['batch_size']:g} (ideal)",
    )
    _log_axis(tokens, "y")
    tokens.set(ylabel="throughput (generated tokens/s)", title="throughput")
    call.plot(batch, rows["median_s"], marker="o", color="C1", label="median time per call")
    call.set(ylabel="time per generate call (s)", title="latency of one call")
    _batch_axes((tokens, call), batch)
    _shared_legend(fig, [tokens, call])
    return fig


def _batch_axes(axes: Iterable[Axes], batch: np.ndarray) -> None:
    """Batch size on a log2 axis, ticked at the batch sizes timed."""
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(batch))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch size (sequences, log)")


@_styled
def fig_gqa_throughput(speedups: pd.DataFrame, lengths: str) -> Figure:
    """The follow-up's KV-cache effect: fewer KV heads, at equal N, give more tokens/s once the
    batch (and so the cache read per step) is large.

    ``speedups``: results/latency/gqa_speedups.csv (of the sweeps/gqa.csv sweep);
    ``lengths``: the sweep's input / output tokens, for the title. Left: tokens per second
    against batch size, one line per KV-head count; right: each twin's throughput over the
    MHA shape's at the same batch size (1: no gain).
    """
    fig, (tokens, ratio) = _panels(
        2, f"GQA at equal N = {human(speedups['N'].median())}: throughput vs batch ({lengths})"
    )
    batch = np.sort(speedups["batch_size"].unique()).astype(float)
    for i, (kv, rows) in enumerate(speedups.groupby("n_kv_heads", sort=False)):
        rows = rows.sort_values("batch_size")
        mha = bool((rows["heads_per_kv"] == 1).all())
        label = f"K = {kv}" + (" (MHA)" if mha else f", ffn {rows['ffn_hidden'].iloc[0]}")
        style = {"marker": "o", "color": f"C{i}", "label": label}
        tokens.plot(rows["batch_size"], rows["tokens_per_s"], **style)
        ratio.plot(rows["batch_size"], rows["speedup_vs_mha"], **style)
    _log_axis(tokens, "y")
    tokens.set(ylabel="throughput (generated tokens/s)", title="throughput")
    ratio.axhline(1.0, color="0.4", linestyle=":", linewidth=1)
    ratio.set(ylabel="throughput / MHA's at the same batch", title="gain over MHA")
    _batch_axes((tokens, ratio), batch)
    _shared_legend(fig, [tokens, ratio])
    return fig


# ---------------------------------------------------------------- the laws (paper Figs 5, 8-10)


@_styled
def fig_loss_vs_ratio(
    points: pd.DataFrame, curves: pd.DataFrame | None = None, law: str | None = None
) -> Figure:
    """Paper Figs 1 and 5: at fixed N and D the loss depends on the shape through R.

    One panel per size group; each token multiplier has its own colour and marker. ``curves``
    (results/fit/curves/ratio.csv), named by ``law``, are drawn in the same colours.
    """
    groups = _group_order(points)
    title = "Loss (the paper's EMA training loss) vs aspect ratio per size group"
    if curves is not None:
        title += f" (curves: {law})"
    fig, axes = _panels(len(groups), title)
    multipliers = sorted(pd.unique(points["multiplier"]))
    style = {m: (f"C{i % 10}", "osD^v<>p*h"[i % 10]) for i, m in enumerate(multipliers)}
    for ax, group_name in zip(axes, groups, strict=True):
        group = points[points["size_group"] == group_name]
        for mult, at_mult in group.groupby("multiplier", sort=True):
            color, marker = style[mult]
            ax.scatter(
                at_mult["R"],
                at_mult["loss"],
                color=color,
                marker=marker,
                label=f"{mult:g}N",
                zorder=2,
            )
            if curves is not None:
                at = (curves["size_group"] == group_name) & (curves["multiplier"] == mult)
                curve = curves[at]
                ax.plot(curve["R"], curve["loss"], color=color, lw=1, label=f"law at {mult:g}N")
        _log_axis(ax)
        ax.set(
            title=f"{group_name}: N ≈ {human(group['N'].mean())}",
            xlabel="R = d_model / n_layers (log)",
            ylabel="loss (nats/token)",
        )
    _shared_legend(fig, axes)
    return fig


def _is_fit_point(frame: pd.DataFrame, fit_set: str) -> np.ndarray:
    """Rows the law was fitted on; candidates are always held out."""
    column = f"fit_{fit_set}"
    if column not in frame.columns:
        raise InputError(f"predictions for fit set '{fit_set}' lack the column {column}")
    member = frame[column].fillna(0).astype(int).to_numpy() == 1
    return member & (frame["size_group"] != CANDIDATES).to_numpy()


def _by_fit_set(keys: Iterable[FitKey]) -> tuple[list[str], list[str]]:
    """Fit sets and laws in order of first appearance."""
    keys = list(keys)
    return list(dict.fromkeys(s for _, s in keys)), list(dict.fromkeys(law for law, _ in keys))


@_styled
def fig_predicted_vs_actual(
    predictions: Mapping[FitKey, pd.DataFrame], scores: pd.DataFrame
) -> Figure:
    """Paper Figs 8-10: how well each law, fitted on each set, predicts every point.

    One row of panels per fit set, one column per law. Filled dots were fitted on; hollow ones
    are held out, stars are the trained candidates (held out, usually the largest
    extrapolation). The title gives the fit's own MSE/R² and those over every point shown (the
    paper's test set: everything), from ``scores`` (results/fit/fit_sets.csv).
    """
    sets, laws = _by_fit_set(predictions)
    keys = sorted(predictions, key=lambda k: (sets.index(k[1]), laws.index(k[0])))
    fig, axes = _panels(
        len(keys), "Predicted vs actual loss (paper Figs 8-10)", size=(4.2, 4.4), columns=len(laws)
    )
    for ax, key in zip(axes, keys, strict=True):
        law, fit_set = key
        frame = predictions[key]
        fitted = _is_fit_point(frame, fit_set)
        candidate = (frame["size_group"] == CANDIDATES).to_numpy()
        held_out = ~fitted & ~candidate
        for mask, label, kwargs in (
            (fitted, "fit points", {"color": "C0"}),
            (held_out, "held out", {"facecolors": "none", "edgecolors": "C1"}),
            (candidate, "candidates (held out)", {**CANDIDATE_STYLE, "s": 60}),
        ):
            if mask.any():
                ax.scatter(
                    frame.loc[mask, "loss"],
                    frame.loc[mask, "loss_pred"],
                    label=label,
                    zorder=2,
                    **kwargs,
                )
        values = pd.concat([frame["loss"], frame["loss_pred"]])
        pad = 0.05 * (values.max() - values.min() or 1.0)
        lims = (values.min() - pad, values.max() + pad)
        ax.plot(lims, lims, color="0.4", lw=1, ls="--", zorder=1, label="y = x")
        ax.set_box_aspect(1)  # square box and equal limits: equal scales (aspect breaks layout)
        ax.set(
            xlim=lims,
            ylim=lims,
            xlabel=f"actual {LOSS_LABEL}",
            ylabel="predicted loss (nats/token)",
        )
        ax.set_title(_panel_title(law, fit_set, _score(scores, law, fit_set)))
        ax.legend(loc="upper left")
    return fig


def _score(scores: pd.DataFrame, law: str, fit_set: str) -> dict[str, Any]:
    """The fit-set score row of one fit (fit_sets.csv)."""
    rows = scores[(scores["law"] == law) & (scores["fit_set"] == fit_set)]
    if len(rows) != 1:
        raise InputError(f"fit_sets.csv has {len(rows)} rows for the {law} law on '{fit_set}'")
    return rows.iloc[0].to_dict()


def _panel_title(law: str, fit_set: str, score: Mapping[str, Any]) -> str:
    return "\n".join(
        (
            f"{law} law, fit set '{fit_set}'",
            f"fit: MSE {score['fit_mse']:.2g}, R² {score['fit_r2']:.4f}",
            f"all points: MSE {score['test_mse']:.2g}, R² {score['test_r2']:.4f}",
        )
    )


@_styled
def fig_spearman(
    predictions: Mapping[FitKey, pd.DataFrame], spearman: pd.DataFrame, scores: pd.DataFrame
) -> Figure:
    """Paper Figs 8-10, the bars: does each law rank the shapes of one size right?

    One panel per fit set; per size group (smallest to largest, the trained candidates last:
    the farthest extrapolation) one bar per law, the Spearman correlation of predicted with
    actual loss over every point of the group (``spearman``: results/fit/spearman.csv). A group
    where it is undefined (one point, or constant loss) gets "n/a" instead of a bar. The title
    gives each law's mean over the groups (``scores``: fit_sets.csv's ``test_spearman``).
    """
    sets, laws = _by_fit_set(predictions)
    fig, axes = _panels(len(sets), "Spearman rank correlation within each size group")
    width = 0.8 / len(laws)
    for ax, fit_set in zip(axes, sets, strict=True):
        groups: list[str] = []
        means = []
        for j, law in enumerate(laws):
            frame = predictions.get((law, fit_set))
            if frame is None:
                continue
            of_fit = spearman[(spearman["law"] == law) & (spearman["fit_set"] == fit_set)]
            rho = dict(zip(of_fit["size_group"].astype(str), of_fit["spearman"], strict=True))
            groups = groups or _group_order(frame)
            xs = np.arange(len(groups)) + (j - (len(laws) - 1) / 2) * width
            values = [None if pd.isna(rho.get(g)) else float(rho[g]) for g in groups]
            ax.bar(
                [x for x, v in zip(xs, values, strict=True) if v is not None],
                [v for v in values if v is not None],
                width=width,
                color=f"C{j}",
                label=f"{law} law",
            )
            for x, v in zip(xs, values, strict=True):
                if v is None:
                    ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
            mean = _score(scores, law, fit_set)["test_spearman"]
            means.append(f"{law} n/a" if pd.isna(mean) else f"{law} {mean:.2f}")
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(np.arange(len(groups)), groups)
        ax.set(
            ylim=(-1.1, 1.1),
            xlabel="size group (by N; candidates: trained, held out)",
            ylabel="Spearman ρ (predicted vs actual loss)",
            title=f"fit set '{fit_set}'\nmean ρ: {', '.join(means)}",
        )
    _shared_legend(fig, axes)
    return fig


# ---------------------------------------------------------------- compute (FLOPs, IsoFLOP)


@_styled
def fig_loss_vs_flops(
    points: pd.DataFrame, frontier: pd.DataFrame | None = None, label: str = ""
) -> Figure:
    """The standard view reviewers asked for: loss vs training compute C = 6·N·D.

    ``points``: every loss point (grid and trained candidates) with its compute ``C``
    (results/fit/curves/points.csv), one line per run over its multiplier boundaries, coloured
    by size group. ``frontier``: a law's compute-optimal frontier
    (results/fit/curves/frontier.csv: ``C, loss``), drawn with ``label`` (the law and its fit
    set).
    """
    fig, (ax,) = _panels(1, "Loss vs training compute (C = 6·N·D)", size=(6.4, 4.6))
    frame = points
    for i, group in enumerate(g for g in _group_order(frame) if g != CANDIDATES):
        rows = frame[frame["size_group"] == group]
        for j, (_, run) in enumerate(rows.groupby("run", sort=True)):
            run = run.sort_values("C")
            ax.plot(
                run["C"],
                run["loss"],
                marker="o",
                color=f"C{i % 10}",
                lw=1,
                label=f"size group {group}" if j == 0 else None,
            )
    trained = frame[frame["size_group"] == CANDIDATES]
    if len(trained):
        ax.scatter(
            trained["C"], trained["loss"], zorder=3, label="trained candidates", **CANDIDATE_STYLE
        )
    if frontier is not None:
        ax.plot(
            frontier["C"], frontier["loss"], "k--", lw=1, label=f"compute-optimal loss ({label})"
        )
    ax.set_xscale("log")  # FLOPs read best as 10^k
    ax.set(xlabel="training compute C = 6·N·D (FLOPs, log)", ylabel=LOSS_LABEL)
    ax.legend(loc="upper right")
    return fig


@_styled
def fig_isoflop(points: pd.DataFrame, curves: pd.DataFrame, fit_set: str) -> Figure:
    """The IsoFLOP view: at a fixed budget C, which N (trained on C / 6N tokens) is best?

    One panel per law of ``curves`` (results/fit/curves/isoflop.csv of its fit on ``fit_set``;
    the inference law's at its R), a curve per budget with the law's optimum N marked by a
    cross. Each point of ``points`` (results/fit/curves/points.csv) is shown with the budget it
    was assigned (its ``budget``: the nearest in log C, within half the spacing).
    """
    laws = list(pd.unique(curves["law"]))
    fig, axes = _panels(
        len(laws), f"IsoFLOP: predicted loss vs N at fixed compute (fit set {fit_set})"
    )
    for ax, law in zip(axes, laws, strict=True):
        law_curves = [rows for _, rows in curves[curves["law"] == law].groupby("budget")]
        for i, curve in enumerate(law_curves):
            color = f"C{i % 10}"
            compute = curve["C"].iloc[0]
            ax.plot(
                curve["N"], curve["loss"], color=color, lw=1.2, label=f"C = {compute:.2g} FLOPs"
            )
            best = curve[curve["optimum"] == 1]
            if len(best):
                ax.scatter(
                    best["N"],
                    best["loss"],
                    marker="X",
                    s=70,
                    color=color,
                    edgecolors="k",
                    zorder=4,
                    label="law's optimum N",
                )
            mine = points["budget"] == i
            ax.scatter(
                points.loc[mine, "N"],
                points.loc[mine, "loss"],
                color=color,
                edgecolors="k",
                linewidths=0.5,
                zorder=3,
                label="trained points near the budget",
            )
        _log_axis(ax)
        ratio = curves.loc[curves["law"] == law, "R"].iloc[0]
        at_ratio = law == "inference"
        title = f"{law} law" + (f" at R = {ratio:.3g} (median of the points)" if at_ratio else "")
        no_optimum = sum(not (curve["optimum"] == 1).any() for curve in law_curves)
        if no_optimum:
            title += f"\nno optimum N in range at {no_optimum} of {len(law_curves)} budgets"
        ax.set(title=title, xlabel="parameters N (log)", ylabel="loss (nats/token)")
        low, high = points["loss"].min(), points["loss"].max()
        span = high - low or 0.1
        ax.set_ylim(low - 0.5 * span, high + 0.5 * span)
    _shared_legend(fig, axes)
    return fig


# ---------------------------------------------------------------- downstream (paper Figs 1, 7)


@_styled
def fig_accuracy_vs_latency(models: pd.DataFrame, front: np.ndarray) -> Figure:
    """Paper Fig. 1 / Table 2 as a picture: what each model buys in accuracy per second.

    ``models``: one row per evaluated model with ``name, size_group, latency_s, average``
    (results/select/models.csv). Trained candidates are labelled stars; ``front``: the mask of
    the models on the Pareto front (its ``pareto`` column, over grid and candidates together).
    """
    fig, (ax,) = _panels(1, "Downstream accuracy vs generation latency (paper Fig. 1)", (6.0, 4.5))
    trained = models[models["size_group"] == CANDIDATES]
    grid = models[models["size_group"] != CANDIDATES]
    if len(grid):
        ax.scatter(grid["latency_s"], grid["average"], color="0.6", s=16, label="grid models")
    ax.scatter(
        trained["latency_s"],
        trained["average"],
        label="trained candidates",
        zorder=3,
        **CANDIDATE_STYLE,
    )
    _name_points(ax, trained["name"], trained["latency_s"], trained["average"], (5, 7))
    lat, acc = models["latency_s"].to_numpy(float), models["average"].to_numpy(float)
    _front_line(ax, lat[front], acc[front], "post", zorder=2)
    ax.scatter(lat[front], acc[front], facecolors="none", edgecolors="k", s=120, zorder=4)
    ax.margins(x=0.1, y=0.08)
    ax.set(xlabel=LATENCY_LABEL, ylabel="average zero-shot accuracy")
    ax.legend(loc="best")
    return fig


@_styled
def fig_loss_vs_throughput(
    by_objective: pd.DataFrame, front: np.ndarray, target: float | None = None
) -> Figure:
    """The follow-up's view of the selection: each candidate's predicted loss against its
    generation throughput, the Pareto front over them, and the candidates each objective chose.

    ``by_objective``: results/select/objectives.csv (one block of candidate rows per objective,
    the same candidates in each, ``selected`` marking each objective's choice); ``front``: the
    mask of one block's candidates on the front (results/select/throughput_front.csv's
    ``pareto``, in the block's order); ``target``: the throughput objective's loss ceiling,
    drawn as a line.
    """
    fig, (ax,) = _panels(
        1, "Predicted loss vs generation throughput of every candidate", (6.0, 4.5)
    )
    objectives = list(pd.unique(by_objective["objective"]))
    first = by_objective[by_objective["objective"] == objectives[0]].reset_index(drop=True)
    tps, loss = first["throughput_tps"].to_numpy(float), first["loss_pred"].to_numpy(float)
    ax.scatter(tps, loss, color="0.5", s=18, zorder=2, label="candidates")
    _name_points(ax, first["name"], tps, loss, (4, 4))
    _front_line(ax, tps[front], loss[front], "pre", zorder=1)
    markers = {"loss": ("C0", "o"), "throughput": ("C1", "s")}
    for name in objectives:
        chosen = by_objective[(by_objective["objective"] == name) & (by_objective["selected"] == 1)]
        color, marker = markers.get(name, ("C2", "D"))
        ax.scatter(
            chosen["throughput_tps"],
            chosen["loss_pred"],
            facecolors="none",
            edgecolors=color,
            marker=marker,
            s=140,
            lw=1.5,
            zorder=3,
            label=f"chosen by {name}",
        )
    if target is not None:
        ax.axhline(target, color="C1", ls="--", lw=0.8, label="loss target (throughput)")
    ax.set_xscale("log")
    ax.margins(x=0.1, y=0.1)
    ax.set(xlabel="generation throughput (tokens/s, log)", ylabel="predicted loss")
    ax.legend(loc="best", fontsize=7)
    return fig


@_styled
def fig_accuracy_vs_loss(
    models: pd.DataFrame,
    tasks: Iterable[str],
    downstream: Mapping[str, Any] | None = None,
    curve: pd.DataFrame | None = None,
) -> Figure:
    """Paper Fig. 7: downstream accuracy falls with the loss, task by task.

    ``models``: one row per evaluated model (``size_group, loss, average`` and a column per
    task). One panel per task and one for the average; on the average, the Gadre et al. fit
    ``1 - acc = E - a·exp(-b·L)`` of ``downstream`` (results/fit/downstream.json) as its
    ``curve`` (results/select/accuracy_curve.csv: ``loss, acc_pred``).
    """
    columns = [*tasks, "average"]
    fig, axes = _panels(len(columns), "Zero-shot accuracy vs loss per task (paper Fig. 7)")
    groups = [g for g in _group_order(models) if g != CANDIDATES]
    colors = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    for ax, column in zip(axes, columns, strict=True):
        for group in groups:
            rows = models[models["size_group"] == group]
            ax.scatter(
                rows["loss"], rows[column], color=colors[group], s=18, label=f"size group {group}"
            )
        trained = models[models["size_group"] == CANDIDATES]
        if len(trained):
            ax.scatter(
                trained["loss"], trained[column], label="trained candidates", **CANDIDATE_STYLE
            )
        if column == "average" and downstream is not None and curve is not None:
            r2 = downstream["metrics"].get("grid_r2")
            ax.plot(
                curve["loss"],
                curve["acc_pred"],
                "k--",
                lw=1,
                label="fit: 1 - acc = E - a·exp(-b·L)"
                + (f", R² {r2:.3f} on the grid" if r2 is not None else ""),
            )
        ax.set(
            title="average of the tasks" if column == "average" else column,
            xlabel=LOSS_LABEL,
            ylabel="zero-shot accuracy",
        )
    _shared_legend(fig, axes)
    return fig
