"""LM loss -> downstream accuracy, directly and in the OLMo ladder's two stages.

Direct (Gadre et al. 2024): ``err = E - a·exp(-b·L)``, err = 1 - accuracy. For a fixed b the model
is linear in (E, a), so the fit is a one-dimensional search over log b (a grid, then a bounded
refinement) with E and a by least squares at each b: deterministic, no start to choose.

Two stages (Bhagia et al. 2024, "Establishing Task Scaling Laws via Compute-Efficient Model
Ladders"): at small scale accuracy sits at chance, but the correct answer's per-byte NLL (the task
loss, :mod:`infscale.evaluate.harness`) still falls smoothly with the LM loss. Stage 1 fits the
task loss as a power law of the LM validation loss, ``task_loss = a·L^b`` (the ladder fits it on
N and D; here on the loss, as the direct fit is); stage 2 the accuracy as the ladder's sigmoid of
the task loss, ``acc = a / (1 + exp(-k·(x - x0))) + b``. Both by ``curve_fit``; a stage that
cannot be fitted is reported as such, the direct fit still stands.

All are fitted on the trained grid (each run's last boundary: the model that was evaluated) and
scored by R² on the same points, then used to predict the candidates' average accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.fit.core import FitError

LOG_B_RANGE = (-4.0, 4.0)  # natural log of b searched over
MAXFEV = 20_000
SIGMOID_STEEPNESS = (1.0, 4.0, 16.0)  # starts for |k|·range(task loss): shallow to sharp
FORMS = {
    "direct": "1 - acc = E - a*exp(-b*loss)",
    "task_loss": "task_loss = a*loss^b",
    "accuracy": "acc = a/(1 + exp(-k*(task_loss - x0))) + b",
}


class Point(NamedTuple):
    """One evaluated model: LM validation loss, task loss (per-byte NLL averaged over the
    tasks) and average accuracy."""

    loss: float
    task_loss: float
    accuracy: float


def _linear(b: float, loss: np.ndarray, err: np.ndarray) -> tuple[float, float, float]:
    """(E, a, residual sum of squares) of the least-squares fit at this b."""
    X = np.column_stack([np.ones_like(loss), -np.exp(-b * loss)])
    (E, a), *_ = np.linalg.lstsq(X, err, rcond=None)
    return float(E), float(a), float(np.sum((X @ [E, a] - err) ** 2))


def _pair(
    x: ArrayLike, y: ArrayLike, names: str, params: str, need: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two finite arrays of one length, of at least ``need`` points for the fit of ``params``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise InputError(f"{names} differ in length")
    if len(x) < need:
        raise InputError(f"{len(x)} point(s) for the parameters {params}: need at least {need}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(f"{names} must be finite")
    return x, y


def fit_accuracy(loss: ArrayLike, accuracy: ArrayLike) -> dict[str, float]:
    """E, a, b of ``1 - accuracy = E - a·exp(-b·loss)`` by least squares on the error."""
    from scipy.optimize import minimize_scalar

    loss, acc = _pair(loss, accuracy, "loss and accuracy", "E, a, b", 3)
    err = 1.0 - acc
    grid = np.linspace(*LOG_B_RANGE, 161)
    rss = [_linear(np.exp(g), loss, err)[2] for g in grid]
    i = int(np.argmin(rss))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(
        lambda g: _linear(np.exp(g), loss, err)[2], bounds=(lo, hi), method="bounded"
    )
    log_b = float(best.x) if best.fun <= rss[i] else float(grid[i])
    E, a, _ = _linear(np.exp(log_b), loss, err)
    if not np.all(np.isfinite([E, a])):
        raise FitError("the accuracy fit did not converge")
    return {"E": E, "a": a, "b": float(np.exp(log_b))}


def predict_accuracy(params: Mapping[str, float], loss: ArrayLike) -> np.ndarray:
    loss = np.asarray(loss, dtype=float)
    return 1.0 - (params["E"] - params["a"] * np.exp(-params["b"] * loss))


def _power(loss: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * loss**b


def _sigmoid(x: np.ndarray, a: float, k: float, x0: float, b: float) -> np.ndarray:
    return a / (1.0 + np.exp(-k * (x - x0))) + b


def fit_task_loss(loss: ArrayLike, task_loss: ArrayLike) -> dict[str, float]:
    """a, b of ``task_loss = a·loss^b``: started from the straight line in log-log, then least
    squares on the task loss itself."""
    from scipy.optimize import curve_fit

    loss, task = _pair(loss, task_loss, "loss and task loss", "a, b", 3)
    if np.any(loss <= 0) or np.any(task <= 0):
        raise InputError("a power law needs positive losses")
    b0, log_a0 = np.polyfit(np.log(loss), np.log(task), 1)
    (a, b), _ = curve_fit(_power, loss, task, p0=[np.exp(log_a0), b0], maxfev=MAXFEV)
    return {"a": float(a), "b": float(b)}


def predict_task_loss(params: Mapping[str, float], loss: ArrayLike) -> np.ndarray:
    return _power(np.asarray(loss, dtype=float), params["a"], params["b"])


def fit_sigmoid(task_loss: ArrayLike, accuracy: ArrayLike) -> dict[str, float]:
    """a, k, x0, b of ``acc = a/(1 + exp(-k·(x - x0))) + b``, the lowest residual from a few
    starts: the span and floor of the accuracies, the middle task loss, the slope's sign and a
    steepness from shallow to sharp over the task losses' range. a, b are bounded to [0, 1] (an
    accuracy's span and floor), which keeps the fit off flat degenerate optima."""
    from scipy.optimize import curve_fit

    # One point more than the parameters, so that R² is not 1 by construction.
    x, acc = _pair(task_loss, accuracy, "task loss and accuracy", "a, k, x0, b", 5)
    span = float(np.ptp(x))
    if span == 0:
        raise InputError("every task loss is the same: no sigmoid to fit")
    sign = -1.0 if np.polyfit(x, acc, 1)[0] < 0 else 1.0
    a0 = max(float(np.ptp(acc)), 1e-3)
    bounds = ([0.0, -np.inf, -np.inf, 0.0], [1.0, np.inf, np.inf, 1.0])
    best, best_rss = None, np.inf
    for steepness in SIGMOID_STEEPNESS:
        p0 = [a0, sign * steepness / span, float(np.median(x)), float(acc.min())]
        try:
            theta, _ = curve_fit(_sigmoid, x, acc, p0=p0, bounds=bounds, maxfev=MAXFEV)
        except RuntimeError:  # this start ran out of evaluations; another may not
            continue
        rss = float(np.sum((_sigmoid(x, *theta) - acc) ** 2))
        if rss < best_rss:
            best, best_rss = theta, rss
    if best is None:
        raise FitError(f"no start of the sigmoid fit converged ({len(SIGMOID_STEEPNESS)} tried)")
    return dict(zip(("a", "k", "x0", "b"), map(float, best), strict=True))


