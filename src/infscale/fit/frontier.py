"""What a fitted law says about spending compute: the IsoFLOP curves and the compute-optimal
frontier (the standard views the reviewers asked for), and what it says about shape at fixed
N and D (the loss along R, paper Figs 1 and 5).

Training compute is C = 6·N·D FLOPs; at a fixed C a model of N parameters trains on C / (6N)
tokens. The curves are taken on a log-spaced N grid a decade beyond the points' N on either
side, so that an optimum at an end of the grid is seen to be no optimum. Laws predicted from
arrays (``infscale.fit.laws.predict``: the paper's two); the inference law at a fixed R
(``ratio``, which the Chinchilla law ignores).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from infscale.fit.laws import predict

N_GRID = 400  # points per log-spaced N axis
FRONTIER_BUDGETS = 60  # budgets along the frontier, from half the least compute to twice the most
ISOFLOP_BUDGETS = 3  # IsoFLOP curves over the points' compute
RATIO_GRID = 100  # points per log-spaced R axis
RATIO_MARGIN = 1.3  # the R axis reaches this factor beyond a group's R range on either side


def training_compute(N: ArrayLike, D: ArrayLike) -> np.ndarray:
    """The standard training-compute estimate C = 6·N·D FLOPs."""
    return 6.0 * np.asarray(N, dtype=float) * np.asarray(D, dtype=float)


def n_range(N: ArrayLike) -> tuple[float, float]:
    """The N axis of the curves: a decade beyond the points' N on either side."""
    N = np.asarray(N, dtype=float)
    return float(N.min()) / 10, float(N.max()) * 10


class IsoFlop(NamedTuple):
    """One budget's curve: N on the grid, the predicted loss at each, and the index of the
    optimum (None when the lowest loss is at an end of the grid: no optimum inside it)."""

    compute: float
    n: np.ndarray
    loss: np.ndarray
    best: int | None


def isoflop_curve(
    fit: Mapping[str, Any], compute: float, n_range: tuple[float, float], ratio: float | None = None
) -> IsoFlop:
    """The predicted loss of every N on the grid trained on C / (6N) tokens (at R = ``ratio``,
    which only the inference law reads)."""
    n = np.geomspace(*n_range, N_GRID)
    loss = predict(fit, n, compute / (6.0 * n), None if ratio is None else np.full_like(n, ratio))
    best = int(np.nanargmin(loss))
    return IsoFlop(float(compute), n, loss, best if 0 < best < len(n) - 1 else None)


def isoflop_budgets(compute: ArrayLike, count: int) -> np.ndarray:
    """``count`` budgets log-spaced over the points' compute (one when all are equal)."""
    compute = np.asarray(compute, dtype=float)
    low, high = compute.min(), compute.max()
    return np.array([low]) if np.isclose(low, high) else np.geomspace(low, high, count)


def isoflop_curves(
    fit: Mapping[str, Any],
    N: ArrayLike,
    D: ArrayLike,
    count: int = ISOFLOP_BUDGETS,
    ratio: float | None = None,
) -> list[IsoFlop]:
    """The IsoFLOP curves of ``count`` budgets spanning the compute of the points (N, D)."""
    budgets = isoflop_budgets(training_compute(N, D), count)
    return [isoflop_curve(fit, c, n_range(N), ratio) for c in budgets]


def compute_optimal_frontier(
    fit: Mapping[str, Any],
    N: ArrayLike,
    D: ArrayLike,
    count: int = FRONTIER_BUDGETS,
    ratio: float | None = None,
) -> pd.DataFrame:
    """min over N of L(N, C / 6N) at ``count`` budgets C from half the points' least compute to
    twice their most: columns ``C``, ``N`` (the grid's best) and ``loss``."""
    compute = training_compute(N, D)
    budgets = np.geomspace(compute.min() / 2, compute.max() * 2, count)
    curves = [isoflop_curve(fit, c, n_range(N), ratio) for c in budgets]
    best = [int(np.nanargmin(curve.loss)) for curve in curves]
    return pd.DataFrame(
        {
            "C": budgets,
            "N": [curve.n[i] for curve, i in zip(curves, best, strict=True)],
            "loss": [curve.loss[i] for curve, i in zip(curves, best, strict=True)],
        }
    )


def ratio_curves(points: pd.DataFrame, fit: Mapping[str, Any]) -> pd.DataFrame:
    """The law's loss along R for every size group and token multiplier of ``points``, at the
    group's mean N and that multiplier's mean D, over the group's R range widened by
    RATIO_MARGIN: columns ``size_group``, ``multiplier``, ``R``, ``loss``."""
    curves = []
    for group, rows in points.groupby("size_group", sort=False):
        ratios = np.geomspace(
            rows["R"].min() / RATIO_MARGIN, rows["R"].max() * RATIO_MARGIN, RATIO_GRID
        )
        for mult, at_mult in rows.groupby("multiplier", sort=True):
            n = np.full_like(ratios, at_mult["N"].mean())
            d = np.full_like(ratios, at_mult["D"].mean())
            curves.append(
                pd.DataFrame(
                    {
                        "size_group": group,
                        "multiplier": mult,
                        "R": ratios,
                        "loss": predict(fit, n, d, ratios),
                    }
                )
            )
    return pd.concat(curves, ignore_index=True)
