"""What every law's fits share, written once: the LM call, the free vector with its
coefficients in log space (the huber method's), and the bootstrap refits' loops. The laws'
families (infscale.fit.paper, infscale.fit.conditional) bring their models, starts and
objectives. scipy is imported inside the function that needs it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from infscale.fit import huber
from infscale.fit.core import FitError, log_coefficient

# A bootstrap resample refit by the huber method starts at the full fit's optimum and runs to
# these tighter tolerances (it skips the start grid and the polish).
BOOTSTRAP_FTOL = 1e-13
BOOTSTRAP_GTOL = 1e-9
BOOTSTRAP_MAX_ITER = 3000  # a resample that needs more has not converged: it is counted failed


def check_lm_points(n_points: int, n_free: int) -> None:
    """FitError when LM has fewer points than free parameters (curve_fit would raise a
    TypeError): the one check every lm fitter makes before it starts."""
    if n_points < n_free:
        raise FitError(
            f"the lm fit has {n_points} point(s) for {n_free} free parameters: need at least "
            f"{n_free}"
        )


def curve_fit_lm(
    model: Callable[..., np.ndarray],
    xdata: np.ndarray,
    loss: np.ndarray,
    p0: Sequence[float],
    maxfev: int,
) -> np.ndarray:
    """curve_fit by Levenberg-Marquardt (no bounds, no weights) of ``model(xdata, *theta)`` to
    the raw loss from ``p0``; FitError when LM stops without a finite fit (out of its ``maxfev``
    evaluations, or non-finite parameters). Its numerical warnings are the fit's own business:
    a failed fit says so in the error."""
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


def to_log_space(
    free: Sequence[str], log_params: Sequence[str], params: Mapping[str, float]
) -> np.ndarray:
    """The free vector of ``params``: the ``log_params`` as logs (nan where one is negative),
    the others raw."""
    return np.array([log_coefficient(params[p]) if p in log_params else params[p] for p in free])


def from_log_space(free: Sequence[str], log_params: Sequence[str], u: np.ndarray) -> list[float]:
    """The free parameters' values from a free vector (the inverse of :func:`to_log_space`)."""
    return [np.exp(v) if p in log_params else v for p, v in zip(free, u, strict=True)]


def refit_each(
    counts: np.ndarray, fit_one: Callable[[np.ndarray], dict[str, float]]
) -> tuple[list[dict[str, float]], int]:
    """``fit_one(drawn)`` on each resample (a row of point counts; ``drawn`` the indices of its
    points, a point as often as it was drawn); (the fits, how many raised FitError)."""
    fits, failed = [], 0
    for row in counts:
        try:
            fits.append(fit_one(np.repeat(np.arange(len(row)), row)))
        except FitError:
            failed += 1
    return fits, failed


def refit_huber(
    objective: huber.Objective, u0: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, int]:
    """The huber refits of every resample at once (the counts weight the Huber terms), each
    from the full fit's free vector ``u0``, to the BOOTSTRAP_* tolerances; (the free vectors of
    the rows that converged to a finite optimum, how many did not)."""
    u, value, converged = huber.lbfgs(
        objective,
        np.repeat(u0[None, :], len(counts), axis=0),
        counts.astype(float),
        ftol=BOOTSTRAP_FTOL,
        gtol=BOOTSTRAP_GTOL,
        max_iter=BOOTSTRAP_MAX_ITER,
    )
    ok = converged & np.isfinite(value) & np.all(np.isfinite(u), axis=1)
    return u[ok], int(len(counts) - ok.sum())
