"""The design's config checks (gathered by infscale.checks): what would stop a round after the
seed grid has trained is refused when the config is parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infscale.design.problem import run_flops
from infscale.design.proposals import proposal_runs, proposal_table, round_budget
from infscale.design.reference import reference_files
from infscale.errors import InputError
from infscale.fit.core import free_params


def check_design(config: dict[str, Any]) -> None:
    """Raise InputError, naming the key, for rounds that could not run."""
    if not config["design"]["enabled"]:
        return
    if not config["fit"]["bootstrap"]:
        raise InputError(
            "config key fit.bootstrap: 0, but the design rounds need a fit's bootstrap resamples"
        )
    seeds = config["design"]["seed_runs"]
    runs = proposal_runs(config)
    names = [run.name for run in runs]
    if not seeds:
        raise InputError("config key design.seed_runs: no runs for round 0")
    unknown = [name for name in seeds if name not in names]
    if unknown:
        raise InputError(
            f"config key design.seed_runs: {', '.join(unknown)} not among the proposals "
            f"({', '.join(names)})"
        )
    law, tie = config["design"]["law"], config["design"]["tie"]
    needed = len(free_params(law, tie))
    points = sum(len(run.multipliers) for run in runs if run.name in seeds)
    if points <= needed:  # at as many, the fit interpolates: no residual, no run noise
        raise InputError(
            f"config key design.seed_runs: {points} loss point(s) for the {needed} free "
            f"parameters of the {law} law with tie {tie}: a round's fit needs more points than "
            "parameters (the design's run noise is the fit's residual sd)"
        )
    open_runs = [run for run in runs if run.name not in seeds]
    if not open_runs:
        raise InputError(
            "config key design.proposals: empty proposal set (every proposal is a seed run)"
        )
    budget, cheapest = round_budget(config), run_flops(proposal_table(open_runs)).min()
    if budget < cheapest:
        raise InputError(
            f"config key design.budget_flops: a round's budget of {budget:.3g} FLOPs is below "
            f"the cheapest proposal's {cheapest:.3g}"
        )
    files = reference_files(config["design"]["reference"]).values()
    missing = [path for path in files if not Path(path).is_file()]
    if missing:
        raise InputError(
            f"config key design.reference: no {missing[0]} (the directory of a finished "
            "full-grid run)"
        )
