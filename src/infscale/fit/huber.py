"""Chinchilla's fitting method, vectorised: Huber loss on log L, every start at once.

Hoffmann et al. (2022), as Besiroglu et al. (2024) re-examined it (docs/facts.md, "Fitting"):
with a = log A, b = log B, e = log E (and f = log epsilon), minimise the sum over points of
Huber_delta(log L - log L̂), delta = 1e-3, where

- ``chinchilla``: log L̂ = logsumexp(a - alpha·log N, b - beta·log D, e)
- ``inference``:  the same + log(1 + exp(f + gamma·log R))       (the paper's factor)
- ``additive``:   log L̂ = logsumexp(a - alpha·log N, b - beta·log D, e, f + gamma·log R),
  i.e. L = E + A·N^-alpha + B·D^-beta + epsilon·R^gamma: shape as a fourth additive term
  (an alternative the law comparison in :mod:`infscale.fit.compare` tries)

from every start of the grid, keeping the best objective. Instead of one L-BFGS run per start
(a Python loop of 4,500 scipy calls), :func:`lbfgs` runs L-BFGS on all starts together
as (starts × points) arrays, with the analytic gradient of :func:`objective`; each start stops on
its own test (scipy L-BFGS-B's defaults: relative objective change under ``FTOL``, or largest
gradient entry under ``GTOL``) and leaves the batch. The few best distinct runs are then polished
by the same batched L-BFGS with tight tolerances, and the best of those is the fit.

The same machinery fits bootstrap resamples together: a resample is a row of point weights
(how often each point was drawn), and every resample starts at the full fit's optimum.
:func:`lbfgs` and :func:`best_optimum` take any batched objective: the conditional law's
(:mod:`infscale.fit.conditional`) uses them too.

Parameters are passed around as free vectors ``u`` (log-space for A, B, E, epsilon), their
layout given by ``where`` (parameter name -> column; tied exponents share alpha's column).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

DELTA = 1e-3
FORMS = ("chinchilla", "inference", "additive")
LOG_PARAMS = ("A", "B", "E", "epsilon")  # optimised as logs
FTOL = float(np.finfo(float).eps) * 1e7  # scipy L-BFGS-B's default factr = 1e7
GTOL = 1e-5  # scipy L-BFGS-B's default pgtol
MEMORY = 10  # scipy L-BFGS-B's default maxcor
MAX_ITER = 300  # per start; the best few are polished to full precision anyway
ARMIJO = 1e-4  # sufficient decrease a line-search step must give
MAX_TRIALS = 40  # line-search steps tried before a row counts as at its optimum
POLISH = {"ftol": 0.0, "gtol": 1e-13, "max_iter": 3000}
N_POLISH = 3  # distinct best runs that are polished
TINY = float(np.finfo(float).tiny)  # curvature pairs below it are skipped: 1 / s·y would overflow
BLOCK = 64  # rows per pass of the objective: its temporaries then stay in the CPU cache

Logs = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]
# (rows (S, p), their point weights (S, n) or None) -> (values (S,), gradients (S, p))
Objective = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]


def linear_terms(form: str, where: Mapping[str, int], logs: Logs) -> np.ndarray:
    """The law's terms as linear maps of u: M (k, p, n), with term j at point i = u @ M[j, :, i].

    The terms are the logs of A·N^-alpha and B·D^-beta (additive form: and epsilon·R^gamma)
    relative to e = log E, so that log L̂ = e + log(1 + sum_j exp(term_j)); for the inference
    form the last term is the shape factor's exponent, f + gamma·log R. Tied exponents share a
    column, so their rows add up.
    """
    log_n, log_d, log_r, _ = logs
    linear = [("A", "alpha", -log_n), ("B", "beta", -log_d)]
    if form != "chinchilla":
        linear.append(("epsilon", "gamma", log_r))
    m = np.zeros((len(linear), max(where.values()) + 1, len(log_n)))
    for j, (coef, exponent, x) in enumerate(linear):
        m[j, where[coef]] += 1.0
        m[j, where[exponent]] += x
        if form != "inference" or coef != "epsilon":
            m[j, where["E"]] -= 1.0
    return m


def objective(
    u: np.ndarray,
    form: str,
    where: Mapping[str, int],
    logs: Logs,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Huber objective and its gradient for free vectors ``u`` of shape (..., p).

    ``logs`` = (log N, log D, log R or None, log loss), each of shape (n,); ``weights`` (shape
    (..., n), optional) multiplies each point's term (bootstrap counts).
    """
    m = linear_terms(form, where, logs)
    return _objective(np.asarray(u, dtype=float), form, m, where["E"], logs[3], weights)


