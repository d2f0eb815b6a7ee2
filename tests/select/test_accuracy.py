"""The accuracy the loss -> accuracy fit predicts for the selection (results/select/accuracy.csv,
accuracy_curve.csv) and the training FLOPs of the evaluated models (training_flops.json)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infscale.grid import CANDIDATES
from infscale.select.accuracy import CURVE_POINTS, accuracy_curve, candidate_accuracy
from infscale.select.models import training_flops

PARAMS = {"E": 0.9, "a": 2.0, "b": 0.5}  # 1 - acc = E - a·exp(-b·L)


def by_hand(loss: float) -> float:
    return 1.0 - (0.9 - 2.0 * math.exp(-0.5 * loss))


def test_candidate_accuracy_is_the_fit_at_each_predicted_loss():
    selected = pd.DataFrame(
        {"name": ["a", "b", "c"], "loss_pred": [3.0, 2.5, np.nan], "rank": [1, 2, None]}
    )
    table = candidate_accuracy(selected, PARAMS)
    assert list(table.columns) == ["name", "loss_pred", "acc_pred"]
    assert table["acc_pred"].iloc[:2].tolist() == pytest.approx([by_hand(3.0), by_hand(2.5)])
    assert math.isnan(table["acc_pred"].iloc[2])  # no predicted loss, no predicted accuracy


def test_accuracy_curve_spans_the_evaluated_models_loss():
    models = pd.DataFrame({"loss": [3.2, 2.8, 4.0]})
    curve = accuracy_curve(models, PARAMS)
    assert len(curve) == CURVE_POINTS
    assert (curve["loss"].iloc[0], curve["loss"].iloc[-1]) == (2.8, 4.0)
    assert curve["acc_pred"].iloc[-1] == pytest.approx(by_hand(4.0))
    assert curve["acc_pred"].is_monotonic_decreasing  # more loss, less accuracy


def test_training_flops_sums_6nd_over_grid_and_candidates():
    models = pd.DataFrame(
        {
            "size_group": ["s1", "s2", CANDIDATES],
            "N": [1e6, 2e6, 3e6],
            "D": [2e7, 4e7, 6e7],
        }
    )
    flops = training_flops(models)
    assert flops["grid"] == pytest.approx(6 * (1e6 * 2e7 + 2e6 * 4e7))
    assert flops["candidates"] == pytest.approx(6 * 3e6 * 6e7)
    assert flops["total"] == pytest.approx(6 * (2e13 + 8e13 + 18e13))
