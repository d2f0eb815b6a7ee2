"""The report: figures render from small fixed tables; the winner and the markdown are right."""

from __future__ import annotations

import pandas as pd
import pytest

from infscale import report
from infscale.errors import InputError

INFERENCE = {
    "A": 10.0,
    "B": 20.0,
    "E": 1.0,
    "alpha": 0.3,
    "beta": 0.3,
    "gamma": 0.3,
    "epsilon": 0.01,
}


def fit(law: str, r2: float) -> dict:
    params = (
        dict(INFERENCE)
        if law == "inference"
        else {k: INFERENCE[k] for k in "ABE"} | {"alpha": 0.3, "beta": 0.3}
    )
    return {
        "law": law,
        "method": "lm",
        "tie": "all",
        "n_points": 8,
        "params": params,
        "metrics": {"mse": 0.0012, "r2": r2, "max_rel_err": 0.021, "spearman": 0.9},
        "warnings": ["A came out negative"] if law == "chinchilla" else [],
    }


@pytest.fixture
def latency() -> pd.DataFrame:
    # latency on n_layers 1..4 = 2, 4, 5, 8: Sxy = 9.5, Sxx = 5, Syy = 18.75,
    # so R² = 9.5² / (5 · 18.75) = 90.25 / 93.75 = 0.96267 (the annotation reads 0.963)
    return pd.DataFrame(
        {
            "shape": ["d64-l1-h4", "d64-l2-h4", "d128-l3-h4", "d128-l4-h4"],
            "d_model": [64, 64, 128, 128],
            "n_layers": [1, 2, 3, 4],
            "n_heads": [4, 4, 4, 4],
            "N": [1.0e6, 1.1e6, 2.5e6, 2.7e6],
            "R": [64.0, 32.0, 128 / 3, 32.0],
            "median_s": [2.0, 4.0, 5.0, 8.0],
            "iqr_s": [0.1] * 4,
            "cv": [0.01] * 4,
            "ttft_s": [0.01] * 4,
        }
    )


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
def trained() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["2048x24", "3072x12", "2560x16"],
            "d_model": [2048, 3072, 2560],
            "n_layers": [24, 12, 16],
            "N": [1.44e9, 1.44e9, 1.53e9],
            "D": [2.9e10] * 3,
            "R": [2048 / 24, 256.0, 160.0],
            "loss": [2.9, 2.88, 2.89],
            "val_loss": [3.0, 2.98, 2.99],
            "latency_s": [3.61, 1.96, 2.5],
            "average": [0.52, 0.53, 0.53],
        }
    )


@pytest.fixture
def fits() -> dict:
    return {
        ("chinchilla", "all"): fit("chinchilla", 0.9895),
        ("inference", "base"): fit("inference", 0.9982),
    }


@pytest.fixture
def predictions(points, trained, fits) -> dict:
    held_out = trained.assign(size_group="candidates", run="candidates/" + trained["name"])
    tested = pd.concat([points, held_out], ignore_index=True)
    return {key: tested.assign(loss_pred=tested["loss"] * 1.01) for key in fits}


def saved_png(fig, tmp_path) -> int:
    report.write_report(tmp_path, {"figure": fig}, "")
    png = (tmp_path / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert (tmp_path / "figure.svg").stat().st_size > 1000
    return len(png)


def test_latency_figure_annotates_the_hand_computed_r2(latency, tmp_path):
    fig = report.fig_latency_vs_layers(latency)
    assert len(fig.axes) == 3  # depth panel, ratio panel, its colour bar
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"d_model 64", "d_model 128", "all shapes"} <= set(labels)
    (fit_label,) = [label for label in labels if label.startswith("least squares")]
    assert fit_label.endswith(f"R² = {90.25 / 93.75:.3f}") and fit_label.endswith("R² = 0.963")
    assert fig.axes[1].get_xscale() == "log"
    assert saved_png(fig, tmp_path) > 10_000


def test_linear_fit_is_exact_on_a_line():
    slope, intercept, r2 = report.linear_fit([1, 2, 3], [3, 5, 7])
    assert (slope, intercept, r2) == pytest.approx((2.0, 1.0, 1.0))
    assert report.linear_fit([2, 2], [1, 3]) is None


def test_loss_figure_draws_the_inference_law_per_multiplier(points, fits, tmp_path):
    fig = report.fig_loss_vs_ratio(points, fits)
    assert len(fig.axes) == 2  # one panel per size group
    first = fig.axes[0]
    assert first.get_xscale() == "log"
    curves = first.get_lines()
    assert len(curves) == 2  # one law curve per multiplier
    group = points[(points["size_group"] == "s1") & (points["multiplier"] == 20)]
    n, d = group["N"].mean(), group["D"].mean()
    r, y = curves[0].get_xdata()[0], curves[0].get_ydata()[0]
    p = INFERENCE
    expected = (p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]) * (
        1 + p["epsilon"] * r ** p["gamma"]
    )
    assert y == pytest.approx(expected, rel=1e-9)
    assert saved_png(fig, tmp_path) > 10_000


def test_loss_figure_without_an_inference_fit_has_no_curves(points, fits):
    fig = report.fig_loss_vs_ratio(points, {("chinchilla", "all"): fits[("chinchilla", "all")]})
    assert all(not ax.get_lines() for ax in fig.axes)


