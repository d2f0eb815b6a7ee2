"""The selection stage's config checks (gathered by infscale.checks): the fit set and the
baseline it names exist, the law suits the fitting method, and the budgets leave k candidates."""

from __future__ import annotations

from typing import Any

from infscale.errors import InputError
from infscale.grid import candidate_runs


def check_select(config: dict[str, Any]) -> None:
    """Raise InputError, naming the key, for a selection that could not run."""
    select, sets = config["select"], config["fit"]["sets"]
    if select["fit_set"] not in sets:
        raise InputError(
            f"config key select.fit_set: {select['fit_set']!r} is not one of fit.sets "
            f"({', '.join(sets)})"
        )
    if select["baseline"] not in select["candidates"]:
        raise InputError(f"config key select.baseline: {select['baseline']!r} is not a candidate")
    if config["fit"]["method"] == "vp" and select["law"] == "conditional":
        raise InputError(
            "config key fit.method: vp solves only coefficients that enter linearly, and the "
            "conditional law's multiplicative factors do not: use lm or huber for "
            "select.law conditional (select.law auto leaves it out under vp)"
        )
    _check_budgets(config)


def _check_budgets(config: dict[str, Any]) -> None:
    """The budgets on N and D, known before anything trains (a candidate's N; D = select.tokens
    for every candidate), and ``select.k`` against the candidates within them: else the
    selection would fail after the whole grid has trained. The latency budgets are known only
    once the candidates are timed (or their latency predicted), so the selection checks those."""
    select = config["select"]
    tokens, max_tokens, max_params = select["tokens"], select["max_tokens"], select["max_params"]
    if max_tokens is not None and tokens > max_tokens:
        raise InputError(
            f"config key select.max_tokens: {max_tokens:,} is below select.tokens {tokens:,}, "
            "the D of every candidate"
        )
    sizes = [run.shape.n_params for run in candidate_runs(config)]
    if max_params is not None and min(sizes) > max_params:
        raise InputError(
            f"config key select.max_params: {max_params:,} is below every candidate's N "
            f"(the smallest: {min(sizes):,})"
        )
    within = sum(max_params is None or n <= max_params for n in sizes)
    if select["k"] > within:
        budget = " within select.max_params" if max_params is not None else ""
        raise InputError(
            f"config key select.k: {select['k']} exceeds the {within} candidate(s){budget}"
        )
