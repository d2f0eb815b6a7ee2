"""The paper's two laws (Chinchilla's and the inference law, with the comparison's additive
variant), written once: their loss in each form and their ``Problem`` (infscale.fit.problem),
over which infscale.fit.methods fits them. lm starts from all ones, the paper's procedure (the
published numbers came from it, fragile as it is), and refits each bootstrap resample so too;
huber starts from Chinchilla's grid (infscale.fit.huber.grid_starts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

import numpy as np

from infscale.fit import huber, vp
from infscale.fit.core import PARAMS, chinchilla_loss, free_params, inference_loss, positions
from infscale.fit.points import Points
from infscale.fit.problem import Problem, arrays_key


def chinchilla_form(
    params: Mapping[str, float], N: np.ndarray, D: np.ndarray, R: np.ndarray | None = None
) -> np.ndarray:
    return chinchilla_loss(N, D, *(params[p] for p in PARAMS["chinchilla"]))


def inference_form(
    params: Mapping[str, float], N: np.ndarray, D: np.ndarray, R: np.ndarray | None = None
) -> np.ndarray:
    return inference_loss(N, D, R, *(params[p] for p in PARAMS["inference"]))


def additive_form(
    params: Mapping[str, float], N: np.ndarray, D: np.ndarray, R: np.ndarray | None = None
) -> np.ndarray:
    """The inference law's additive variant: E + A·N^-alpha + B·D^-beta + epsilon·R^gamma."""
    return chinchilla_form(params, N, D) + params["epsilon"] * np.asarray(R) ** params["gamma"]


# infscale.fit.huber's form -> its loss (every parameter of the law, and R where it reads it)
FORMS: dict[str, Callable[..., np.ndarray]] = {
    "chinchilla": chinchilla_form,
    "inference": inference_form,
    "additive": additive_form,
}


def form_loss(
    form: str,
    params: Mapping[str, float],
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None = None,
) -> np.ndarray:
    """The loss of the paper law in ``form`` (infscale.fit.huber.FORMS)."""
    return FORMS[form](params, N, D, R)


class PaperProblem(Problem):
    """A law of the paper's ``family`` (chinchilla or inference) in huber's ``form``
    (infscale.fit.huber.FORMS: the family's own, or the inference law's additive variant, which
    lm does not fit: the paper fitted only its two laws). R is read by the inference forms."""

    log_params = huber.LOG_PARAMS
    refits_from_fit = False

    def __init__(self, family: str, form: str, tie: str, points: Points) -> None:
        super().__init__(tie, points)
        self.family, self.form = family, form
        self.params = PARAMS[family]
        self.free = free_params(family, tie)
        self.where = positions(family, tie)
        self.R = None if form == "chinchilla" else points.R
        if form != family:
            self.cannot["lm"] = (
                "the lm method fits only the chinchilla, inference and conditional laws"
            )

    @property
    def key(self) -> tuple:
        p = self.points
        return (self.family, self.form, *arrays_key(p.N, p.D, self.R, p.loss))

    def predict(self, params: Mapping[str, float]) -> np.ndarray:
        return form_loss(self.form, params, self.points.N, self.points.D, self.R)

    @cached_property
    def logs(self) -> huber.Logs:
        """log N, log D, log R (or None) and log L: what the huber objective and its grid read."""
        p = self.points
        return np.log(p.N), np.log(p.D), None if self.R is None else np.log(self.R), np.log(p.loss)

    def _huber_objective(self) -> huber.Objective:
        return huber.bound_objective(self.form, self.where, self.logs)

    def huber_starts(self) -> np.ndarray:
        return huber.grid_starts(self.free, self.where, self.form, self.logs)

    def lm_start(self) -> dict[str, float]:
        return dict.fromkeys(self.free, 1.0)

    def vp(self, start: Mapping[str, float] | None) -> dict[str, float]:
        p = self.points
        return vp.fit_vp(self.form, self.params, self.tie, p.N, p.D, self.R, p.loss, start)

    def take(self, rows: np.ndarray) -> PaperProblem:
        return PaperProblem(self.family, self.form, self.tie, self.points.take(rows))