def test_predicted_vs_actual_marks_fit_and_held_out_points(predictions, fits, tmp_path):
    fig = report.fig_predicted_vs_actual(predictions, fits)
    assert len(fig.axes) == 2
    chinchilla, inference = fig.axes
    assert "R² 0.9895" in chinchilla.get_title() and "R² 0.9982" in inference.get_title()

    def count(ax, label):
        found = [c for c in ax.collections if c.get_label() == label]
        return len(found[0].get_offsets()) if found else 0

    # fit set "all": all 8 grid points; "base": the 4 at 20N; the 3 candidates never
    assert (count(chinchilla, "fit points"), count(chinchilla, "held out")) == (8, 0)
    assert (count(inference, "fit points"), count(inference, "held out")) == (4, 4)
    assert count(inference, "candidates (held out)") == 3
    assert saved_png(fig, tmp_path) > 10_000


def test_predicted_vs_actual_names_a_missing_fit_set_column(predictions, fits):
    frame = predictions[("inference", "base")].drop(columns="fit_base")
    with pytest.raises(InputError, match="fit_base"):
        report.fig_predicted_vs_actual({("inference", "base"): frame}, fits)


def test_pareto_front_on_a_hand_made_example():
    latency = [1, 2, 2, 3, 4, 5, 4, float("nan")]
    accuracy = [0.5, 0.6, 0.55, 0.6, 0.7, 0.65, 0.7, 0.9]
    # (2, .55) and (3, .6) lose to (2, .6); (5, .65) to (4, .7); the two (4, .7) tie, both stay
    assert report.pareto_front(latency, accuracy).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
        True,
        False,
    ]


def test_accuracy_figure_labels_candidates_and_marks_the_front(trained, tmp_path):
    grid = pd.DataFrame({"run": ["a", "b"], "median_s": [1.0, 3.0], "average": [0.4, 0.45]})
    fig = report.fig_accuracy_vs_latency(trained, grid)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(trained["name"])
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_xdata().tolist() == [1.0, 1.96]  # grid "a", then 3072x12
    assert saved_png(fig, tmp_path) > 10_000


def test_choose_winner_breaks_accuracy_ties_by_latency(trained):
    winner = report.choose_winner(trained, "2048x24")
    assert winner["name"] == "3072x12"  # ties 2560x16 on accuracy, is faster
    assert winner["speedup"] == 3.61 / 1.96
    assert winner["accuracy_diff"] == pytest.approx(0.01)
    assert winner["baseline_trained"] is True


def test_choose_winner_against_an_untrained_baseline(trained):
    winner = report.choose_winner(trained[trained["name"] != "2048x24"], "2048x24", 4.0)
    assert winner["name"] == "3072x12"
    assert winner["speedup"] == 4.0 / 1.96
    assert winner["accuracy_diff"] is None
    assert winner["baseline_trained"] is False
    with pytest.raises(InputError):
        report.choose_winner(trained.iloc[:0], "2048x24")


def test_summary_markdown_has_winner_runs_fits_and_provenance(
    points, latency, trained, fits, tmp_path
):
    accuracy = pd.DataFrame(
        {
            "run": [*points["run"].unique(), *("candidates/" + trained["name"])],
            "average": [0.3, 0.31, 0.35, 0.36, 0.52, 0.53, 0.53],
            "arc_easy": [0.5] * 7,
        }
    )
    candidates = trained.assign(
        n_heads=16, loss_pred=[2.9, 2.85, 2.87], feasible=1, selected=1, rank=[3, 1, 2]
    )
    markdown = report.summary_markdown(
        points=points,
        latency=latency,
        accuracy=accuracy,
        fits=fits,
        candidates=candidates,
        trained=trained,
        baseline="2048x24",
        provenance={
            "config_hash": "abc123def456",
            "git_commit": "deadbeef",
            "versions": {"numpy": "2.4.6"},
            "device": "cpu",
        },
        figures=["latency_vs_layers"],
    )
    assert "**Winner: `3072x12`**" in markdown and f"{3.61 / 1.96:.2f}x" in markdown
    for run in accuracy["run"]:
        assert f"| {run} |" in markdown
    assert "abc123def456" in markdown and "numpy 2.4.6" in markdown
    assert "A came out negative" in markdown
    assert "(latency_vs_layers.png)" in markdown and "(latency_vs_layers.svg)" in markdown
    # accuracy only on a run's last boundary: s1-l1 at 40N has it, at 20N not
    assert (
        "| s1-l1 | d64-l1-h4 | 1,000,000 | 20,000,000 | 64 | 3.9000 | 3.9500 | 2.000 | - |"
        in markdown
    )
    assert "| 0.300 |" in markdown


def test_write_report_writes_every_file_and_the_same_bytes_twice(latency, tmp_path):
    def write(out):
        figures = {"latency_vs_layers": report.fig_latency_vs_layers(latency)}
        return report.write_report(out, figures, "# report\n")

    written = write(tmp_path / "a")
    assert [p.name for p in written] == [
        "latency_vs_layers.png",
        "latency_vs_layers.svg",
        "summary.md",
    ]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in written]
    again = write(tmp_path / "b")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]
