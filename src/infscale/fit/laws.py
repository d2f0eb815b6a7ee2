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

``predict_points`` reads what each law needs from a table of points; ``predict`` takes arrays
(the two paper laws). scipy and pandas are imported inside the functions that need them, so
that the CLI starts fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.fit.huber import LOG_PARAMS  # numpy only: the CLI still starts fast
from infscale.fit.vp import fit_vp

if TYPE_CHECKING:
    import pandas as pd

# Each law's parameters, in FIT.json order.
PARAMS: dict[str, tuple[str, ...]] = {
    "chinchilla": ("A", "B", "E", "alpha", "beta"),
    "inference": ("A", "B", "E", "alpha", "beta", "gamma", "epsilon"),
    "conditional": ("A", "B", "E", "alpha", "beta", "a1", "a2", "b1", "b2"),
}
# Tie mode -> the exponents that take alpha's value (one a law lacks is ignored).
TIED: dict[str, tuple[str, ...]] = {
    "all": ("beta", "gamma"),
    "alpha-beta": ("beta",),
    "none": (),
}
LAWS = tuple(PARAMS)
# The laws the workflow fits on every fit set (the paper's two; the conditional law is fitted
# once, for the comparison and, when chosen, for the selection).
PAPER_LAWS = ("chinchilla", "inference")
TIES = tuple(TIED)
MAXFEV = 100_000  # the authors' curve_fit budget
# curve_fit's budget from a warm start (a tied form's optimum): a few hundred evaluations
# suffice; one that needs more drifts along a direction the points do not pin down.
WARM_MAXFEV = 5000

# Chinchilla's method lives in infscale.fit.huber (the start grid, the vectorised L-BFGS).
# A bootstrap resample refit by the huber method starts at the full fit's optimum and runs to
# these tighter tolerances (it skips the start grid and the polish).
BOOTSTRAP_FTOL = 1e-13
BOOTSTRAP_GTOL = 1e-9
BOOTSTRAP_MAX_ITER = 3000  # a resample that needs more has not converged: it is counted failed


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
    params: Mapping[str, Any],
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None = None,
    *,
    variables: Mapping[str, np.ndarray] | None = None,
    form: str = "multiplicative",
) -> np.ndarray:
    """The loss ``law`` predicts with ``params`` (every parameter of the law, none extra).

    R is the inference law's; ``variables`` ({factor: values} of the factors kept) and ``form``
    are the conditional law's (infscale.fit.conditional).
    """
    if law == "chinchilla":
        return chinchilla_loss(N, D, **params)
    if law == "inference":
        if R is None:
            raise InputError("the inference law needs R = d_model / n_layers")
        return inference_loss(N, D, R, **params)
    from infscale.fit.conditional import conditional_loss

    if variables is None:
        raise InputError(NEEDS_VARIABLES)
    return conditional_loss(form, params, N, D, variables)


NEEDS_VARIABLES = (
    "the conditional law needs its factors' variables (x, r): predict it from a table of points"
)


def point_inputs(
    law: str, frame: pd.DataFrame, dropped: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray] | None]:
    """What ``law`` reads from a table of points: N, D, then R = d_model / n_layers (inference)
    and the variables of the factors not ``dropped`` (conditional), each None where unused.
    An InputError names a missing column or a bad value."""
    _check_choice("law", law, LAWS)
    inference = law == "inference"
    N, D, *shape = table_columns(
        frame, ["N", "D", *(["d_model", "n_layers"] if inference else [])], f"the {law} law"
    )
    variables = None
    if law == "conditional":
        from infscale.fit import conditional

        kept = [name for name in conditional.FACTORS if name not in dropped]
        variables = conditional.factor_variables(frame, kept)
    return N, D, shape[0] / shape[1] if inference else None, variables


def table_columns(frame: pd.DataFrame, names: Sequence[str], reader: str) -> list[np.ndarray]:
    """The named columns as positive float arrays; InputError naming a missing one (which
    ``reader`` needs) or a bad value."""
    import pandas as pd

    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} ({reader} needs them)")
    return [positive(f"column {c}", pd.to_numeric(frame[c], errors="coerce")) for c in names]


