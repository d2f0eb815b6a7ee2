"""The two scaling laws, written once each, their fits, and the metrics the paper reports.

Chinchilla: ``L = E + A·N^-alpha + B·D^-beta``. Inference-efficient: the same times
``(1 + epsilon·R^gamma)`` with R = d_model / n_layers (FACTS.md, "The two laws").

A fit is a plain JSON-able dict (DESIGN.md, FIT.json). ``method`` picks the optimiser: ``lm`` is
the paper's exact procedure (curve_fit, Levenberg-Marquardt from all ones), kept exactly because
the published numbers came from it, fragile as it is; ``huber`` is Chinchilla's (Huber loss on
log L, L-BFGS from the 4,500-point grid of starts, all at once: see infscale.fit.huber), robust.
``bootstrap`` adds 95% intervals (``intervals``) and the resampled parameters, from which
``predict_interval`` gives a band for every prediction. ``tie`` names the exponents that take
alpha's value; tied exponents still appear in ``params``.

scipy is imported inside the functions that need it, so that ``predict`` and the CLI start fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError

# Each law's parameters, in FIT.json order.
PARAMS: dict[str, tuple[str, ...]] = {
    "chinchilla": ("A", "B", "E", "alpha", "beta"),
    "inference": ("A", "B", "E", "alpha", "beta", "gamma", "epsilon"),
}
# Tie mode -> the exponents that take alpha's value (one a law lacks is ignored).
TIED: dict[str, tuple[str, ...]] = {
    "all": ("beta", "gamma"),
    "alpha-beta": ("beta",),
    "none": (),
}
LAWS = tuple(PARAMS)
TIES = tuple(TIED)
MAXFEV = 100_000  # the authors' curve_fit budget

# Chinchilla's method lives in infscale.fit.huber (the start grid, the vectorised L-BFGS).
LOG_PARAMS = ("A", "B", "E", "epsilon")  # what the huber method optimises as logs
# A bootstrap resample refit by the huber method starts at the full fit's optimum and runs to
# these tighter tolerances (it skips the start grid and the polish).
BOOTSTRAP_FTOL = 1e-13
BOOTSTRAP_GTOL = 1e-9


class FitError(InputError):
    """The optimiser found no usable fit: a property of the data, so reported as bad input."""


def free_params(law: str, tie: str) -> tuple[str, ...]:
    """The parameters an optimiser searches over for ``law`` under ``tie``, in PARAMS order."""
    _check_choice("law", law, LAWS)
    _check_choice("tie", tie, TIES)
    return tuple(p for p in PARAMS[law] if p not in TIED[tie])


def positions(law: str, tie: str) -> dict[str, int]:
    """Where each of the law's parameters sits in the free vector (tied exponents: at alpha)."""
    free = free_params(law, tie)
    return {p: free.index("alpha" if p in TIED[tie] else p) for p in PARAMS[law]}


def expand(law: str, tie: str, theta: ArrayLike) -> dict[str, float]:
    """All of the law's parameters from a free-parameter vector."""
    theta = np.ravel(theta)
    if len(theta) != len(free_params(law, tie)):
        raise ValueError(f"{len(theta)} values for {free_params(law, tie)}")
    return {p: float(theta[j]) for p, j in positions(law, tie).items()}


def chinchilla_loss(
    N: np.ndarray, D: np.ndarray, A: float, B: float, E: float, alpha: float, beta: float
) -> np.ndarray:
    return E + A * N**-alpha + B * D**-beta


def inference_loss(
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray,
    A: float,
    B: float,
    E: float,
    alpha: float,
    beta: float,
    gamma: float,
    epsilon: float,
) -> np.ndarray:
    return chinchilla_loss(N, D, A, B, E, alpha, beta) * (1 + epsilon * R**gamma)


