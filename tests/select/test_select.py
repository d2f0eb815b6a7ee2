"""Selection as an integer program: exactly k, the lowest predicted losses, every budget kept."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.select.ilp import select_top_k

LOSS = [3.10, 3.00, 3.05, 2.95, 3.20, 2.90]


@pytest.fixture
def candidates(candidates_1b: pd.DataFrame) -> pd.DataFrame:
    return candidates_1b


def chosen(table: pd.DataFrame) -> list[str]:
    return list(table.loc[table["selected"] == 1].sort_values("rank")["name"])


def test_without_budgets_picks_the_k_lowest_losses_in_rank_order(candidates):
    table = select_top_k(candidates, LOSS, 3)
    assert chosen(table) == ["f", "d", "b"]
    assert list(table["name"]) == list(candidates["name"])  # every candidate, input order
    assert table["loss_pred"].tolist() == LOSS
    assert table["feasible"].tolist() == [1] * 6
    assert table["rank"].isna().sum() == 3


@pytest.mark.parametrize(
    ("budget", "expected", "infeasible"),
    [
        ({"max_latency": 3.0}, ["d", "c"], {"a", "b", "f"}),
        ({"max_params": 1.5e9}, ["f", "d"], {"b", "c", "e"}),
        ({"max_tokens": 3e10}, ["d", "b"], {"f"}),
        (
            {"max_params": 1.5e9, "max_tokens": 3e10, "max_latency": 4.0},
            ["d", "a"],
            {"b", "c", "e", "f"},
        ),
    ],
)
def test_each_budget_is_respected(candidates, budget, expected, infeasible):
    table = select_top_k(candidates, LOSS, 2, **budget)
    assert chosen(table) == expected
    assert set(table.loc[table["feasible"] == 0, "name"]) == infeasible
    picked = table[table["selected"] == 1]
    assert (picked["latency_s"] <= budget.get("max_latency", np.inf)).all()
    assert (picked["N"] <= budget.get("max_params", np.inf)).all()
    assert (picked["D"] <= budget.get("max_tokens", np.inf)).all()


def test_a_candidate_exactly_at_the_budget_is_feasible(candidates):
    table = select_top_k(candidates, LOSS, 1, max_latency=2.0, max_params=1.44e9)
    assert chosen(table) == ["d"]


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    n, k = 15, 3
    frame = pd.DataFrame(
        {
            "name": [f"c{i}" for i in range(n)],
            "d_model": 64,
            "n_layers": 4,
            "N": rng.uniform(1, 2, n) * 1e6,
            "D": rng.uniform(1, 2, n) * 1e7,
            "latency_s": rng.uniform(0.5, 2.0, n),
        }
    )
    loss = rng.uniform(3, 4, n)
    # Each budget at its column's 80th percentile: about half the candidates are feasible.
    budget = {
        key: float(np.quantile(frame[column], 0.8))
        for key, column in (("max_params", "N"), ("max_tokens", "D"), ("max_latency", "latency_s"))
    }
    feasible = [
        i
        for i in range(n)
        if frame["N"][i] <= budget["max_params"]
        and frame["D"][i] <= budget["max_tokens"]
        and frame["latency_s"][i] <= budget["max_latency"]
    ]
    assert len(feasible) >= k
    best = min(itertools.combinations(feasible, k), key=lambda c: loss[list(c)].sum())
    table = select_top_k(frame, loss, k, **budget)
    assert table["selected"].sum() == k
    assert set(np.flatnonzero(table["selected"])) == set(best)


def test_too_few_feasible_is_an_error_naming_the_count(candidates):
    with pytest.raises(InputError, match=r"only 2 of 6 candidates are feasible .*k = 3"):
        select_top_k(candidates, LOSS, 3, max_latency=2.5)


def test_k_above_the_candidate_count_is_an_error(candidates):
    with pytest.raises(InputError, match="only 6 of 6"):
        select_top_k(candidates, LOSS, 7)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, loss: (c.drop(columns="latency_s"), loss), "missing column"),
        (lambda c, loss: (c.assign(name=["a", "a", "c", "d", "e", "f"]), loss), "appear twice"),
        (lambda c, loss: (c, [*loss[:5], np.nan]), "predicted loss"),
        (lambda c, loss: (c, loss[:5]), "5 predicted losses for 6"),
    ],
)
def test_bad_candidates_are_input_errors(candidates, change, message):
    frame, loss = change(candidates, LOSS)
    with pytest.raises(InputError, match=message):
        select_top_k(frame, loss, 2)


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 2, "max_latency": -1.0}])
def test_bad_k_or_budget_is_an_input_error(candidates, kwargs):
    with pytest.raises(InputError):
        select_top_k(candidates, LOSS, **kwargs)
