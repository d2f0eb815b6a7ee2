"""Variable projection (``--method vp``) for the paper's laws: Open-Athena 2026 (docs/facts.md,
"Variable projection").

Once its exponents are fixed, Chinchilla's law E + A·N^-alpha + B·D^-beta is linear in
(E, A, B); so is the inference law (E + A·N^-alpha + B·D^-beta)·(1 + epsilon·R^gamma) once
epsilon is fixed too (searched with either sign, as the paper's unbounded LM allows), and its
additive variant in (E, A, B, epsilon). For each setting of the nonlinear parameters the linear
ones are solved exactly by non-negative least squares on the raw loss (the objective lm
minimises, with the coefficients kept physical), so the search runs over the nonlinear ones
only: every point of a grid at once (batched normal equations; scipy's nnls where a coefficient
comes out negative), then the best ``N_REFINE`` refined by scipy's ``least_squares`` on the
projected residual within ``EXPONENT_BOUNDS``, with the projection's exact Jacobian
(:func:`_projection_jacobian`) rather than finite differences of the solve. On noise-free points of
the law it recovers the parameters to machine precision, from no start values at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from infscale.fit.core import TIED, FitError
from infscale.fit.huber import LOG_EPSILON_STARTS

EXPONENT_BOUNDS = (0.0, 3.0)  # the search range of alpha, beta, gamma
# The inference factor's epsilon on the grid: 0 and huber's starts' sizes, of either sign.
EPSILON_GRID = (0.0, *(s * float(np.exp(f)) for f in LOG_EPSILON_STARTS for s in (1, -1)))
EXPONENT_RANGE = (0.05, 1.5)  # the grid's exponents: evenly spaced over this range, ...
MAX_PER_AXIS = 16  # ... at most this many per exponent, ...
MAX_SETTINGS = 4096  # ... and at most this many settings in all (the refinement does the rest)
N_REFINE = 3  # best grid points refined
GRID_RIDGE = 1e-12
REFINE_TOL = 1e-15  # least_squares' ftol, xtol and gtol in the refinement
EXPONENTS = ("alpha", "beta", "gamma")
# log N, log D, log R (or None), {shape coefficient: its column} (the conditional law's)
Inputs = tuple[np.ndarray, np.ndarray, np.ndarray | None, Mapping[str, np.ndarray]]


# The linear structures vp solves (a law's Problem names its own): Chinchilla's columns; the
# inference law's factor multiplies them (epsilon searched); its additive variant adds an
# R^gamma column; the conditional law's additive form adds its factors' columns (ln v, 1/v;
# coefficients of either sign).
KINDS = ("chinchilla", "inference", "additive", "conditional")


def nonlinear(params: tuple[str, ...], tie: str, kind: str) -> tuple[str, ...]:
    """The parameters searched (the free exponents, and epsilon for the inference law's
    multiplicative factor); the rest are solved linearly."""
    exps = ("alpha", "beta") + (("gamma",) if "gamma" in params else ())
    free = tuple(p for p in exps if p not in TIED[tie])
    return free + (("epsilon",) if kind == "inference" else ())


def linear(kind: str, shape: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    return ("E", "A", "B") + (("epsilon",) if kind == "additive" else ()) + tuple(shape)


def fit_vp(
    kind: str,
    params: tuple[str, ...],
    tie: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    start: Mapping[str, float] | None = None,
    shape: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Every one of the law's ``params`` by variable projection of the linear structure
    ``kind`` (KINDS; ``start``: refine from these parameters' nonlinear values instead of the
    grid); FitError when no point of the search gives a finite fit. ``shape``: the conditional
    additive form's factor columns ({coefficient: its column}: a1: ln x, a2: 1/x, ...; the
    factors kept)."""
    from scipy.optimize import least_squares

    if kind not in KINDS:
        raise ValueError(f"vp fits the linear structures {', '.join(KINDS)}, not {kind!r}")
    names = nonlinear(params, tie, kind)
    lower = np.array([-np.inf if p == "epsilon" else EXPONENT_BOUNDS[0] for p in names])
    upper = np.array([np.inf if p == "epsilon" else EXPONENT_BOUNDS[1] for p in names])
    x = (np.log(N), np.log(D), None if R is None else np.log(R), dict(shape or {}))
    if start is None:
        axes = _grid_axes(names)
        grid = np.array(list(itertools.product(*axes)), dtype=float)
        rss = _grid_rss(names, kind, grid, x, loss)
        picks = grid[np.argsort(rss)[:N_REFINE]][np.isfinite(np.sort(rss)[:N_REFINE])]
    else:
        picks = np.clip(np.array([[start[p] for p in names]], dtype=float), lower, upper)
        picks = picks[np.all(np.isfinite(picks), axis=1)]

    # least_squares asks for the Jacobian at the setting whose residual it last accepted
    last: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def residual(theta: np.ndarray) -> np.ndarray:
        X = _design(names, kind, theta[None, :], x)[0]
        coefs = _solve(X, x, loss)
        r = loss - X @ coefs
        last.clear()
        last[theta.tobytes()] = (X, coefs, r)
        return r

    def jacobian(theta: np.ndarray) -> np.ndarray:
        if theta.tobytes() not in last:
            residual(theta)
        return _projection_jacobian(names, kind, theta, x, *last[theta.tobytes()])

    best: tuple[float, np.ndarray] | None = None
    for theta0 in picks:
        with np.errstate(all="ignore"):
            try:
                fit = least_squares(
                    residual,
                    theta0,
                    jac=jacobian,
                    bounds=(lower, upper),
                    method="trf",
                    xtol=REFINE_TOL,
                    ftol=REFINE_TOL,
                    gtol=REFINE_TOL,
                    x_scale="jac",
                )
            except ValueError:  # the residual is not finite at this start
                continue
        if np.isfinite(fit.cost) and (best is None or fit.cost < best[0]):
            best = (float(fit.cost), fit.x)
    if best is None:
        raise FitError(f"the vp fit found no finite fit from {len(picks)} start(s)")
    theta = best[1]
    coefs = _solve(_design(names, kind, theta[None, :], x)[0], x, loss)
    return _params(params, names, linear(kind, x[3]), theta, coefs)


