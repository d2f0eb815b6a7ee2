"""Chinchilla's fitting method, vectorised: Huber loss on log L, every start at once.

Hoffmann et al. (2022), as Besiroglu et al. (2024) re-examined it (FACTS.md): with a = log A,
b = log B, e = log E (and f = log epsilon), minimise the sum over points of
Huber_delta(log L - log L̂), delta = 1e-3, where

- ``chinchilla``: log L̂ = logsumexp(a - alpha·log N, b - beta·log D, e)
- ``inference``:  the same + log(1 + exp(f + gamma·log R))       (the paper's factor)
- ``additive``:   log L̂ = logsumexp(a - alpha·log N, b - beta·log D, e, f + gamma·log R),
  i.e. L = E + A·N^-alpha + B·D^-beta + epsilon·R^gamma: shape as a fourth additive term
  (an alternative the law comparison in :mod:`infscale.compare` tries)

from every start of the grid, keeping the best objective. Instead of one L-BFGS run per start
(a Python loop of 4,500 scipy calls), :func:`batched_lbfgs` runs L-BFGS on all starts together
as (starts × points) arrays, with the analytic gradient of :func:`objective`; each start stops on
its own test (scipy L-BFGS-B's defaults: relative objective change under ``FTOL``, or largest
gradient entry under ``GTOL``) and leaves the batch. The few best distinct runs are then polished
by scipy L-BFGS-B with tight tolerances, and the best of those is the fit.

The same machinery fits bootstrap resamples together: a resample is a row of point weights
(how often each point was drawn), and every resample starts at the full fit's optimum.

Parameters are passed around as free vectors ``u`` (log-space for A, B, E, epsilon), their
layout given by ``where`` (parameter name -> column; tied exponents share alpha's column).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DELTA = 1e-3
FORMS = ("chinchilla", "inference", "additive")
LOG_PARAMS = ("A", "B", "E", "epsilon")  # optimised as logs
FTOL = float(np.finfo(float).eps) * 1e7  # scipy L-BFGS-B's default factr = 1e7
GTOL = 1e-5  # scipy L-BFGS-B's default pgtol
MEMORY = 10  # scipy L-BFGS-B's default maxcor
MAX_ITER = 300  # per start; the best few are polished by scipy to full precision anyway
POLISH_OPTIONS = {"ftol": 0.0, "gtol": 1e-13, "maxiter": 3000}
N_POLISH = 3  # distinct best batch runs that scipy polishes


def objective(
    u: np.ndarray,
    form: str,
    where: Mapping[str, int],
    logs: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray],
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Huber objective and its gradient for free vectors ``u`` of shape (..., p).

    ``logs`` = (log N, log D, log R or None, log loss), each of shape (n,); ``weights`` (shape
    (..., n), optional) multiplies each point's term (bootstrap counts). Written for speed: few
    temporaries, in-place arithmetic, and the sums over points as matrix products.
    """
    log_n, log_d, log_r, log_loss = logs
    col = {p: u[..., j, None] for p, j in where.items()}
    # log L̂ = logsumexp of the additive terms' logs; share_k = term_k / sum, d log L̂ / d term.
    logs_terms = [col["A"] - col["alpha"] * log_n, col["B"] - col["beta"] * log_d]
    logs_terms.append(np.broadcast_to(col["E"], logs_terms[0].shape))
    if form == "additive":
        logs_terms.append(col["epsilon"] + col["gamma"] * log_r)
    top = np.maximum(logs_terms[0], logs_terms[1])
    for t in logs_terms[2:]:
        np.maximum(top, t, out=top)
    shares = [np.exp(t - top) for t in logs_terms]
    total = shares[0] + shares[1]
    for w in shares[2:]:
        total += w
    for w in shares:
        w /= total
    np.log(total, out=total)
    log_pred = total
    log_pred += top
    if form == "inference":
        shape = col["epsilon"] + col["gamma"] * log_r
        log_pred += np.logaddexp(0.0, shape)
        with np.errstate(over="ignore"):
            sigmoid = 1.0 / (1.0 + np.exp(-shape))  # d log(1 + e^shape) / d shape
    # Huber: with c = clip(r, -delta, delta), value = c·(r - c/2); d value / d log L̂ = -c.
    resid = np.subtract(log_loss, log_pred, out=log_pred)
    c = np.clip(resid, -DELTA, DELTA)
    resid -= 0.5 * c
    resid *= c
    if weights is not None:
        resid *= weights
        c *= weights
    value = resid.sum(axis=-1)
    grad = np.zeros(u.shape)

    def add(p: str, weighted: np.ndarray, x: np.ndarray | None) -> None:
        # d objective / d p = -sum_i c_i · share_i · x_i  (x = 1 when absent)
        total_p = weighted.sum(axis=-1) if x is None else weighted @ x
        grad[..., where[p]] -= total_p

    cs = c * shares[0]
    add("A", cs, None)
    add("alpha", cs, -log_n)
    cs = np.multiply(c, shares[1], out=cs)
    add("B", cs, None)
    add("beta", cs, -log_d)
    cs = np.multiply(c, shares[2], out=cs)
    add("E", cs, None)
    if form == "additive":
        cs = np.multiply(c, shares[3], out=cs)
        add("epsilon", cs, None)
        add("gamma", cs, log_r)
    if form == "inference":
        cs = np.multiply(c, sigmoid, out=cs)
        add("epsilon", cs, None)
        add("gamma", cs, log_r)
    return value, grad


