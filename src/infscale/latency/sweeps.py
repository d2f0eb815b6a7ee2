"""The paper's latency sweeps (Fig. 3) and throughput vs batch size (Fig. 4).

Three sweeps, each configured under ``latency.sweeps``:

- ``layers``: n_layers varies at a fixed d_model (latency should rise linearly);
- ``width``: d_model varies at a fixed n_layers (flat for small models);
- ``ratio``: R = d_model / n_layers varies at about a fixed N: for each n_layers, the d_model
  (a multiple of 2·n_heads, so heads have an even size) whose N is closest to ``params``.

Each sweep's shapes are timed interleaved in one job (latency.measure_interleaved).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.shapes import Shape, param_count

SWEEPS = ("layers", "width", "ratio")

SWEEP_COLUMNS = [
    "sweep",
    "shape",
    "d_model",
    "n_layers",
    "n_heads",
    "vocab_size",
    "R",
    "N",
    "median_s",
    "mean_s",
    "min_s",
    "iqr_s",
    "cv",
    "relative_cv",
    "cv_basis",
    "reference",
    "ttft_s",
    "per_token_ms",
    "repeats",
    "flagged",
    "device",
    "threads",
]
THROUGHPUT_COLUMNS = [
    "shape",
    "d_model",
    "n_layers",
    "n_heads",
    "N",
    "batch_size",
    "tokens_per_s",
    "median_s",
    "iqr_s",
    "cv",
    "relative_cv",
    "cv_basis",
    "reference",
    "repeats",
    "flagged",
    "device",
    "threads",
]


def latency_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``latency`` section (validation filled its defaults from the schema)."""
    return config["latency"]


def sweep_shapes(config: dict[str, Any], sweep: str) -> list[Shape]:
    """The shapes of one sweep, in the config's order."""
    if sweep not in SWEEPS:
        raise InputError(f"unknown sweep {sweep!r} (one of {', '.join(SWEEPS)})")
    spec = latency_settings(config)["sweeps"][sweep]
    heads = spec["n_heads"]
    model = config["model"]

    def shape(d_model: int, n_layers: int) -> Shape:
        try:
            return Shape(d_model, n_layers, heads, model["vocab_size"], model["multiple_of"])
        except InputError as err:
            raise InputError(f"config key latency.sweeps.{sweep}: {err}") from None

    if sweep == "layers":
        return [shape(spec["d_model"], layers) for layers in spec["n_layers"]]
    if sweep == "width":
        return [shape(d, spec["n_layers"]) for d in spec["d_model"]]
    return [
        shape(
            width_for_params(
                spec["params"], layers, heads, model["vocab_size"], model["multiple_of"]
            ),
            layers,
        )
        for layers in spec["n_layers"]
    ]


def throughput_shape(config: dict[str, Any]) -> Shape:
    spec, model = latency_settings(config)["throughput"], config["model"]
    return Shape(
        spec["d_model"],
        spec["n_layers"],
        spec["n_heads"],
        model["vocab_size"],
        model["multiple_of"],
    )


def width_for_params(
    params: int, n_layers: int, n_heads: int, vocab_size: int, multiple_of: int
) -> int:
    """The d_model, a multiple of 2·n_heads, whose parameter count is closest to ``params``."""
    step = 2 * n_heads
    best, d = step, step
    while True:
        n = param_count(d, n_layers, vocab_size, multiple_of)
        if abs(n - params) < abs(param_count(best, n_layers, vocab_size, multiple_of) - params):
            best = d
        if n > params:
            return best
        d += step


def sweep_rows(sweep: str, results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per shape from ``measure_interleaved`` results."""
    frame = pd.DataFrame(results).assign(sweep=sweep)
    return frame[[c for c in SWEEP_COLUMNS if c in frame.columns]]


def throughput_rows(results: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(results)
    return frame[[c for c in THROUGHPUT_COLUMNS if c in frame.columns]]


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares line y = intercept + slope·x and its R²."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1 - (residual**2).sum() / total if total > 0 else 1.0
    return {"intercept": float(intercept), "slope": float(slope), "r2": float(r2)}


def sweep_fits(table: pd.DataFrame) -> dict[str, Any]:
    """What Fig. 3 claims, checked on the measured sweeps.

    layers: linear fit of median latency on n_layers (R²); width: the same on d_model; ratio:
    Spearman correlation of latency with R (negative: wider-shallower is faster) and whether
    the widest-shallowest shape is the fastest.
    """
    from scipy.stats import spearmanr

    fits: dict[str, Any] = {}
    for sweep, x in (("layers", "n_layers"), ("width", "d_model")):
        rows = table[table["sweep"] == sweep]
        if len(rows) >= 2:
            fits[sweep] = {"x": x, **linear_fit(rows[x], rows["median_s"]), "n": len(rows)}
    rows = table[table["sweep"] == "ratio"]
    if len(rows) >= 2:
        fastest = rows.loc[rows["median_s"].idxmin()]
        widest = rows.loc[rows["R"].idxmax()]
        ranking = rows.sort_values("median_s")
        rho = spearmanr(rows["R"], rows["median_s"]).statistic
        fits["ratio"] = {
            "spearman_R_vs_latency": float(rho),
            "fastest": str(fastest["shape"]),
            "widest_shallowest": str(widest["shape"]),
            "widest_shallowest_fastest": bool(fastest["shape"] == widest["shape"]),
            "ranking_fastest_first": [str(s) for s in ranking["shape"]],
            "params_spread": float(rows["N"].max() / rows["N"].min()),
            "n": len(rows),
        }
    fits["flagged"] = [
        f"{row.sweep}:{row.shape}" for row in table.itertuples() if bool(row.flagged)
    ]
    return fits
