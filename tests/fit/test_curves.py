"""The curve tables the fit stage writes for the report (results/fit/curves/) against the
Chinchilla law's closed-form optimum, the inference law by hand, and budgets chosen so that the
nearest one is known."""

from __future__ import annotations

import pandas as pd
import pytest
from test_frontier import D, N, P, optimum  # the Chinchilla world and its closed-form optimum

from infscale.fit.curves import (
    compute_points,
    frontier_table,
    isoflop_table,
    nearest_budget,
    ratio_fit,
    ratio_table,
)
from infscale.fit.frontier import FRONTIER_BUDGETS, N_GRID, RATIO_GRID, RATIO_MARGIN

CHINCHILLA = {"law": "chinchilla", "tie": "all", "params": P}
INFERENCE = {"law": "inference", "tie": "all", "params": P | {"gamma": 0.5, "epsilon": 0.01}}


def test_isoflop_table_marks_the_closed_form_optimum_of_each_budget():
    table = isoflop_table({"chinchilla": CHINCHILLA, "inference": INFERENCE}, N, D, 40.0)
    assert list(pd.unique(table["law"])) == ["chinchilla", "inference"]
    assert len(table) == 2 * 3 * N_GRID and (table["R"] == 40.0).all()
    chinchilla = table[table["law"] == "chinchilla"]
    budgets = chinchilla.groupby("budget")["C"].first()
    assert budgets.to_numpy() == pytest.approx([1.2e14, 1.2e14 * 13.52**0.5, 1.6224e15])
    best = chinchilla[chinchilla["optimum"] == 1]
    assert best["budget"].tolist() == [0, 1, 2]  # one optimum per curve, each inside the grid
    for c, n, loss in zip(best["C"], best["N"], best["loss"], strict=True):
        n_star, loss_star = optimum(c)
        assert n == pytest.approx(n_star, rel=0.03)  # the grid's spacing: 2.3%
        assert loss == pytest.approx(loss_star, rel=1e-4)
    # the inference law at R = 40 is the Chinchilla law times (1 + 0.01·sqrt(40))
    inference = table[table["law"] == "inference"]
    factor = 1 + 0.01 * 40**0.5
    assert inference["loss"].to_numpy() == pytest.approx(chinchilla["loss"].to_numpy() * factor)


def test_isoflop_table_marks_no_optimum_at_an_end_of_the_grid():
    flat = CHINCHILLA | {"params": P | {"alpha": 0.0}}  # no N penalty: bigger is always better
    table = isoflop_table({"chinchilla": flat}, N, D, 40.0)
    assert table["optimum"].sum() == 0


def test_nearest_budget_within_half_the_spacing():
    budgets = [1e14, 1e15, 1e16]  # half the spacing: half a decade
    compute = [1.2e14, 3.1e14, 3.2e14, 9e15, 3.1e16, 3.2e16, 3.1e13]
    assert nearest_budget(compute, budgets).tolist() == [0, 0, 1, 2, 2, -1, -1]
    assert nearest_budget([1.9e14, 2.1e14, 0.6e14], [1e14]).tolist() == [0, -1, 0]  # factor 2


def test_compute_points_gives_6nd_and_each_points_budget():
    points = pd.DataFrame(
        {
            "run": ["a", "a", "b", "b"],
            "size_group": ["s1", "s1", "s2", "s2"],
            "N": N,
            "D": D,
            "loss": [4.0, 3.8, 3.6, 3.5],
            "R": [8.0, 8.0, 16.0, 16.0],
        }
    )
    table = compute_points(points)
    assert list(table.columns) == ["run", "size_group", "N", "D", "loss", "C", "budget"]
    assert table["C"].tolist() == pytest.approx([1.2e14, 2.4e14, 8.112e14, 1.6224e15])
    # budgets 1.2e14, 4.41e14, 1.62e15 (log-spaced by sqrt(13.52)): each point's nearest
    assert table["budget"].tolist() == [0, 1, 1, 2]


def test_frontier_table_follows_the_closed_form_optimum():
    table = frontier_table(CHINCHILLA, N, D)
    assert list(table.columns) == ["law", "C", "N", "loss"] and len(table) == FRONTIER_BUDGETS
    assert table["C"].iloc[0] == pytest.approx(0.6e14) and table["C"].iloc[-1] == pytest.approx(
        2 * 1.6224e15
    )
    for c, n, loss in zip(table["C"], table["N"], table["loss"], strict=True):
        n_star, loss_star = optimum(c)
        assert n == pytest.approx(n_star, rel=0.03)
        assert loss == pytest.approx(loss_star, rel=1e-4)
    assert (table["law"] == "chinchilla").all()


def test_ratio_table_is_the_law_along_r_at_each_groups_mean_n_and_d():
    points = pd.DataFrame(
        {
            "size_group": ["s1", "s1", "s1", "s1"],
            "multiplier": [20, 20, 40, 40],
            "N": [1e6, 1.2e6, 1e6, 1.2e6],
            "D": [2e7, 2.4e7, 4e7, 4.8e7],
            "R": [16.0, 64.0, 16.0, 64.0],
        }
    )
    table = ratio_table(points, INFERENCE)
    assert list(table.columns) == ["law", "tie", "size_group", "multiplier", "R", "loss"]
    assert len(table) == 2 * RATIO_GRID and (table["law"] == "inference").all()
    first = table.iloc[0]
    assert first["R"] == pytest.approx(16.0 / RATIO_MARGIN)
    assert table["R"].iloc[RATIO_GRID - 1] == pytest.approx(64.0 * RATIO_MARGIN)
    n, d, r = 1.1e6, 2.2e7, first["R"]
    expected = (1.0 + 10.0 * n**-0.3 + 20.0 * d**-0.3) * (1 + 0.01 * r**0.5)
    assert first["loss"] == pytest.approx(expected, rel=1e-12)


def test_ratio_fit_is_the_chosen_law_only_where_it_reads_r():
    chosen = INFERENCE | {"tie": "none"}
    assert ratio_fit(chosen, INFERENCE) is chosen
    assert ratio_fit(CHINCHILLA, INFERENCE) is INFERENCE
