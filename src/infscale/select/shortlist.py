"""The measure_top shortlist (select.latency_source: measure_top): which candidates to time
before selecting, from their predicted latency and loss, so that the selection measures the few
it is likely to choose and predicts the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError


def shortlist_size(select: Mapping[str, Any]) -> int:
    """How many candidates ``measure_top`` times: ``select.measure_top``, or (null) twice
    ``select.k``, so that the selection has measured alternatives to its first choices."""
    return select["measure_top"] or 2 * select["k"]


def shortlist(
    table: pd.DataFrame,
    loss_pred: Any,
    n: int,
    *,
    max_params: float | None = None,
    max_tokens: float | None = None,
    max_latency: float | None = None,
    margin: float = 0.0,
) -> pd.DataFrame:
    """``table`` (name, N, D, latency_s: predicted) plus ``loss_pred`` and ``measure`` (0/1).

    The ``n`` candidates of lowest predicted loss among those within the parameter and token
    budgets and whose *predicted* latency is within the latency budget widened by ``margin``
    (the model's relative error: a candidate the model puts just over the budget may be under
    it when measured). Those are measured; the selection uses predictions for the rest.
    """
    if n <= 0:
        raise InputError(f"the number of candidates to measure must be positive, got {n}")
    out = table.assign(loss_pred=np.asarray(loss_pred, dtype=float))
    eligible = np.ones(len(out), dtype=bool)
    if max_params is not None:
        eligible &= out["N"].to_numpy() <= max_params
    if max_tokens is not None:
        eligible &= out["D"].to_numpy() <= max_tokens
    if max_latency is not None:
        eligible &= out["latency_s"].to_numpy() <= max_latency * (1 + margin)
    order = out.loc[eligible].sort_values("loss_pred").index[:n]
    return out.assign(measure=out.index.isin(order).astype(int))
