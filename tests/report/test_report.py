"""The report: every figure renders from a small fixed table and shows what it should; the
tables, the winner and summary.md are right; every declared file is written."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from infscale import outputs
from infscale.errors import InputError
from infscale.fit import frontier
from infscale.fit.curves import compute_points, isoflop_table, ratio_table
from infscale.fit.downstream import predict_accuracy
from infscale.fit.laws import predict, predict_points_interval
from infscale.fit.predictions import (
    by_fit,
    fit_set_scores,
    predict_every_point,
    predictions_frame,
    spearman_table,
)
from infscale.latency.sweeps import gqa_speedups, sweep_fits
from infscale.report import design, figures, story, tables
from infscale.select.accuracy import accuracy_curve, candidate_accuracy
from infscale.select.models import evaluated_models, trained_candidates, training_flops
from infscale.select.pareto import pareto_front
from infscale.select.winner import choose_winner

INFERENCE = {
    "A": 10.0,
    "B": 20.0,
    "E": 1.0,
    "alpha": 0.3,
    "beta": 0.3,
    "gamma": 0.3,
    "epsilon": 0.01,
}
CHINCHILLA = {k: INFERENCE[k] for k in ("A", "B", "E", "alpha", "beta")}


def fit(law: str, r2: float, tie: str = "all") -> dict:
    return {
        "law": law,
        "method": "lm",
        "tie": tie,
        "n_points": 8,
        "params": dict(INFERENCE if law == "inference" else CHINCHILLA),
        "metrics": {"mse": 0.0012, "r2": r2, "max_rel_err": 0.021, "spearman": 0.9},
        "warnings": ["A came out negative"] if law == "chinchilla" else [],
    }


def with_bootstrap(fit: dict, scales: list[float]) -> dict:
    """``fit`` with bootstrap samples: every parameter times each of ``scales``."""
    samples = {p: [v * s for s in scales] for p, v in fit["params"].items()}
    ci = {p: np.percentile(v, [2.5, 97.5]).tolist() for p, v in samples.items()}
    return fit | {"bootstrap": {"k": len(scales), "samples": samples, "ci95": ci}, "intervals": ci}


@pytest.fixture
def points() -> pd.DataFrame:
    rows = []
    for size, d_model, n_layers_list, n in (("s1", 64, (1, 2), 1.0e6), ("s2", 128, (3, 4), 2.6e6)):
        for n_layers in n_layers_list:
            for mult, loss in ((20, 4.0), (40, 3.8)):
                rows.append(
                    {
                        "run": f"{size}-l{n_layers}",
                        "size_group": size,
                        "variant": f"l{n_layers}",
                        "shape": f"d{d_model}-l{n_layers}-h4",
                        "d_model": d_model,
                        "n_layers": n_layers,
                        "n_heads": 4,
                        "R": d_model / n_layers,
                        "N": n,
                        "D": mult * n,
                        "multiplier": mult,
                        "loss": loss - 0.1 * n_layers,
                        "val_loss": loss - 0.05 * n_layers,
                        "fit_all": 1,
                        "fit_base": int(mult == 20),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def trained_points() -> pd.DataFrame:
    names = ["2048x24", "3072x12", "2560x16"]
    return pd.DataFrame(
        {
            "run": [f"candidates/{n}" for n in names],
            "size_group": "candidates",
            "variant": names,
            "shape": ["d2048-l24-h16", "d3072-l12-h16", "d2560-l16-h16"],
            "d_model": [2048, 3072, 2560],
            "n_layers": [24, 12, 16],
            "n_heads": 16,
            "N": [1.44e9, 1.44e9, 1.53e9],
            "D": [2.9e10] * 3,
            "R": [2048 / 24, 256.0, 160.0],
            "loss": [2.9, 2.88, 2.89],
            "val_loss": [3.0, 2.98, 2.99],
        }
    )


@pytest.fixture
def selected(trained_points) -> pd.DataFrame:
    trained = trained_points.drop(columns=["run", "size_group", "loss", "val_loss"])
    extra = pd.DataFrame(
        [
            {
                "variant": "4096x6",
                "shape": "d4096-l6-h16-kv4",  # GQA: the label says so
                "d_model": 4096,
                "n_layers": 6,
                "n_heads": 16,
                "N": 1.5e9,
                "D": 2.9e10,
                "R": 4096 / 6,
            }
        ]
    )
    table = pd.concat([trained, extra], ignore_index=True).rename(columns={"variant": "name"})
    return table.assign(
        latency_s=[3.61, 1.96, 2.5, 1.2],
        latency_source="measured",
        loss_pred=[2.9, 2.85, 2.87, 2.95],
        feasible=[1, 1, 1, 0],
        selected=[0, 1, 1, 0],
        rank=pd.array([pd.NA, 1, 2, pd.NA], dtype="Int64"),
    )


@pytest.fixture
def latency() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shape": ["d64-l1-h4", "d64-l2-h4", "d128-l3-h4", "d128-l4-h4"],
            "d_model": [64, 64, 128, 128],
            "n_layers": [1, 2, 3, 4],
            "n_heads": [4, 4, 4, 4],
            "median_s": [2.0, 4.0, 5.0, 8.0],
            "trials_s": [[2.0] * 4, [4.0] * 4, [5.0] * 4, [8.0] * 4],
            "cv_basis": ["relative", "relative", "relative", "absolute"],
            "relative_cv": [0.1, 0.2, 0.1, 0.1],
            "cv": [0.3, 0.3, 0.3, 0.05],
        }
    )


@pytest.fixture
def accuracy() -> pd.DataFrame:
    runs = [
        "s1-l1",
        "s1-l2",
        "s2-l3",
        "s2-l4",
        "candidates/2048x24",
        "candidates/3072x12",
        "candidates/2560x16",
    ]
    return pd.DataFrame(
        {
            "run": runs,
            "average": [0.3, 0.31, 0.35, 0.36, 0.52, 0.53, 0.53],
            "arc_easy": [0.4, 0.42, 0.45, 0.47, 0.6, 0.61, 0.6],
            "piqa": [0.2, 0.2, 0.25, 0.25, 0.44, 0.45, 0.46],
        }
    )


@pytest.fixture
def models(points, trained_points, accuracy, latency, selected) -> pd.DataFrame:
    return evaluated_models(points, trained_points, accuracy, latency, selected)


@pytest.fixture
def fits() -> dict:
    return {
        ("chinchilla", "all"): fit("chinchilla", 0.9895),
        ("inference", "all"): with_bootstrap(fit("inference", 0.9982), [0.9, 1.0, 1.1]),
        ("chinchilla", "base"): fit("chinchilla", 0.97),
        ("inference", "base"): fit("inference", 0.99),
    }


@pytest.fixture
def predictions(points, trained_points, fits) -> dict:
    tested = pd.concat([points, trained_points], ignore_index=True)
    return {key: tested.assign(loss_pred=tested["loss"] * 1.01) for key in fits}


@pytest.fixture
def sweeps() -> pd.DataFrame:
    # layers: latency 2, 4, 5, 8 on n_layers 1..4: Sxy = 9.5, Sxx = 5, Syy = 18.75, so
    # R² = 9.5² / (5 · 18.75) = 0.96267, slope 9.5 / 5 = 1.9 s/layer, intercept 4.75 - 1.9·2.5 = 0.
    rows = [
        ("layers", 32, n, t, False) for n, t in zip((1, 2, 3, 4), (2.0, 4.0, 5.0, 8.0), strict=True)
    ]
    rows += [("width", d, 2, t, False) for d, t in zip((32, 64, 96), (3.0, 3.1, 3.3), strict=True)]
    rows += [
        ("ratio", d, n, t, f)
        for d, n, t, f in ((88, 1, 1.0, False), (64, 2, 1.5, True), (32, 8, 4.0, False))
    ]
    frame = pd.DataFrame(rows, columns=["sweep", "d_model", "n_layers", "median_s", "flagged"])
    return frame.assign(
        shape="d" + frame["d_model"].astype(str) + "-l" + frame["n_layers"].astype(str) + "-h4",
        R=frame["d_model"] / frame["n_layers"],
        N=150_000 + 1000 * frame["n_layers"],
    )


@pytest.fixture
def downstream() -> dict:
    params = {"E": 1.0, "a": 20.0, "b": 1.0}
    return {
        "form": "1 - acc = E - a*exp(-b*loss)",
        "params": params,
        "metrics": {
            "n_grid": 4,
            "grid_mse": 0.001,
            "grid_r2": 0.8,
            "n_candidates": 2,
            "candidate_mae": 0.02,
            "candidate_max_abs_err": 0.03,
        },
        "predictions": [
            {"name": "3072x12", "loss": 2.88, "acc_pred": 0.55, "acc_actual": 0.53},
            {"name": "2048x24", "loss": 2.9, "acc_pred": 0.5, "acc_actual": 0.52},
        ],
    }


def lines(ax, label: str):
    return [line for line in ax.get_lines() if line.get_label() == label]


def scattered(ax, label: str) -> np.ndarray:
    found = [c for c in ax.collections if c.get_label() == label]
    return found[0].get_offsets() if found else np.empty((0, 2))


def written(fig, tmp_path, name: str = "figure") -> tuple[bytes, str]:
    png = figures.save_figure(fig, tmp_path / f"{name}.png").read_bytes()
    svg = figures.save_figure(fig, tmp_path / f"{name}.svg").read_text()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    return png, svg


# ---------------------------------------------------------------- figures


def test_latency_sweeps_draw_each_sweep_with_its_fit(sweeps, tmp_path):
    fits = sweep_fits(sweeps)
    fig = figures.fig_latency_sweeps(sweeps, fits)
    depth, width, ratio = fig.axes
    measured = lines(depth, "median of trials")[0]
    assert measured.get_xdata().tolist() == [1, 2, 3, 4]
    assert measured.get_ydata().tolist() == [2.0, 4.0, 5.0, 8.0]
    (line,) = [ln for ln in depth.get_lines() if ln.get_label().startswith("least squares")]
    assert line.get_label().endswith(f"R² = {90.25 / 93.75:.3f}")  # 0.963
    assert line.get_ydata() == pytest.approx([1.9 * 1, 1.9 * 4])
    assert "1.9e+03 ms/layer" in line.get_label()
    assert depth.get_xlabel() == "n_layers (depth)" and "(s)" in depth.get_ylabel()
    assert "d_model = 32" in depth.get_title() and "n_layers = 2" in width.get_title()
    assert ratio.get_xscale() == "log"
    assert [t.get_text() for t in ratio.texts] == ["fastest: d88-l1-h4"]
    assert scattered(ratio, "flagged: CV above the bound").tolist() == [[32.0, 1.5]]
    _, svg = written(fig, tmp_path)
    assert "Generation latency vs model shape" in svg  # text stays text in the SVG


def test_latency_sweeps_say_when_a_sweep_is_missing(sweeps):
    fig = figures.fig_latency_sweeps(sweeps[sweeps["sweep"] != "width"], {})
    assert [t.get_text() for t in fig.axes[1].texts] == ["not measured"]
    assert not [ln for ln in fig.axes[0].get_lines() if "least squares" in ln.get_label()]


def test_throughput_draws_tokens_per_second_and_the_ideal(tmp_path):
    table = pd.DataFrame(
        {
            "shape": "d48-l2-h4",
            "N": 86256,
            "batch_size": [16, 1, 4],
            "tokens_per_s": [400.0, 30.0, 100.0],
            "median_s": [0.3, 0.25, 0.3],
        }
    )
    fig = figures.fig_throughput(table)
    tokens, call = fig.axes
    assert lines(tokens, "measured")[0].get_ydata().tolist() == [30.0, 100.0, 400.0]
    (ideal,) = [ln for ln in tokens.get_lines() if "ideal" in ln.get_label()]
    assert ideal.get_ydata().tolist() == [30.0, 120.0, 480.0]
    assert tokens.get_xscale() == "log" and tokens.get_yscale() == "log"
    assert [t.get_text() for t in tokens.get_xticklabels()] == ["1", "4", "16"]
    assert "tokens/s" in tokens.get_ylabel() and "batch size" in call.get_xlabel()
    assert "d48-l2-h4" in fig.get_suptitle()
    written(fig, tmp_path)


def test_loss_figure_draws_the_inference_law_per_multiplier(points, fits, tmp_path):
    curves = ratio_table(points, fits[("inference", "all")])
    fig = figures.fig_loss_vs_ratio(points, curves, "inference law, fit set 'all'")
    assert len(fig.axes) == 2  # one panel per size group
    first = fig.axes[0]
    assert first.get_xscale() == "log"
    lines = first.get_lines()
    assert len(lines) == 2  # one law curve per multiplier
    group = points[(points["size_group"] == "s1") & (points["multiplier"] == 20)]
    n, d = group["N"].mean(), group["D"].mean()
    r, y = lines[0].get_xdata()[0], lines[0].get_ydata()[0]
    assert r == pytest.approx(group["R"].min() / frontier.RATIO_MARGIN)
    p = INFERENCE
    expected = (p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]) * (
        1 + p["epsilon"] * r ** p["gamma"]
    )
    assert y == pytest.approx(expected, rel=1e-9)
    assert "fit set 'all'" in fig.get_suptitle()
    written(fig, tmp_path)


def test_loss_figure_without_curves_draws_only_the_points(points):
    fig = figures.fig_loss_vs_ratio(points)
    assert all(not ax.get_lines() for ax in fig.axes)
    assert all(ax.collections for ax in fig.axes)


def test_predicted_vs_actual_has_a_row_per_fit_set_and_marks_fit_points(
    predictions, fits, tmp_path
):
    fig = figures.fig_predicted_vs_actual(predictions, fit_set_scores(predictions, fits))
    titles = [ax.get_title().splitlines()[0] for ax in fig.axes]
    assert titles == [
        "chinchilla law, fit set 'all'",
        "inference law, fit set 'all'",
        "chinchilla law, fit set 'base'",
        "inference law, fit set 'base'",
    ]
    chinchilla_all, inference_all, _, inference_base = fig.axes
    assert "R² 0.9895" in chinchilla_all.get_title() and "R² 0.9982" in inference_all.get_title()
    # "all": all 8 grid points are fit points; "base": the 4 at 20N; the candidates never
    assert len(scattered(chinchilla_all, "fit points")) == 8
    assert len(scattered(chinchilla_all, "held out")) == 0
    assert len(scattered(inference_base, "fit points")) == 4
    assert len(scattered(inference_base, "held out")) == 4
    assert len(scattered(inference_base, "candidates (held out)")) == 3
    frame = predictions[("inference", "base")]
    mse = float(((frame["loss"] * 0.01) ** 2).mean())
    assert f"all points: MSE {mse:.2g}" in inference_base.get_title()
    written(fig, tmp_path)


def test_predicted_vs_actual_names_a_missing_fit_set_column(predictions, fits):
    frame = predictions[("inference", "base")].drop(columns="fit_base")
    with pytest.raises(InputError, match="fit_base"):
        figures.fig_predicted_vs_actual(
            {("inference", "base"): frame}, fit_set_scores(predictions, fits)
        )


def spearman_figure(predictions: dict, fits: dict) -> Figure:
    """The Spearman figure drawn from the fit stage's tables of ``predictions``."""
    scores = fit_set_scores(predictions, fits)
    return figures.fig_spearman(predictions, spearman_table(predictions), scores)


