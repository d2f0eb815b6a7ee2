"""The laws, each defined once: a ``Law`` names its parameters, the inputs it reads from a table
of points, its loss, its ``Problem`` in each tie mode (infscale.fit.problem: what every method
fits) and what a fit of it adds to FIT.json. Its fits by every method (lm, huber, vp; nested
across tie modes) and its bootstrap refits are infscale.fit.methods', written once for all.
``LAWS`` is the one registry: the fit, the predictions and the comparison look a law up there
and dispatch on nothing else.

The formulas and problems live with their family: the paper's two laws and the inference
law's additive variant in infscale.fit.paper, the follow-up's conditional law (both forms) in
infscale.fit.conditional. Adding a law is one ``Law`` in ``LAWS`` and, for a new family, its
``Problem`` (see docs/facts.md for the formulas). Nothing here imports scipy or pandas, so
that the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from infscale.errors import InputError
from infscale.fit import conditional, methods, paper
from infscale.fit.bootstrap import resample_runs
from infscale.fit.core import FAMILIES, PARAMS, FitError, check_choice, table_columns
from infscale.fit.points import Points
from infscale.fit.problem import Problem

if TYPE_CHECKING:
    import pandas as pd

Params = Mapping[str, float]
# What each optional input of Points is, for the message when a law lacks it.
INPUTS = {
    "R": "R = d_model / n_layers",
    "variables": "its factors' variables (x, r): predict it from a table of points",
}


@dataclass(frozen=True)
class Law:
    """One scaling law. ``family`` is the law whose parameters it has (FIT.json's ``law``) and
    ``form`` the variant its family fits (infscale.fit.huber.FORMS for the paper's family, the
    conditional law's multiplicative or additive form); ``fit_form`` is FIT.json's ``form``
    (None: the law writes none). ``inputs`` names the optional Points fields it reads."""

    name: str
    family: str
    form: str
    fit_form: str | None
    inputs: tuple[str, ...]
    read: Callable[[pd.DataFrame, Sequence[str]], dict[str, Any]]
    loss: Callable[[Params, Points], np.ndarray]
    problem: Callable[[str, Points], Problem]  # (tie, points) -> the problem the methods fit
    describe: Callable[[Params, Points], tuple[dict[str, Any], list[str]]]
    starts_from: str | None = None  # the law whose optimum on the same points its fits start at

    @property
    def params(self) -> tuple[str, ...]:
        """Every parameter, in FIT.json order."""
        return PARAMS[self.family]

    def free(self, tie: str, points: Points) -> tuple[str, ...]:
        """The parameters fitted under ``tie`` (the conditional law: less its dropped factors')."""
        return self.problem(tie, points).free

    def fit(self, tie: str, method: str, points: Points) -> dict[str, float]:
        """Every parameter of the law, fitted by ``method`` (nested: infscale.fit.methods.fit).
        A FitError when a parameter is not finite (e.g. A -> inf with alpha): such a fit is no
        fit for any caller, and a FIT.json holding it would not read back (laws.check_fit)."""
        params = methods.fit(lambda t: self.problem(t, points), tie, method)
        if not all(np.isfinite(v) for v in params.values()):
            raise FitError("the fit diverged: non-finite parameters")
        return params

    def bootstrap(
        self, tie: str, method: str, points: Points, params: Params, k: int, seed: int
    ) -> dict[str, Any]:
        """The refits of the full fit ``params`` on ``k`` run-level resamples drawn with
        ``seed`` (each point its own run where ``points.runs`` is None): the resampled unit and
        how many there are; ``failed``; the 95% percentile interval of each parameter
        (``ci95``) and every converged refit's parameters (``samples``: one list per parameter,
        from which ``laws.predict_interval`` gives intervals for predictions), both None when
        every refit failed."""
        runs = np.arange(len(points.loss)) if points.runs is None else points.runs
        counts = resample_runs(runs, k, np.random.default_rng(seed))
        fits, failed = methods.refits(self.problem(tie, points), method, counts, params)
        unit = {"unit": "point" if points.runs is None else "run", "n_units": len(np.unique(runs))}
        if not fits:
            return unit | {"failed": failed, "ci95": None, "samples": None}
        samples = {p: [f[p] for f in fits] for p in self.params}
        ci95 = {p: np.percentile(v, [2.5, 97.5]).tolist() for p, v in samples.items()}
        return unit | {"failed": failed, "ci95": ci95, "samples": samples}

    def check(self, points: Points) -> None:
        """An InputError when ``points`` lack an input this law reads."""
        for name in self.inputs:
            if getattr(points, name) is None:
                raise InputError(f"the {self.name} law needs {INPUTS[name]}")


def _no_extras(params: Params, points: Points) -> tuple[dict[str, Any], list[str]]:
    return {}, []


def _read_nothing(frame: pd.DataFrame, dropped: Sequence[str]) -> dict[str, Any]:
    return {}


def _read_ratio(frame: pd.DataFrame, dropped: Sequence[str]) -> dict[str, Any]:
    d_model, n_layers = table_columns(frame, ["d_model", "n_layers"], "the inference law")
    return {"R": d_model / n_layers}


def _paper_law(name: str, family: str, form: str, inputs: tuple[str, ...] = ()) -> Law:
    """A law of the paper's family (infscale.fit.paper) in huber's ``form``; ``inputs``: ("R",)
    for the laws that read R = d_model / n_layers."""

    def ratio(p: Points) -> np.ndarray | None:
        """R where the law reads it: None otherwise."""
        return p.R if inputs else None

    return Law(
        name=name,
        family=family,
        form=form,
        fit_form=None,
        inputs=inputs,
        read=_read_ratio if inputs else _read_nothing,
        loss=lambda params, p: paper.form_loss(form, params, p.N, p.D, ratio(p)),
        problem=lambda tie, p: paper.PaperProblem(family, form, tie, p),
        describe=_no_extras,
    )


def _conditional_law(name: str, form: str) -> Law:
    """The conditional law (infscale.fit.conditional) in ``form``; a factor whose variable
    hardly varies over the fit points is dropped (its coefficients 0)."""

    def read(frame: pd.DataFrame, drop: Sequence[str]) -> dict[str, Any]:
        names = [n for n in conditional.FACTORS if n not in drop]
        return {"variables": conditional.factor_variables(frame, names)}

    def describe(params: Params, p: Points) -> tuple[dict[str, Any], list[str]]:
        gone = conditional.dropped_factors(p.variables)
        extras = {"form": form, "dropped": list(gone), **conditional.optima(params, gone)}
        return extras, conditional.drop_warnings(p.variables, gone)

    return Law(
        name=name,
        family="conditional",
        form=form,
        fit_form=form,
        inputs=("variables",),
        read=read,
        loss=lambda params, p: conditional.conditional_loss(form, params, p.N, p.D, p.variables),
        problem=lambda tie, p: conditional.ConditionalProblem(form, tie, p),
        describe=describe,
        starts_from="chinchilla",
    )


# In the comparison's row order: the contract's three, then the additive variants.
LAWS: dict[str, Law] = {
    law.name: law
    for law in (
        _paper_law("chinchilla", "chinchilla", "chinchilla"),
        _paper_law("inference", "inference", "inference", ("R",)),
        _conditional_law("conditional", "multiplicative"),
        _paper_law("inference-additive", "inference", "additive", ("R",)),
        _conditional_law("conditional-additive", "additive"),
    )
}
# The laws ``infscale fit`` fits and FIT.json can hold: (its law, its form) -> the law.
BY_FIT: dict[tuple[str, str | None], Law] = {
    (law.family, law.fit_form): law for law in LAWS.values() if law.name != "inference-additive"
}


def law_of(family: Any, form: str | None = None, what: str = "law") -> Law:
    """The law of a FIT.json's ``law`` and ``form`` (or ``infscale fit``'s --law and --form);
    no form: the law named after the family (the conditional law's: multiplicative)."""
    check_choice(what, family, FAMILIES)
    if form is None:
        return LAWS[family]
    forms = [law.fit_form for law in BY_FIT.values() if law.family == family and law.fit_form]
    if not forms:
        raise InputError(f"form applies only to the conditional law, not the {family} law")
    check_choice("form", form, tuple(forms))
    return BY_FIT[(family, form)]