def batched_lbfgs(
    u0: np.ndarray,
    form: str,
    where: Mapping[str, int],
    logs: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray],
    weights: np.ndarray | None = None,
    *,
    ftol: float = FTOL,
    gtol: float = GTOL,
    max_iter: int = MAX_ITER,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L-BFGS from every row of ``u0`` (S, p) at once; (optima, objectives, converged).

    Two-loop recursion per row over its last ``MEMORY`` curvature pairs (pairs with s·y <= 0 are
    skipped), initial Hessian scaled by s·y / y·y, backtracking Armijo line search from step 1
    (the first step is scaled to unit length). Rows with a non-finite objective, or where no
    step decreases it, stop there.
    """
    u = np.array(u0, dtype=float)
    n_start, p = u.shape
    w_all = None if weights is None else np.asarray(weights, dtype=float)

    def f_and_g(rows: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = None if w_all is None else w_all[rows]
        with np.errstate(all="ignore"):
            return objective(x, form, where, logs, w)

    f, g = f_and_g(np.arange(n_start), u)
    converged = np.zeros(n_start, dtype=bool)
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    s_hist = np.zeros((MEMORY, n_start, p))
    y_hist = np.zeros((MEMORY, n_start, p))
    rho = np.zeros((MEMORY, n_start))  # 0 marks an empty or skipped slot
    done_grad = np.max(np.abs(g), axis=1) <= gtol
    converged |= active & done_grad
    active &= ~done_grad
    for it in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        gr = g[rows]
        # Two-loop recursion, newest pair first.
        q = gr.copy()
        alphas = np.zeros((MEMORY, rows.size))
        order = [(it - 1 - k) % MEMORY for k in range(min(it, MEMORY))]
        for slot in order:
            a = rho[slot, rows] * np.sum(s_hist[slot, rows] * q, axis=1)
            alphas[slot] = a
            q -= a[:, None] * y_hist[slot, rows]
        if order:
            newest = order[0]
            sy = np.sum(s_hist[newest, rows] * y_hist[newest, rows], axis=1)
            yy = np.sum(y_hist[newest, rows] ** 2, axis=1)
            usable = (rho[newest, rows] > 0) & (yy > 0)
            scale = np.where(usable, sy / np.where(usable, yy, 1.0), 1.0)
        else:
            scale = 1.0 / np.maximum(1.0, np.linalg.norm(gr, axis=1))
        r = q * scale[:, None]
        for slot in reversed(order):
            b = rho[slot, rows] * np.sum(y_hist[slot, rows] * r, axis=1)
            r += (alphas[slot] - b)[:, None] * s_hist[slot, rows]
        d = -r
        slope = np.sum(d * gr, axis=1)
        bad = ~(slope < 0)  # not a descent direction: fall back to steepest descent
        if bad.any():
            d[bad] = -gr[bad] / np.maximum(1.0, np.linalg.norm(gr[bad], axis=1))[:, None]
            slope[bad] = np.sum(d[bad] * gr[bad], axis=1)
        # Backtracking Armijo line search, all rows together.
        step = np.ones(rows.size)
        f_new = np.full(rows.size, np.nan)
        g_new = np.zeros((rows.size, p))
        pending = np.arange(rows.size)
        for _ in range(40):
            x_try = u[rows[pending]] + step[pending, None] * d[pending]
            f_try, g_try = f_and_g(rows[pending], x_try)
            ok = np.isfinite(f_try) & (
                f_try <= f[rows[pending]] + 1e-4 * step[pending] * slope[pending]
            )
            f_new[pending[ok]] = f_try[ok]
            g_new[pending[ok]] = g_try[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        stuck = np.isnan(f_new)
        # Rows where no step decreased the objective are at their optimum (to precision).
        converged[rows[stuck]] = True
        active[rows[stuck]] = False
        moved = np.flatnonzero(~stuck)
        rm = rows[moved]
        s = step[moved, None] * d[moved]
        y = g_new[moved] - g[rm]
        sy = np.sum(s * y, axis=1)
        slot = it % MEMORY
        s_hist[slot, rm], y_hist[slot, rm] = s, y
        rho[slot, rm] = np.where(
            sy > 1e-12 * np.sum(y * y, axis=1), 1.0 / np.where(sy > 0, sy, 1), 0
        )
        rho[slot, rows[stuck]] = 0.0
        f_old = f[rm]
        u[rm] += s
        f[rm], g[rm] = f_new[moved], g_new[moved]
        small_change = (f_old - f[rm]) <= ftol * np.maximum(
            np.maximum(np.abs(f_old), np.abs(f[rm])), 1.0
        )
        flat = np.max(np.abs(g[rm]), axis=1) <= gtol
        stop = small_change | flat
        converged[rm[stop]] = True
        active[rm[stop]] = False
    f = np.where(np.isfinite(f), f, np.inf)
    return u, f, converged


def fit_starts(
    starts: np.ndarray,
    form: str,
    where: Mapping[str, int],
    logs: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray],
) -> tuple[np.ndarray, float]:
    """The best optimum over ``starts``: batched L-BFGS, then scipy polishes the best few.

    Returns (u, objective); objective is inf when no start reached a finite value.
    """
    from scipy.optimize import minimize

    u, f, _ = batched_lbfgs(starts, form, where, logs)
    order = np.argsort(f)
    picked: list[int] = []
    for i in order:
        if not np.isfinite(f[i]) or len(picked) == N_POLISH:
            break
        if all(np.max(np.abs(u[i] - u[j])) > 1e-6 for j in picked):
            picked.append(int(i))
    if not picked:
        return starts[0], float("inf")
    best_u, best_f = u[picked[0]], float(f[picked[0]])

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            value, grad = objective(x, form, where, logs)
        return float(value), grad

    for i in picked:
        run = minimize(fun, u[i], jac=True, method="L-BFGS-B", options=POLISH_OPTIONS)
        if np.isfinite(run.fun) and run.fun < best_f:
            best_u, best_f = run.x, float(run.fun)
    return np.asarray(best_u, dtype=float), best_f


# Chinchilla's start grid (FACTS.md) over a = log A, b = log B, e = log E and the exponents.
GRID: dict[str, tuple[float, ...]] = {
    "A": (0, 5, 10, 15, 20, 25),
    "B": (0, 5, 10, 15, 20, 25),
    "E": (-1, -0.5, 0, 0.5, 1),
    "alpha": (0, 0.5, 1, 1.5, 2),
    "beta": (0, 0.5, 1, 1.5, 2),
}
# The shape term, which Chinchilla's grid lacks: f = log epsilon and (when free) gamma.
LOG_EPSILON_STARTS = (-8.0, -6.0, -4.0, -2.0, 0.0)
GAMMA_STARTS = (0.1, 0.5, 1.0)


def grid_starts(
    free: tuple[str, ...],
    where: Mapping[str, int],
    form: str,
    logs: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray],
) -> np.ndarray:
    """One start (a free vector) per point of Chinchilla's grid over the free parameters.

    That is 6·6·5·5·5 = 4,500 starts with alpha and beta free, 900 with beta tied. The shape
    term (inference and additive forms) is extended without multiplying the count: every grid
    start is completed by the (f = log epsilon, gamma) pair, from LOG_EPSILON_STARTS × GAMMA_STARTS
    (gamma: only when free; tied, it is alpha's start), that gives that start the lowest
    objective (ties: the first pair). So each of the 4,500 starts begins with a shape term of a
    sensible size instead of an arbitrary one, at the cost of 15 objective evaluations per
    start, not 15 times the runs.
    """
    gridded = [p for p in free if p in GRID]
    mesh = np.meshgrid(*(GRID[p] for p in gridded), indexing="ij")
    grid = np.array(mesh, dtype=float).reshape(len(gridded), -1).T
    starts = np.zeros((len(grid), len(free)))
    for p in gridded:
        starts[:, free.index(p)] = grid[:, gridded.index(p)]
    if "epsilon" not in free:
        return starts
    # The shape term's choice per start: the rest of L̂ once, then each (f, gamma) pair.
    log_n, log_d, log_r, log_loss = logs
    col = {p: starts[:, j, None] for p, j in where.items()}
    base = np.logaddexp(
        np.logaddexp(col["A"] - col["alpha"] * log_n, col["B"] - col["beta"] * log_d), col["E"]
    )
    gammas = GAMMA_STARTS if "gamma" in free else (None,)
    best = np.full(len(starts), np.inf)
    for f in LOG_EPSILON_STARTS:
        for gamma in gammas:
            g = col["alpha"] if gamma is None else gamma
            shape = f + g * log_r
            if form == "additive":
                log_pred = np.logaddexp(base, shape)
            else:
                log_pred = base + np.logaddexp(0.0, shape)
            resid = np.abs(log_loss - log_pred)
            value = np.sum(
                np.where(resid <= DELTA, 0.5 * resid**2, DELTA * (resid - 0.5 * DELTA)), axis=1
            )
            value = np.where(np.isfinite(value), value, np.inf)
            better = value < best
            best[better] = value[better]
            starts[better, free.index("epsilon")] = f
            if gamma is not None:
                starts[better, free.index("gamma")] = gamma
    return starts
