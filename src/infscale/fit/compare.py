"""Law comparison on the same points: which way of putting shape into the law extrapolates.

Forms (each fitted by Chinchilla's huber method from the same start grid, so only the form
differs; the conditional forms from that grid's Chinchilla optimum, extended for their factors):

- ``chinchilla``: L = E + A·N^-alpha + B·D^-beta (no shape)
- ``inference``:  the paper's L = (E + A·N^-alpha + B·D^-beta)·(1 + epsilon·R^gamma)
- ``additive``:   L = E + A·N^-alpha + B·D^-beta + epsilon·R^gamma, shape as its own additive
  term (the reducible loss does not scale with shape; the irreducible floor moves with R)
- ``conditional``: the follow-up's law, Chinchilla's times a U-shaped width factor and an
  MLP-ratio factor; ``conditional-additive``: its additive variant (infscale.fit.conditional,
  whose fitters these rows use; a factor whose variable does not vary over the fit points is
  dropped, as in every conditional fit)

each under the tie modes that apply (``all``: every exponent = alpha; ``alpha-beta``: gamma free;
``none``), plus the paper's own procedure (``lm``) for the two laws with tie ``all`` and the
follow-up's (LM from a Chinchilla fit) for the conditional law.

Per row: n_params (free parameters), on all points MSE, R², AIC = n·ln(RSS/n) + 2k (Gaussian
residuals), spearman (the mean within-size-group rank correlation of the fit's predictions: what
ranking the shapes of one size needs), and progressive extrapolation (the follow-up's test):
size groups ordered by median N; for each group after the first, fit on all smaller groups and
predict it; logo_rel_err is the mean and logo_max_rel_err the max of |y - ŷ|/y over every
predicted point (folds with fewer training points than parameters, or whose fit fails, are
skipped and counted in logo_skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infscale.errors import InputError
from infscale.fit import conditional, huber
from infscale.fit.laws import FitError, expand, fit_lm, free_params, law_loss, metrics, positions

SPECS: tuple[tuple[str, str, str], ...] = (
    ("chinchilla", "all", "huber"),
    ("chinchilla", "none", "huber"),
    ("inference", "all", "huber"),
    ("inference", "alpha-beta", "huber"),
    ("inference", "none", "huber"),
    ("additive", "all", "huber"),
    ("additive", "none", "huber"),
    ("conditional", "all", "huber"),
    ("conditional", "none", "huber"),
    ("conditional-additive", "all", "huber"),
    ("conditional-additive", "none", "huber"),
    ("chinchilla", "all", "lm"),
    ("inference", "all", "lm"),
    ("conditional", "all", "lm"),
)
# The conditional law's rows: form name here -> the law's form.
CONDITIONAL = {"conditional": "multiplicative", "conditional-additive": "additive"}
COLUMNS = [
    "form",
    "tie",
    "method",
    "n_params",
    "n_points",
    "aic",
    "mse",
    "r2",
    "spearman",
    "logo_rel_err",
    "logo_max_rel_err",
    "logo_folds",
    "logo_skipped",
    "params",
    "error",
]


def _law(form: str) -> str:
    """The law whose parameter names (and tie layout) a form uses."""
    if form in CONDITIONAL:
        return "conditional"
    return "chinchilla" if form == "chinchilla" else "inference"


def form_loss(form: str, params: dict[str, float], N, D, R, variables=None) -> np.ndarray:
    """The form's loss; ``variables`` ({factor: values}) are the conditional forms'."""
    if form in CONDITIONAL:
        return law_loss("conditional", params, N, D, variables=variables, form=CONDITIONAL[form])
    if form == "additive":
        base = law_loss(
            "chinchilla", {p: params[p] for p in ("A", "B", "E", "alpha", "beta")}, N, D
        )
        return base + params["epsilon"] * np.asarray(R, dtype=float) ** params["gamma"]
    return law_loss(form, params, N, D, R if form == "inference" else None)


def n_params(form: str, tie: str, variables=None) -> int:
    """Free parameters of the form (a conditional form: less those of dropped factors)."""
    if form in CONDITIONAL:
        return len(conditional.free_params(tie, conditional.dropped_factors(variables)))
    return len(free_params(_law(form), tie))


def fit_form(form: str, tie: str, method: str, N, D, R, loss, variables=None) -> dict[str, float]:
    """The fitted parameters (all of the form's, tied and dropped ones included)."""
    if form in CONDITIONAL:
        return conditional.fit(CONDITIONAL[form], tie, method, N, D, variables, loss)[0]
    law = _law(form)
    R_ = R if law == "inference" else None
    if method == "lm":
        if form == "additive":
            raise InputError(
                "the lm method fits only the chinchilla, inference and conditional laws"
            )
        return fit_lm(law, tie, N, D, R_, loss)
    free, where = free_params(law, tie), positions(law, tie)
    logs = (np.log(N), np.log(D), None if R_ is None else np.log(R_), np.log(loss))
    starts = huber.grid_starts(free, where, form, logs)
    u, value = huber.fit_starts(starts, form, where, logs)
    if not np.isfinite(value):
        raise FitError("the huber fit found no finite optimum")
    theta = [np.exp(v) if p in huber.LOG_PARAMS else v for p, v in zip(free, u, strict=True)]
    return expand(law, tie, theta)


def compare_laws(
    points: pd.DataFrame, specs: Sequence[tuple[str, str, str]] = SPECS
) -> pd.DataFrame:
    """The comparison table (COLUMNS), one row per (form, tie, method). The conditional forms
    read their factors' variables from ``points`` (conditional.factor_variables)."""
    missing = {"N", "D", "loss", "d_model", "n_layers", "size_group"} - set(points.columns)
    if missing:
        raise InputError(f"points lack column(s) {', '.join(sorted(missing))}")
    N, D = points["N"].to_numpy(float), points["D"].to_numpy(float)
    R = (points["d_model"] / points["n_layers"]).to_numpy(float)
    y = points["loss"].to_numpy(float)
    V = None
    if any(form in CONDITIONAL for form, _, _ in specs):
        V = conditional.factor_variables(points)
    group = points["size_group"].astype(str).to_numpy()
    order = points.groupby(group)["N"].median().sort_values().index.tolist()
    rows = [_row(form, tie, method, N, D, R, V, y, group, order) for form, tie, method in specs]
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(form, tie, method, N, D, R, V, y, group, order) -> dict[str, Any]:
    def take(mask):
        return None if V is None else {name: v[mask] for name, v in V.items()}

    k = n_params(form, tie, V)
    row: dict[str, Any] = {
        "form": form,
        "tie": tie,
        "method": method,
        "n_params": k,
        "n_points": len(y),
    }
    try:
        params = fit_form(form, tie, method, N, D, R, y, V)
    except FitError as err:
        return row | {"error": str(err)}
    pred = form_loss(form, params, N, D, R, V)
    rss = float(np.sum((y - pred) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    row |= {
        "aic": len(y) * np.log(rss / len(y)) + 2 * k if rss > 0 else -np.inf,
        "mse": rss / len(y),
        "r2": 1 - rss / total if total > 0 else None,
        "spearman": metrics(y, pred, group)["spearman"],
        "params": " ".join(f"{p}={v:.6g}" for p, v in params.items()),
    }
    rel, folds, skipped = [], 0, 0
    for j in range(1, len(order)):
        train = np.isin(group, order[:j])
        test = group == order[j]
        if train.sum() < n_params(form, tie, take(train)):
            skipped += 1
            continue
        try:
            fold = fit_form(form, tie, method, N[train], D[train], R[train], y[train], take(train))
        except FitError:
            skipped += 1
            continue
        folds += 1
        guess = form_loss(form, fold, N[test], D[test], R[test], take(test))
        rel.extend(np.abs(y[test] - guess) / y[test])
    if rel:
        row |= {"logo_rel_err": float(np.mean(rel)), "logo_max_rel_err": float(np.max(rel))}
    return row | {"logo_folds": folds, "logo_skipped": skipped}