def predict(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> np.ndarray:
    """The loss a fit of one of the paper's laws predicts at arrays of points; R is read only by
    the inference law. (A conditional fit: ``predict_points``.)"""
    law, values, form = _fit_params(fit)
    N_, D_, R_, variables = _points(law, N, D, R)
    return law_loss(law, values, N_, D_, R_, variables=variables, form=form)


def predict_points(fit: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The loss a fit predicts for every row of a table (the columns: ``point_inputs``)."""
    law, values, form = _fit_params(fit)
    N, D, R, variables = point_inputs(law, frame, fit.get("dropped") or ())
    return law_loss(law, values, N, D, R, variables=variables, form=form)


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
    """Fit ``law`` to points; the FIT.json dict, with metrics on the same points.

    ``variables`` (conditional.factor_variables) and ``form`` (default multiplicative) are the
    conditional law's; its fit adds ``form``, ``dropped`` (factors whose variable does not vary)
    and the optima ``x_opt`` (``r_opt``). ``groups`` (a size group per point) makes Spearman a
    within-group mean, as the paper reports it. ``bootstrap`` K > 0 refits on K resamples drawn
    with ``seed`` and adds 95% percentile intervals; a resample draws whole runs (``runs``: a
    run id per point), every point of a drawn run as often as the run was drawn, because the
    points of one run are not independent; without ``runs`` each point is its own run.
    """
    _check_choice("law", law, LAWS)
    _check_choice("method", method, METHODS)
    _check_choice("tie", tie, TIES)
    conditional = law == "conditional"
    if form is not None and not conditional:
        raise InputError(f"form applies only to the conditional law, not the {law} law")
    N_, D_, R_, variables_ = _points(law, N, D, R, variables)
    y = positive("loss", loss)
    lengths = {len(N_), len(D_), len(y)} | {len(v) for v in (variables_ or {}).values()}
    if len(lengths | ({len(y)} if R_ is None else {len(R_)})) != 1:
        raise InputError("N, D, loss (and R or the factor variables) must have the same length")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise InputError(f"bootstrap must be an integer >= 0, got {bootstrap}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed}")
    run_ids = np.arange(len(y)) if runs is None else np.asarray(runs).astype(str)
    if len(run_ids) != len(y):
        raise InputError(f"{len(run_ids)} run ids for {len(y)} points")
    if conditional:
        from infscale.fit import conditional as cond

        form = form or "multiplicative"
        cond.check_form(form)
        dropped = cond.dropped_factors(variables_)
        free = cond.free_params(tie, dropped)
        kept = {name: v for name, v in variables_.items() if name not in dropped}
    else:
        free, kept = free_params(law, tie), None
    if len(y) < len(free):
        raise InputError(
            f"{len(y)} point(s) for the {len(free)} free parameters of the {law} law "
            f"with tie {tie}: need at least {len(free)}"
        )
    if conditional:
        params = cond.fit_nested(form, tie, method, dropped, N_, D_, kept, y)
    else:
        params = fit_paper_law(law, tie, method, N_, D_, R_, y)
    pred = law_loss(law, params, N_, D_, R_, variables=kept, form=form or "multiplicative")
    result: dict[str, Any] = {
        "law": law,
        "method": method,
        "tie": tie,
        "n_points": len(y),
        "params": params,
        "metrics": metrics(y, pred, groups),
    }
    if conditional:
        result |= {"form": form, "dropped": list(dropped), **cond.optima(params, dropped)}
    if groups is not None:
        result["spearman_by_group"] = spearman_by_group(y, pred, groups)
    if bootstrap:
        counts = resample_runs(run_ids, bootstrap, np.random.default_rng(seed))
        if conditional:
            fits, failed = cond.refits(form, tie, method, dropped, N_, D_, kept, y, counts, params)
        else:
            fits, failed = refits(law, tie, method, N_, D_, R_, y, counts, params)
        unit = {"unit": "point" if runs is None else "run", "n_units": len(np.unique(run_ids))}
        result["bootstrap"] = {"k": bootstrap, "seed": seed, **unit} | bootstrap_summary(
            law, fits, failed
        )
        result["intervals"] = result["bootstrap"]["ci95"]
    result["warnings"] = fit_warnings(params, N_, D_)
    if bootstrap and result["intervals"] is None:
        result["warnings"].append(
            f"all {bootstrap} bootstrap refits failed: the fit has no intervals (are N and D "
            "collinear over these points, e.g. one token multiplier?)"
        )
    if conditional:
        result["warnings"] += cond.drop_warnings(variables_, dropped)
    return result


def fit_lm(
    law: str,
    tie: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    start: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The paper's procedure: curve_fit (LM), p0 all ones, no bounds or weights, raw loss
    (``start``: p0 from these parameters instead, within WARM_MAXFEV evaluations, for
    ``fit_nested``).

    Raises FitError when LM stops without a fit: out of evaluations, non-finite parameters, or
    never having left the start (at large N and D the terms N^-1 and D^-1 are so small that LM
    can declare convergence at step 0).
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    free = free_params(law, tie)
    p0 = np.ones(len(free)) if start is None else np.array([start[p] for p in free], float)
    x = np.vstack([N, D] if R is None else [N, D, R])

    where = list(positions(law, tie).items())  # once: LM calls the model up to MAXFEV times

    def model(x: np.ndarray, *theta: float) -> np.ndarray:
        return law_loss(law, {p: theta[j] for p, j in where}, *x)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            theta, _ = curve_fit(
                model, x, loss, p0=p0, method="lm", maxfev=MAXFEV if start is None else WARM_MAXFEV
            )
        except (RuntimeError, ValueError) as err:
            raise FitError(f"the lm fit did not converge: {' '.join(str(err).split())}") from None
    if not np.all(np.isfinite(theta)):
        raise FitError("the lm fit did not converge: non-finite parameters")
    if np.all(theta == p0):
        raise FitError(
            "the lm fit never left its start"
            + (" (all parameters 1)" if start is None else "")
            + ": the loss hardly depends on them there; try --method huber"
        )
    return expand(law, tie, theta)


# Tie mode -> the tie mode it nests (its special case: all ⊂ alpha-beta ⊂ none).
NESTS: dict[str, str] = {"none": "alpha-beta", "alpha-beta": "all"}
NESTED_KEPT = 256  # fits remembered by fit_nested: a comparison asks for each tied form again
_NESTED: dict[tuple, dict[str, float] | FitError] = {}


def fit_nested(
    tie: str,
    key: tuple,
    free: Callable[[str], tuple[str, ...]],
    fit: Callable[[str, Mapping[str, float] | None], dict[str, float]],
    objective: Callable[[str, Mapping[str, float]], float],
) -> dict[str, float]:
    """The fit under ``tie`` with the lowest ``objective`` of: ``fit(tie, None)`` (the method's
    own starts), the fit of the tie mode it nests (NESTS, by this function: the special case is
    a point of this form) and ``fit(tie, that fit)``. A less-tied form's optimum can never be
    worse than its special case's (docs/facts.md, "Nested forms"); one that reported
    worse would have failed to converge. ``free(tie)``: the free parameters (a tie mode that
    frees none more is its special case's fit); ``key`` names the law, method and points for
    the memo. FitError when no candidate has a finite objective."""
    more = NESTS.get(tie)
    if more is not None and free(more) == free(tie):
        return fit_nested(more, key, free, fit, objective)
    memo = (*key, tie)
    if memo not in _NESTED:
        candidates: list[tuple[float, dict[str, float]]] = []
        errors: list[FitError] = []

        def attempt(start: Mapping[str, float] | None) -> None:
            try:
                params = fit(tie, start)
            except FitError as err:
                errors.append(err)
                return
            candidates.append((objective(tie, params), params))

        attempt(None)
        if more is not None:
            try:
                tied = fit_nested(more, key, free, fit, objective)
            except FitError:
                tied = None
            if tied is not None:
                candidates.append((objective(tie, tied), tied))
                attempt(tied)
        finite = [c for c in candidates if np.isfinite(c[0])]
        if len(_NESTED) >= NESTED_KEPT:
            del _NESTED[next(iter(_NESTED))]
        _NESTED[memo] = (
            min(finite, key=lambda c: c[0])[1]
            if finite
            else (errors[0] if errors else FitError("no fit reached a finite objective"))
        )
    found = _NESTED[memo]
    if isinstance(found, FitError):
        raise found
    return dict(found)


def fit_paper_law(
    law: str,
    tie: str,
    method: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    form: str | None = None,
) -> dict[str, float]:
    """``method``'s fit of the chinchilla or inference law (``form``: infscale.fit.huber.FORMS;
    default the law's own), nested (``fit_nested``): lm's and vp's objective is the sum of
    squares, huber's its Huber sum."""
    form = form or law
    if method == "lm" and form != law:
        raise FitError("the lm method fits only the chinchilla, inference and conditional laws")
    logs = _logs(N, D, R, loss)

    def fit(tie: str, start: Mapping[str, float] | None) -> dict[str, float]:
        if method == "lm":
            return fit_lm(law, tie, N, D, R, loss, start)
        if method == "vp":
            return fit_vp(law, tie, N, D, R, loss, start, form)
        if start is None:
            return _from_log_space(law, tie, huber_optimum(law, tie, N, D, R, loss, form)[0])
        from infscale.fit import huber

        objective = huber.bound_objective(form, positions(law, tie), logs)
        u, value = huber.best_optimum(objective, _to_log_space(law, tie, start)[None, :])
        if not np.isfinite(value):
            raise FitError("the huber fit from the tied optimum found no finite optimum")
        return _from_log_space(law, tie, u)

    def objective(tie: str, params: Mapping[str, float]) -> float:
        if method != "huber":
            if form == "additive":
                shape = params["epsilon"] * R ** params["gamma"]
                chinchilla = {p: params[p] for p in PARAMS["chinchilla"]}
                return float(np.sum((loss - law_loss("chinchilla", chinchilla, N, D) - shape) ** 2))
            return float(np.sum((loss - law_loss(law, params, N, D, R)) ** 2))
        from infscale.fit import huber

        u = _to_log_space(law, tie, params)
        with np.errstate(all="ignore"):
            return float(huber.objective(u, form, positions(law, tie), logs)[0])

    key = (law, method, form, *(None if a is None else a.tobytes() for a in (N, D, R, loss)))
    return fit_nested(tie, key, lambda t: free_params(law, t), fit, objective)


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
    law: str,
    tie: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    form: str | None = None,
) -> tuple[np.ndarray, float]:
    """The huber fit's free vector (log-space A, B, E, epsilon) and its objective; ``form`` is
    the objective's (infscale.fit.huber.FORMS; default: the law's own).

    Remembered for the last OPTIMA_KEPT point sets: the law comparison asks for the Chinchilla
    optimum of the same points for its chinchilla rows and again as the start of each
    conditional law's fit, and the 4,500-start grid is most of a comparison's time.
    """
    from infscale.fit import huber

    form = form or law
    key = (law, tie, form, *(None if a is None else a.tobytes() for a in (N, D, R, loss)))
    if key not in _OPTIMA:
        free, where = free_params(law, tie), positions(law, tie)
        logs = _logs(N, D, R, loss)
        starts = huber.grid_starts(free, where, form, logs)
        u, value = huber.fit_starts(starts, form, where, logs)
        if not np.isfinite(value) or not np.all(np.isfinite(u)):
            raise FitError(f"the huber fit found no finite optimum from {len(starts)} starts")
        if len(_OPTIMA) >= OPTIMA_KEPT:
            del _OPTIMA[next(iter(_OPTIMA))]
        _OPTIMA[key] = (u, value)
    u, value = _OPTIMA[key]
    return u.copy(), value


OPTIMA_KEPT = 64
_OPTIMA: dict[tuple, tuple[np.ndarray, float]] = {}


def _logs(
    N: np.ndarray, D: np.ndarray, R: np.ndarray | None, loss: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    return np.log(N), np.log(D), None if R is None else np.log(R), np.log(loss)


def _to_log_space(law: str, tie: str, params: Mapping[str, float]) -> np.ndarray:
    """The free vector of ``params`` (log A, B, E, epsilon; nan where one is negative)."""
    return np.array(
        [
            log_coefficient(params[p]) if p in LOG_PARAMS else params[p]
            for p in free_params(law, tie)
        ]
    )


def log_coefficient(value: float) -> float:
    """log of a coefficient the huber method fits as a log: one that underflowed to 0 (its
    term vanished, log far below -700) maps to the smallest normal float's log, where its term
    is still 0 to double precision; a negative one (an lm fit's) to nan."""
    return float(np.log(value)) if value > 0 else (LOG_TINY if value == 0 else float("nan"))


LOG_TINY = float(np.log(np.finfo(float).tiny))
AT_BOUND = 1e-6  # E (nats) or an exponent below this is at its lower bound 0 (fit_warnings)


@contextmanager
def numerical_warnings(into: list[str]) -> Iterator[None]:
    """Catch the warnings (numpy's overflow, scipy's) raised inside into ``into``, one line
    each and each once, rather than printing them: a fit's reader finds them in its row."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        line = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if line not in into:
            into.append(line)


def _from_log_space(law: str, tie: str, u: np.ndarray) -> dict[str, float]:
    theta = [
        np.exp(v) if p in LOG_PARAMS else v for p, v in zip(free_params(law, tie), u, strict=True)
    ]
    return expand(law, tie, theta)


FITTERS: dict[str, Callable[..., dict[str, float]]] = {
    "lm": fit_lm,
    "huber": fit_huber,
    "vp": fit_vp,
}
METHODS = tuple(FITTERS)


def resample_runs(runs: ArrayLike, k: int, rng: np.random.Generator) -> np.ndarray:
    """Point counts (k, n_points) of ``k`` bootstrap resamples of whole runs: each resample
    draws as many runs as there are, with replacement, and every point of a drawn run counts
    once per draw. ``runs``: one run id per point."""
    ids, run_of = np.unique(np.asarray(runs), return_inverse=True)
    draws = rng.integers(0, len(ids), (k, len(ids)))
    per_run = np.zeros((k, len(ids)), dtype=int)
    np.add.at(per_run, (np.arange(k)[:, None], draws), 1)
    return per_run[:, run_of.ravel()]


def refits(
    law: str,
    tie: str,
    method: str,
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    loss: np.ndarray,
    counts: np.ndarray,
    params: Mapping[str, float],
    form: str | None = None,
) -> tuple[list[dict[str, float]], int]:
    """Refit one of the paper's laws on each resample (a row of point counts); (the fits that
    converged, how many did not).

    ``lm`` refits each resample by the paper's procedure from all ones (a FitError fails);
    ``vp`` by variable projection refined from the full fit's exponents.
    ``huber`` refits all resamples at once (the counts weight the Huber terms), each
    warm-started at the full fit ``params`` rather than from the 4,500-point grid, to tighter
    tolerances; a row that does not converge, or ends non-finite, fails. ``form`` is the huber
    objective's (infscale.fit.huber.FORMS; default: the law's own), for the law comparison's
    additive variant.
    """
    if method == "huber":
        from infscale.fit import huber

        u0 = _to_log_space(law, tie, params)
        u, value, converged = huber.batched_lbfgs(
            np.repeat(u0[None, :], len(counts), axis=0),
            form or law,
            positions(law, tie),
            _logs(N, D, R, loss),
            counts.astype(float),
            ftol=BOOTSTRAP_FTOL,
            gtol=BOOTSTRAP_GTOL,
            max_iter=BOOTSTRAP_MAX_ITER,
        )
        ok = converged & np.isfinite(value) & np.all(np.isfinite(u), axis=1)
        return [_from_log_space(law, tie, row) for row in u[ok]], int(len(counts) - ok.sum())
    fits, failed = [], 0
    for row in counts:
        i = np.repeat(np.arange(len(loss)), row)
        R_i = None if R is None else R[i]
        try:
            if method == "vp":  # warm-started at the full fit, as huber's refits are
                fits.append(fit_vp(law, tie, N[i], D[i], R_i, loss[i], params, form))
            else:
                fits.append(FITTERS[method](law, tie, N[i], D[i], R_i, loss[i]))
        except FitError:
            failed += 1
    return fits, failed


def bootstrap_summary(law: str, fits: Sequence[Mapping[str, float]], failed: int) -> dict:
    """``failed``, the 95% percentile interval of each parameter (``ci95``) and every converged
    resample's parameters (``samples``: one list per parameter), from which
    ``predict_interval`` gives intervals for predictions; both None when every refit failed."""
    if not fits:
        return {"failed": failed, "ci95": None, "samples": None}
    samples = {p: [f[p] for f in fits] for p in PARAMS[law]}
    ci = {p: np.percentile(v, [2.5, 97.5]).tolist() for p, v in samples.items()}
    return {"failed": failed, "ci95": ci, "samples": samples}


def predict_interval(
    fit: Mapping[str, Any], N: ArrayLike, D: ArrayLike, R: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The 95% percentile band of the predictions of a fit's bootstrap samples, at arrays of
    points (None: no samples). A conditional fit: ``predict_points_interval``."""
    law, _, form = _fit_params(fit)
    table = _sample_table(fit)
    return None if table is None else _band(law, table, *_points(law, N, D, R), form=form)


def predict_points_interval(
    fit: Mapping[str, Any], frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """``predict_interval`` for every row of a table (the columns: ``point_inputs``)."""
    law, _, form = _fit_params(fit)
    table = _sample_table(fit)
    if table is None:
        return None
    return _band(law, table, *point_inputs(law, frame, fit.get("dropped") or ()), form=form)


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
    law: str,
    table: Mapping[str, np.ndarray],
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray | None,
    variables: Mapping[str, np.ndarray] | None,
    *,
    form: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The 95% band of the predictions of every sample: (samples, 1) parameters against
    (1, points) inputs."""
    R_ = None if R is None else R[None, :]
    rows = None if variables is None else {name: v[None, :] for name, v in variables.items()}
    with np.errstate(all="ignore"):
        preds = law_loss(law, table, N[None, :], D[None, :], R_, variables=rows, form=form)
    lo, hi = np.nanpercentile(preds, [2.5, 97.5], axis=0)
    return lo, hi


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
    law: str,
    N: ArrayLike,
    D: ArrayLike,
    R: ArrayLike | None,
    variables: Mapping[str, ArrayLike] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray] | None]:
    """Checked float arrays; R only for the inference law, the variables only for the
    conditional law, which need them."""
    if law == "inference" and R is None:
        raise InputError("the inference law needs R = d_model / n_layers")
    if law == "conditional" and variables is None:
        raise InputError(NEEDS_VARIABLES)
    R_ = positive("R = d_model / n_layers", R) if law == "inference" else None
    variables_ = None
    if law == "conditional":
        variables_ = {name: positive(name, v) for name, v in variables.items()}
    return positive("N", N), positive("D", D), R_, variables_


def _fit_params(fit: Mapping[str, Any]) -> tuple[str, dict[str, float], str]:
    """A fit result's law, parameters and form (the conditional law's; else the default),
    checked."""
    law, params = fit.get("law"), fit.get("params")
    _check_choice("fit law", law, LAWS)
    if not isinstance(params, Mapping) or set(params) != set(PARAMS[law]):
        raise InputError(f"fit params must be exactly {', '.join(PARAMS[law])} for the {law} law")
    for name in PARAMS[law]:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise InputError(f"fit param {name} must be a finite number, got {value!r}")
    form = fit.get("form") or "multiplicative"
    if law == "conditional":
        from infscale.fit.conditional import check_form

        check_form(form)
    return law, {p: float(params[p]) for p in PARAMS[law]}, form


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


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
