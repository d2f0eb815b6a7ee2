"""The runs a design may choose, generated from the grid's size groups when the config is parsed.

Every proposal is a run with a fixed name (``{size}-{variant}``, a variant's GQA twin
``{variant}kv{K}``, its MLP-width twin ``{variant}f{F}``), so every training target exists before
anything trains: a design round only chooses among them, and a run chosen in any round is the
same file as the grid run of that name (never trained twice).

A GQA twin keeps N: the key and value projections it drops go to a wider MLP (F rounded to
``model.multiple_of``), as the candidates' GQA shape does. An MLP-width twin sets F = ratio · d
(rounded), so it moves the MLP/attention ratio r at nearly the same d and L.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from infscale.design.problem import run_flops
from infscale.grid import Run, grid_runs, make_run
from infscale.shapes import Shape


def _rounded(value: float, multiple: int) -> int:
    return max(multiple, multiple * round(value / multiple))


def gqa_twin(shape: Shape, n_kv_heads: int) -> Shape:
    """``shape`` with ``n_kv_heads`` KV heads and its MLP widened to keep N (as near as the
    rounding allows)."""
    dropped = 2 * shape.d_model * (shape.n_heads - n_kv_heads) * shape.head_dim
    ffn = _rounded(shape.ffn_hidden + dropped / (3 * shape.d_model), shape.multiple_of)
    return replace(shape, n_kv_heads=n_kv_heads, ffn_hidden=ffn)


def mlp_twin(shape: Shape, ratio: float) -> Shape:
    """``shape`` with an MLP of width ratio · d_model (rounded to its multiple_of)."""
    return replace(shape, ffn_hidden=_rounded(ratio * shape.d_model, shape.multiple_of))


def proposal_runs(config: dict[str, Any]) -> list[Run]:
    """Every run a design may train: the grid's, then per grid shape its GQA twins (one per
    ``design.proposals.gqa_kv_heads`` that divides its heads) and MLP-width twins; a twin
    equal to a shape already listed is left out. Empty when ``design.enabled`` is false."""
    design = config["design"]
    if not design["enabled"]:
        return []
    proposals = design["proposals"]
    protocol = config["train"]["protocol"]
    grid = grid_runs(config)
    runs = list(grid) if proposals["grid"] else []
    seen = {run.shape for run in grid}
    # One per shape (the independent protocol lists a grid run per multiplier).
    for run in {(r.size, r.variant): r for r in grid}.values():
        twins = [
            (f"{run.variant}kv{k}", gqa_twin(run.shape, k))
            for k in proposals["gqa_kv_heads"]
            if k < run.shape.n_heads and run.shape.n_heads % k == 0
        ]
        twins += [
            (f"{run.variant}f{mlp_twin(run.shape, r).ffn_hidden}", mlp_twin(run.shape, r))
            for r in proposals["ffn_ratios"]
        ]
        for variant, shape in twins:
            if shape in seen:
                continue
            seen.add(shape)
            mults = grid_multipliers(grid, run)
            name = f"{run.size}-{variant}"
            if protocol == "paper":
                runs.append(make_run(name, run.size, variant, shape, mults))
            else:
                runs += [make_run(f"{name}-{m}x", run.size, variant, shape, (m,)) for m in mults]
    return runs


def grid_multipliers(grid: list[Run], run: Run) -> tuple[int, ...]:
    """Every multiplier the grid trains ``run``'s shape to (one run under ``paper``, several
    under ``independent``)."""
    return tuple(sorted(m for r in grid if r.shape == run.shape for m in r.multipliers))


def proposal_table(runs: list[Run]) -> pd.DataFrame:
    """The runs as ``infscale design`` reads them: one row per run, observed at its last
    multiplier (D = its total tokens; a paper-protocol run's earlier points are a bonus the
    design does not count), with the shape columns."""
    return pd.DataFrame(
        [
            {
                "name": run.name,
                **run.shape.dimensions,
                "N": run.shape.n_params,
                "D": run.total_tokens,
            }
            for run in runs
        ]
    )


def round_budget(config: dict[str, Any]) -> float:
    """FLOPs one round may spend: ``design.budget_flops``, or ``design.budget_fraction`` of
    the whole grid's training FLOPs."""
    design = config["design"]
    if design["budget_flops"] is not None:
        return float(design["budget_flops"])
    grid = proposal_table(grid_runs(config))
    return design["budget_fraction"] * float(run_flops(grid).sum())