def test_spearman_bars_per_group_and_law(predictions, fits, tmp_path):
    good = predictions[("inference", "all")]
    # chinchilla: predicted loss reversed within s1 (rho -1), right in s2 (+1)
    bad = good.assign(loss_pred=np.where(good["size_group"] == "s1", -good["loss"], good["loss"]))
    # one candidate only: its group has a single point, so no rho
    alone = {
        key: frame.iloc[:-2]
        for key, frame in {("chinchilla", "all"): bad, ("inference", "all"): good}.items()
    }
    fig = spearman_figure(alone, fits)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["s1", "s2", "candidates"]
    heights = {
        law: [p.get_height() for p in ax.containers[i]]
        for i, law in enumerate(("chinchilla", "inference"))
    }
    assert heights["chinchilla"] == pytest.approx([-1.0, 1.0])
    assert heights["inference"] == pytest.approx([1.0, 1.0])
    assert [t.get_text() for t in ax.texts] == ["n/a", "n/a"]
    assert "chinchilla 0.00" in ax.get_title() and "inference 1.00" in ax.get_title()
    assert len(spearman_figure(predictions, fits).axes) == 2  # one panel per fit set
    written(fig, tmp_path)


def test_loss_vs_flops_plots_6nd_and_the_frontier_it_is_given(points, trained_points, tmp_path):
    every = compute_points(pd.concat([points, trained_points], ignore_index=True))
    given = pd.DataFrame({"C": [1e14, 1e16, 1e18], "loss": [4.0, 3.5, 3.0]})
    fig = figures.fig_loss_vs_flops(every, given, "Chinchilla law, fit set 'all'")
    (ax,) = fig.axes
    runs = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(runs) == 4  # one line per grid run
    first = points[points["run"] == "s1-l1"]
    assert runs[0].get_xdata().tolist() == (6 * first["N"] * first["D"]).tolist()
    assert scattered(ax, "trained candidates")[:, 0].tolist() == pytest.approx(
        (6 * trained_points["N"] * trained_points["D"]).tolist()
    )
    (frontier,) = [ln for ln in ax.get_lines() if "compute-optimal" in ln.get_label()]
    assert "fit set 'all'" in frontier.get_label()
    assert frontier.get_xdata().tolist() == [1e14, 1e16, 1e18]
    assert frontier.get_ydata().tolist() == [4.0, 3.5, 3.0]
    assert ax.get_xscale() == "log" and "6·N·D" in ax.get_xlabel()
    assert not lines(figures.fig_loss_vs_flops(every).axes[0], "compute-optimal loss ()")
    written(fig, tmp_path)


