"""What the selection optimises: the paper's objective or the follow-up's.

- ``loss`` (the paper's Eq. 3): the k candidates of lowest predicted loss within the parameter,
  token and latency budgets.
- ``throughput`` (the follow-up's Eq. 4): the k candidates of highest generation throughput
  (tokens/s at the configured batch and lengths) whose predicted loss is at most a target, within
  the same budgets. The target is a number, or the predicted loss of the baseline candidate: "as
  good as the baseline, as fast as possible".

Throughput is a measurement, so it gets the winner's band rule (infscale.select.winner): where a
candidate has ``throughput_log_se`` (the standard error of the log of its median time), two
throughputs whose log ratio lies within ``z`` combined standard errors are a tie, and a tie goes
to the lower predicted loss. Tiers are formed from the fastest feasible candidate down: the
fastest and every feasible candidate tied with it form the first tier, ordered by predicted loss;
the fastest of the rest starts the next. Without that, two candidates timed 2 % apart would be
ranked by whichever the machine's noise favoured in that run.

The integer program (infscale.select.ilp) minimises a cost per candidate; each objective is its
cost and the constraints it adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.select.winner import Z_TIE, band, tied

if TYPE_CHECKING:
    import pandas as pd

OBJECTIVES = ("loss", "throughput")
THROUGHPUT = "throughput_tps"  # the candidate column the throughput objective reads
THROUGHPUT_SE = "throughput_log_se"  # its noise: the standard error of ln(median time)
TIER = "throughput_tier"  # 1 = the fastest candidates and those tied with them; 2 = the next
BASELINE_TARGET = "baseline"  # select.max_loss: the baseline candidate's predicted loss


def cost(
    objective: str,
    candidates: pd.DataFrame,
    loss_pred: ArrayLike,
    feasible: ArrayLike | None = None,
    z: float = Z_TIE,
) -> np.ndarray:
    """The value the integer program minimises for each candidate (lower is better): the
    predicted loss, or for ``throughput`` the candidate's place in :func:`throughput_order`
    among the ``feasible`` ones (default: all)."""
    loss = np.asarray(loss_pred, dtype=float)
    if objective == "loss":
        return loss
    if objective == "throughput":
        place, _ = throughput_ranking(candidates, loss, feasible, z)
        return place.astype(float)
    raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def throughput_ranking(
    candidates: pd.DataFrame, loss: np.ndarray, feasible: ArrayLike | None, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`throughput_order` of the candidates' ``throughput_tps`` and, where the table has
    it, ``throughput_log_se`` (else NaN: only equal throughputs tie)."""
    if THROUGHPUT not in candidates.columns:
        raise InputError(f"candidates: the throughput objective needs a {THROUGHPUT} column")
    tps = candidates[THROUGHPUT].to_numpy(dtype=float)
    if not (np.isfinite(tps).all() and (tps > 0).all()):
        raise InputError(f"candidates: {THROUGHPUT} must be positive and finite")
    se = candidates[THROUGHPUT_SE] if THROUGHPUT_SE in candidates.columns else np.nan
    mask = np.ones(len(tps), bool) if feasible is None else np.asarray(feasible, bool)
    return throughput_order(tps, np.broadcast_to(se, tps.shape), loss, mask, z)


def throughput_order(
    tps: np.ndarray, log_se: np.ndarray, loss: np.ndarray, feasible: np.ndarray, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's place (0 = best) by throughput with ties to the lower predicted loss,
    and its tier (1, 2, ...; 0 for an infeasible one, which is placed after every feasible one).

    A tier is the fastest unplaced feasible candidate and every unplaced feasible candidate
    whose log throughput lies within ``z`` combined standard errors of its own; an unknown
    standard error (NaN) ties only equal throughputs.
    """
    log_tps, se = np.log(np.asarray(tps, float)), np.asarray(log_se, float)
    tier = np.zeros(len(tps), dtype=int)
    place = np.empty(len(tps), dtype=int)
    left = [i for i in np.argsort(-log_tps, kind="stable") if feasible[i]]
    placed = 0
    while left:
        anchor = left[0]
        members = [
            i for i in left if tied(log_tps[i] - log_tps[anchor], z * band(se[i], se[anchor]))
        ]
        tier[members] = tier.max() + 1
        for i in sorted(members, key=lambda i: (loss[i], -log_tps[i], i)):
            place[i], placed = placed, placed + 1
        left = [i for i in left if i not in members]
    for i in np.flatnonzero(~np.asarray(feasible, bool)):
        place[i], placed = placed, placed + 1
    return place, tier


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
