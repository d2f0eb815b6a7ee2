"""The scores of a fit on its points (MSE, R², max relative error, Spearman) and the signs of a
degenerate one (``fit_warnings``): written once for every law. Below them, the law comparison's
scores of one (law, tie) row, which infscale.fit.compare lays out as its columns: the fit's on
its fit set, on the rows outside it, by progressive extrapolation across size groups and by
bootstrap, each with the note that says why a score is empty."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.fit.core import FitError
from infscale.fit.law import Law
from infscale.fit.points import Points, Split

AT_BOUND = 1e-6  # E (nats) or an exponent below this is at its lower bound 0 (fit_warnings)
# Why a Spearman correlation is empty (metrics: under 2 points, or constant, per group).
NO_RANKING = "no size group has 2 or more points with distinct losses and predictions"


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


# ---------------------------------------------------------------- a comparison row's scores
# The law comparison (infscale.fit.compare) lays these out as its columns, one row per (law,
# tie): each function returns its columns and adds to ``notes`` why a score of its is empty.


def fit_scores(
    law: Law, params: Mapping[str, float], train: Points, k: int, notes: list[str]
) -> dict[str, Any]:
    """fit_mse, fit_r2, fit_spearman and aic (n·ln(RSS/n) + 2k, Gaussian residuals, ``k`` free
    parameters) of the fit ``params`` on its fit set ``train``; ``notes`` also gets the signs
    of a degenerate fit (fit_warnings) and the law's own (a conditional factor dropped)."""
    notes += fit_warnings(params, train.N, train.D) + law.describe(params, train)[1]
    resid = train.loss - law.loss(params, train)
    rss = float(np.sum(resid**2))
    scores = metrics(train.loss, train.loss - resid, train.groups)
    if scores["r2"] is None:
        notes.append("fit_r2 empty: every fit-set loss is the same")
    if scores["spearman"] is None:
        notes.append(f"fit_spearman empty: {NO_RANKING}")
    return {
        "fit_mse": scores["mse"],
        "aic": len(train) * np.log(rss / len(train)) + 2 * k if rss > 0 else -np.inf,
        "fit_r2": scores["r2"],
        "fit_spearman": scores["spearman"],
    }


def test_scores(
    law: Law, params: Mapping[str, float], test: Points, notes: list[str]
) -> dict[str, Any]:
    """test_mse, test_max_abs_err (|y - ŷ|) and test_spearman of the fit ``params`` on the rows
    outside its fit set, ``test`` (none: no columns)."""
    if not len(test):
        notes.append("test_mse, test_max_abs_err, test_spearman empty: no row outside the fit set")
        return {}
    guess = law.loss(params, test)
    spearman = metrics(test.loss, guess, test.groups)["spearman"]
    if spearman is None:
        notes.append(f"test_spearman empty: {NO_RANKING}")
    return {
        "test_mse": float(np.mean((test.loss - guess) ** 2)),
        "test_max_abs_err": float(np.max(np.abs(test.loss - guess))),
        "test_spearman": spearman,
    }


def progressive(law: Law, tie: str, method: str, parts: Split, notes: list[str]) -> dict[str, Any]:
    """logo_*, the progressive extrapolation: fit on the groups before each in
    ``parts.order``, predict that group (none without size groups); a skipped fold's reason
    goes to ``notes``."""
    if parts.order is None:
        notes.append("logo_* empty: no size-group column (--group-by) to extrapolate across")
        return {}
    rel, folds, skipped = [], 0, 0
    for j, (train, test) in enumerate(parts.folds, start=1):
        k = len(law.free(tie, train))
        try:
            if len(train) < k:
                raise FitError(f"{len(train)} row(s) for {k} free parameters")
            guess = law.loss(law.fit(tie, method, train), test)
            if not np.all(np.isfinite(guess)):
                raise FitError("its fit predicts a non-finite loss")
        except FitError as err:
            skipped += 1
            notes.append(
                f"fold {j} (predict {parts.order[j]}) skipped: {' '.join(str(err).split())}"
            )
            continue
        folds += 1
        rel.extend(np.abs(test.loss - guess) / test.loss)
    counts = {"logo_folds": folds, "logo_skipped": skipped}
    if not rel:
        notes.append(f"logo_rel_err, logo_max_rel_err empty: all {skipped} fold(s) skipped")
        return counts
    return {"logo_rel_err": float(np.mean(rel)), "logo_max_rel_err": float(np.max(rel))} | counts


def bootstrap_intervals(
    law: Law,
    tie: str,
    method: str,
    train: Points,
    params: Mapping[str, float],
    k: int,
    seed: int,
    notes: list[str],
) -> dict[str, Any]:
    """bootstrap_k, bootstrap_failed, params_ci95: ``infscale fit``'s refits of ``k``
    run-level resamples of the fit set drawn with ``seed`` (the same draws)."""
    drawn = law.bootstrap(tie, method, train, params, k, seed)
    ci = drawn["ci95"]
    if ci is None:
        notes.append(f"params_ci95 empty: all {k} bootstrap refits failed")
    return {
        "bootstrap_k": k,
        "bootstrap_failed": drawn["failed"],
        "params_ci95": None if ci is None else json.dumps(ci),
    }
