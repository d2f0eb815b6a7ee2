"""The evaluated models: every grid run and trained candidate with its accuracy and latency,
the table the release pick (infscale.select.winner) and the accuracy-latency Pareto front
(infscale.select.pareto) are decided over."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from infscale.fit.frontier import training_compute
from infscale.grid import CANDIDATES
from infscale.select.pareto import pareto_front
from infscale.select.winner import eval_summary, measured_log_se


def accuracy_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per evaluated run ({run: eval JSON}): ``run``, what the winner is decided on
    (infscale.select.winner.EVAL_COLUMNS: the average accuracy, the smooth metric, their
    standard errors) and each task's value."""
    return pd.DataFrame(
        [
            {
                "run": run,
                **eval_summary(result),
                **{name: task["value"] for name, task in result["tasks"].items()},
            }
            for run, result in results.items()
        ]
    )


def last_boundaries(points: pd.DataFrame) -> pd.DataFrame:
    """Each run's last loss point (largest D): the model that was evaluated and timed."""
    return points.sort_values("D", kind="stable").drop_duplicates("run", keep="last")


def trained_candidates(models: pd.DataFrame) -> pd.DataFrame:
    """The trained candidates' rows of an evaluated_models table."""
    return models[models["size_group"] == CANDIDATES]


FLOP_PARTS = ("grid", "candidates", "total")  # the sums training_flops.json holds


def training_flops(models: pd.DataFrame) -> dict[str, float]:
    """6·N·D summed over the evaluated models (models.csv: each run at its last boundary, to
    which it trains) of the grid, of the trained candidates, and of both."""
    compute = training_compute(models["N"], models["D"])
    trained = (models["size_group"] == CANDIDATES).to_numpy()
    grid, candidates = float(compute[~trained].sum()), float(compute[trained].sum())
    return dict(zip(FLOP_PARTS, (grid, candidates, grid + candidates), strict=True))


def evaluated_models(
    points: pd.DataFrame,
    trained_points: pd.DataFrame,
    accuracy: pd.DataFrame,
    latency: pd.DataFrame,
    selected: pd.DataFrame,
) -> pd.DataFrame:
    """One row per evaluated model, grid runs then trained candidates: the run's last point
    with its accuracy (``average`` and per task), ``name``, ``latency_s``, ``latency_log_se``
    (infscale.select.winner.latency_log_se of its shape's measurement) and ``pareto`` (1: on
    the accuracy-latency front of all of them, paper Fig. 1). A grid model's latency is its
    shape's measurement; a candidate's is what the selection used."""
    noise = latency.assign(latency_log_se=measured_log_se(latency))
    grid = last_boundaries(points).merge(
        noise[["shape", "median_s", "latency_log_se"]].rename(columns={"median_s": "latency_s"}),
        on="shape",
        how="left",
    )
    grid = grid.assign(name=grid["run"])
    trained = last_boundaries(trained_points)
    trained = (
        trained.assign(name=trained["variant"].astype(str))
        .merge(selected[["name", "latency_s"]], on="name", how="left")
        .merge(noise[["shape", "latency_log_se"]], on="shape", how="left")
    )
    models = pd.concat([grid, trained], ignore_index=True).merge(accuracy, on="run", how="left")
    front = pareto_front(models["latency_s"], models["average"])
    return models.assign(pareto=front.astype(int))