def predict_sigmoid(params: Mapping[str, float], task_loss: ArrayLike) -> np.ndarray:
    x = np.asarray(task_loss, dtype=float)
    return _sigmoid(x, params["a"], params["k"], params["x0"], params["b"])


def r2(actual: ArrayLike, predicted: ArrayLike) -> float | None:
    """Coefficient of determination; None where the actual values do not vary."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    total = float(np.sum((actual - actual.mean()) ** 2))
    return 1.0 - float(np.sum((actual - predicted) ** 2)) / total if total > 0 else None


def _stage(
    fit: Callable[[np.ndarray, np.ndarray], dict[str, float]],
    predict: Callable[[Mapping[str, float], ArrayLike], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
) -> dict[str, Any]:
    """One stage, fitted and scored, or the reason it could not be: never raises for the data."""
    from scipy.optimize import OptimizeWarning

    failed = {"converged": False, "params": None, "r2": None, "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OptimizeWarning)
        try:
            params = fit(x, y)
        except (InputError, RuntimeError, ValueError) as error:
            return failed | {"error": str(error)}
    fitted = predict(params, x)
    if not np.all(np.isfinite(fitted)):
        return failed | {"error": "the fit predicts non-finite values on its own points"}
    return {
        "converged": True,
        "params": params,
        "r2": r2(y, fitted),
        # e.g. "Covariance of the parameters could not be estimated": a parameter not identified
        "warnings": sorted({str(w.message) for w in caught if w.category is OptimizeWarning}),
        "error": None,
    }


def _mae(predicted: list[float | None], actual: list[float]) -> tuple[float | None, float | None]:
    """Mean and max absolute error over the candidates, None without predictions."""
    errors = [abs(p - a) for p, a in zip(predicted, actual, strict=True) if p is not None]
    return (float(np.mean(errors)), float(np.max(errors))) if errors else (None, None)


def downstream(grid: Mapping[str, Point], candidates: Mapping[str, Point]) -> dict[str, Any]:
    """Fit on ``grid`` ({run: Point}), predict ``candidates`` (same form).

    The result is downstream.json: the direct fit's form, params and metrics (on the grid: mse,
    r2 of accuracy; on the candidates: mean and max absolute accuracy error), the two stages
    (``two_stage``: each stage's params, convergence and R²), R² of the direct fit and of the two
    stages chained, from the LM loss, on the same grid points (``metrics``), and one prediction
    per candidate by both routes.
    """
    loss, task, acc = (np.array(column, dtype=float) for column in zip(*grid.values(), strict=True))
    params = fit_accuracy(loss, acc)
    fitted = predict_accuracy(params, loss)
    stage1 = _stage(fit_task_loss, predict_task_loss, loss, task)
    stage2 = _stage(fit_sigmoid, predict_sigmoid, task, acc)
    chained = stage1["converged"] and stage2["converged"]

    def two_stage(cand_loss: float) -> tuple[float | None, float | None]:
        if not stage1["converged"]:
            return None, None
        task_pred = float(predict_task_loss(stage1["params"], [cand_loss])[0])
        if not stage2["converged"]:
            return task_pred, None
        return task_pred, float(predict_sigmoid(stage2["params"], [task_pred])[0])

    predictions = []
    for name, point in candidates.items():
        task_pred, acc_two_stage = two_stage(point.loss)
        predictions.append(
            {
                "name": name,
                "loss": float(point.loss),
                "acc_pred": float(predict_accuracy(params, [point.loss])[0]),
                "acc_actual": float(point.accuracy),
                "task_loss_pred": task_pred,
                "task_loss_actual": float(point.task_loss),
                "acc_pred_two_stage": acc_two_stage,
            }
        )
    actual = [p["acc_actual"] for p in predictions]
    mae, max_err = _mae([p["acc_pred"] for p in predictions], actual)
    mae_two, max_two = _mae([p["acc_pred_two_stage"] for p in predictions], actual)
    return {
        "form": FORMS["direct"],
        "params": params,
        "metrics": {
            "n_grid": len(loss),
            "grid_mse": float(np.mean((acc - fitted) ** 2)),
            "grid_r2": r2(acc, fitted),
            "two_stage_grid_r2": r2(acc, [two_stage(x)[1] for x in loss]) if chained else None,
            "n_candidates": len(predictions),
            "candidate_mae": mae,
            "candidate_max_abs_err": max_err,
            "two_stage_candidate_mae": mae_two,
            "two_stage_candidate_max_abs_err": max_two,
        },
        "two_stage": {
            "task_loss": {"form": FORMS["task_loss"], **stage1},
            "accuracy": {"form": FORMS["accuracy"], **stage2},
        },
        "predictions": predictions,
    }
