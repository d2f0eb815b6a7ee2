"""The scores of a fit on its points (MSE, R², max relative error, Spearman) and the signs of a
degenerate one (``fit_warnings``): written once for every law."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

AT_BOUND = 1e-6  # E (nats) or an exponent below this is at its lower bound 0 (fit_warnings)


def fit_warnings(params: Mapping[str, float], N: np.ndarray, D: np.ndarray) -> list[str]:
    """Signs of an unphysical or degenerate fit: a negative coefficient (the paper saw A < 0
    with 20N-only points; E < 0 claims a loss below zero at infinite scale), a coefficient or
    exponent at its lower bound 0 (within AT_BOUND: huber's log-space E runs off to -inf when
    the points do not pin the irreducible loss; an exponent 0 makes its term a constant), or a
    term the fit has dropped (LM from ones does this when gamma is free)."""
    found = [
        f"{p} = {params[p]:.6g} is negative: the fitted law is not physical"
        for p in ("A", "B", "E")
        if params[p] < 0
    ]
    found += [
        f"{p} = {params[p]:.6g} is at its lower bound 0: "
        + (
            "the points do not pin the irreducible loss"
            if p == "E"
            else "its term is a constant, not a power law"
        )
        for p in ("E", "alpha", "beta")
        if 0 <= params[p] < AT_BOUND
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


def _spearman(y: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Spearman's rho: Pearson's correlation of the ranks, ties at their mean rank (None under
    2 points or for a constant side). Computed here: scipy.stats takes longer to import than
    a whole vp comparison takes to fit."""
    if len(y) < 2:
        return None
    ranks = [_mean_ranks(np.asarray(a, dtype=float)) for a in (y, y_pred)]
    centred = [r - r.mean() for r in ranks]
    scale = float(np.sqrt(np.sum(centred[0] ** 2) * np.sum(centred[1] ** 2)))
    if not scale > 0:
        return None
    return float(np.clip(np.sum(centred[0] * centred[1]) / scale, -1.0, 1.0))


def _mean_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (non-finite values: nan)."""
    if not np.all(np.isfinite(values)):
        return np.full(len(values), np.nan)
    _, where, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # the 0-based rank of each distinct value's first copy
    return (first + (counts + 1) / 2.0)[where.ravel()]