def test_isoflop_draws_each_laws_curves_optima_and_the_points_near_each_budget(
    points, fits, tmp_path
):
    ratio = float(points["R"].median())
    laws = {law: fits[(law, "all")] for law in ("chinchilla", "inference")}
    curves = isoflop_table(laws, points["N"], points["D"], ratio)
    fig = figures.fig_isoflop(compute_points(points), curves, "all")
    chinchilla, inference = fig.axes
    assert chinchilla.get_title() == "chinchilla law"
    # R: 64, 32 (s1), 42.7, 32 (s2), each at two multipliers: median (32 + 42.7) / 2
    assert inference.get_title().startswith("inference law at R = 37.3")
    compute = 6 * points["N"] * points["D"]
    levels = np.geomspace(compute.min(), compute.max(), 3)
    assert [ln.get_label() for ln in chinchilla.get_lines()] == [
        f"C = {c:.2g} FLOPs" for c in levels
    ]
    optima = [c for c in chinchilla.collections if c.get_label() == "law's optimum N"]
    for c, marker in zip(levels, optima, strict=True):
        best = frontier.isoflop_curve(laws["chinchilla"], c, frontier.n_range(points["N"]))
        ((n, loss),) = marker.get_offsets()
        assert (n, loss) == pytest.approx((best.n[best.best], best.loss[best.best]), rel=1e-12)
    near = [c for c in chinchilla.collections if c.get_label().startswith("trained points")]
    # compute: 1.2e14 (s1, 20N), 2.4e14 (s1, 40N), 8.1e14, 1.6e15: log-nearest budgets
    assert [len(c.get_offsets()) for c in near] == [2, 4, 2]
    written(fig, tmp_path)


