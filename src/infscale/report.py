"""The report: pure functions from result tables to figures, the winner and summary.md.

Figures are drawn on plain ``Figure`` objects with an Agg canvas (no pyplot, no global figure
state, no display needed) under one rc style, so every figure of a report looks alike and
repeated runs write identical files. The caller loads the tables; nothing here reads results.
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
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from infscale.errors import InputError
from infscale.io import atomic_write, write_text
from infscale.laws import predict

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
}
DPI = 150
PANEL_SIZE = (4.2, 3.3)
MAX_COLUMNS = 3
LOSS_LABEL = "loss (paper's EMA training loss, nats/token)"
MISSING = "-"


def _styled(draw: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw under :data:`STYLE` without touching the caller's rcParams. One layout pass before
    returning: constrained layout needs it to settle (square panels clip their labels on the
    first pass)."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with mpl.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            fig.draw_without_rendering()
            return fig

    return wrapper


def _panels(
    n: int, title: str, size: tuple[float, float] = PANEL_SIZE
) -> tuple[Figure, list[Axes]]:
    """A figure with exactly ``n`` panels on a grid (unused grid cells removed)."""
    columns = max(1, min(MAX_COLUMNS, n))
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in grid[n:]:
        ax.remove()
    fig.suptitle(title)
    return fig, list(grid[:n])


def _log_x(ax: Axes) -> None:
    """Log x with plain numbers as labels (the default 2x10^1 labels overlap on short ranges):
    at 1, 2, 5 x 10^k, or denser where the data span less than 3x.
    Call it after plotting, since the labels depend on the data range."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    subs = (1.0, 2.0, 5.0) if high / low >= 3 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    ax.xaxis.set_major_locator(LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _shared_legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend below the panels, each label once (panels share colours and markers), so
    no legend hides data."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(len(handles), 6),
    )


def linear_fit(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, float] | None:
    """Least-squares ``y = slope·x + intercept`` and its R²; None with fewer than 2 distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.unique(x).size < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return float(slope), float(intercept), r2


@_styled
def fig_latency_vs_layers(latency: pd.DataFrame) -> Figure:
    """Paper Fig. 3: at batch 1 latency grows ~linearly with depth, and falls as R grows.

    Left: latency vs n_layers, one line per d_model with at least two depths, every shape as a
    dot, and the least-squares line over all shapes with its R². Right: latency vs R (log x),
    coloured by N, to show that shapes of similar size differ in latency by their aspect ratio.
    """
    fig, (by_depth, by_ratio) = _panels(2, "Generation latency and model shape")
    by_depth.scatter(
        latency["n_layers"], latency["median_s"], color="0.6", s=14, zorder=1, label="all shapes"
    )
    for d_model, group in latency.groupby("d_model", sort=True):
        if len(group) >= 2:
            group = group.sort_values("n_layers")
            by_depth.plot(
                group["n_layers"],
                group["median_s"],
                marker="o",
                zorder=2,
                label=f"d_model {d_model}",
            )
    fit = linear_fit(latency["n_layers"], latency["median_s"])
    if fit is not None:
        slope, intercept, r2 = fit
        xs = np.array([latency["n_layers"].min(), latency["n_layers"].max()])
        label = f"least squares, all shapes:\n{slope * 1e3:.3g} ms/layer, R² = {r2:.3f}"
        by_depth.plot(xs, slope * xs + intercept, "k--", lw=1, zorder=3, label=label)
    by_depth.set(xlabel="n_layers (depth)", ylabel="latency (s)", title="latency vs depth")
    _shared_legend(fig, [by_depth])

    dots = by_ratio.scatter(
        latency["R"], latency["median_s"], c=latency["N"], cmap="viridis", norm=LogNorm(), s=18
    )
    fig.colorbar(dots, ax=by_ratio, label="N (parameters)")
    _log_x(by_ratio)
    by_ratio.set(
        xlabel="aspect ratio R = d_model / n_layers (log)",
        ylabel="latency (s)",
        title="latency vs aspect ratio",
    )
    return fig


def _inference_fit(
    fits: Mapping[FitKey, dict[str, Any]], fit_set: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The inference-law fit to draw and its fit set: ``fit_set``'s, else the first one given."""
    for (law, key_set), fit in fits.items():
        if law == "inference" and fit_set in (None, key_set):
            return key_set, fit
    return None


