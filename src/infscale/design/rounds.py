"""One design from a fit: the chosen runs as a table, and how settled the top-k choice is before
them. ``infscale design`` and the workflow's rounds (rules/design.smk) both make it here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from infscale.design.choice import top_k_sets
from infscale.design.greedy import Design, greedy_design
from infscale.design.problem import OUTPUT_COLUMNS, Problem, design_problem


class DesignResult(NamedTuple):
    """The chosen runs (the proposals' columns plus OUTPUT_COLUMNS), the design, the problem
    it solved, and the choice under the fit as it stands: the modal top-k set and the share of
    resamples choosing it."""

    table: pd.DataFrame
    design: Design
    problem: Problem
    modal_set: tuple[str, ...]
    modal_share: float


def design_runs(
    fit: Mapping[str, Any],
    proposals: pd.DataFrame,
    candidates: pd.DataFrame,
    k: int,
    budgets: Mapping[str, float | None],
    budget_flops: float,
    seed: int,
) -> DesignResult:
    """The runs of ``proposals`` that most settle the top-``k`` choice of ``candidates`` per
    FLOP within ``budget_flops`` (InputError for inputs it cannot use, design_problem's)."""
    problem = design_problem(fit, proposals, candidates, k, budgets, budget_flops)
    design = greedy_design(
        problem.candidate_loss,
        problem.feasible,
        k,
        problem.run_loss,
        problem.flops,
        budget_flops,
        problem.noise_sd,
        seed,
    )
    steps = design.steps
    table = proposals.drop(columns=list(OUTPUT_COLUMNS), errors="ignore").iloc[
        [s.run for s in steps]
    ]
    table = table.reset_index(drop=True).assign(
        **{column: [getattr(s, column) for s in steps] for column in OUTPUT_COLUMNS}
    )
    index, sets = top_k_sets(problem.candidate_loss, problem.feasible, k)
    counts = np.bincount(index, minlength=len(sets))
    modal = sets[int(np.argmax(counts))].astype(bool)
    names = tuple(candidates["name"].to_numpy()[modal])
    return DesignResult(table, design, problem, names, float(counts.max() / len(index)))
