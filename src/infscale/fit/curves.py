"""The curves a fitted law draws, as tables (results/fit/curves/): the IsoFLOP curves, the
compute-optimal frontier, the loss along R, and every point's training compute with the IsoFLOP
budget it is shown with. The report draws these files; the maths is infscale.fit.frontier's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from infscale.fit.frontier import (
    ISOFLOP_BUDGETS,
    compute_optimal_frontier,
    isoflop_budgets,
    isoflop_curves,
    ratio_curves,
    training_compute,
)

POINT_COLUMNS = ["run", "size_group", "N", "D", "loss"]


def isoflop_table(
    fits: Mapping[str, Mapping[str, Any]], N: ArrayLike, D: ArrayLike, ratio: float
) -> pd.DataFrame:
    """Each law's IsoFLOP curves over the compute of the points (N, D), at R = ``ratio`` (read
    by the inference law only): columns ``law, budget`` (the curve's index), ``C, R, N, loss``
    and ``optimum`` (1 at the curve's lowest loss when it lies inside the N grid, else 0)."""
    frames = []
    for law, fit in fits.items():
        for i, curve in enumerate(isoflop_curves(fit, N, D, ratio=ratio)):
            optimum = np.zeros(len(curve.n), dtype=int)
            if curve.best is not None:
                optimum[curve.best] = 1
            frames.append(
                pd.DataFrame(
                    {
                        "law": law,
                        "budget": i,
                        "C": curve.compute,
                        "R": ratio,
                        "N": curve.n,
                        "loss": curve.loss,
                        "optimum": optimum,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def nearest_budget(compute: ArrayLike, budgets: ArrayLike) -> np.ndarray:
    """The index of the budget nearest to each compute in log C, or -1 where the nearest lies
    farther than half the budgets' least spacing (a factor 2 when there is one budget)."""
    log_c, log_levels = np.log(np.asarray(compute, float)), np.log(np.asarray(budgets, float))
    half = np.diff(log_levels).min() / 2 if len(log_levels) > 1 else np.log(2)
    nearest = np.abs(log_c[:, None] - log_levels[None, :]).argmin(axis=1)
    near = np.abs(log_c - log_levels[nearest]) <= half * (1 + 1e-9)
    return np.where(near, nearest, -1)


def compute_points(points: pd.DataFrame, count: int = ISOFLOP_BUDGETS) -> pd.DataFrame:
    """Every loss point with its training compute ``C`` = 6·N·D and the IsoFLOP budget
    (isoflop_table's ``budget``) it is shown with, -1 for none."""
    compute = training_compute(points["N"], points["D"])
    budget = nearest_budget(compute, isoflop_budgets(compute, count))
    return points[POINT_COLUMNS].assign(C=compute, budget=budget)


def frontier_table(fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike) -> pd.DataFrame:
    """The law's compute-optimal frontier over the points' compute: ``law, C, N, loss``."""
    frontier = compute_optimal_frontier(fit, N, D)
    return frontier.assign(law=str(fit["law"]))[["law", "C", "N", "loss"]]


def ratio_table(points: pd.DataFrame, fit: Mapping[str, Any]) -> pd.DataFrame:
    """The law's loss along R per size group and multiplier (frontier.ratio_curves), with the
    law and its tie: ``law, tie, size_group, multiplier, R, loss``."""
    curves = ratio_curves(points, fit)
    named = curves.assign(law=str(fit["law"]), tie=str(fit["tie"]))
    return named[["law", "tie", "size_group", "multiplier", "R", "loss"]]


def ratio_fit(chosen: Mapping[str, Any], inference: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fit whose loss along R is drawn: the selection's law where it reads R (the inference
    law), else the inference law's fit on the selection's fit set."""
    return chosen if chosen["law"] == "inference" else inference