def test_isoflop_says_when_the_law_has_no_optimum_in_range(points):
    flat = fit("chinchilla", 0.9) | {"params": CHINCHILLA | {"alpha": 0.0}}  # no N penalty
    curves = isoflop_table({"chinchilla": flat}, points["N"], points["D"], 1.0)
    (ax,) = figures.fig_isoflop(compute_points(points), curves, "all").axes
    assert "no optimum N in range at 3 of 3 budgets" in ax.get_title()
    assert not [c for c in ax.collections if c.get_label() == "law's optimum N"]


def test_accuracy_vs_latency_labels_candidates_and_draws_the_front_it_is_given(models, tmp_path):
    faster = models.assign(latency_s=models["latency_s"].where(models["run"] != "s1-l1", 1.0))
    front = (faster["run"] == "s1-l1") | (faster["name"] == "3072x12")
    fig = figures.fig_accuracy_vs_latency(faster, front.to_numpy())
    (ax,) = fig.axes
    assert {t.get_text() for t in ax.texts} == {"2048x24", "3072x12", "2560x16"}
    assert len(scattered(ax, "grid models")) == 4
    (drawn,) = lines(ax, "Pareto front")
    assert drawn.get_xdata().tolist() == [1.0, 1.96]
    assert drawn.get_ydata().tolist() == [0.30, 0.53]
    assert ax.get_xlabel() == "generation latency (s)"
    written(fig, tmp_path)


def test_accuracy_vs_loss_has_a_panel_per_task_and_the_fit_on_the_average(
    models, downstream, tmp_path
):
    curve = accuracy_curve(models, downstream["params"])
    fig = figures.fig_accuracy_vs_loss(models, ["arc_easy", "piqa"], downstream, curve)
    assert [ax.get_title() for ax in fig.axes] == ["arc_easy", "piqa", "average of the tasks"]
    arc, _, average = fig.axes
    assert sorted(scattered(arc, "size group s1")[:, 1]) == [0.4, 0.42]
    assert sorted(scattered(arc, "trained candidates")[:, 1]) == [0.6, 0.6, 0.61]
    (curve,) = [ln for ln in average.get_lines() if ln.get_label().startswith("fit")]
    assert curve.get_ydata() == pytest.approx(
        predict_accuracy(downstream["params"], curve.get_xdata())
    )
    assert "R² 0.800" in curve.get_label()
    assert not arc.get_lines()  # the fit is on the average only
    written(fig, tmp_path)


def test_figures_are_byte_reproducible(sweeps, tmp_path):
    fits = sweep_fits(sweeps)
    first = written(figures.fig_latency_sweeps(sweeps, fits), tmp_path, "a")
    again = written(figures.fig_latency_sweeps(sweeps, fits), tmp_path, "b")
    assert first == again


# ---------------------------------------------------------------- assembling and tables


def test_evaluated_models_take_the_last_boundary_and_the_right_latency(models):
    grid = models[models["size_group"] != "candidates"].set_index("run")
    assert grid.loc["s1-l1", "D"] == 40e6  # last boundary
    assert grid.loc["s2-l4", "latency_s"] == 8.0  # its shape's measurement
    # the se of the log median: sqrt(pi/2)·CV/sqrt(4 trials), the relative CV where relative
    assert grid.loc["s1-l2", "latency_log_se"] == pytest.approx(math.sqrt(math.pi / 2) * 0.2 / 2)
    assert grid.loc["s2-l4", "latency_log_se"] == pytest.approx(math.sqrt(math.pi / 2) * 0.05 / 2)
    trained = models[models["size_group"] == "candidates"].set_index("name")
    assert trained.loc["3072x12", "latency_s"] == 1.96  # what the selection used
    assert trained.loc["3072x12", "piqa"] == 0.45
    assert len(models) == 7


def bootstrap_predictions(row: pd.Series) -> list[float]:
    """The inference law's loss at ``row`` under each bootstrap sample of the ``fits`` fixture
    (every parameter x 0.9, 1.0, 1.1)."""
    return [
        predict(
            {"law": "inference", "params": {k: v * s for k, v in INFERENCE.items()}},
            [row["N"]],
            [row["D"]],
            [row["R"]],
        )[0]
        for s in (0.9, 1.0, 1.1)
    ]


