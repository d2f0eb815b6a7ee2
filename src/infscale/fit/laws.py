"""The scaling laws, written once each, their fits, and the metrics the paper reports.

Chinchilla: ``L = E + A·N^-alpha + B·D^-beta``. Inference-efficient: the same times
``(1 + epsilon·R^gamma)`` with R = d_model / n_layers (docs/facts.md, "The two laws"). Conditional:
the follow-up's law, Chinchilla's times a width factor and an MLP-ratio factor, or plus them
(``form``; infscale.fit.conditional, which also fits it).

A fit is a plain JSON-able dict (DESIGN.md, FIT.json). ``method`` picks the optimiser: ``lm`` is
the paper's exact procedure for its two laws (curve_fit, Levenberg-Marquardt from all ones), kept
exactly because the published numbers came from it, fragile as it is; ``huber`` is Chinchilla's
(Huber loss on log L, L-BFGS from the 4,500-point grid of starts, all at once: see
infscale.fit.huber), robust; ``vp`` is variable projection (infscale.fit.vp: least squares,
the coefficients solved exactly for each setting of the exponents). ``bootstrap`` adds 95%
intervals (``intervals``) and the resampled parameters, from which ``predict_interval`` gives
a band for every prediction; it resamples whole training runs (``runs``), since the points of
one run share its noise. ``tie`` names the exponents that take alpha's value; tied exponents
still appear in ``params``.

Each law is defined once in infscale.fit.law (the registry ``LAWS``); this module is the front
door over it: ``fit_points`` fits a Law to Points, ``fit_law`` does so from arrays, and the
predictions read a FIT.json. ``predict_points`` reads what each law needs from a table of
points; ``predict`` takes arrays (the two paper laws). scipy and pandas are imported inside the
functions that need them, so that the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.fit.core import METHODS, PARAMS, TIES, check_choice, positive, table_columns
from infscale.fit.law import Law, law_of
from infscale.fit.metrics import fit_warnings, metrics, spearman_by_group
from infscale.fit.points import Points

if TYPE_CHECKING:
    import pandas as pd

# The laws the workflow fits on every fit set (the paper's two; the conditional law is fitted
# once, for the comparison and, when chosen, for the selection).
PAPER_LAWS = ("chinchilla", "inference")


def law_loss(
    law: str,
    params: Mapping[str, Any],
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None = None,
    *,
    variables: Mapping[str, np.ndarray] | None = None,
    form: str | None = None,
) -> np.ndarray:
    """The loss ``law`` (FIT.json's law, with ``form``: infscale.fit.law.law_of) predicts with
    ``params`` (every parameter of the law, none extra); R is read by the inference law,
    ``variables`` ({factor: values} of the factors kept) by the conditional law."""
    chosen = law_of(law, form)
    points = Points(N, D, R=R, variables=variables)
    chosen.check(points)
    return chosen.loss(params, points)


def read_points(law: Law, frame: pd.DataFrame, dropped: Sequence[str] = ()) -> Points:
    """What ``law`` reads from a table of points: N, D and its inputs (the conditional law:
    the variables of the factors not ``dropped``). An InputError names a missing column or a
    bad value."""
    N, D = table_columns(frame, ["N", "D"], f"the {law.name} law")
    return Points(N, D, **law.read(frame, dropped))


def predict(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> np.ndarray:
    """The loss a fit of one of the paper's laws predicts at arrays of points; R is read only by
    the inference law. (A conditional fit: ``predict_points``.)"""
    law, values = _fit_params(fit)
    return law.loss(values, _points(law, N, D, R))


def predict_points(fit: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The loss a fit predicts for every row of a table (the columns: ``read_points``)."""
    law, values = _fit_params(fit)
    return law.loss(values, read_points(law, frame, fit.get("dropped") or ()))


def fit_law(
    law: str,
    N: ArrayLike,
    D: ArrayLike,
    loss: ArrayLike,
    R: ArrayLike | None = None,
    *,
    variables: Mapping[str, ArrayLike] | None = None,
    form: str | None = None,
    method: str = "lm",
    tie: str = "all",
    groups: ArrayLike | None = None,
    runs: ArrayLike | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """``fit_points`` from arrays: ``law`` and ``form`` as FIT.json names them (law_of), R the
    inference law's, ``variables`` (conditional.factor_variables) the conditional law's,
    ``groups`` a size group per point and ``runs`` a run id per point."""
    chosen = law_of(law, form)
    points = _points(chosen, N, D, R, variables)
    y = positive("loss", loss)
    lengths = {len(points.N), len(points.D), len(y)}
    lengths |= {len(v) for v in (points.variables or {}).values()}
    if len(lengths | ({len(y)} if points.R is None else {len(points.R)})) != 1:
        raise InputError("N, D, loss (and R or the factor variables) must have the same length")
    run_ids = None if runs is None else np.asarray(runs).astype(str)
    if run_ids is not None and len(run_ids) != len(y):
        raise InputError(f"{len(run_ids)} run ids for {len(y)} points")
    group_ids = None if groups is None else np.asarray(groups)
    points = Points(points.N, points.D, y, points.R, points.variables, group_ids, run_ids)
    return fit_points(chosen, points, method=method, tie=tie, bootstrap=bootstrap, seed=seed)


def fit_points(
    law: Law,
    points: Points,
    *,
    method: str = "lm",
    tie: str = "all",
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit ``law`` to ``points``; the FIT.json dict, with metrics on the same points.

    The conditional law's fit adds ``form``, ``dropped`` (factors whose variable does not vary)
    and the optima ``x_opt`` (``r_opt``). ``points.groups`` makes Spearman a within-group mean,
    as the paper reports it. ``bootstrap`` K > 0 refits on K resamples drawn with ``seed`` and
    adds 95% percentile intervals; a resample draws whole runs (``points.runs``), every point
    of a drawn run as often as the run was drawn, because the points of one run are not
    independent; without runs each point is its own run.
    """
    check_choice("method", method, METHODS)
    check_choice("tie", tie, TIES)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise InputError(f"bootstrap must be an integer >= 0, got {bootstrap}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed}")
    law.check(points)
    y = points.loss
    free = law.free(tie, points)
    if len(y) < len(free):
        raise InputError(
            f"{len(y)} point(s) for the {len(free)} free parameters of the {law.family} law "
            f"with tie {tie}: need at least {len(free)}"
        )
    params = law.fit(tie, method, points)
    pred = law.loss(params, points)
    result: dict[str, Any] = {
        "law": law.family,
        "method": method,
        "tie": tie,
        "n_points": len(y),
        "params": params,
        "metrics": metrics(y, pred, points.groups),
    }
    extras, notes = law.describe(params, points)
    result |= extras
    if points.groups is not None:
        result["spearman_by_group"] = spearman_by_group(y, pred, points.groups)
    if bootstrap:
        result["bootstrap"] = {"k": bootstrap, "seed": seed} | law.bootstrap(
            tie, method, points, params, bootstrap, seed
        )
        result["intervals"] = result["bootstrap"]["ci95"]
    result["warnings"] = fit_warnings(params, points.N, points.D)
    if bootstrap and result["intervals"] is None:
        result["warnings"].append(
            f"all {bootstrap} bootstrap refits failed: the fit has no intervals (are N and D "
            "collinear over these points, e.g. one token multiplier?)"
        )
    result["warnings"] += notes
    return result


def predict_interval(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The 95% percentile band of the predictions of a fit's bootstrap samples, at arrays of
    points (None: no samples). A conditional fit: ``predict_points_interval``."""
    law, _ = _fit_params(fit)
    table = _sample_table(fit)
    return None if table is None else _band(law, table, _points(law, N, D, R))


def predict_points_interval(
    fit: Mapping[str, Any], frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """``predict_interval`` for every row of a table (the columns: ``read_points``)."""
    law, _ = _fit_params(fit)
    table = _sample_table(fit)
    if table is None:
        return None
    return _band(law, table, read_points(law, frame, fit.get("dropped") or ()))


def check_fit(fit: Mapping[str, Any]) -> None:
    """Check a fit result read from a file (law, params, form, bootstrap samples) once, so that
    a hand-edited FIT.json fails with one line naming the field rather than inside a prediction."""
    _fit_params(fit)
    _sample_table(fit)


def _sample_table(fit: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The bootstrap samples as (samples, 1) arrays per parameter; None without samples."""
    bootstrap = fit.get("bootstrap") or {}
    if not isinstance(bootstrap, Mapping):
        raise InputError(f"fit bootstrap must be an object, got {bootstrap!r}")
    samples = bootstrap.get("samples")
    if not samples:
        return None
    law = fit["law"]
    check_choice("fit law", law, tuple(PARAMS))
    if not isinstance(samples, Mapping) or set(samples) != set(PARAMS[law]):
        raise InputError(f"fit bootstrap samples must be exactly {', '.join(PARAMS[law])}")
    try:
        table = {p: np.asarray(samples[p], dtype=float)[:, None] for p in PARAMS[law]}
    except (TypeError, ValueError):
        raise InputError("fit bootstrap samples are not lists of numbers") from None
    if len({v.shape for v in table.values()}) != 1:
        raise InputError("fit bootstrap samples differ in length")
    return table


def _band(
    law: Law, table: Mapping[str, np.ndarray], points: Points
) -> tuple[np.ndarray, np.ndarray]:
    """The 95% band of the predictions of every sample: (samples, 1) parameters against
    (1, points) inputs."""
    rows = Points(
        points.N[None, :],
        points.D[None, :],
        R=None if points.R is None else points.R[None, :],
        variables=None
        if points.variables is None
        else {name: v[None, :] for name, v in points.variables.items()},
    )
    with np.errstate(all="ignore"):
        preds = law.loss(table, rows)
    lo, hi = np.nanpercentile(preds, [2.5, 97.5], axis=0)
    return lo, hi


def _points(
    law: Law,
    N: ArrayLike,
    D: ArrayLike,
    R: ArrayLike | None,
    variables: Mapping[str, ArrayLike] | None = None,
) -> Points:
    """Checked float arrays; R and the variables only where ``law`` reads them."""
    points = Points(N, D, R=R, variables=variables)
    law.check(points)
    R_ = positive("R = d_model / n_layers", R) if "R" in law.inputs else None
    variables_ = None
    if "variables" in law.inputs:
        variables_ = {name: positive(name, v) for name, v in variables.items()}
    return Points(positive("N", N), positive("D", D), R=R_, variables=variables_)


def _fit_params(fit: Mapping[str, Any]) -> tuple[Law, dict[str, float]]:
    """A fit result's law (by its law and form) and parameters, checked."""
    law = law_of(fit.get("law"), fit.get("form"), what="fit law")
    params = fit.get("params")
    if not isinstance(params, Mapping) or set(params) != set(law.params):
        raise InputError(
            f"fit params must be exactly {', '.join(law.params)} for the {law.family} law"
        )
    for name in law.params:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise InputError(f"fit param {name} must be a finite number, got {value!r}")
    return law, {p: float(params[p]) for p in law.params}
