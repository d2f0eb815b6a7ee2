"""How stable the top-k is: the selection rerun under each bootstrap resample of the fit.

A candidate chosen in nearly every resample is chosen by the data; one chosen in half of them
is chosen by the noise of the fit points, and a reader should know which (the reviewers asked
for the fits' uncertainty; this carries it through to the decision it feeds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.fit.laws import predict_points
from infscale.select.ilp import select_for
from infscale.select.winner import Z_TIE


class Frequency(NamedTuple):
    """``chosen_frac``: per candidate, the fraction of the usable resamples in which it is among
    the selected k (NaN where none is usable); ``resamples`` used; ``skipped``: resamples whose
    predictions are not all finite and positive, or under which fewer than k candidates meet the
    throughput objective's loss target."""

    chosen_frac: np.ndarray
    resamples: int
    skipped: int


def selection_frequency(
    samples: Mapping[str, Sequence[float]],
    fit: Mapping[str, Any],
    candidates: pd.DataFrame,
    k: int,
    budgets: Mapping[str, float | None],
    objective: str = "loss",
    max_loss: float | str | None = None,
    baseline: str | None = None,
    z: float = Z_TIE,
) -> Frequency:
    """Select the top ``k`` of ``candidates`` (select_top_k's table) by ``objective`` within
    ``budgets`` (select_top_k's keywords: max_params, max_tokens, max_latency; ``max_loss``,
    ``baseline`` and the throughput band ``z`` as for ilp.select_for) once per resample of
    ``samples`` (a fit's bootstrap samples: one list per parameter), the loss predicted by
    ``fit`` (its law, form, dropped factors) with that resample's parameters."""
    n = {len(values) for values in samples.values()}
    if len(n) != 1:
        raise ValueError("bootstrap samples differ in length")
    chosen = np.zeros(len(candidates))
    used = skipped = 0
    for i in range(n.pop()):
        resample = {**fit, "params": {p: float(values[i]) for p, values in samples.items()}}
        with np.errstate(all="ignore"):
            loss = predict_points(resample, candidates)
        if not np.all(np.isfinite(loss) & (loss > 0)):
            skipped += 1
            continue
        try:
            table = select_for(objective, candidates, loss, k, budgets, max_loss, baseline, z)
        except InputError:  # too few meet this resample's loss target
            skipped += 1
            continue
        chosen += table["selected"].to_numpy()
        used += 1
    frac = chosen / used if used else np.full(len(candidates), np.nan)
    return Frequency(frac, used, skipped)
