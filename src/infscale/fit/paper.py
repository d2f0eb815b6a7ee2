"""The paper's two laws' fits (Chinchilla's and the inference law, with the comparison's
additive variant): ``lm`` (the paper's curve_fit from all ones), ``huber`` (Chinchilla's
method, infscale.fit.huber) and ``vp`` (infscale.fit.vp), each nested (infscale.fit.nested),
and their bootstrap refits. scipy is imported inside the functions that need it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from infscale.fit import huber
from infscale.fit.core import (
    PARAMS,
    FitError,
    chinchilla_loss,
    expand,
    free_params,
    inference_loss,
    positions,
)
from infscale.fit.huber import LOG_PARAMS
from infscale.fit.methods import (
    check_lm_points,
    curve_fit_lm,
    from_log_space,
    refit_each,
    refit_huber,
    to_log_space,
)
from infscale.fit.nested import fit_nested
from infscale.fit.vp import fit_vp

MAXFEV = 100_000  # the authors' curve_fit budget
# curve_fit's budget from a warm start (a tied form's optimum): a few hundred evaluations
# suffice; one that needs more drifts along a direction the points do not pin down.
WARM_MAXFEV = 5000


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


def fit_lm(
    law: str,
    tie: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    start: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The paper's procedure: curve_fit (LM), p0 all ones, no bounds or weights, raw loss
    (``start``: p0 from these parameters instead, within WARM_MAXFEV evaluations, for
    ``fit_nested``).

    Raises FitError when LM stops without a fit: out of evaluations, non-finite parameters, or
    never having left the start (at large N and D the terms N^-1 and D^-1 are so small that LM
    can declare convergence at step 0); and before LM, on fewer points than free parameters (a
    bootstrap resample may draw so few, which then counts as failed).
    """
    free = free_params(law, tie)
    check_lm_points(len(loss), len(free))
    p0 = np.ones(len(free)) if start is None else np.array([start[p] for p in free], float)
    x = np.vstack([N, D] if R is None else [N, D, R])

    where = list(positions(law, tie).items())  # once: LM calls the model up to MAXFEV times

    def model(x: np.ndarray, *theta: float) -> np.ndarray:
        return form_loss(law, {p: theta[j] for p, j in where}, *x)

    theta = curve_fit_lm(model, x, loss, p0, MAXFEV if start is None else WARM_MAXFEV)
    if np.all(theta == p0):
        raise FitError(
            "the lm fit never left its start"
            + (" (all parameters 1)" if start is None else "")
            + ": the loss hardly depends on them there; try --method huber"
        )
    return expand(law, tie, theta)


def fit_paper_law(
    law: str,
    tie: str,
    method: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    form: str | None = None,
) -> dict[str, float]:
    """``method``'s fit of the chinchilla or inference law (``form``: infscale.fit.huber.FORMS;
    default the law's own), nested (``fit_nested``): lm's and vp's objective is the sum of
    squares, huber's its Huber sum."""
    form = form or law
    if method == "lm" and form != law:
        raise FitError("the lm method fits only the chinchilla, inference and conditional laws")
    logs = _logs(N, D, R, loss)

    def fit(tie: str, start: Mapping[str, float] | None) -> dict[str, float]:
        if method == "lm":
            return fit_lm(law, tie, N, D, R, loss, start)
        if method == "vp":
            return fit_vp(law, tie, N, D, R, loss, start, form)
        if start is None:
            return _from_log_space(law, tie, huber_optimum(law, tie, N, D, R, loss, form)[0])
        objective = huber.bound_objective(form, positions(law, tie), logs)
        u, value = huber.best_optimum(objective, _to_log_space(law, tie, start)[None, :])
        if not np.isfinite(value):
            raise FitError("the huber fit from the tied optimum found no finite optimum")
        return _from_log_space(law, tie, u)

    def objective(tie: str, params: Mapping[str, float]) -> float:
        if method != "huber":
            return float(np.sum((loss - form_loss(form, params, N, D, R)) ** 2))
        u = _to_log_space(law, tie, params)
        with np.errstate(all="ignore"):
            return float(huber.objective(u, form, positions(law, tie), logs)[0])

    key = (law, method, form, *(None if a is None else a.tobytes() for a in (N, D, R, loss)))
    return fit_nested(tie, key, lambda t: free_params(law, t), fit, objective)