def _grid_axes(names: tuple[str, ...]) -> list[tuple[float, ...]]:
    """Each searched parameter's grid values: EPSILON_GRID, and as many evenly spaced exponents
    per axis as MAX_SETTINGS allows (at most MAX_PER_AXIS)."""
    n_exp = sum(p != "epsilon" for p in names)
    budget = MAX_SETTINGS / (len(EPSILON_GRID) if "epsilon" in names else 1)
    count = min(MAX_PER_AXIS, int(budget ** (1 / n_exp)))
    exponents = tuple(np.linspace(*EXPONENT_RANGE, count))
    return [EPSILON_GRID if p == "epsilon" else exponents for p in names]


def _design(
    names: tuple[str, ...],
    kind: str,
    theta: np.ndarray,
    x: Inputs,
) -> np.ndarray:
    """The linear coefficients' columns (G, n, m) at G settings ``theta`` (G, k)."""
    log_n, log_d, log_r, shape = x
    value = dict(zip(names, theta.T, strict=True))
    alpha = value["alpha"]
    beta = value.get("beta", alpha)
    gamma = value.get("gamma", alpha)
    with np.errstate(all="ignore"):
        cols = [
            np.ones((len(theta), len(log_n))),
            np.exp(-alpha[:, None] * log_n),
            np.exp(-beta[:, None] * log_d),
        ]
        if kind == "additive":
            cols.append(np.exp(gamma[:, None] * log_r))
        elif kind == "inference":
            scale = 1.0 + value["epsilon"][:, None] * np.exp(gamma[:, None] * log_r)
            cols = [c * scale for c in cols]
    cols += [np.broadcast_to(column, cols[0].shape) for column in shape.values()]
    return np.stack(cols, axis=2)


