"""Stability of the top-k: the share of a fit's bootstrap resamples under which each candidate
is selected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infscale.select.stability import selection_frequency

PARAMS = {"A": 10.0, "B": 20.0, "E": 1.0, "alpha": 0.3, "beta": 0.3, "gamma": 0.5}
FIT = {"law": "inference", "method": "lm", "tie": "all", "params": PARAMS | {"epsilon": 0.01}}
NO_BUDGETS = {"max_params": None, "max_tokens": None, "max_latency": None}


@pytest.fixture
def candidates() -> pd.DataFrame:
    """wide and deep: equal N and D, R 64 and 4 (epsilon's sign orders them); small: a fifth of
    the parameters, worse under every resample."""
    return pd.DataFrame(
        {
            "name": ["wide", "deep", "small"],
            "d_model": [256, 64, 32],
            "n_layers": [4, 16, 8],
            "N": [1e6, 1e6, 2e5],
            "D": [2e7, 2e7, 2e7],
            "latency_s": [1.0, 3.0, 0.5],
        }
    )


def samples(epsilons: list[float]) -> dict[str, list[float]]:
    return {p: [v] * len(epsilons) for p, v in PARAMS.items()} | {"epsilon": epsilons}


def test_identical_samples_choose_the_same_candidates_every_time(candidates):
    found = selection_frequency(samples([0.01] * 5), FIT, candidates, 1, NO_BUDGETS)
    # epsilon > 0: the loss grows with R, so deep (R 4) beats wide (R 64)
    assert found.chosen_frac.tolist() == [0.0, 1.0, 0.0]
    assert (found.resamples, found.skipped) == (5, 0)
    two = selection_frequency(samples([0.01] * 5), FIT, candidates, 2, NO_BUDGETS)
    assert two.chosen_frac.tolist() == [1.0, 1.0, 0.0]


def test_samples_that_swap_two_candidates_half_the_time_give_one_half(candidates):
    found = selection_frequency(samples([0.01, -0.01] * 4), FIT, candidates, 1, NO_BUDGETS)
    assert found.chosen_frac.tolist() == [0.5, 0.5, 0.0]


def test_budgets_apply_to_every_resample(candidates):
    budgets = NO_BUDGETS | {"max_latency": 2.0}  # deep is too slow
    found = selection_frequency(samples([0.01] * 3), FIT, candidates, 1, budgets)
    assert found.chosen_frac.tolist() == [1.0, 0.0, 0.0]


def test_resamples_predicting_a_loss_that_is_not_positive_are_skipped(candidates):
    # epsilon -1: 1 - R^0.5 < 0 for every candidate (R > 1)
    found = selection_frequency(samples([0.01, -1.0, 0.01]), FIT, candidates, 1, NO_BUDGETS)
    assert (found.resamples, found.skipped) == (2, 1)
    assert found.chosen_frac.tolist() == [0.0, 1.0, 0.0]
    none = selection_frequency(samples([-1.0]), FIT, candidates, 1, NO_BUDGETS)
    assert np.isnan(none.chosen_frac).all() and none.skipped == 1
