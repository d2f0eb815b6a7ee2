"""What the selection optimises: the paper's objective or the follow-up's.

- ``loss`` (the paper's Eq. 3): the k candidates of lowest predicted loss within the parameter,
  token and latency budgets.
- ``throughput`` (the follow-up's Eq. 4): the k candidates of highest generation throughput
  (tokens/s at the configured batch and lengths) whose predicted loss is at most a target, within
  the same budgets. The target is a number, or the predicted loss of the baseline candidate: "as
  good as the baseline, as fast as possible".

The integer program (infscale.select.ilp) minimises a cost per candidate; each objective is its
cost and the constraints it adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

OBJECTIVES = ("loss", "throughput")
THROUGHPUT = "throughput_tps"  # the candidate column the throughput objective reads
BASELINE_TARGET = "baseline"  # select.max_loss: the baseline candidate's predicted loss


def cost(objective: str, candidates: pd.DataFrame, loss_pred: ArrayLike) -> np.ndarray:
    """The value the integer program minimises for each candidate (lower is better)."""
    if objective == "loss":
        return np.asarray(loss_pred, dtype=float)
    if objective == "throughput":
        if THROUGHPUT not in candidates.columns:
            raise InputError(f"candidates: the throughput objective needs a {THROUGHPUT} column")
        tps = candidates[THROUGHPUT].to_numpy(dtype=float)
        if not (np.isfinite(tps).all() and (tps > 0).all()):
            raise InputError(f"candidates: {THROUGHPUT} must be positive and finite")
        return -tps
    raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def loss_target(
    max_loss: float | str | None,
    candidates: pd.DataFrame,
    loss_pred: ArrayLike,
    baseline: str | None = None,
) -> float | None:
    """The predicted-loss ceiling: a number as given, or ``"baseline"``: the predicted loss of
    the ``baseline`` candidate (so the baseline itself qualifies)."""
    if max_loss != BASELINE_TARGET:
        return max_loss
    names = candidates["name"].tolist()
    if baseline not in names:
        raise InputError(f"max_loss baseline: the baseline {baseline!r} is not a candidate")
    return float(np.asarray(loss_pred, dtype=float)[names.index(baseline)])