def _projection_jacobian(
    names: tuple[str, ...],
    kind: str,
    theta: np.ndarray,
    x: Inputs,
    X: np.ndarray,
    coefs: np.ndarray,
    r: np.ndarray,
) -> np.ndarray:
    """The Jacobian in theta of the projected residual r = y - X(theta)·c(theta), at one
    setting with its design X, coefficients c and residual r.

    Golub and Pereyra's, for the coefficients off their bound 0 (the active set held fixed):
    -(P⊥·dX·c + X⁺ᵀ·dXᵀ·r), with dX/dtheta by complex step (exact to rounding, one batched
    design call), so that the refinement needs no finite differences of the solve.
    """
    if not np.all(np.isfinite(r)):
        return np.full((len(r), len(theta)), np.nan)
    off = (coefs != 0) | ~_nonnegative(len(coefs), x)
    step = np.eye(len(theta)) * COMPLEX_STEP * 1j
    with np.errstate(all="ignore"):
        dX = _design(names, kind, theta[None, :] + step, x).imag / COMPLEX_STEP
    Xf, dXf = X[:, off], dX[:, :, off]
    pinv = np.linalg.pinv(Xf)
    a = dXf @ coefs[off]  # (k, n): dX_k·c
    a -= (a @ pinv.T) @ Xf.T  # P⊥·dX_k·c
    b = (dXf.transpose(0, 2, 1) @ r) @ pinv  # (k, n): X⁺ᵀ·dX_kᵀ·r
    return -(a + b).T


COMPLEX_STEP = 1e-30  # dX/dtheta = Im X(theta + i·h) / h: no cancellation, so h can be tiny


def _solve(X: np.ndarray, x: Inputs, loss: np.ndarray) -> np.ndarray:
    """The least-squares coefficients of the design ``X`` (n, m) at one setting, E, A, B and
    epsilon not negative (scipy's nnls; lsq_linear when shape coefficients of either sign join
    them; nan when the design is not finite)."""
    from scipy.optimize import lsq_linear, nnls

    if not np.all(np.isfinite(X)):
        return np.full(X.shape[1], np.nan)
    if not x[3]:
        return nnls(X, loss)[0]
    lower = np.where(_nonnegative(X.shape[1], x), 0.0, -np.inf)
    return lsq_linear(X, loss, bounds=(lower, np.inf), method="bvls").x


def _nonnegative(m: int, x: Inputs) -> np.ndarray:
    """Which of the m coefficients must not be negative: all but the shape factors'."""
    return np.arange(m) < m - len(x[3])


def _grid_rss(
    names: tuple[str, ...],
    kind: str,
    grid: np.ndarray,
    x: Inputs,
    loss: np.ndarray,
) -> np.ndarray:
    """The projected sum of squares at every grid setting: the unconstrained solution of the
    normal equations, all at once, and nnls where that has a negative coefficient."""
    X = _design(names, kind, grid, x)
    gram = np.einsum("gnm,gnk->gmk", X, X)
    # a relative ridge of GRID_RIDGE keeps collinear settings (alpha = beta with D a fixed
    # multiple of N) solvable; only the grid's ranking reads these coefficients
    ridge = GRID_RIDGE * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(X.shape[2])
    with np.errstate(all="ignore"):
        finite = np.all(np.isfinite(gram), axis=(1, 2))
        coefs = np.full(X.shape[::2], np.nan)
        coefs[finite] = np.linalg.solve(
            gram[finite] + ridge[finite], np.einsum("gnm,n->gm", X[finite], loss)[..., None]
        )[..., 0]
    nonneg = _nonnegative(X.shape[2], x)
    bad = ~np.all(np.isfinite(coefs), axis=1) | np.any(coefs[:, nonneg] < 0, axis=1)
    for g in np.flatnonzero(bad):
        coefs[g] = _solve(X[g], x, loss)
    with np.errstate(all="ignore"):
        rss = np.sum((loss - np.einsum("gnm,gm->gn", X, coefs)) ** 2, axis=1)
    return np.where(np.isfinite(rss), rss, np.inf)


def _params(
    params: tuple[str, ...],
    names: tuple[str, ...],
    linears: tuple[str, ...],
    theta: np.ndarray,
    coefs: np.ndarray,
) -> dict[str, float]:
    """Every one of ``params`` (tied exponents at alpha's value, a dropped factor's
    coefficients 0), in their order."""
    value = dict.fromkeys(params, 0.0) | dict(zip(names, map(float, theta), strict=True))
    value |= dict(zip(linears, map(float, coefs), strict=True))
    for p in EXPONENTS:
        if p not in names:  # tied (or the law has none: dropped below)
            value[p] = value["alpha"]
    return {p: value[p] for p in params}