@_styled
def fig_loss_vs_ratio(
    points: pd.DataFrame, fits: Mapping[FitKey, dict[str, Any]], fit_set: str | None = None
) -> Figure:
    """Paper Figs 1 and 5: at fixed N and D the loss depends on the shape through R.

    One panel per size group; each token multiplier has its own colour and marker. Where an
    inference-law fit is given (``fit_set``, default the first in ``fits``), its curve is drawn
    per multiplier at the group's mean N and that multiplier's mean D, over the group's R range.
    """
    found = _inference_fit(fits, fit_set)
    groups = list(pd.unique(points["size_group"]))
    title = "Loss (the paper's EMA training loss) vs aspect ratio per size group"
    if found is not None:
        title += f" (curves: inference law, fit set '{found[0]}')"
    fig, axes = _panels(len(groups), title)
    multipliers = sorted(pd.unique(points["multiplier"]))
    style = {m: (f"C{i % 10}", "osD^v<>p*h"[i % 10]) for i, m in enumerate(multipliers)}
    for ax, group_name in zip(axes, groups, strict=True):
        group = points[points["size_group"] == group_name]
        ratios = np.geomspace(group["R"].min() / 1.3, group["R"].max() * 1.3, 100)
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
            if found is not None:
                n_mean = np.full_like(ratios, at_mult["N"].mean())
                d_mean = np.full_like(ratios, at_mult["D"].mean())
                ax.plot(
                    ratios,
                    predict(found[1], n_mean, d_mean, ratios),
                    color=color,
                    lw=1,
                    zorder=1,
                    label=f"law at {mult:g}N",
                )
        _log_x(ax)
        ax.set(
            title=f"{group_name}: N ≈ {_human(group['N'].mean())}",
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
    return member & (frame["size_group"] != "candidates").to_numpy()


def _mse_r2(actual: pd.Series, predicted: pd.Series) -> tuple[float, float]:
    residual = actual - predicted
    ss_tot = float(((actual - actual.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return float((residual**2).mean()), r2


@_styled
def fig_predicted_vs_actual(
    predictions: Mapping[FitKey, pd.DataFrame], fits: Mapping[FitKey, dict[str, Any]]
) -> Figure:
    """Paper Figs 8-10: how well each law, fitted on each set, predicts every point.

    One panel per (law, fit set). Filled dots were fitted on; hollow ones are held out, stars are
    the trained candidates (held out, usually the largest extrapolation). The title gives the
    fit's own MSE/R² and those over every point shown (the paper's test set: everything).
    """
    fig, axes = _panels(len(predictions), "Predicted vs actual loss", size=(4.2, 4.4))
    for ax, ((law, fit_set), frame) in zip(axes, predictions.items(), strict=True):
        fitted = _is_fit_point(frame, fit_set)
        candidate = (frame["size_group"] == "candidates").to_numpy()
        held_out = ~fitted & ~candidate
        for mask, label, kwargs in (
            (fitted, "fit points", {"color": "C0"}),
            (held_out, "held out", {"facecolors": "none", "edgecolors": "C1"}),
            (candidate, "candidates (held out)", {"color": "C3", "marker": "*", "s": 60}),
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
        ax.set_title(_panel_title(law, fit_set, frame, fits.get((law, fit_set))))
        ax.legend(loc="upper left")
    return fig


def _panel_title(law: str, fit_set: str, frame: pd.DataFrame, fit: dict | None) -> str:
    mse, r2 = _mse_r2(frame["loss"], frame["loss_pred"])
    lines = [f"{law} law, fit set '{fit_set}'"]
    if fit is not None:
        metrics = fit["metrics"]
        lines.append(f"fit: MSE {metrics['mse']:.2g}, R² {metrics['r2']:.4f}")
    lines.append(f"all points: MSE {mse:.2g}, R² {r2:.4f}")
    return "\n".join(lines)


def pareto_front(latency: Iterable[float], accuracy: Iterable[float]) -> np.ndarray:
    """Mask of the points no other point beats: lower-or-equal latency and higher-or-equal
    accuracy, one of them strictly. Equal points do not dominate each other; NaN is never on it.
    """
    lat = np.asarray(latency, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    no_worse = (lat[:, None] <= lat[None, :]) & (acc[:, None] >= acc[None, :])
    better = (lat[:, None] < lat[None, :]) | (acc[:, None] > acc[None, :])
    dominated = (no_worse & better).any(axis=0)
    return ~dominated & ~np.isnan(lat) & ~np.isnan(acc)


@_styled
def fig_accuracy_vs_latency(trained: pd.DataFrame, grid: pd.DataFrame) -> Figure:
    """Paper Table 2 / Fig. 7 as a picture: what each model buys in accuracy per second.

    ``trained`` needs ``name, latency_s, average``; ``grid`` (grid models joined with their
    latency) needs ``average`` and the latency table's ``median_s``. The Pareto front is taken
    over both sets together.
    """
    trained = _one_row_per_name(trained)
    fig, (ax,) = _panels(1, "Downstream accuracy vs generation latency", size=(6.0, 4.5))
    if len(grid):
        ax.scatter(grid["median_s"], grid["average"], color="0.6", s=16, label="grid models")
    ax.scatter(
        trained["latency_s"],
        trained["average"],
        color="C3",
        marker="*",
        s=80,
        label="trained candidates",
        zorder=3,
    )
    for row in trained.itertuples(index=False):
        ax.annotate(
            str(row.name),
            (row.latency_s, row.average),
            xytext=(5, 7),
            textcoords="offset points",
            fontsize=7,
            va="bottom",
        )
    lat = np.concatenate([grid["median_s"].to_numpy(float), trained["latency_s"].to_numpy(float)])
    acc = np.concatenate([grid["average"].to_numpy(float), trained["average"].to_numpy(float)])
    front = pareto_front(lat, acc)
    order = np.argsort(lat[front])
    ax.step(
        lat[front][order],
        acc[front][order],
        where="post",
        color="k",
        lw=1,
        zorder=2,
        label="Pareto front",
    )
    ax.scatter(lat[front], acc[front], facecolors="none", edgecolors="k", s=120, zorder=4)
    ax.margins(x=0.1, y=0.08)
    ax.set(xlabel="generation latency (s)", ylabel="average zero-shot accuracy")
    ax.legend(loc="lower right")
    return fig


def choose_winner(
    trained: pd.DataFrame, baseline: str, baseline_latency_s: float | None = None
) -> dict[str, Any]:
    """The release pick (paper step E): the highest average accuracy; ties go to the lower
    latency, then to the name (so the pick never depends on row order).

    Against ``baseline``: speed-up = baseline latency / winner latency, and the accuracy
    difference winner - baseline. A baseline that was not trained has no accuracy (the
    difference is None) and its latency comes from ``baseline_latency_s`` (its measured latency
    in the candidates table; None leaves the speed-up None too).
    """
    models = _one_row_per_name(trained)
    if models.empty:
        raise InputError("no trained candidate to choose from")
    best = models.sort_values(["average", "latency_s", "name"], ascending=[False, True, True]).iloc[
        0
    ]
    base = models[models["name"] == baseline]
    baseline_trained = not base.empty
    if baseline_trained:
        baseline_latency_s = float(base["latency_s"].iloc[0])
    diff = float(best["average"] - base["average"].iloc[0]) if baseline_trained else None
    speedup = (
        baseline_latency_s / float(best["latency_s"]) if baseline_latency_s is not None else None
    )
    return {
        "name": str(best["name"]),
        "accuracy": float(best["average"]),
        "latency_s": float(best["latency_s"]),
        "baseline": baseline,
        "baseline_trained": baseline_trained,
        "baseline_latency_s": baseline_latency_s,
        "speedup": speedup,
        "accuracy_diff": diff,
    }


def _one_row_per_name(trained: pd.DataFrame) -> pd.DataFrame:
    """A candidate's last boundary (largest D) is the model that was evaluated and timed."""
    return trained.sort_values("D", kind="stable").drop_duplicates("name", keep="last")


# ---------------------------------------------------------------- markdown


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured table of preformatted cells. Not ``DataFrame.to_markdown``: tabulate
    is absent from the report stage's conda env (envs/report.yaml)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def _fmt(spec: str) -> Callable[[Any], str]:
    """A cell formatter for numbers that writes a dash for missing values."""
    return lambda v: MISSING if v is None or pd.isna(v) else format(v, spec)


def _yes_no(value: Any) -> str:
    return MISSING if pd.isna(value) else ("yes" if int(value) else "no")


def _human(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _shape_label(row: Mapping[str, Any]) -> str:
    """Same spelling as ``Shape.label``."""
    heads = row.get("n_heads")
    label = f"d{int(row['d_model'])}-l{int(row['n_layers'])}"
    return label if heads is None or pd.isna(heads) else f"{label}-h{int(heads)}"


def _formatted(frame: pd.DataFrame, columns: Mapping[str, tuple[str, Callable]]) -> pd.DataFrame:
    """``columns``: source column -> (header, formatter); keeps only those, in that order."""
    return pd.DataFrame({header: frame[col].map(fmt) for col, (header, fmt) in columns.items()})


def _runs_table(
    points: pd.DataFrame, latency: pd.DataFrame, accuracy: pd.DataFrame, trained: pd.DataFrame
) -> pd.DataFrame:
    """Every loss point of every run (grid, then trained candidates). Accuracy belongs to the
    run's last boundary (the evaluated model), so earlier boundaries show none."""
    grid = points.merge(
        latency[["d_model", "n_layers", "n_heads", "median_s"]],
        on=["d_model", "n_layers", "n_heads"],
        how="left",
    )
    grid = grid.merge(accuracy[["run", "average"]], on="run", how="left")
    grid = grid.rename(columns={"median_s": "latency_s"})
    cands = trained.assign(run="candidates/" + trained["name"].astype(str))
    runs = pd.concat([grid, cands], ignore_index=True)
    last = runs.groupby("run")["D"].transform("max") == runs["D"]
    runs["average"] = runs["average"].where(last)
    runs["shape"] = [_shape_label(row) for row in runs.to_dict("records")]
    return _formatted(
        runs,
        {
            "run": ("run", str),
            "shape": ("shape", str),
            "N": ("N", _fmt(",.0f")),
            "D": ("D", _fmt(",.0f")),
            "R": ("R", _fmt(".4g")),
            "loss": ("loss", _fmt(".4f")),
            "val_loss": ("val loss", _fmt(".4f")),
            "latency_s": ("latency (s)", _fmt(".3f")),
            "average": ("accuracy", _fmt(".3f")),
        },
    )


COEFFICIENTS = ("A", "B", "E", "alpha", "beta", "gamma", "epsilon")
METRICS = {"mse": ".3g", "r2": ".4f", "max_rel_err": ".2%", "spearman": ".3f"}


def _fits_section(fits: Mapping[FitKey, dict[str, Any]]) -> list[str]:
    rows = []
    for (law, fit_set), fit in fits.items():
        params, metrics = fit["params"], fit["metrics"]
        rows.append(
            {
                "law": law,
                "fit set": fit_set,
                "method": fit.get("method", MISSING),
                "tie": fit.get("tie", MISSING),
                "points": fit.get("n_points", MISSING),
                **{name: _fmt(".4g")(params.get(name)) for name in COEFFICIENTS},
                **{name: _fmt(spec)(metrics.get(name)) for name, spec in METRICS.items()},
            }
        )
    warnings = [
        f"- {law} / {fit_set}: {text}"
        for (law, fit_set), fit in fits.items()
        for text in fit.get("warnings", [])
    ]
    return [
        "## Fitted laws",
        "",
        "L = E + A·N^-alpha + B·D^-beta (Chinchilla), times (1 + epsilon·R^gamma) "
        "(inference-efficient). Metrics are over each fit's own points.",
        "",
        md_table(pd.DataFrame(rows)) if rows else "No fits.",
        "",
        "Fit warnings:" if warnings else "No fit warnings.",
        *warnings,
    ]


def _selection_table(candidates: pd.DataFrame) -> pd.DataFrame:
    ordered = candidates.sort_values(["rank", "loss_pred"], na_position="last", kind="stable")
    ordered = ordered.assign(shape=[_shape_label(r) for r in ordered.to_dict("records")])
    return _formatted(
        ordered,
        {
            "name": ("name", str),
            "shape": ("shape", str),
            "N": ("N", _fmt(",.0f")),
            "D": ("D", _fmt(",.0f")),
            "R": ("R", _fmt(".4g")),
            "loss_pred": ("predicted loss", _fmt(".4f")),
            "latency_s": ("latency (s)", _fmt(".3f")),
            "feasible": ("feasible", _yes_no),
            "selected": ("selected", _yes_no),
            "rank": ("rank", _fmt(".0f")),
        },
    )


def _headline(winner: dict[str, Any]) -> list[str]:
    base = f"the baseline `{winner['baseline']}`"
    if winner["baseline_latency_s"] is None:
        speed = f"- Speed-up over {base}: unknown (its latency was not measured)."
    else:
        speed = (
            f"- Speed-up over {base} ({winner['baseline_latency_s']:.3f} s): "
            f"**{winner['speedup']:.2f}x**."
        )
    diff = (
        "unknown (the baseline was not trained)"
        if winner["accuracy_diff"] is None
        else f"{winner['accuracy_diff']:+.3f}"
    )
    return [
        f"**Winner: `{winner['name']}`**, average accuracy {winner['accuracy']:.3f} at "
        f"{winner['latency_s']:.3f} s latency.",
        "",
        speed,
        f"- Accuracy difference (winner - baseline): {diff}.",
        "- Rule: highest average accuracy; ties go to the lower latency.",
    ]


def _provenance_section(provenance: Mapping[str, Any]) -> list[str]:
    lines = ["## Provenance", ""]
    for key, value in provenance.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{name} {version}" for name, version in value.items())
        lines.append(f"- **{key.replace('_', ' ')}**: `{value}`")
    return lines


def summary_markdown(
    *,
    points: pd.DataFrame,
    latency: pd.DataFrame,
    accuracy: pd.DataFrame,
    fits: Mapping[FitKey, dict[str, Any]],
    candidates: pd.DataFrame,
    trained: pd.DataFrame,
    baseline: str,
    provenance: Mapping[str, Any],
    figures: Iterable[str],
) -> str:
    """summary.md: the headline first, then the evidence (runs, fits, selection), the figures
    (``figures``: names written by :func:`write_report` beside summary.md) and the provenance."""
    at_baseline = candidates.loc[candidates["name"] == baseline, "latency_s"]
    winner = choose_winner(
        trained, baseline, float(at_baseline.iloc[0]) if len(at_baseline) else None
    )
    figure_links = [
        f"![{name}]({name}.png)  \n[{name}.png]({name}.png) · [{name}.svg]({name}.svg)"
        for name in figures
    ]
    sections = [
        ["# infscale report", "", *_headline(winner)],
        [
            "## Runs",
            "",
            "One row per loss point (multiplier boundary); accuracy is the "
            "evaluated model's, at its run's last boundary.",
            "",
            md_table(_runs_table(points, latency, accuracy, trained)),
        ],
        _fits_section(fits),
        ["## Selection", "", md_table(_selection_table(candidates))],
        ["## Figures", "", "\n\n".join(figure_links)],
        _provenance_section(provenance),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def _save(fig: Figure, path: Path, fmt: str) -> Path:
    # No date in the SVG, so an unchanged figure rewrites an identical file.
    metadata = {"Date": None} if fmt == "svg" else None
    with mpl.rc_context(STYLE):
        return atomic_write(path, lambda p: fig.savefig(p, format=fmt, dpi=DPI, metadata=metadata))


def write_report(out_dir: str | Path, figures: Mapping[str, Figure], markdown: str) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.svg`` per figure, then summary.md (last, so its presence
    means the figures it links are there); every file atomically. Returns the paths written."""
    out_dir = Path(out_dir)
    written = [
        _save(fig, out_dir / f"{name}.{fmt}", fmt)
        for name, fig in figures.items()
        for fmt in ("png", "svg")
    ]
    return [*written, write_text(out_dir / "summary.md", markdown)]