def law_loss(
    law: str,
    params: Mapping[str, float],
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None = None,
) -> np.ndarray:
    """The loss ``law`` predicts with ``params`` (every parameter of the law, none extra)."""
    if law == "chinchilla":
        return chinchilla_loss(N, D, **params)
    if R is None:
        raise InputError("the inference law needs R = d_model / n_layers")
    return inference_loss(N, D, R, **params)


def predict(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> np.ndarray:
    """The loss a fit result predicts; R is read only by the inference law."""
    law, params = fit.get("law"), fit.get("params")
    _check_choice("fit law", law, LAWS)
    if not isinstance(params, Mapping) or set(params) != set(PARAMS[law]):
        raise InputError(f"fit params must be exactly {', '.join(PARAMS[law])} for the {law} law")
    values = {p: float(params[p]) for p in PARAMS[law]}
    return law_loss(law, values, *_points(law, N, D, R))


def fit_law(
    law: str,
    N: ArrayLike,
    D: ArrayLike,
    loss: ArrayLike,
    R: ArrayLike | None = None,
    *,
    method: str = "lm",
    tie: str = "all",
    groups: ArrayLike | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit ``law`` to points; the FIT.json dict, with metrics on the same points.

    ``groups`` (a size group per point) makes Spearman a within-group mean, as the paper reports
    it. ``bootstrap`` K > 0 refits on K resamples of the points (drawn with ``seed``) and adds
    95% percentile intervals.
    """
    _check_choice("method", method, METHODS)
    n_free = len(free_params(law, tie))
    N_, D_, R_ = _points(law, N, D, R)
    y = positive("loss", loss)
    if not len(N_) == len(D_) == len(y) == (len(y) if R_ is None else len(R_)):
        raise InputError("N, D, loss (and R) must have the same length")
    if len(y) < n_free:
        raise InputError(
            f"{len(y)} point(s) for the {n_free} free parameters of the {law} law "
            f"with tie {tie}: need at least {n_free}"
        )
    if bootstrap < 0:
        raise InputError(f"bootstrap must be >= 0, got {bootstrap}")
    params = FITTERS[method](law, tie, N_, D_, R_, y)
    pred = law_loss(law, params, N_, D_, R_)
    result: dict[str, Any] = {
        "law": law,
        "method": method,
        "tie": tie,
        "n_points": len(y),
        "params": params,
        "metrics": metrics(y, pred, groups),
    }
    if groups is not None:
        result["spearman_by_group"] = spearman_by_group(y, pred, groups)
    if bootstrap:
        result["bootstrap"] = bootstrap_ci(law, tie, method, N_, D_, R_, y, bootstrap, seed)
        result["intervals"] = result["bootstrap"]["ci95"]
    result["warnings"] = fit_warnings(params, N_, D_)
    return result


def fit_lm(
    law: str, tie: str, N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> dict[str, float]:
    """The paper's procedure: curve_fit (LM), p0 all ones, no bounds or weights, raw loss.

    Raises FitError when LM stops without a fit: out of evaluations, non-finite parameters, or
    never having left the start (at large N and D the terms N^-1 and D^-1 are so small that LM
    can declare convergence at step 0).
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    n_free = len(free_params(law, tie))
    x = np.vstack([N, D] if R is None else [N, D, R])

    def model(x: np.ndarray, *theta: float) -> np.ndarray:
        return law_loss(law, expand(law, tie, theta), *x)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            theta, _ = curve_fit(model, x, loss, p0=np.ones(n_free), method="lm", maxfev=MAXFEV)
        except (RuntimeError, ValueError) as err:
            raise FitError(f"the lm fit did not converge: {' '.join(str(err).split())}") from None
    if not np.all(np.isfinite(theta)):
        raise FitError("the lm fit did not converge: non-finite parameters")
    if np.all(theta == 1):
        raise FitError(
            "the lm fit never left its start (all parameters 1): the loss hardly "
            "depends on them there; try --method huber"
        )
    return expand(law, tie, theta)


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
    law: str, tie: str, N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> tuple[np.ndarray, float]:
    """The huber fit's free vector (log-space A, B, E, epsilon) and its objective."""
    from infscale.fit import huber

    free, where = free_params(law, tie), positions(law, tie)
    logs = _logs(N, D, R, loss)
    starts = huber.grid_starts(free, where, law, logs)
    u, value = huber.fit_starts(starts, law, where, logs)
    if not np.isfinite(value) or not np.all(np.isfinite(u)):
        raise FitError(f"the huber fit found no finite optimum from {len(starts)} starts")
    return u, value


def _logs(
    N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    return np.log(N), np.log(D), None if R is None else np.log(R), np.log(loss)


def _from_log_space(law: str, tie: str, u: np.ndarray) -> dict[str, float]:
    theta = [
        np.exp(v) if p in LOG_PARAMS else v for p, v in zip(free_params(law, tie), u, strict=True)
    ]
    return expand(law, tie, theta)


FITTERS: dict[str, Callable[..., dict[str, float]]] = {"lm": fit_lm, "huber": fit_huber}
METHODS = tuple(FITTERS)


def bootstrap_ci(
    law: str,
    tie: str,
    method: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    k: int,
    seed: int,
) -> dict[str, Any]:
    """Refit on ``k`` resamples of the points (with replacement, drawn with ``seed``).

    Returns the 95% percentile interval of each parameter (``ci95``) and every resample's
    parameters (``samples``: one list per parameter, failed refits left out), from which
    ``predict_interval`` gives intervals for predictions. ``lm`` refits each resample by the
    paper's procedure from all ones. ``huber`` refits all resamples at once (a resample is a row
    of point counts weighting the Huber terms), each warm-started at the full fit's optimum
    rather than from the 4,500-point grid, to tighter tolerances.
    """
    rng = np.random.default_rng(seed)
    n = len(loss)
    draws = rng.integers(0, n, (k, n))
    if method == "huber":
        from infscale import huber

        u_full, _ = huber_optimum(law, tie, N, D, R, loss)
        weights = np.stack([np.bincount(i, minlength=n) for i in draws]).astype(float)
        u, value, _ = huber.batched_lbfgs(
            np.repeat(u_full[None, :], k, axis=0),
            law,
            positions(law, tie),
            _logs(N, D, R, loss),
            weights,
            ftol=BOOTSTRAP_FTOL,
            gtol=BOOTSTRAP_GTOL,
        )
        ok = np.isfinite(value) & np.all(np.isfinite(u), axis=1)
        fits = [_from_log_space(law, tie, row) for row in u[ok]]
        failed = int(k - ok.sum())
    else:
        fits, failed = [], 0
        for i in draws:
            try:
                fits.append(
                    FITTERS[method](law, tie, N[i], D[i], None if R is None else R[i], loss[i])
                )
            except FitError:
                failed += 1
    if not fits:
        raise FitError(f"all {k} bootstrap refits failed")
    samples = {p: [f[p] for f in fits] for p in PARAMS[law]}
    ci = {p: np.percentile(v, [2.5, 97.5]).tolist() for p, v in samples.items()}
    return {"k": k, "seed": seed, "failed": failed, "ci95": ci, "samples": samples}


def predict_interval(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The 95% percentile band of the predictions of a fit's bootstrap samples (None: none)."""
    samples = (fit.get("bootstrap") or {}).get("samples")
    if not samples:
        return None
    law = fit["law"]
    if not isinstance(samples, Mapping) or set(samples) != set(PARAMS[law]):
        raise InputError(f"fit bootstrap samples must be exactly {', '.join(PARAMS[law])}")
    try:
        table = {p: np.asarray(samples[p], dtype=float)[:, None] for p in PARAMS[law]}
    except (TypeError, ValueError):
        raise InputError("fit bootstrap samples are not lists of numbers") from None
    if len({v.shape for v in table.values()}) != 1:
        raise InputError("fit bootstrap samples differ in length")
    N_, D_, R_ = _points(law, N, D, R)
    with np.errstate(all="ignore"):
        preds = law_loss(law, table, N_[None, :], D_[None, :], None if R_ is None else R_[None, :])
    lo, hi = np.nanpercentile(preds, [2.5, 97.5], axis=0)
    return lo, hi


def fit_warnings(params: Mapping[str, float], N: np.ndarray, D: np.ndarray) -> list[str]:
    """Signs of an unphysical fit: a negative coefficient (the paper saw A < 0 with 20N-only
    points; E < 0 claims a loss below zero at infinite scale), or a term the fit has dropped
    (LM from ones does this when gamma is free)."""
    found = [
        f"{p} = {params[p]:.6g} is negative: the fitted law is not physical"
        for p in ("A", "B", "E")
        if params[p] < 0
    ]
    with np.errstate(all="ignore"):
        for term, coef, x, exp in (("A·N^-alpha", "A", N, "alpha"), ("B·D^-beta", "B", D, "beta")):
            if np.max(np.abs(params[coef] * x ** -params[exp])) < 1e-6:
                found.append(
                    f"{term} is below 1e-6 at every point ({exp} = "
                    f"{params[exp]:.6g}): the fit has dropped the term"
                )
    return found


def metrics(
    y: ArrayLike, y_pred: ArrayLike, groups: ArrayLike | None = None
) -> dict[str, float | None]:
    """MSE, R², max relative error |y - ŷ|/y and Spearman; None where one is undefined.

    With ``groups``, Spearman is the mean of the within-group correlations (ranking the shapes
    of one size is what selection needs), over the groups where it is defined.
    """
    y, y_pred = np.asarray(y, dtype=float), np.asarray(y_pred, dtype=float)
    resid = y - y_pred
    total = np.sum((y - y.mean()) ** 2)
    if groups is None:
        rho = _spearman(y, y_pred)
    else:
        defined = [r for r in spearman_by_group(y, y_pred, groups).values() if r is not None]
        rho = float(np.mean(defined)) if defined else None
    return {
        "mse": float(np.mean(resid**2)),
        "r2": float(1 - np.sum(resid**2) / total) if total > 0 else None,
        "max_rel_err": float(np.max(np.abs(resid) / y)),
        "spearman": rho,
    }


def spearman_by_group(
    y: ArrayLike, y_pred: ArrayLike, groups: ArrayLike
) -> dict[str, float | None]:
    """Spearman's rho within each group, by group name (None: under 2 points, or constant)."""
    y, y_pred, groups = np.asarray(y, float), np.asarray(y_pred, float), np.asarray(groups)
    return {
        str(g): _spearman(y[groups == g], y_pred[groups == g])
        for g in dict.fromkeys(groups.tolist())
    }


def positive(name: str, values: ArrayLike) -> np.ndarray:
    """``values`` as a float array; an InputError naming ``name`` if any is not > 0 and finite."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not all numbers") from None
    bad = ~(np.isfinite(array) & (array > 0))
    if bad.any():
        raise InputError(
            f"{name}: {int(bad.sum())} value(s) not positive and finite (first: {array[bad][0]:g})"
        )
    return array


def _points(
    law: str, N: ArrayLike, D: ArrayLike, R: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Checked float arrays; R only for the inference law, which needs it."""
    if law == "inference" and R is None:
        raise InputError("the inference law needs R = d_model / n_layers")
    R_ = positive("R = d_model / n_layers", R) if law == "inference" else None
    return positive("N", N), positive("D", D), R_


def _huber_objective(
    u: np.ndarray,
    where: Mapping[str, int],
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_r: np.ndarray | None,
    log_loss: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Huber losses and its gradient, for free vectors ``u`` of shape (..., p)."""
    from infscale.fit import huber

    form = "inference" if "epsilon" in where else "chinchilla"
    return huber.objective(u, form, where, (log_n, log_d, log_r, log_loss))


def _spearman(y: np.ndarray, y_pred: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(y) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(y, y_pred).statistic
    return float(rho) if np.isfinite(rho) else None


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
