"""Loss -> downstream accuracy (Gadre et al. 2024): ``err = E - a·exp(-b·L)``, err = 1 - accuracy.

Fitted on the trained grid (each run's last boundary: the model that was evaluated), then used to
predict the candidates' average accuracy from their loss. For a fixed b the model is linear in
(E, a), so the fit is a one-dimensional search over log b (a grid, then a bounded refinement)
with E and a by least squares at each b: deterministic, no start to choose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.fit.laws import FitError

LOG_B_RANGE = (-4.0, 4.0)  # natural log of b searched over


def _linear(b: float, loss: np.ndarray, err: np.ndarray) -> tuple[float, float, float]:
    """(E, a, residual sum of squares) of the least-squares fit at this b."""
    X = np.column_stack([np.ones_like(loss), -np.exp(-b * loss)])
    (E, a), *_ = np.linalg.lstsq(X, err, rcond=None)
    return float(E), float(a), float(np.sum((X @ [E, a] - err) ** 2))


def fit_accuracy(loss: ArrayLike, accuracy: ArrayLike) -> dict[str, float]:
    """E, a, b of ``1 - accuracy = E - a·exp(-b·loss)`` by least squares on the error."""
    from scipy.optimize import minimize_scalar

    loss, acc = np.asarray(loss, dtype=float), np.asarray(accuracy, dtype=float)
    if len(loss) != len(acc):
        raise InputError("loss and accuracy differ in length")
    if len(loss) < 3:
        raise InputError(f"{len(loss)} point(s) for the 3 parameters E, a, b: need at least 3")
    if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(acc))):
        raise InputError("loss and accuracy must be finite")
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


def downstream(
    grid: Mapping[str, tuple[float, float]], candidates: Mapping[str, tuple[float, float]]
) -> dict[str, Any]:
    """Fit on ``grid`` ({run: (loss, accuracy)}), predict ``candidates`` (same form).

    The result is downstream.json: params, metrics (on the grid: mse, r2 of accuracy; on the
    candidates: mean and max absolute accuracy error), and one prediction per candidate.
    """
    loss = np.array([v[0] for v in grid.values()], dtype=float)
    acc = np.array([v[1] for v in grid.values()], dtype=float)
    params = fit_accuracy(loss, acc)
    fitted = predict_accuracy(params, loss)
    total = float(np.sum((acc - acc.mean()) ** 2))
    rss = float(np.sum((acc - fitted) ** 2))
    predictions = [
        {
            "name": name,
            "loss": float(cand_loss),
            "acc_pred": float(predict_accuracy(params, [cand_loss])[0]),
            "acc_actual": float(cand_acc),
        }
        for name, (cand_loss, cand_acc) in candidates.items()
    ]
    errors = [abs(p["acc_pred"] - p["acc_actual"]) for p in predictions]
    return {
        "form": "1 - acc = E - a*exp(-b*loss)",
        "params": params,
        "metrics": {
            "n_grid": len(loss),
            "grid_mse": rss / len(loss),
            "grid_r2": 1 - rss / total if total > 0 else None,
            "n_candidates": len(predictions),
            "candidate_mae": float(np.mean(errors)) if errors else None,
            "candidate_max_abs_err": float(np.max(errors)) if errors else None,
        },
        "predictions": predictions,
    }