def test_predictions_of_every_point_carry_the_bootstrap_band(points, trained_points, fits):
    predictions = predict_every_point(points, trained_points, fits)
    banded = predictions[("inference", "all")]
    assert len(banded) == 11
    row = banded.iloc[-1]
    samples = bootstrap_predictions(row)
    assert (row["loss_pred_lo"], row["loss_pred_hi"]) == pytest.approx(
        np.percentile(samples, [2.5, 97.5])
    )
    assert row["loss_pred"] == pytest.approx(samples[1])
    assert "loss_pred_lo" not in predictions[("chinchilla", "all")]
    # predictions.csv holds them all, and gives each fit's rows back as they were
    table = predictions_frame(predictions)
    assert len(table) == 11 * len(fits) and list(table.columns[:2]) == ["law", "fit_set"]
    back = by_fit(table)
    assert list(back) == list(predictions)
    for key, frame in predictions.items():
        pd.testing.assert_frame_equal(back[key], frame)


def test_runs_table_shows_accuracy_only_at_the_last_boundary(points, trained_points, models):
    markdown = tables.md_table(tables.runs_table(points, trained_points, models))
    assert (
        "| s1-l1 | d64-l1-h4 | 1,000,000 | 20,000,000 | 64 | 3.9000 | 3.9500 | 2.000 | - |"
        in markdown
    )
    assert (
        "| s1-l1 | d64-l1-h4 | 1,000,000 | 40,000,000 | 64 | 3.7000 | 3.7500 | 2.000 | 0.300 |"
        in markdown
    )
    assert "| candidates/3072x12 | d3072-l12-h16 | 1,440,000,000 |" in markdown
    assert len(markdown.splitlines()) == 2 + 8 + 3


def test_coefficients_table_has_intervals_and_tied_exponents(fits):
    table = tables.coefficients_table(fits)
    frame = table.frame.set_index(["law", "fit_set", "parameter"])
    lo, hi = frame.loc[("inference", "all", "A"), ["ci95_lo", "ci95_hi"]]
    assert (lo, hi) == pytest.approx(np.percentile([9.0, 10.0, 11.0], [2.5, 97.5]))
    assert frame.loc[("inference", "all", "gamma"), "tied_to"] == "alpha"
    assert pd.isna(frame.loc[("chinchilla", "all", "A"), "ci95_lo"])
    assert len(table.frame) == 2 * 5 + 2 * 7
    assert "chinchilla / all: A came out negative" in table.note
    assert "bootstrap resamples of whole runs" in table.note  # as fit_law draws them


def test_fit_set_scores_score_each_fit_on_every_point(points, trained_points, fits):
    tested = pd.concat([points, trained_points], ignore_index=True)
    exact = {key: tested.assign(loss_pred=tested["loss"]) for key in fits}
    # inference/base: the candidates' predicted loss is 1% too high
    exact[("inference", "base")] = tested.assign(
        loss_pred=np.where(
            tested["size_group"] == "candidates", tested["loss"] * 1.01, tested["loss"]
        )
    )
    frame = fit_set_scores(exact, fits).set_index(["law", "fit_set"])
    assert frame.loc[("chinchilla", "all"), "test_mse"] == 0.0
    assert frame.loc[("chinchilla", "all"), "test_r2"] == 1.0
    row = frame.loc[("inference", "base")]
    assert row["n_test"] == 11 and row["n_fit"] == 8
    assert row["test_mse"] == pytest.approx(((trained_points["loss"] * 0.01) ** 2).sum() / 11)
    assert row["candidates_max_rel_err"] == pytest.approx(0.01)
    assert row["candidates_spearman"] == pytest.approx(1.0)
    assert frame.loc[("chinchilla", "all"), "warnings"] == 1


def test_comparison_table_shows_delta_aic_beside_aic_and_matching_intervals(fits):
    comparison = pd.DataFrame(
        {
            "law": ["chinchilla", "inference", "inference-additive"],
            "tie": ["all", "all", "all"],
            "method": ["lm", "lm", "huber"],
            "n_params": [4, 5, 5],
            "n_fit": [8, 8, 8],
            "aic": [-30.0, -40.0, -35.0],
            "params": ["A=1", "A=2", "A=3"],
            "delta_aic": [10.0, 0.0, 0.0],  # the fit stage's, per method
            "logo_rel_err": [0.05, 0.02, 0.03],
        }
    )
    frame = tables.comparison_table(comparison, fits).frame
    assert list(frame.columns[5:7]) == ["aic", "delta_aic"]
    assert frame["delta_aic"].tolist() == [10.0, 0.0, 0.0]
    assert frame.columns[-1] == "params" and frame.loc[2, "params"] == "A=3"
    ci = frame.loc[1, "ci95"]
    lo, hi = np.percentile([9.0, 10.0, 11.0], [2.5, 97.5])
    assert ci.startswith(f"A [{lo:.3g}, {hi:.3g}]") and "epsilon [" in ci
    assert "beta [" not in ci  # tied to alpha under tie "all"
    assert pd.isna(frame.loc[0, "ci95"]) and pd.isna(frame.loc[2, "ci95"])


def test_latency_tables_state_the_model_error_and_the_sweep_findings(sweeps):
    model = {
        "form": "T = a + b*L",
        "terms": {"a": "1", "b": "n_layers"},
        "coefficients": {"a": 0.1, "b": 0.02},
        "fit": "nnls",
        "n_shapes": 9,
        "fit_median_rel_err": 0.05,
        "loo_median_rel_err": 0.081,
        "loo_max_rel_err": 0.2,
    }
    table = tables.latency_model_table(model)
    assert table.frame["coefficient_s"].tolist() == [0.1, 0.02]
    assert "leave-one-out 8.1%" in table.note and "9 measured shapes" in table.note
    found = tables.sweeps_table(sweep_fits(sweeps))
    rows = found.frame.set_index("sweep")
    assert rows.loc["layers", "r2"] == pytest.approx(90.25 / 93.75)
    assert rows.loc["ratio", "widest_shallowest_fastest"]
    assert "ratio:d64-l2-h4" in found.note  # the flagged measurement


