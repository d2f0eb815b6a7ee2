"""The methods, written once over a law's ``Problem`` (infscale.fit.problem): ``lm`` (curve_fit
by Levenberg-Marquardt on the raw loss), ``huber`` (Chinchilla's: Huber on log L by batched
L-BFGS from a grid of starts, infscale.fit.huber), ``vp`` (variable projection,
infscale.fit.vp); each fit nested across tie modes (infscale.fit.nested), and the bootstrap
refits of each. scipy is imported inside the function that needs it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from infscale.fit import huber, nested
from infscale.fit.core import FitError
from infscale.fit.problem import Problem

MAXFEV = 100_000  # the authors' curve_fit budget
# curve_fit's budget from a warm start (a tied form's optimum, or a bootstrap refit's full fit):
# a few hundred evaluations suffice; one that needs more drifts along a direction the points do
# not pin down (and a refit that does is counted failed).
WARM_MAXFEV = 5000
# A bootstrap resample refit by the huber method starts at the full fit's optimum and runs to
# these tighter tolerances (it skips the start grid and the polish).
BOOTSTRAP_FTOL = 1e-13
BOOTSTRAP_GTOL = 1e-9
BOOTSTRAP_MAX_ITER = 3000  # a resample that needs more has not converged: it is counted failed
OPTIMA_KEPT = 64  # grid optima remembered (huber_optimum)
_OPTIMA: dict[tuple, tuple[np.ndarray, float]] = {}


def fit(problem: Callable[[str], Problem], tie: str, method: str) -> dict[str, float]:
    """``method``'s fit under ``tie``, nested (infscale.fit.nested.fit_nested): also started
    from the fit of the tie mode it nests, the better objective kept (lm's and vp's: the sum of
    squares; huber's: its Huber sum). ``problem(tie)``: the law's problem in that tie mode."""
    made: dict[str, Problem] = {}

    def at(tie: str) -> Problem:
        if tie not in made:
            made[tie] = problem(tie)
        return made[tie]

    if method in at(tie).cannot:
        raise FitError(at(tie).cannot[method])

    def fit_from(tie: str, start: Mapping[str, float] | None) -> dict[str, float]:
        return FITS[method](at(tie), start)

    def value(tie: str, params: Mapping[str, float]) -> float:
        return objective(at(tie), method, params)

    key = (method, *at(tie).key)
    return nested.fit_nested(tie, key, lambda t: at(t).free, fit_from, value)


def objective(p: Problem, method: str, params: Mapping[str, float]) -> float:
    """What ``method`` minimises, at ``params``."""
    if method != "huber":
        return float(np.sum((p.loss - p.predict(params)) ** 2))
    with np.errstate(all="ignore"):
        return float(p.huber_objective(p.to_u(params)[None, :], None)[0][0])


def fit_lm(p: Problem, start: Mapping[str, float] | None = None) -> dict[str, float]:
    """curve_fit (LM) on the raw loss, no bounds or weights, from ``start`` within WARM_MAXFEV
    evaluations, or else from the law's own start (the paper's: all ones) within MAXFEV.

    Raises FitError when LM stops without a fit: out of evaluations, non-finite parameters, or
    never having left the law's own start (at large N and D the terms N^-1 and D^-1 are so
    small that LM can declare convergence at step 0); and before LM, on fewer points than free
    parameters (a bootstrap resample may draw so few, which then counts as failed).
    """
    if len(p.loss) < len(p.free):
        raise FitError(
            f"the lm fit has {len(p.loss)} point(s) for {len(p.free)} free parameters: need at "
            f"least {len(p.free)}"
        )
    p0 = np.array([(p.lm_start() if start is None else start)[q] for q in p.free], dtype=float)

    def model(_index: np.ndarray, *theta: float) -> np.ndarray:  # xdata: the points, by index
        return p.predict(p.expand(theta))

    maxfev = MAXFEV if start is None else WARM_MAXFEV
    theta = curve_fit_lm(model, np.arange(len(p.loss)), p.loss, p0, maxfev)
    if start is None and np.all(theta == p0):  # from a fit, not moving is its optimum
        raise FitError(
            "the lm fit never left its start"
            + (" (all parameters 1)" if np.all(p0 == 1.0) else "")
            + ": the loss hardly depends on them there; try --method huber"
        )
    return p.expand(theta)


def curve_fit_lm(
    model: Callable[..., np.ndarray],
    xdata: np.ndarray,
    loss: np.ndarray,
    p0: Sequence[float],
    maxfev: int,
) -> np.ndarray:
    """curve_fit by Levenberg-Marquardt of ``model(xdata, *theta)`` to the raw loss from
    ``p0``; FitError when LM stops without a finite fit. Its numerical warnings are the fit's
    own business: a failed fit says so in the error."""
    from scipy.optimize import OptimizeWarning, curve_fit

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            theta, _ = curve_fit(model, xdata, loss, p0=p0, method="lm", maxfev=maxfev)
        except (RuntimeError, ValueError) as err:
            raise FitError(f"the lm fit did not converge: {' '.join(str(err).split())}") from None
    if not np.all(np.isfinite(theta)):
        raise FitError("the lm fit did not converge: non-finite parameters")
    return theta


def fit_huber(p: Problem, start: Mapping[str, float] | None = None) -> dict[str, float]:
    """Huber (delta 1e-3) on log L - log L̂ by L-BFGS: from every start of the law's grid at
    once (:func:`huber_optimum`), or from ``start`` alone; the best runs are polished and the
    lowest objective kept (infscale.fit.huber.best_optimum)."""
    if start is None:
        return p.from_u(huber_optimum(p)[0])
    u, value = huber.best_optimum(p.huber_objective, p.to_u(start)[None, :])
    if not np.isfinite(value):
        raise FitError("the huber fit from the tied optimum found no finite optimum")
    return p.from_u(u)


def huber_optimum(p: Problem) -> tuple[np.ndarray, float]:
    """The best optimum from the huber method's grid of starts: its free vector and objective.

    Remembered for the last OPTIMA_KEPT problems: the law comparison asks for the Chinchilla
    optimum of the same points for its chinchilla rows and again as the start of each
    conditional law's fit, and the grid is most of a comparison's time.
    """
    memo = (*p.key, p.tie)
    if memo not in _OPTIMA:
        starts = p.huber_starts()
        u, value = huber.best_optimum(p.huber_objective, starts)
        if not np.isfinite(value) or not np.all(np.isfinite(u)):
            raise FitError(f"the huber fit found no finite optimum from {len(starts)} starts")
        if len(_OPTIMA) >= OPTIMA_KEPT:
            del _OPTIMA[next(iter(_OPTIMA))]
        _OPTIMA[memo] = (u, value)
    u, value = _OPTIMA[memo]
    return u.copy(), value


def fit_vp(p: Problem, start: Mapping[str, float] | None = None) -> dict[str, float]:
    return p.vp(start)


# method -> its fit of a problem, from its own starts or from ``start``
FITS: dict[str, Callable[[Problem, Mapping[str, float] | None], dict[str, float]]] = {
    "lm": fit_lm,
    "huber": fit_huber,
    "vp": fit_vp,
}


def refits(
    p: Problem, method: str, counts: np.ndarray, params: Mapping[str, float]
) -> tuple[list[dict[str, float]], int]:
    """``method``'s refit of each resample (a row of point counts) of the full fit ``params``;
    (the fits that converged, how many did not).

    ``huber`` refits all resamples at once (the counts weight the Huber terms), each from the
    full fit, to the BOOTSTRAP_* tolerances; a row that does not converge, or ends non-finite,
    fails. ``vp`` refines each from the full fit's nonlinear parameters; ``lm`` refits each
    from the full fit or the law's own start (``Problem.refits_from_fit``). A FitError fails.
    """
    if method == "huber":
        u, value, converged = huber.lbfgs(
            p.huber_objective,
            np.repeat(p.to_u(params)[None, :], len(counts), axis=0),
            counts.astype(float),
            ftol=BOOTSTRAP_FTOL,
            gtol=BOOTSTRAP_GTOL,
            max_iter=BOOTSTRAP_MAX_ITER,
        )
        ok = converged & np.isfinite(value) & np.all(np.isfinite(u), axis=1)
        return [p.from_u(row) for row in u[ok]], int(len(counts) - ok.sum())
    start = params if method == "vp" or p.refits_from_fit else None
    fits, failed = [], 0
    for row in counts:
        try:
            fits.append(FITS[method](p.take(np.repeat(np.arange(len(row)), row)), start))
        except FitError:
            failed += 1
    return fits, failed
