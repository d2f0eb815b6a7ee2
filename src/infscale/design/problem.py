"""From a fit, its resamples and the two tables to the arrays the greedy design reads.

The run-level noise of a new run's loss is the fit's residual sd (the square root of its MSE):
what the law misses at a point it has not seen is the seed noise plus its misfit, and a design
that trusted a run more than that would overrate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.fit.frontier import training_compute
from infscale.fit.laws import predict_points
from infscale.select.ilp import select_top_k

RUN_COLUMNS = ("name", "d_model", "n_layers", "N", "D")
OUTPUT_COLUMNS = ("flops", "cum_flops", "gain", "uncertainty_after")


class Problem(NamedTuple):
    """Per usable resample (rows) the candidates' and the proposals' predicted loss; which
    candidates meet the budgets; each proposal's FLOPs; the noise sd; resamples skipped."""

    candidate_loss: np.ndarray
    run_loss: np.ndarray
    feasible: np.ndarray
    flops: np.ndarray
    noise_sd: float
    skipped: int


def run_flops(proposals: pd.DataFrame) -> np.ndarray:
    """Each proposal's training FLOPs: its ``flops`` column where given, else 6·N·D."""
    if "flops" in proposals.columns:
        flops = pd.to_numeric(proposals["flops"], errors="coerce").to_numpy(float)
    else:
        flops = training_compute(proposals["N"], proposals["D"])
    if not np.all(np.isfinite(flops) & (flops > 0)):
        raise InputError("proposals: every run's flops must be a positive number")
    return flops


def design_problem(
    fit: Mapping[str, Any],
    proposals: pd.DataFrame,
    candidates: pd.DataFrame,
    k: int,
    budgets: Mapping[str, float | None],
    budget_flops: float,
) -> Problem:
    """Check the inputs (one InputError naming the problem) and predict every table under
    every resample of ``fit``'s bootstrap. ``budgets``: select_top_k's max_params, max_tokens,
    max_latency."""
    samples = (fit.get("bootstrap") or {}).get("samples")
    if not samples:
        raise InputError("the fit has no bootstrap resamples (fit it with --bootstrap K)")
    if proposals.empty:
        raise InputError("proposals: no runs to choose from")
    missing = [c for c in RUN_COLUMNS if c not in proposals.columns]
    if missing:
        raise InputError(f"proposals: missing column(s) {', '.join(missing)}")
    flops = run_flops(proposals)
    if budget_flops < flops.min():
        raise InputError(
            f"the budget of {budget_flops:g} FLOPs is below the cheapest run's {flops.min():g}"
        )
    mse = (fit.get("metrics") or {}).get("mse")
    if not isinstance(mse, int | float) or not mse > 0:
        raise InputError("the fit has no positive metrics.mse (the run-level noise)")
    # Validates the candidates and k against the budgets; feasibility is the same in every
    # resample (the budgets read N, D and latency, not the loss).
    point = select_top_k(candidates, predict_points(fit, candidates), k, **budgets)
    rows = [], []
    skipped = 0
    for i in range(len(next(iter(samples.values())))):
        resample = {**fit, "params": {p: float(v[i]) for p, v in samples.items()}}
        with np.errstate(all="ignore"):
            losses = predict_points(resample, candidates), predict_points(resample, proposals)
        if not all(np.all(np.isfinite(x) & (x > 0)) for x in losses):
            skipped += 1
            continue
        for into, x in zip(rows, losses, strict=True):
            into.append(x)
    if len(rows[0]) < 2:
        raise InputError("fewer than 2 of the fit's resamples predict finite losses")
    return Problem(
        np.array(rows[0]),
        np.array(rows[1]),
        point["feasible"].to_numpy(bool),
        flops,
        float(np.sqrt(mse)),
        skipped,
    )
