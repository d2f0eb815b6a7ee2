"""The candidate table the selection reads, and the budgets it is held to.

Each candidate carries what every law needs to predict its loss (N, D, the shape columns of the
conditional law), its latency, and which shape variables lie outside the grid's range: a law
fitted on the grid says nothing measured about a shape beyond it, so such a candidate is marked
as an extrapolation rather than silently trusted. The variables are those a law reads: R = d/L
(the inference law's), x = d/sqrt(N_nonemb) and r, the MLP-to-attention ratio (the conditional
law's). A GQA candidate's r counts its smaller k and v projections, so it often lies beyond a
multi-head grid's r.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from infscale.errors import InputError
from infscale.fit.conditional import FACTORS, mlp_ratio, width
from infscale.grid import Run
from infscale.latency.model import predict_latency
from infscale.select.objectives import THROUGHPUT, THROUGHPUT_SE
from infscale.shapes import Shape


def shape_variables(shape: Shape) -> dict[str, float]:
    """R = d/L, x = d/sqrt(N_nonemb) and r (infscale.fit.conditional's variables) of a shape."""
    r = mlp_ratio(shape.d_model, shape.ffn_hidden, shape.n_heads, shape.n_kv_heads, shape.head_dim)
    return {
        "R": shape.aspect_ratio,
        "x": float(width(shape.n_params, shape.d_model, shape.vocab_size)),
        "r": float(r),
    }


def variables_read(fit: Mapping[str, Any]) -> tuple[str, ...]:
    """The shape variables (of :func:`shape_variables`) a fitted law's prediction depends on:
    none for Chinchilla, R for the inference law, the conditional law's factors it kept."""
    if fit["law"].startswith("inference"):
        return ("R",)
    if fit["law"].startswith("conditional"):
        dropped = fit.get("dropped", [])
        return tuple(symbol for factor, (symbol, *_) in FACTORS.items() if factor not in dropped)
    return ()


def candidate_table(
    candidates: Sequence[Run],
    grid: Sequence[Run],
    latency: Mapping[str, tuple[float, str]],
    throughput: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """One row per candidate; ``latency`` maps a shape label to (seconds, how it was obtained),
    ``throughput`` (where measured) to (generation tokens/s, the standard error of the log of
    its median time): columns ``throughput_tps`` and ``throughput_log_se``."""
    ranges = pd.DataFrame([shape_variables(run.shape) for run in grid]).agg(["min", "max"])
    rows = []
    for run in candidates:
        shape = run.shape
        seconds, source = latency[shape.label]
        rows.append(
            {
                "name": run.variant,
                **shape.dimensions,
                "N": shape.n_params,
                "D": run.total_tokens,
                "R": shape.aspect_ratio,
                "outside_grid": " ".join(
                    name
                    for name, value in shape_variables(shape).items()
                    if not ranges.at["min", name] <= value <= ranges.at["max", name]
                ),
                "latency_s": seconds,
                "latency_source": source,
            }
            | (
                {}
                if throughput is None
                else dict(zip((THROUGHPUT, THROUGHPUT_SE), throughput[shape.label], strict=True))
            )
        )
    return pd.DataFrame(rows)


def candidate_latency(
    candidates: Sequence[Run], measured: Mapping[str, float], model: Mapping[str, Any] | None
) -> dict[str, tuple[float, str]]:
    """Each candidate shape's latency: the measured median where it was timed, else the latency
    model's prediction (``model`` may be None only when every shape was timed)."""
    latency = {}
    for shape in (run.shape for run in candidates):
        if shape.label in measured:
            latency[shape.label] = (float(measured[shape.label]), "measured")
        else:
            if model is None:
                raise InputError(f"candidate shape {shape.label} was neither timed nor predicted")
            predicted = predict_latency(model, [shape])
            latency[shape.label] = (float(predicted[0]), "predicted")
    return latency


def budgets(select: Mapping[str, Any], candidates: pd.DataFrame) -> dict[str, Any]:
    """``select_top_k``'s budget keywords from the config's ``select`` section.

    ``max_latency_vs_baseline`` turns into seconds with the baseline's latency from the same
    table (so from the same interleaved timing job); with ``max_latency_s`` too, the tighter
    one binds.
    """
    limits = [select["max_latency_s"]]
    fraction = select["max_latency_vs_baseline"]
    if fraction is not None:
        base = candidates.loc[candidates["name"] == select["baseline"], "latency_s"]
        if base.empty:
            raise InputError(f"select.baseline {select['baseline']!r} is not in the candidates")
        limits.append(fraction * float(base.iloc[0]))
    set_limits = [limit for limit in limits if limit is not None]
    return {
        "max_params": select["max_params"],
        "max_tokens": select["max_tokens"],
        "max_latency": min(set_limits) if set_limits else None,
    }