def fit_huber(
    law: str, tie: str, N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> dict[str, float]:
    """Chinchilla's method: Huber (delta 1e-3) on log L - log L̂, L-BFGS from every grid start.

    log L̂ = logsumexp(a - alpha·log N, b - beta·log D, e) [+ log(1 + exp(f)·R^gamma)], so A, B,
    E (and epsilon) are positive by construction. All starts run at once (infscale.fit.huber: the
    batched L-BFGS, and how the grid covers epsilon and gamma); the best few are polished with
    tight tolerances and the lowest objective is kept.
    """
    u, _ = huber_optimum(law, tie, N, D, R, loss)
    return _from_log_space(law, tie, u)


def huber_optimum(
    law: str,
    tie: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    form: str | None = None,
) -> tuple[np.ndarray, float]:
    """The huber fit's free vector (log-space A, B, E, epsilon) and its objective; ``form`` is
    the objective's (infscale.fit.huber.FORMS; default: the law's own).

    Remembered for the last OPTIMA_KEPT point sets: the law comparison asks for the Chinchilla
    optimum of the same points for its chinchilla rows and again as the start of each
    conditional law's fit, and the 4,500-start grid is most of a comparison's time.
    """
    form = form or law
    key = (law, tie, form, *(None if a is None else a.tobytes() for a in (N, D, R, loss)))
    if key not in _OPTIMA:
        free, where = free_params(law, tie), positions(law, tie)
        logs = _logs(N, D, R, loss)
        starts = huber.grid_starts(free, where, form, logs)
        u, value = huber.fit_starts(starts, form, where, logs)
        if not np.isfinite(value) or not np.all(np.isfinite(u)):
            raise FitError(f"the huber fit found no finite optimum from {len(starts)} starts")
        if len(_OPTIMA) >= OPTIMA_KEPT:
            del _OPTIMA[next(iter(_OPTIMA))]
        _OPTIMA[key] = (u, value)
    u, value = _OPTIMA[key]
    return u.copy(), value


OPTIMA_KEPT = 64
_OPTIMA: dict[tuple, tuple[np.ndarray, float]] = {}


def _logs(
    N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    return np.log(N), np.log(D), None if R is None else np.log(R), np.log(loss)


def _to_log_space(law: str, tie: str, params: Mapping[str, float]) -> np.ndarray:
    """The free vector of ``params`` (log A, B, E, epsilon)."""
    return to_log_space(free_params(law, tie), LOG_PARAMS, params)


def _from_log_space(law: str, tie: str, u: np.ndarray) -> dict[str, float]:
    return expand(law, tie, from_log_space(free_params(law, tie), LOG_PARAMS, u))


FITTERS: dict[str, Callable[..., dict[str, float]]] = {
    "lm": fit_lm,
    "huber": fit_huber,
    "vp": fit_vp,
}


def refits(
    law: str,
    tie: str,
    method: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    counts: np.ndarray,
    params: Mapping[str, float],
    form: str | None = None,
) -> tuple[list[dict[str, float]], int]:
    """Refit one of the paper's laws on each resample (a row of point counts); (the fits that
    converged, how many did not).

    ``lm`` refits each resample by the paper's procedure from all ones (a FitError fails);
    ``vp`` by variable projection refined from the full fit's exponents.
    ``huber`` refits all resamples at once (the counts weight the Huber terms), each
    warm-started at the full fit ``params`` rather than from the 4,500-point grid, to tighter
    tolerances; a row that does not converge, or ends non-finite, fails. ``form`` is the huber
    objective's (infscale.fit.huber.FORMS; default: the law's own), for the law comparison's
    additive variant.
    """
    if method == "huber":
        objective = huber.bound_objective(form or law, positions(law, tie), _logs(N, D, R, loss))
        u, failed = refit_huber(objective, _to_log_space(law, tie, params), counts)
        return [_from_log_space(law, tie, row) for row in u], failed

    def fit_one(i: np.ndarray) -> dict[str, float]:
        R_i = None if R is None else R[i]
        if method == "vp":  # warm-started at the full fit, as huber's refits are
            return fit_vp(law, tie, N[i], D[i], R_i, loss[i], params, form)
        return FITTERS[method](law, tie, N[i], D[i], R_i, loss[i])

    return refit_each(counts, fit_one)


def _huber_objective(
    u: np.ndarray,
    where: Mapping[str, int],
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_r: np.ndarray | None,
    log_loss: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Huber losses and its gradient, for free vectors ``u`` of shape (..., p)."""
    form = "inference" if "epsilon" in where else "chinchilla"
    return huber.objective(u, form, where, (log_n, log_d, log_r, log_loss))
