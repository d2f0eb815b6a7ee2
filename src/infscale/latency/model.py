"""A latency model: T(shape) fitted on measured shapes, to predict shapes not measured.

Form (one protocol: fixed prompt, new tokens and batch size)::

    T = a + b·L + c·L·d + e·W + g·d·V

Why these terms. Decoding with a KV cache runs every layer once per new token, so the cost is a
sum over layers plus the parts outside them:

- ``a``: per-call and per-token work outside the layers (the sampling loop, embedding lookup);
- ``b·L``: per-layer fixed cost per token (kernel launches, Python dispatch). It dominates for
  small models at batch 1, which is why latency is linear in n_layers (paper Fig. 3);
- ``e·W``: the layers' matrix products, W = N - 2·V·d - (2·L + 1)·d, the weights read per
  token: the term that grows with width for large models. Taking W from the exact N (rather
  than L·d²) is what lets the model see the KV heads and the MLP width: a GQA shape reads
  2·d·(d - K·HD) fewer weights per layer than its multi-head twin, a narrow MLP 3·d·ΔF fewer;
- ``c·L·d``: per-layer work linear in width: attention over the cached context (context × d
  for the queries of every head, with or without shared KV heads), norms, rotary;
- ``g·d·V``: the output head (d × V) once per token.

All coefficients are physical costs, so they are fitted non-negative (scipy ``nnls``), and on
relative residuals (each row divided by its measured time) so that fast and slow shapes count
alike. The leave-one-out median relative error is the honest error of predicting a shape that
was not measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.shapes import Shape

FORM = "T = a + b*L + c*L*d + e*W + g*d*V"
TERMS = ("a", "b", "c", "e", "g")
COLUMNS = ("shape", "d_model", "n_layers", "vocab_size", "N")


def features(d_model: Any, n_layers: Any, vocab_size: Any, n_params: Any) -> np.ndarray:
    """The design matrix: one row per shape, one column per term of FORM."""
    d = np.asarray(d_model, dtype=float)
    L = np.asarray(n_layers, dtype=float)
    V = np.asarray(vocab_size, dtype=float)
    W = np.asarray(n_params, dtype=float) - 2 * V * d - (2 * L + 1) * d
    return np.column_stack([np.ones_like(d), L, L * d, W, d * V])


def _fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    rows = X / y[:, None]  # relative residuals: (X·w - y) / y
    scale = rows.max(axis=0)
    scale[scale == 0] = 1.0
    w, _ = nnls(rows / scale, np.ones_like(y))
    return w / scale


def fit_latency_model(table: pd.DataFrame) -> dict[str, Any]:
    """Fit FORM on ``table`` (columns COLUMNS and median_s; rows of one shape are merged).

    Returns the coefficients, the in-sample and leave-one-out relative errors, and the LOO table.
    """
    missing = {*COLUMNS, "median_s"} - set(table.columns)
    if missing:
        raise InputError(f"latency model: missing column(s) {', '.join(sorted(missing))}")
    table = (
        table.groupby(list(COLUMNS), as_index=False)["median_s"]
        .median()
        .sort_values(["d_model", "n_layers", "N"])
        .reset_index(drop=True)
    )
    if len(table) < len(TERMS) + 1:
        raise InputError(
            f"latency model: {len(table)} distinct shapes measured; at least {len(TERMS) + 1} "
            "are needed"
        )
    y = table["median_s"].to_numpy(dtype=float)
    if (y <= 0).any():
        raise InputError("latency model: every median_s must be positive")
    X = features(table["d_model"], table["n_layers"], table["vocab_size"], table["N"])
    w = _fit(X, y)
    fitted = X @ w
    loo = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        loo[i] = X[i] @ _fit(X[keep], y[keep])
    rel = np.abs(loo - y) / y
    loo_table = table.assign(
        predicted_s=loo, rel_err=rel, fitted_s=fitted, fitted_rel_err=np.abs(fitted - y) / y
    )
    return {
        "form": FORM,
        "terms": {
            "a": "1",
            "b": "n_layers",
            "c": "n_layers*d_model",
            "e": "N - 2*vocab_size*d_model - (2*n_layers + 1)*d_model",
            "g": "d_model*vocab_size",
        },
        "coefficients": dict(zip(TERMS, map(float, w), strict=True)),
        "fit": "nonnegative least squares on relative residuals (scipy.optimize.nnls)",
        "n_shapes": len(y),
        "fit_median_rel_err": float(np.median(np.abs(fitted - y) / y)),
        "loo_median_rel_err": float(np.median(rel)),
        "loo_max_rel_err": float(rel.max()),
        "loo": loo_table.to_dict(orient="records"),
    }


def predict_latency(model: dict[str, Any], shapes: Sequence[Shape]) -> np.ndarray:
    """Predicted latency (s) of shapes under the model's protocol."""
    if model.get("form") != FORM or "coefficients" not in model:
        raise InputError(f"not a latency model of the form {FORM!r}")
    w = np.array([model["coefficients"][t] for t in TERMS], dtype=float)
    columns = [[getattr(s, a) for s in shapes] for a in ("d_model", "n_layers", "vocab_size")]
    return features(*columns, [s.n_params for s in shapes]) @ w


def measured_table(records: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """The model's training table from latency JSONs / sweep rows (batch 1 of one protocol)."""
    frame = pd.DataFrame(records)
    return frame[[*COLUMNS, "median_s"]]
