"""The two scaling laws, written once each, their fits, and the metrics the paper reports.

Chinchilla: ``L = E + A·N^-alpha + B·D^-beta``. Inference-efficient: the same times
``(1 + epsilon·R^gamma)`` with R = d_model / n_layers (FACTS.md, "The two laws").

A fit is a plain JSON-able dict (DESIGN.md, FIT.json). ``method`` picks the optimiser: ``lm`` is
the paper's exact procedure (curve_fit, Levenberg-Marquardt from all ones), kept exactly because
the published numbers came from it, fragile as it is; ``huber`` is Chinchilla's (Huber loss on
log L, L-BFGS from a grid of starts), slower and robust. ``tie`` names the exponents that take
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

# Chinchilla's start grid (FACTS.md), over a = log A, b = log B, e = log E and the exponents;
# a fit starts from every combination of the values of its free parameters (4,500 untied).
HUBER_GRID: dict[str, tuple[float, ...]] = {
    "A": (0, 5, 10, 15, 20, 25),
    "B": (0, 5, 10, 15, 20, 25),
    "E": (-1, -0.5, 0, 0.5, 1),
    "alpha": (0, 0.5, 1, 1.5, 2),
    "beta": (0, 0.5, 1, 1.5, 2),
}
# The inference factor, which Chinchilla's grid lacks, adds no starts: gamma starts at alpha's
# value, f = log epsilon at whichever of these gives that start the lowest objective.
LOG_EPSILON_STARTS = (-8.0, -6.0, -4.0, -2.0, 0.0)
LOG_PARAMS = ("A", "B", "E", "epsilon")  # what the huber method optimises as logs
HUBER_DELTA = 1e-3
# L-BFGS-B's default stop (an objective change under ~2e-9, absolute below 1) is loose where the
# objective nears 0, on near-perfect data; the best run is polished once with these.
POLISH_OPTIONS = {"ftol": 0.0, "gtol": 1e-13, "maxiter": 10_000}


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
    E (and epsilon) are positive by construction. Keeps the run with the lowest objective,
    then polishes it with tight tolerances.
    """
    from scipy.optimize import minimize

    free = free_params(law, tie)
    where = positions(law, tie)
    logs = (np.log(N), np.log(D), None if R is None else np.log(R), np.log(loss))
    starts = _huber_starts(law, tie, logs)
    best = None
    with np.errstate(all="ignore"):
        for u0 in starts:
            run = minimize(_huber_objective, u0, args=(where, *logs), jac=True, method="L-BFGS-B")
            if np.isfinite(run.fun) and (best is None or run.fun < best.fun):
                best = run
        if best is None:
            raise FitError(f"the huber fit found no finite optimum from {len(starts)} starts")
        polished = minimize(
            _huber_objective,
            best.x,
            args=(where, *logs),
            jac=True,
            method="L-BFGS-B",
            options=POLISH_OPTIONS,
        )
    if polished.fun <= best.fun:
        best = polished
    theta = [np.exp(v) if p in LOG_PARAMS else v for p, v in zip(free, best.x, strict=True)]
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
    """Refit on ``k`` resamples of the points; the 95% percentile interval of each parameter."""
    rng = np.random.default_rng(seed)
    draws, failed = [], 0
    for _ in range(k):
        i = rng.integers(0, len(loss), len(loss))
        try:
            draws.append(
                FITTERS[method](law, tie, N[i], D[i], None if R is None else R[i], loss[i])
            )
        except FitError:
            failed += 1
    if not draws:
        raise FitError(f"all {k} bootstrap refits failed")
    ci = {p: np.percentile([d[p] for d in draws], [2.5, 97.5]).tolist() for p in PARAMS[law]}
    return {"k": k, "seed": seed, "failed": failed, "ci95": ci}


def fit_warnings(params: Mapping[str, float], N: np.ndarray, D: np.ndarray) -> list[str]:
    """Signs of an unphysical fit: a negative coefficient (the paper saw A < 0 with 20N-only
    points), or a term the fit has dropped (LM from ones does this when gamma is free)."""
    found = [
        f"{p} = {params[p]:.6g} is negative: the fitted law is not physical"
        for p in ("A", "B")
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


def _huber_starts(law: str, tie: str, logs: tuple[np.ndarray | None, ...]) -> np.ndarray:
    """One start (a free-parameter vector) per point of the grid over the free parameters."""
    free = free_params(law, tie)
    gridded = [p for p in free if p in HUBER_GRID]
    grid = np.array(np.meshgrid(*(HUBER_GRID[p] for p in gridded), indexing="ij"), dtype=float)
    grid = grid.reshape(len(gridded), -1).T
    starts = np.column_stack(
        [
            np.zeros(len(grid))
            if p == "epsilon"
            else grid[:, gridded.index("alpha" if p == "gamma" else p)]
            for p in free
        ]
    )
    if "epsilon" in free:
        j = free.index("epsilon")
        trials = np.repeat(starts[:, None, :], len(LOG_EPSILON_STARTS), axis=1)
        trials[:, :, j] = LOG_EPSILON_STARTS
        with np.errstate(all="ignore"):
            values, _ = _huber_objective(trials, positions(law, tie), *logs)
        starts[:, j] = np.asarray(LOG_EPSILON_STARTS)[np.nanargmin(values, axis=1)]
    return starts


def _huber_objective(
    u: np.ndarray,
    where: Mapping[str, int],
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_r: np.ndarray | None,
    log_loss: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Huber losses and its gradient, for free vectors ``u`` of shape (..., p)."""
    col = {p: u[..., j, None] for p, j in where.items()}
    t_n = col["A"] - col["alpha"] * log_n
    t_d = col["B"] - col["beta"] * log_d
    top = np.maximum(np.maximum(t_n, t_d), col["E"])
    w_n, w_d, w_e = np.exp(t_n - top), np.exp(t_d - top), np.exp(col["E"] - top)
    total = w_n + w_d + w_e
    log_pred = top + np.log(total)
    dlog_pred = {
        "A": w_n / total,
        "B": w_d / total,
        "E": w_e / total,
        "alpha": -w_n / total * log_n,
        "beta": -w_d / total * log_d,
    }
    if "epsilon" in where:
        shape = col["epsilon"] + col["gamma"] * log_r
        log_pred = log_pred + np.logaddexp(0, shape)
        sigmoid = np.exp(-np.logaddexp(0, -shape))
        dlog_pred |= {"epsilon": sigmoid, "gamma": sigmoid * log_r}
    resid = log_loss - log_pred
    value = np.where(
        np.abs(resid) <= HUBER_DELTA,
        0.5 * resid**2,
        HUBER_DELTA * (np.abs(resid) - 0.5 * HUBER_DELTA),
    )
    dvalue = -np.clip(resid, -HUBER_DELTA, HUBER_DELTA)
    grad = np.zeros(u.shape)
    for p, d in dlog_pred.items():
        grad[..., where[p]] += (dvalue * d).sum(axis=-1)
    return value.sum(axis=-1), grad


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