def _objective(
    u: np.ndarray,
    form: str,
    m: np.ndarray,
    e: int,
    log_loss: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`objective` given the law's :func:`linear_terms` ``m`` and log E's column ``e``.

    Rows go through :func:`_block` ``BLOCK`` at a time, several times faster than all at once;
    rows where an exp overflowed (a non-finite value) are redone with shifted terms.
    """
    n = len(log_loss)
    rows = u.reshape(-1, u.shape[-1])
    w = None if weights is None else np.broadcast_to(weights, (*u.shape[:-1], n)).reshape(-1, n)
    value, grad = np.empty(len(rows)), np.empty(rows.shape)
    for i in range(0, len(rows), BLOCK):
        b = slice(i, i + BLOCK)
        wb = None if w is None else w[b]
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is handled here
            v, g = _block(rows[b], form, m, e, log_loss, wb, shifted=False)
        over = ~np.isfinite(v)
        if over.any():
            v[over], g[over] = _block(
                rows[b][over], form, m, e, log_loss, None if wb is None else wb[over], shifted=True
            )
        value[b], grad[b] = v, g
    return value.reshape(u.shape[:-1]), grad.reshape(u.shape)


def _block(
    u: np.ndarray,
    form: str,
    m: np.ndarray,
    e: int,
    log_loss: np.ndarray,
    w: np.ndarray | None,
    *,
    shifted: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`objective` for rows ``u`` (r, p), in place on one (terms, r, n) array.

    log L̂ = e + log(1 + sum_j exp(z_j)) needs no max-shift while no exp overflows (the sum is at
    least 1: no underflow, no lost digits); ``shifted`` subtracts the largest of 0 and the z_j at
    each point first. d log L̂ / d z_j is term j's share of L̂ (inference form: plus softplus of the
    shape exponent s, derivative sigmoid(s)). Huber: with c = clip(resid, ±delta),
    value = c·(resid - c/2) and d value / d log L̂ = -c; the chain rule back through M is one
    matrix product.
    """
    z = u @ m  # (k, r, n)
    lse = z[:2] if form == "inference" else z
    if shifted:
        top = np.maximum(lse.max(axis=0), 0.0)
        lse -= top
    np.exp(lse, out=lse)
    total = np.exp(-top) if shifted else np.ones(lse.shape[1:])  # E's term
    for term in lse:
        total += term
    resid = np.log(total)
    if shifted:
        resid += top
    resid += u[:, e, None]
    if form == "inference":
        s = z[2]
        softplus = np.abs(s)  # log(1 + e^s) = max(s, 0) + log1p(e^-|s|)
        np.negative(softplus, out=softplus)
        np.exp(softplus, out=softplus)
        np.log1p(softplus, out=softplus)
        softplus += np.maximum(s, 0.0)
        resid += softplus
        s -= softplus
        np.exp(s, out=s)  # sigmoid(s) = e^(s - softplus(s))
    np.subtract(log_loss, resid, out=resid)
    c = np.clip(resid, -DELTA, DELTA)
    cw = c if w is None else c * w
    value = np.vecdot(cw, resid) - 0.5 * np.vecdot(cw, c)
    lse *= np.divide(cw, total, out=total)  # c times each term's share of L̂
    if form == "inference":
        z[2] *= cw
    grad = np.matmul(z, m.transpose(0, 2, 1)).sum(axis=0)
    grad[:, e] += cw.sum(axis=1)  # log L̂'s own e
    return value, np.negative(grad, out=grad)


def bound_objective(form: str, where: Mapping[str, int], logs: Logs) -> Objective:
    """The huber objective of ``form`` on these points, as :func:`lbfgs` takes it."""
    m = linear_terms(form, where, logs)

    def f_and_g(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return _objective(x, form, m, where["E"], logs[3], w)

    return f_and_g


def lbfgs(
    objective: Objective,
    u0: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    ftol: float = FTOL,
    gtol: float = GTOL,
    max_iter: int = MAX_ITER,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L-BFGS from every row of ``u0`` (S, p) at once; (optima, objectives, converged).

    ``objective(x, w)`` gives the values (S,) and gradients (S, p) at rows ``x`` with their rows
    of point weights ``w`` (or None); a value that is not finite marks a row outside the
    objective's domain, which the line search backs away from.

    Two-loop recursion per row over its last ``MEMORY`` curvature pairs (a pair with s·y not above
    1e-12·y·y, or under ``TINY``, is skipped), initial inverse Hessian s·y / y·y of the newest
    kept pair (before any: 1 / max(1, |g|) at the start, so the first step has unit length).
    Backtracking Armijo line search from step 1, each retry at the minimum of the quadratic
    through f(0), f'(0) and the rejected step, kept within [0.1, 0.5] of it. A row
    stops on scipy L-BFGS-B's tests (relative objective change under ``ftol``, largest gradient
    entry under ``gtol``), when no step decreases it (its optimum, to precision), or when its
    start is not finite; stopped rows leave the batch, so the arrays shrink with it.
    """
    x = np.array(u0, dtype=float)
    p = x.shape[1]
    w = None if weights is None else np.asarray(weights, dtype=float)

    def f_and_g(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            return objective(x, w)

    f, g = f_and_g(x, w)
    u_out, f_out = x.copy(), np.where(np.isfinite(f), f, np.inf)
    finite = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    converged = finite & (np.max(np.abs(g), axis=1) <= gtol)
    rows = np.flatnonzero(finite & ~converged)
    x, f, g = x[rows], f[rows], g[rows]
    w = None if w is None else w[rows]
    s_hist, y_hist = np.zeros((MEMORY, len(rows), p)), np.zeros((MEMORY, len(rows), p))
    rho = np.zeros((MEMORY, len(rows)))  # 1 / s·y; 0 marks an empty or skipped slot
    h0 = 1.0 / np.maximum(1.0, np.linalg.norm(g, axis=1))
    for it in range(max_iter):
        if rows.size == 0:
            break
        # Two-loop recursion, newest pair first: d = -H·g.
        d = g.copy()
        order = [(it - 1 - k) % MEMORY for k in range(min(it, MEMORY))]
        alphas = np.empty((MEMORY, rows.size))
        for slot in order:
            alphas[slot] = rho[slot] * np.einsum("ij,ij->i", s_hist[slot], d)
            d -= alphas[slot][:, None] * y_hist[slot]
        d *= h0[:, None]
        for slot in reversed(order):
            beta = rho[slot] * np.einsum("ij,ij->i", y_hist[slot], d)
            d += (alphas[slot] - beta)[:, None] * s_hist[slot]
        np.negative(d, out=d)
        slope = np.einsum("ij,ij->i", d, g)
        bad = ~(slope < 0)  # not a descent direction: fall back to steepest descent
        if bad.any():
            d[bad] = -g[bad] / np.maximum(1.0, np.linalg.norm(g[bad], axis=1))[:, None]
            slope[bad] = np.einsum("ij,ij->i", d[bad], g[bad])
        # Backtracking line search, all rows together; `pending` rows are still looking.
        step = np.ones(rows.size)
        f_new, g_new = np.full(rows.size, np.nan), g.copy()
        pending = np.arange(rows.size)
        for _ in range(MAX_TRIALS):
            st = step[pending]
            f_try, g_try = f_and_g(
                x[pending] + st[:, None] * d[pending], None if w is None else w[pending]
            )
            ok = (f_try <= f[pending] + ARMIJO * st * slope[pending]) & np.all(
                np.isfinite(g_try), axis=1
            )
            f_new[pending[ok]], g_new[pending[ok]] = f_try[ok], g_try[ok]
            pending, st, f_try = pending[~ok], st[~ok], f_try[~ok]
            if pending.size == 0:
                break
            with np.errstate(all="ignore"):
                curve = f_try - f[pending] - slope[pending] * st
                best = np.nan_to_num(-slope[pending] * st * st / (2.0 * curve), nan=0.0)
            step[pending] = np.clip(best, 0.1 * st, 0.5 * st)
        moved = ~np.isnan(f_new)
        s = step[:, None] * d
        y = g_new - g
        sy, yy = np.einsum("ij,ij->i", s, y), np.einsum("ij,ij->i", y, y)
        kept = moved & (sy > 1e-12 * yy) & (np.minimum(sy, yy) > TINY)
        slot = it % MEMORY
        s_hist[slot], y_hist[slot] = s, y
        rho[slot] = np.where(kept, 1.0 / np.where(kept, sy, 1.0), 0.0)
        h0 = np.where(kept, sy / np.where(kept, yy, 1.0), h0)
        f_old = f
        x = np.where(moved[:, None], x + s, x)
        f, g = np.where(moved, f_new, f), np.where(moved[:, None], g_new, g)
        small_change = (f_old - f) <= ftol * np.maximum(np.maximum(np.abs(f_old), np.abs(f)), 1.0)
        done = ~moved | small_change | (np.max(np.abs(g), axis=1) <= gtol)
        if done.any():
            u_out[rows[done]], f_out[rows[done]] = x[done], f[done]
            converged[rows[done]] = True
            go = ~done
            rows, x, f, g, h0 = rows[go], x[go], f[go], g[go], h0[go]
            s_hist, y_hist, rho = s_hist[:, go], y_hist[:, go], rho[:, go]
            w = None if w is None else w[go]
    u_out[rows], f_out[rows] = x, f
    return u_out, f_out, converged


def best_optimum(objective: Objective, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """The best optimum over ``starts``: batched L-BFGS, then the best few polished.

    The polish is the same batched L-BFGS from the ``N_POLISH`` best distinct optima with
    ``POLISH``'s tolerances (no relative-change test: it runs until no step helps). Returns
    (u, objective); objective is inf when no start reached a finite value.
    """
    u, f, _ = lbfgs(objective, starts)
    picked: list[int] = []
    for i in np.argsort(f):
        if not np.isfinite(f[i]) or len(picked) == N_POLISH:
            break
        if all(np.max(np.abs(u[i] - u[j])) > 1e-6 for j in picked):
            picked.append(int(i))
    if not picked:
        return starts[0], float("inf")
    u, f, _ = lbfgs(objective, u[picked], **POLISH)
    best = int(np.argmin(f))
    return u[best], float(f[best])


# Chinchilla's start grid (docs/facts.md, "Fitting") over a = log A, b = log B, e = log E and
# the exponents.
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
