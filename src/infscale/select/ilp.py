"""Selection (paper Fig. 6, Eq. 3; the follow-up's Eq. 4): the k best candidates within budgets.

Solved as the integer program the papers state: binary x_i, minimise Σ c_i·x_i subject to
Σ x_i = k and N_i·x_i ≤ N_C, D_i·x_i ≤ D_C, T_i·x_i ≤ T_C, L_i·x_i ≤ L_C for every candidate,
with c_i the objective's cost (infscale.select.objectives: the predicted loss, or minus the
throughput); pulp's bundled CBC solves it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.fit.core import positive
from infscale.select.objectives import TIER, cost, loss_target, throughput_ranking
from infscale.select.winner import Z_TIE

CANDIDATE_COLUMNS = ("name", "d_model", "n_layers", "N", "D", "latency_s")


def select_for(
    objective: str,
    candidates: pd.DataFrame,
    loss_pred: ArrayLike,
    k: int,
    budgets: Mapping[str, float | None],
    max_loss: float | str | None = None,
    baseline: str | None = None,
    z: float = Z_TIE,
) -> pd.DataFrame:
    """``select_top_k`` for one objective with the config's budgets (select.candidates.budgets);
    the throughput objective is also held to ``max_loss`` (a number or ``"baseline"``, which
    ``loss_target`` resolves with these predictions), the loss objective is not. ``z``: the
    band of a throughput tie (select.timing_z)."""
    target = (
        loss_target(max_loss, candidates, loss_pred, baseline)
        if objective == "throughput"
        else None
    )
    return select_top_k(
        candidates, loss_pred, k, objective=objective, max_loss=target, z=z, **budgets
    )


def select_top_k(
    candidates: pd.DataFrame,
    loss_pred: ArrayLike,
    k: int,
    *,
    objective: str = "loss",
    max_params: float | None = None,
    max_tokens: float | None = None,
    max_latency: float | None = None,
    max_loss: float | None = None,
    z: float = Z_TIE,
) -> pd.DataFrame:
    """All candidates plus ``loss_pred``, ``feasible`` and ``selected`` (0/1) and ``rank``
    (1 = the best by the objective, among the selected; empty for the others); for the
    throughput objective also ``throughput_tier`` (objectives.throughput_ranking, band ``z``)."""
    import pulp

    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise InputError(f"candidates: missing column(s) {', '.join(missing)}")
    duplicated = candidates["name"][candidates["name"].duplicated()].tolist()
    if duplicated:
        raise InputError(f"candidates: name(s) appear twice: {', '.join(map(str, duplicated))}")
    loss = positive("predicted loss", loss_pred)
    if len(loss) != len(candidates):
        raise InputError(f"{len(loss)} predicted losses for {len(candidates)} candidates")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InputError(f"k must be a positive integer, got {k!r}")
    limits = {
        column: limit
        for column, limit in (("N", max_params), ("D", max_tokens), ("latency_s", max_latency))
        if limit is not None
    }
    if max_loss is not None:
        limits["loss_pred"] = max_loss
    for column, limit in limits.items():
        if not limit > 0:
            raise InputError(f"the budget on {column} must be positive, got {limit}")
    # Each candidate's value over the limit, so the solver sees coefficients near 1 (N is ~1e9).
    table = candidates.assign(loss_pred=loss)
    scaled = {column: positive(column, table[column]) / limit for column, limit in limits.items()}
    feasible = np.ones(len(loss), dtype=bool)
    for values in scaled.values():
        feasible &= values <= 1
    costs = cost(objective, candidates, loss, feasible, z)
    if feasible.sum() < k:
        budget = ", ".join(f"{column} <= {limit:g}" for column, limit in limits.items())
        raise InputError(
            f"only {int(feasible.sum())} of {len(loss)} candidates are feasible "
            f"({budget or 'no budgets'}), fewer than k = {k}"
        )

    problem = pulp.LpProblem("select", pulp.LpMinimize)
    x = [problem.add_variable(f"x_{i}", cat=pulp.LpBinary) for i in range(len(loss))]
    problem += pulp.lpSum(float(c_i) * x_i for c_i, x_i in zip(costs, x, strict=True))
    problem += pulp.lpSum(x) == k
    for column, values in scaled.items():
        for i, (value, x_i) in enumerate(zip(values, x, strict=True)):
            problem += float(value) * x_i <= 1, f"{column}_{i}"
    with warnings.catch_warnings():
        # PuLP 3.3 (pinned) warns that the bundled CBC goes in 4.0; it is what we mean to use.
        warnings.simplefilter("ignore", DeprecationWarning)
        status = problem.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        raise RuntimeError(f"CBC did not solve the selection: {pulp.LpStatus[status]}")

    selected = np.array([round(x_i.value()) for x_i in x], dtype=int)
    order = np.flatnonzero(selected)[np.argsort(costs[selected == 1], kind="stable")]
    rank = pd.Series(pd.NA, index=range(len(loss)), dtype="Int64")
    rank.iloc[order] = np.arange(1, k + 1)
    table = candidates.reset_index(drop=True).assign(
        loss_pred=loss, feasible=feasible.astype(int), selected=selected, rank=rank
    )
    if objective == "throughput":
        table[TIER] = throughput_ranking(table, loss, feasible, z)[1]
    return table
