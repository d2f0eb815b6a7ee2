"""The IsoFLOP curves and the compute-optimal frontier against the Chinchilla law's closed-form
optimum."""

from __future__ import annotations

import numpy as np
import pytest

from infscale.fit.frontier import (
    N_GRID,
    compute_optimal_frontier,
    isoflop_budgets,
    isoflop_curve,
    isoflop_curves,
    n_range,
    training_compute,
)

P = {"A": 10.0, "B": 20.0, "E": 1.0, "alpha": 0.3, "beta": 0.3}
CHINCHILLA = {"law": "chinchilla", "params": P}
N = np.array([1e6, 1e6, 2.6e6, 2.6e6])
D = np.array([2e7, 4e7, 5.2e7, 1.04e8])


def optimum(compute: float) -> tuple[float, float]:
    """N* and L* of the Chinchilla law at compute C (D = C / 6N), by hand: dL/dN = 0."""
    a, b = P["alpha"], P["beta"]
    n = (a * P["A"] / (b * P["B"])) ** (1 / (a + b)) * (compute / 6) ** (b / (a + b))
    return n, P["E"] + P["A"] * n**-a + P["B"] * (compute / (6 * n)) ** -b


def test_training_compute_and_the_n_axis():
    assert training_compute([1e6, 2e6], [2e7, 1e7]).tolist() == [1.2e14, 1.2e14]
    assert n_range(N) == (1e5, 2.6e7)


def test_isoflop_curve_finds_the_closed_form_optimum():
    compute = 1e15
    curve = isoflop_curve(CHINCHILLA, compute, n_range(N))
    n_star, loss_star = optimum(compute)
    assert len(curve.n) == N_GRID and curve.compute == compute
    assert curve.n[curve.best] == pytest.approx(n_star, rel=0.03)  # grid spacing: 2.3%
    assert curve.loss[curve.best] == pytest.approx(loss_star, rel=1e-4)
    assert curve.loss[0] > curve.loss[curve.best] < curve.loss[-1]


def test_an_optimum_at_an_end_of_the_grid_is_none():
    flat = {"law": "chinchilla", "params": P | {"alpha": 0.0}}  # no N penalty: bigger is better
    assert isoflop_curve(flat, 1e15, n_range(N)).best is None


def test_isoflop_budgets_span_the_points_compute():
    compute = training_compute(N, D)
    assert isoflop_budgets(compute, 3) == pytest.approx(
        np.geomspace(compute.min(), compute.max(), 3)
    )
    assert isoflop_budgets([5e14, 5e14], 3).tolist() == [5e14]
    curves = isoflop_curves(CHINCHILLA, N, D, 3)
    assert [c.compute for c in curves] == pytest.approx(isoflop_budgets(compute, 3).tolist())


def test_the_inference_law_is_taken_at_the_given_ratio():
    inference = {"law": "inference", "params": P | {"gamma": 0.3, "epsilon": 0.01}}
    curve = isoflop_curve(inference, 1e15, n_range(N), ratio=64.0)
    chinchilla = isoflop_curve(CHINCHILLA, 1e15, n_range(N), ratio=64.0)  # ratio ignored
    assert curve.loss == pytest.approx(chinchilla.loss * (1 + 0.01 * 64.0**0.3))


def test_the_frontier_is_the_lowest_loss_at_each_budget():
    frontier = compute_optimal_frontier(CHINCHILLA, N, D, count=10)
    compute = training_compute(N, D)
    assert list(frontier.columns) == ["C", "N", "loss"]
    assert frontier["C"].iloc[0] == pytest.approx(compute.min() / 2)
    assert frontier["C"].iloc[-1] == pytest.approx(compute.max() * 2)
    for c, n, loss in frontier.itertuples(index=False):
        assert n == pytest.approx(optimum(c)[0], rel=0.03)
        assert loss == pytest.approx(optimum(c)[1], rel=1e-4)
    assert frontier["loss"].is_monotonic_decreasing