def test_selection_table_has_the_band_predicted_accuracy_and_measured(
    selected, fits, downstream, models
):
    fit = fits[("inference", "all")]
    lo, hi = predict_points_interval(fit, selected)  # as the select step writes the band
    selected = selected.assign(loss_pred_lo=lo, loss_pred_hi=hi)
    predicted = candidate_accuracy(selected, downstream["params"])
    frame = tables.selection_table(selected, fit, "all", predicted, models, "2048x24").frame
    assert frame["name"].tolist() == ["3072x12", "2560x16", "2048x24", "4096x6"]  # by rank
    row = frame.iloc[0]
    preds = bootstrap_predictions(row)
    assert (row["loss_pred_lo"], row["loss_pred_hi"]) == pytest.approx(
        np.percentile(preds, [2.5, 97.5])
    )
    assert row["acc_pred"] == pytest.approx(predict_accuracy(downstream["params"], [2.85])[0])
    assert row["accuracy"] == 0.53
    assert frame.set_index("name").loc["2048x24", "baseline"]
    assert math.isnan(frame.set_index("name").loc["4096x6", "accuracy"])
    shown = tables.md_table(
        tables.selection_table(selected, fit, "all", predicted, models, "2048x24")
    )
    assert "| 1 | 3072x12 | d3072-l12-h16 | 1,440,000,000 |" in shown
    assert "| - | 4096x6 | d4096-l6-h16-kv4 |" in shown and "| no | no | - | no |" in shown
    stable = selected.assign(chosen_frac=[0.0, 0.9, 0.6, 0.0])
    frame = tables.selection_table(stable, fit, "all", predicted, models, "2048x24")
    assert "| yes | 90% | no |" in tables.md_table(frame)
    assert "the inference law reads R: its loss_pred there is an extrapolation" in frame.note
    chinchilla = tables.selection_table(
        stable, fits[("chinchilla", "all")], "all", predicted, models, "2048x24"
    )
    assert "the chinchilla law reads none" in chinchilla.note


def test_downstream_table_and_winner_table(downstream, models, selected):
    frame = tables.downstream_table(downstream).frame
    assert frame["abs_err"].tolist() == pytest.approx([0.02, 0.02])
    winner = tables.winner_table(choose_winner(trained_candidates(models), selected, "2048x24"))
    shown = tables.md_table(winner)
    assert "| 3072x12 | 0.530 | - | - | 1.960 | latency | 2560x16, 3072x12 | - | 1 | - |" in shown
    assert "| 2048x24 | yes | 0.520 | 3.610 | 1.84 | +0.010 | - | better |" in shown


def test_compute_spent_and_training_flops(models):
    benchmarks = {
        "a.tsv": pd.DataFrame({"s": [10.0, 12.0], "cpu_time": [5.0, 6.0]}),
        "b.tsv": pd.DataFrame({"s": [1.5], "cpu_time": [1.0]}),
    }
    assert tables.compute_spent(benchmarks) == {"jobs": 2, "wall_s": 23.5, "cpu_s": 12.0}
    flops = training_flops(models)
    # each grid run to its last (40N) boundary: 2 x 6·1e6·40e6 + 2 x 6·2.6e6·104e6
    assert flops["grid"] == pytest.approx(2 * 6 * 1e6 * 40e6 + 2 * 6 * 2.6e6 * 104e6)
    assert flops["candidates"] == pytest.approx(6 * 2.9e10 * (1.44e9 * 2 + 1.53e9))
    assert flops["total"] == flops["grid"] + flops["candidates"]


def test_html_table_is_a_page_with_the_escaped_cells():
    table = tables.Table("A <title>", pd.DataFrame({"x": ["a<b"], "y": [0.5]}), {"y": ".1%"}, "n")
    page = tables.html_table(table)
    assert page.startswith("<!DOCTYPE html>") and "<h3>A &lt;title&gt;</h3>" in page
    assert "a&lt;b" in page and "50.0%" in page and "<p>n</p>" in page


# ---------------------------------------------------------------- summary and files


CHOICE = {
    "mode": "auto",
    "law": "inference",
    "form": None,
    "tie": "all",
    "method": "lm",
    "logo_rel_err": 0.012,
    "aic": -40.0,
    "chinchilla_logo_rel_err": 0.03,
    "ratio_to_chinchilla": 0.4,
    "reason": "it extrapolates best",
}


APPLIED = {
    "objective": "loss",
    "max_loss": "baseline",
    "loss_target": 2.9,
    "infeasible": {},
    "budgets": {"max_params": None, "max_tokens": None, "max_latency": 3.0},
    "resamples": 0,
    "skipped": 0,
}


def by_objective(selected: pd.DataFrame) -> pd.DataFrame:
    """results/select/objectives.csv for ``selected``: the loss objective's choice as given, the
    throughput objective's the two fastest within the loss target 2.9 (2048x24 and 3072x12)."""
    tps = selected.assign(throughput_tps=[400.0, 900.0, 700.0, 1500.0])
    fast = tps.assign(selected=[1, 1, 0, 0], rank=pd.array([2, 1, pd.NA, pd.NA], dtype="Int64"))
    return pd.concat([tps.assign(objective="loss"), fast.assign(objective="throughput")])


def test_loss_vs_throughput_marks_each_objectives_choice_and_the_front(selected, tmp_path):
    table = by_objective(selected)
    block = table[table["objective"] == "loss"]
    front = pareto_front(block["loss_pred"], block["throughput_tps"])
    # 3072x12 (2.85, 900) beats 2048x24 (2.9, 400) and 2560x16 (2.87, 700); 4096x6 is fastest.
    assert front.tolist() == [False, True, False, True]
    fig = figures.fig_loss_vs_throughput(table, front, 2.9)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert labels[:2] == ["candidates", "Pareto front"]
    assert {"chosen by loss", "chosen by throughput"} <= set(labels)
    step = ax.get_lines()[0]
    assert sorted(step.get_xdata()) == [900.0, 1500.0]
    assert ax.get_lines()[1].get_ydata()[0] == 2.9  # the loss target
    written(fig, tmp_path)


