"""Loss -> accuracy, directly and in the OLMo ladder's two stages (loss, task loss, accuracy)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.fit.downstream import (
    Point,
    downstream,
    fit_sigmoid,
    fit_task_loss,
    predict_accuracy,
    predict_sigmoid,
    predict_task_loss,
    r2,
)

STAGE1 = {"a": 0.35, "b": 1.2}  # task loss (nats/byte) from the LM loss
STAGE2 = {"a": 0.45, "k": -4.0, "x0": 1.3, "b": 0.25}  # accuracy from the task loss


def ladder(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Task loss and accuracy of the two-stage form, exactly."""
    task = predict_task_loss(STAGE1, loss)
    return task, predict_sigmoid(STAGE2, task)


def points(loss: np.ndarray) -> dict[str, Point]:
    task, acc = ladder(loss)
    return {f"r{i}": Point(*p) for i, p in enumerate(zip(loss, task, acc, strict=True))}


def test_stages_recover_known_parameters() -> None:
    loss = np.linspace(2.5, 6.0, 10)
    task, acc = ladder(loss)
    assert fit_task_loss(loss, task) == pytest.approx(STAGE1, rel=1e-6)
    assert fit_sigmoid(task, acc) == pytest.approx(STAGE2, rel=1e-4)
    # The sigmoid's start is not its answer: a different truth is found as well.
    other = {"a": 0.3, "k": -12.0, "x0": 1.1, "b": 0.4}
    assert fit_sigmoid(task, predict_sigmoid(other, task)) == pytest.approx(other, rel=1e-4)


def test_two_stages_predict_candidates_and_report_r2_on_the_same_points() -> None:
    rng = np.random.default_rng(0)
    loss = np.linspace(2.5, 6.0, 12)
    grid = points(loss)
    result = downstream(grid, points(np.array([2.2, 4.1])))
    stage1, stage2 = result["two_stage"]["task_loss"], result["two_stage"]["accuracy"]
    assert stage1["converged"] and stage2["converged"] and stage1["error"] is None
    assert stage1["params"] == pytest.approx(STAGE1, rel=1e-6)
    assert stage2["params"] == pytest.approx(STAGE2, rel=1e-4)
    assert stage1["r2"] == pytest.approx(1.0) and stage2["r2"] == pytest.approx(1.0)
    metrics = result["metrics"]
    assert metrics["two_stage_grid_r2"] == pytest.approx(1.0)
    acc = np.array([p.accuracy for p in grid.values()])
    assert metrics["grid_r2"] == pytest.approx(r2(acc, predict_accuracy(result["params"], loss)))
    assert metrics["grid_r2"] < metrics["two_stage_grid_r2"]  # the sigmoid is not Gadre's form
    task, acc = ladder(np.array([2.2, 4.1]))
    for pred, t, a in zip(result["predictions"], task, acc, strict=True):
        assert pred["task_loss_pred"] == pytest.approx(t, rel=1e-6)
        assert pred["acc_pred_two_stage"] == pytest.approx(a, rel=1e-4)
        assert pred["acc_actual"] == pytest.approx(a) and pred["task_loss_actual"] == t
        assert pred["acc_pred"] == pytest.approx(
            predict_accuracy(result["params"], [pred["loss"]])[0]
        )
    assert metrics["two_stage_candidate_mae"] < 1e-4
    json.dumps(result, allow_nan=False)
    # Noise lowers every R² below one, and the fit still stands.
    noisy = {
        name: p._replace(accuracy=p.accuracy + rng.normal(0, 0.01)) for name, p in grid.items()
    }
    metrics = downstream(noisy, {})["metrics"]
    assert 0.5 < metrics["two_stage_grid_r2"] < 1.0 and metrics["two_stage_candidate_mae"] is None


def test_a_stage_that_cannot_be_fitted_is_reported_not_raised() -> None:
    few = points(np.linspace(3.0, 5.0, 4))  # 4 points for the sigmoid's 4 parameters
    result = downstream(few, points(np.array([2.9])))
    stage1, stage2 = result["two_stage"]["task_loss"], result["two_stage"]["accuracy"]
    assert stage1["converged"] and not stage2["converged"]
    assert "need at least 5" in stage2["error"] and stage2["params"] is None
    assert result["metrics"]["two_stage_grid_r2"] is None
    (pred,) = result["predictions"]
    assert pred["task_loss_pred"] is not None and pred["acc_pred_two_stage"] is None
    assert result["metrics"]["grid_r2"] is not None  # the direct fit is still made
    json.dumps(result, allow_nan=False)
    flat = {n: p._replace(task_loss=2.0) for n, p in points(np.linspace(3, 5, 8)).items()}
    stage2 = downstream(flat, {})["two_stage"]["accuracy"]
    assert not stage2["converged"] and "every task loss is the same" in stage2["error"]
    with pytest.raises(InputError, match="positive"):
        fit_task_loss([1.0, 2.0, 3.0], [0.5, -0.1, 0.2])
