"""The paper's latency sweeps (Fig. 3), throughput vs batch size (Fig. 4), and GQA's throughput.

Four sweeps, each configured under ``latency.sweeps``:

- ``layers``: n_layers varies at a fixed d_model (latency should rise linearly);
- ``width``: d_model varies at a fixed n_layers (flat for small models);
- ``ratio``: R = d_model / n_layers varies at about a fixed N: for each n_layers, the d_model
  (a multiple of 2·n_heads, so heads have an even size) whose N is closest to ``params``;
- ``gqa``: an MHA shape and its grouped-query twins (fewer KV heads), at equal N, timed at
  several batch sizes with the sweep's own input / output lengths. A decoding step reads the
  whole KV cache, 2·L·K·HD values per cached token and sequence, so at large batch and long
  context fewer KV heads mean less memory traffic and higher throughput (the follow-up's point).
  Fewer KV heads also mean fewer parameters; each twin's ffn_hidden is widened to the multiple
  of ``model.multiple_of`` whose N is closest to the MHA shape's (``Shape.with_params``), so
  the comparison is at equal N (to within 3·d·L·multiple_of / 2) and not a smaller model's.

The first three are Fig. 3's, at the protocol's batch size and lengths (``FIG3_SWEEPS``, one
table, the latency model's data); every sweep's items are timed interleaved in one job
(latency.measure_interleaved).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.shapes import Shape, param_count

FIG3_SWEEPS = ("layers", "width", "ratio")
SWEEPS = (*FIG3_SWEEPS, "gqa")

SWEEP_COLUMNS = [
    "sweep",
    "shape",
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "ffn_hidden",
    "vocab_size",
    "R",
    "N",
    "batch_size",
    "input_tokens",
    "output_tokens",
    "tokens_per_s",
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
    "n_kv_heads",
    "ffn_hidden",
    "head_dim",
    "vocab_size",
    "N",
    "batch_size",
    "input_tokens",
    "output_tokens",
    "dtype",
    "backend",
    "tokens_per_s",
    "median_s",
    "iqr_s",
    "cv",
    "relative_cv",
    "cv_basis",
    "trials",
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

    def shape(d_model: int, n_layers: int, n_kv_heads: int | None = None) -> Shape:
        try:
            return Shape(
                d_model, n_layers, heads, model["vocab_size"], model["multiple_of"], n_kv_heads
            )
        except InputError as err:
            raise InputError(f"config key latency.sweeps.{sweep}: {err}") from None

    if sweep == "gqa":
        mha = shape(spec["d_model"], spec["n_layers"])
        twins = [shape(mha.d_model, mha.n_layers, k) for k in spec["n_kv_heads"] if k != heads]
        return [mha, *(twin.with_params(mha.n_params) for twin in twins)]
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


def sweep_items(config: dict[str, Any], sweep: str) -> list[dict[str, Any]]:
    """What a sweep job times, as plain data (a rule's params): each shape's fields, at each
    batch size (gqa: its ``batch_sizes``; else the protocol's), named by both where several."""
    batches = (
        latency_settings(config)["sweeps"]["gqa"]["batch_sizes"]
        if sweep == "gqa"
        else [latency_settings(config)["batch_size"]]
    )
    return [
        {
            "shape": asdict(shape),
            "batch_size": batch,
            "name": f"{shape.label}-b{batch}" if len(batches) > 1 else None,
        }
        for shape in sweep_shapes(config, sweep)
        for batch in batches
    ]


def sweep_lengths(config: dict[str, Any], sweep: str) -> dict[str, int]:
    """The protocol keys a sweep sets for itself: gqa its input and output lengths (long enough
    that reading the KV cache matters); the Fig. 3 sweeps none."""
    if sweep != "gqa":
        return {}
    latency = latency_settings(config)
    lengths = {key: latency["sweeps"]["gqa"][key] for key in ("input_tokens", "output_tokens")}
    if sum(lengths.values()) > latency["max_position"]:
        raise InputError(
            f"config key latency.sweeps.gqa: input_tokens + output_tokens = "
            f"{sum(lengths.values())} exceeds latency.max_position {latency['max_position']}"
        )
    return lengths


def gqa_speedups(table: pd.DataFrame) -> pd.DataFrame:
    """The gqa sweep's throughput of each twin over the MHA shape's (n_kv_heads = n_heads) at
    the same batch size: one row per (n_kv_heads, batch_size), fewest KV heads first."""
    mha = table[table["n_kv_heads"] == table["n_heads"]].set_index("batch_size")["tokens_per_s"]
    rows = table.assign(
        heads_per_kv=table["n_heads"] // table["n_kv_heads"],
        speedup_vs_mha=table["tokens_per_s"] / table["batch_size"].map(mha),
    )
    columns = ["shape", "n_kv_heads", "heads_per_kv", "ffn_hidden", "N", "batch_size"]
    columns += ["tokens_per_s", "speedup_vs_mha", "flagged"]
    return rows.sort_values(["n_kv_heads", "batch_size"])[columns].reset_index(drop=True)


def throughput_shape(config: dict[str, Any]) -> Shape:
    spec, model = latency_settings(config)["throughput"], config["model"]
    try:
        return Shape(
            spec["d_model"],
            spec["n_layers"],
            spec["n_heads"],
            model["vocab_size"],
            model["multiple_of"],
            spec.get("n_kv_heads"),
            spec.get("ffn_hidden"),
        )
    except InputError as err:
        raise InputError(f"config key latency.throughput: {err}") from None


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
    """One row per shape; ``trials`` counts its timed trials (the band rule's n)."""
    frame = pd.DataFrame(results)
    frame["trials"] = frame["trials_s"].map(len)
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