def test_objectives_table_and_story_line(selected):
    table = by_objective(selected)
    frame = tables.objectives_table(table, APPLIED).frame
    assert frame[["objective", "name"]].values.tolist() == [
        ["loss", "3072x12"],
        ["loss", "2560x16"],
        ["throughput", "3072x12"],
        ["throughput", "2048x24"],
    ]
    line = story._objectives_line(table, APPLIED)
    assert line.startswith("Objectives: by loss: 3072x12 (900 tokens/s, loss 2.8500)")
    assert "by throughput (predicted loss <= 2.9000, the baseline's): 3072x12" in line
    assert line.endswith("trained: the loss objective's.")
    infeasible = {**APPLIED, "infeasible": {"throughput": "only 1 of 4 candidates are feasible"}}
    only_loss = table[table["objective"] == "loss"]
    assert "by throughput: none (only 1 of 4" in story._objectives_line(only_loss, infeasible)
    # 3072x12 and 2048x24 timed within their noise (one tier): the story says they tied
    tiered = table.assign(throughput_tier=[1, 1, 2, 0] * 2)
    line = story._objectives_line(tiered, APPLIED)
    assert "(tied within their timing noise: 2048x24 = 3072x12; the lower predicted" in line
    assert "tied within" not in story._objectives_line(
        table.assign(throughput_tier=[1, 2, 3, 0] * 2), APPLIED
    )


GQA_SWEEP = pd.DataFrame(
    {
        "shape": ["d128-l2-h8"] * 2 + ["d128-l2-h8-kv2-f416"] * 2,
        "n_heads": 8,
        "n_kv_heads": [8, 8, 2, 2],
        "ffn_hidden": [352, 352, 416, 416],
        "N": 533120,
        "batch_size": [8, 32, 8, 32],
        "tokens_per_s": [1000.0, 2000.0, 1100.0, 2600.0],
        "flagged": False,
    }
)


# Two candidates' measured throughput against the analytic models (rule latency_crosscheck).
CROSSCHECK = pd.DataFrame(
    {
        "shape": ["c7", "c8"],
        "batch_size": [64, 64],
        "tokens_per_s": [5000.0, 4300.0],
        "s_per_token": [0.0128, 0.0149],
        "flops_per_token": [500000, 480000],
        "bytes_per_token": [270000, 80000],
        "flops_rel": [1.0, 0.96],
        "bytes_rel": [1.0, 0.30],
        "measured_over_memory_model": [1.0, 0.26],
        "departs_from": ["", "c7"],
        "flagged": [False, True],
    }
)
CROSSCHECK_SUMMARY = {
    "input_tokens": 128,
    "output_tokens": 32,
    "dtype": "float32",
    "kv_length": 143.5,
    "spearman_flops": 0.5,
    "spearman_memory": 0.25,
}


@pytest.fixture
def shown(points, trained_points, models, fits, predictions, selected, downstream, sweeps):
    """Every report table, as the report script builds them."""
    provenance = {
        "config_hash": "abc123def456",
        "git_commit": "deadbeef",
        "versions": {"numpy": "2.4.6"},
        "device": "cpu",
    }
    winner = choose_winner(trained_candidates(models), selected, "2048x24")
    chosen = fits[("inference", "all")] | {"choice": CHOICE}
    budgets = {"max_params": None, "max_tokens": None, "max_latency": 3.0}
    model = {
        "form": "T = a",
        "terms": {"a": "1"},
        "coefficients": {"a": 0.1},
        "fit": "nnls",
        "n_shapes": 3,
        "fit_median_rel_err": 0.1,
        "loo_median_rel_err": 0.1,
        "loo_max_rel_err": 0.2,
    }
    comparison = pd.DataFrame(
        {
            "law": ["chinchilla"],
            "tie": ["all"],
            "method": ["lm"],
            "n_fit": [8],
            "aic": [-3.0],
            "delta_aic": [0.0],
        }
    )
    return {
        "story": tables.story_table(story.story_lines(chosen, selected, winner, budgets)),
        "selection": tables.selection_table(
            selected,
            chosen,
            "all",
            candidate_accuracy(selected, downstream["params"]),
            models,
            "2048x24",
        ),
        "winner": tables.winner_table(winner),
        "objectives": tables.objectives_table(by_objective(selected), APPLIED),
        "coefficients": tables.coefficients_table(fits),
        "fit_sets": tables.fit_sets_table(fit_set_scores(predictions, fits)),
        "law_comparison": tables.comparison_table(comparison, fits),
        "predictions": tables.predictions_table(predictions_frame(predictions)),
        "latency_model": tables.latency_model_table(model),
        "latency_sweeps": tables.sweeps_table(sweep_fits(sweeps)),
        "gqa_throughput": tables.gqa_table(gqa_speedups(GQA_SWEEP), "256 in / 16 out"),
        "throughput_crosscheck": tables.crosscheck_table(CROSSCHECK, CROSSCHECK_SUMMARY),
        "engines": tables.engines_table(None, None),
        "trained_latency": tables.trained_latency_table(
            pd.DataFrame(
                {
                    "name": ["c1"],
                    "shape": ["d48-l10-h4"],
                    "checkpoint_median_s": [1.78],
                    "random_median_s": [1.85],
                    "paired_ratio": [0.99],
                    "band": [0.19],
                    "agree": [True],
                }
            )
        ),
        "downstream": tables.downstream_table(downstream),
        "runs": tables.runs_table(points, trained_points, models),
        "design_rounds": design.rounds_table([], [], {}, 1.0, selected),
        "design_vs_grid": design.comparison_table(
            {
                "points": points,
                "fit": chosen,
                "selected": selected,
                "winner": winner,
                "flops": training_flops(models),
            },
            None,
            None,
        ),
        "provenance": tables.provenance_table(
            provenance,
            {"jobs": 3, "wall_s": 100.0, "cpu_s": 150.0},
            training_flops(models),
        ),
    }


def test_summary_markdown_opens_with_the_story_then_every_table_and_the_provenance(shown):
    config = {"seed": 0, "select": {"k": 2}}
    markdown = story.summary_markdown(shown, ["latency_sweeps"], config)
    lines = markdown.splitlines()
    assert lines[:2] == ["# infscale report", ""]
    assert [line[:8] for line in lines[2:6]] == ["- Law: t", "- Shape ", "- Select", "- Winner"]
    assert "Winner: 3072x12" in lines[5] and f"{3.61 / 1.96:.2f}x its speed" in lines[5]
    assert "latency (s) <= 3 excluded 2048x24" in lines[4]
    for name, table in shown.items():
        assert (f"### {table.title}" in markdown) == (
            name not in ("story", "predictions", "provenance")
        )
    assert "## Provenance" in markdown and "abc123def456" in markdown
    assert "| version: numpy | 2.4.6 |" in markdown and "| CPU time, summed" in markdown
    assert "A came out negative" in markdown
    assert "(figures/latency_sweeps.png)" in markdown and "(figures/latency_sweeps.svg)" in markdown
    assert "```yaml\nseed: 0\nselect:\n  k: 2\n```" in markdown


