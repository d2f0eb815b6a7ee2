"""The same shapes timed by two engines, HF ``generate`` and vLLM (the paper's Appendix D): do
they rank the shapes alike, and how much faster is the serving engine?

The shapes are an equal-N sweep across R at one head size (``latency.engines``): vLLM's CPU
attention takes only some head sizes (``latency.engine``), and the grid's tiny shapes have none
of them, so the sweep fixes the head size and lets the head count follow the width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.shapes import Shape

ENGINES = ("hf", "vllm")
COLUMNS = ("median_s", "median_ttft_ms", "median_tpot_ms", "p99_e2el_ms", "cv", "flagged")


def equal_params_sweep(
    params: int, head_dim: int, n_layers: Sequence[int], vocab_size: int, multiple_of: int
) -> list[Shape]:
    """Per depth, the shape whose d_model (a multiple of ``head_dim``, n_heads = d / head_dim)
    gives the parameter count closest to ``params``."""
    shapes = []
    for layers in n_layers:
        best, d = None, head_dim
        while True:
            shape = Shape(d, layers, d // head_dim, vocab_size, multiple_of)
            if best is None or abs(shape.n_params - params) < abs(best.n_params - params):
                best = shape
            if shape.n_params > params:
                break
            d += head_dim
        shapes.append(best)
    return shapes


def engine_shapes(config: dict[str, Any]) -> list[Shape]:
    """The config's ``latency.engines`` sweep, with its model's vocabulary and MLP rounding."""
    spec, model = config["latency"]["engines"], config["model"]
    return equal_params_sweep(
        spec["params"],
        spec["head_dim"],
        spec["n_layers"],
        model["vocab_size"],
        model["multiple_of"],
    )


def engine_table(
    shapes: Sequence[Shape], results: dict[str, Sequence[dict[str, Any]]]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per shape: each engine's median, TTFT, TPOT, p99 and noise side by side, its
    rank (1 = fastest) under each, and vLLM's time over HF's. Also the Spearman rank agreement
    of the two engines' medians and the geometric mean of the time ratio."""
    from scipy.stats import spearmanr

    if set(results) != set(ENGINES) or any(len(r) != len(shapes) for r in results.values()):
        raise InputError("engine_table needs one result per shape from each of hf and vllm")
    table = pd.DataFrame(
        {
            "shape": [s.label for s in shapes],
            "d_model": [s.d_model for s in shapes],
            "n_layers": [s.n_layers for s in shapes],
            "n_heads": [s.n_heads for s in shapes],
            "head_dim": [s.head_dim for s in shapes],
            "N": [s.n_params for s in shapes],
            "R": [s.aspect_ratio for s in shapes],
        }
    )
    for engine in ENGINES:
        for column in COLUMNS:
            table[f"{engine}_{column}"] = [r[column] for r in results[engine]]
        table[f"{engine}_rank"] = table[f"{engine}_median_s"].rank(method="min").astype(int)
    table["vllm_over_hf"] = table["vllm_median_s"] / table["hf_median_s"]
    spearman = (
        float(spearmanr(table["hf_median_s"], table["vllm_median_s"]).statistic)
        if len(table) >= 3
        else None
    )
    summary = {
        "shapes": len(table),
        "spearman": spearman,
        "vllm_over_hf_geomean": float(np.exp(np.log(table["vllm_over_hf"]).mean())),
        "vllm_over_hf_range": [
            float(table["vllm_over_hf"].min()),
            float(table["vllm_over_hf"].max()),
        ],
    }
    return table, summary