def blank_figures() -> dict[str, Figure]:
    out = {}
    for name in outputs.FIGURES:
        fig = Figure(figsize=(2, 2))
        FigureCanvasAgg(fig)
        fig.text(0.5, 0.5, name)
        out[name] = fig
    return out


def test_write_report_writes_every_declared_file_and_the_same_bytes_twice(shown, tmp_path):
    markdown = story.summary_markdown(shown, list(outputs.FIGURES), {})
    first = story.write_report(tmp_path / "a", blank_figures(), shown, markdown)
    declared = outputs.report_files(tmp_path / "a")
    assert sorted(first) == sorted(declared.values())
    assert first[-1].name == "summary.md"  # written last
    on_disk = {p for p in (tmp_path / "a").rglob("*") if p.is_file()}
    assert on_disk == set(declared.values())
    again = story.write_report(tmp_path / "b", blank_figures(), shown, markdown)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in first]
    csv = pd.read_csv(declared["runs_csv"])
    assert len(csv) == 11 and csv["N"].iloc[0] == 1e6  # raw values, not formatted


def test_write_report_refuses_names_the_workflow_does_not_declare(shown, tmp_path):
    with pytest.raises(InputError, match="figures"):
        story.write_report(tmp_path, {"extra": Figure()}, shown, "")


def test_every_shown_output_has_a_caption_and_every_caption_is_used():
    entries = outputs.report_entries()
    listed = {f"{name}_png" for name in outputs.FIGURES} | {f"{n}_html" for n in outputs.TABLES}
    assert set(entries) == listed | {"summary"}
    assert set(entries) <= set(outputs.report_files())
    captions = REPO / "workflow" / "report"
    used = {captions / caption for caption, _, _ in entries.values()}
    assert all(path.read_text().strip() for path in used)
    assert set(captions.rglob("*.rst")) == used | {captions / "workflow.rst"}


def test_gqa_figure_and_table_show_the_gain_over_mha(tmp_path):
    speedups = gqa_speedups(GQA_SWEEP)
    fig = figures.fig_gqa_throughput(speedups, "256 in / 16 out")
    tokens, ratio = fig.axes
    assert lines(tokens, "K = 8 (MHA)")[0].get_ydata().tolist() == [1000.0, 2000.0]
    assert lines(ratio, "K = 2, ffn 416")[0].get_ydata().tolist() == pytest.approx([1.1, 1.3])
    assert lines(ratio, "K = 8 (MHA)")[0].get_ydata().tolist() == [1.0, 1.0]
    assert "256 in / 16 out" in fig.get_suptitle() and "533k" in fig.get_suptitle()
    written(fig, tmp_path)
    table = tables.gqa_table(speedups, "256 in / 16 out")
    assert "K = 2 has 1.10x at batch 8, 1.30x at batch 32 the MHA shape's" in table.note
    assert "2 of 2 (twin, batch) pairs are faster" in table.note
    assert table.display()["speedup_vs_mha"].tolist() == ["1.100", "1.300", "1.000", "1.000"]


def test_evaluated_models_mark_the_accuracy_latency_front(
    models, points, trained_points, accuracy, latency, selected
):
    # 3072x12 is both the fastest (1.96 s) and, tied with 2560x16, the most accurate
    assert list(models.loc[models["pareto"] == 1, "name"]) == ["3072x12"]
    faster = latency.assign(median_s=[1.0, 4.0, 5.0, 8.0])  # s1-l1 now the fastest of all
    again = evaluated_models(points, trained_points, accuracy, faster, selected)
    assert list(again.loc[again["pareto"] == 1, "name"]) == ["s1-l1", "3072x12"]


def test_engines_table_sets_the_engines_side_by_side_or_says_how_to_time_them():
    from infscale.report.tables import engines_table

    missing = engines_table(None, None)
    assert missing.frame.empty and "make vllm-env" in missing.note
    assert "latency.engines.report: true" in missing.note
    frame = pd.DataFrame(
        {
            "shape": ["d256-l1-h8", "d128-l4-h4", "d64-l16-h2"],
            "R": [256, 32, 4],
            "N": [1053440, 1000000, 990000],
            "hf_median_s": [0.143, 0.244, 0.540],
            "vllm_median_s": [0.162, 0.255, 0.565],
            **{
                f"{e}_{c}": [1.0, 2.0, 3.0]
                for e in ("hf", "vllm")
                for c in ("median_ttft_ms", "median_tpot_ms", "rank")
            },
            "hf_flagged": [False] * 3,
            "vllm_flagged": [False, True, False],
        }
    )
    frame["vllm_over_hf"] = frame["vllm_median_s"] / frame["hf_median_s"]
    summary = {"spearman": 1.0, "vllm_over_hf_geomean": 1.08, "engine_notes": ["no CUDA graphs"]}
    table = engines_table(frame, summary)
    assert "Spearman rank agreement of the two engines' median times 1.00" in table.note
    assert "geometric mean 1.08" in table.note and "no CUDA graphs." in table.note
    shown = table.display()
    assert list(shown["vllm_over_hf"]) == ["1.13", "1.05", "1.05"]
    assert list(shown["vllm_flagged"]) == ["no", "yes", "no"]


def test_crosscheck_table_names_the_shapes_out_of_the_memory_models_order():
    from infscale.report.tables import crosscheck_table

    summary = CROSSCHECK_SUMMARY | {"spearman_flops": 1.0, "spearman_memory": -1.0}
    table = crosscheck_table(CROSSCHECK, summary)
    assert "memory model's order beyond their timing noise: c8." in table.note
    assert "FLOPs model: Spearman 1.00; with the memory model: -1.00" in table.note
    assert "(128 in / 32 out, float32)" in table.title
