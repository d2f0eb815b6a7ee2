"""Both fitting methods recover known laws for every tie mode; the vectorised huber machinery.

``unit`` scale (N 10-1000, D 2/4/8 x N, R 0.5-4, parameters near 1): where the paper's LM from
all ones is well posed, so it recovers every tie mode, gamma free included (at the paper's scale
it does not: see test_laws). The huber method recovers every law and tie mode at the paper's
scale (the full-grid ones with tie none are marked slow).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_laws import SCALES, fit, grid, synthetic

from infscale.fit import huber
from infscale.fit.core import PARAMS, TIES, expand, free_params, positions
from infscale.fit.laws import fit_law, law_loss, predict, predict_interval

UNIT = {"A": 2.0, "B": 3.0, "E": 1.5, "alpha": 0.5, "beta": 0.7, "gamma": 0.8, "epsilon": 0.3}
CASES = [(law, tie) for law in ("chinchilla", "inference") for tie in TIES]  # the paper's laws


def unit_points(law: str, tie: str, noise: float = 0.0):
    n, r, m = np.meshgrid(
        np.geomspace(10, 1000, 6), np.geomspace(0.5, 4, 5), (2, 4, 8), indexing="ij"
    )
    N = n.ravel() * (1 + 0.01 * (np.arange(n.size) % 7))
    points = {"N": N, "D": m.ravel() * N, "R": r.ravel()}
    params = expand(law, tie, [UNIT[p] for p in free_params(law, tie)])
    y = law_loss(law, params, points["N"], points["D"], points["R"])
    y = y * (1 + noise * np.random.default_rng(0).standard_normal(y.size))
    return points, params, y


@pytest.mark.parametrize(("law", "tie"), CASES)
def test_lm_recovers_every_tie_mode_where_ones_is_a_sensible_start(law, tie):
    points, params, y = unit_points(law, tie)
    result = fit(law, tie, points, y)
    assert result["params"] == pytest.approx(params, rel=1e-6)
    assert result["warnings"] == []


@pytest.mark.parametrize(("law", "tie"), CASES)
def test_lm_with_noise_stays_close_to_the_law(law, tie):
    points, params, y = unit_points(law, tie, noise=0.002)
    result = fit(law, tie, points, y)
    clean = law_loss(law, params, points["N"], points["D"], points["R"])
    fitted = law_loss(law, result["params"], points["N"], points["D"], points["R"])
    assert np.max(np.abs(fitted / clean - 1)) < 0.003
    assert result["metrics"]["r2"] > 0.99


@pytest.mark.parametrize(
    ("law", "tie"),
    [pytest.param(*c, marks=pytest.mark.slow) if c[1] == "none" else c for c in CASES],
)
def test_huber_recovers_every_tie_mode_at_the_papers_scale(law, tie):
    points, params, y = synthetic(law, tie, "paper")
    result = fit(law, tie, points, y, method="huber")
    assert result["params"] == pytest.approx(params, rel=1e-6)
    assert result["warnings"] == []


@pytest.mark.parametrize(
    ("law", "tie"), [("chinchilla", "all"), ("inference", "all"), ("inference", "alpha-beta")]
)
def test_huber_with_noise_stays_close_to_the_law(law, tie):
    points, params, y = synthetic(law, tie, "paper", noise=0.002)
    result = fit(law, tie, points, y, method="huber")
    clean = law_loss(law, params, points["N"], points["D"], points["R"])
    fitted = law_loss(law, result["params"], points["N"], points["D"], points["R"])
    assert np.max(np.abs(fitted / clean - 1)) < 0.003
    assert result["metrics"]["r2"] > 0.99


@pytest.mark.parametrize("form", huber.FORMS)
@pytest.mark.parametrize("weighted", [False, True])
def test_objective_gradient_is_exact(form, weighted):
    law = "chinchilla" if form == "chinchilla" else "inference"
    where = positions(law, "none")
    points, _, y = synthetic(law, "none", "tiny", noise=0.01)
    logs = (np.log(points["N"]), np.log(points["D"]), np.log(points["R"]), np.log(y))
    rng = np.random.default_rng(2)
    weights = rng.integers(0, 3, y.size).astype(float) if weighted else None
    p = len(where) if law == "chinchilla" else 7
    u = np.array([3.0, 4.0, 0.5] + [0.3] * (p - 3)) + rng.normal(0, 0.1, p)
    grad = huber.objective(u, form, where, logs, weights)[1]
    h = 1e-6
    central = [
        (
            huber.objective(u + h * e, form, where, logs, weights)[0]
            - huber.objective(u - h * e, form, where, logs, weights)[0]
        )
        / (2 * h)
        for e in np.eye(p)
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("form", huber.FORMS)
def test_objective_stays_exact_where_a_term_overflows_exp(form):
    # log A = 800: A·N^-alpha / E is beyond exp's range at every point (the shifted path).
    law = "chinchilla" if form == "chinchilla" else "inference"
    where = positions(law, "none")
    points, _, y = synthetic(law, "none", "tiny", noise=0.01)
    log_n, log_d, log_r = (np.log(points[k]) for k in ("N", "D", "R"))
    logs = (log_n, log_d, log_r, np.log(y))
    u = np.array([800.0, 4.0, 0.5, 0.3, 0.4] + ([0.5, -2.0] if law == "inference" else []))
    col = {p: u[j] for p, j in where.items()}
    parts = [col["A"] - col["alpha"] * log_n, col["B"] - col["beta"] * log_d]
    parts.append(np.full_like(log_n, col["E"]))
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(np.exp(parts[0] - col["E"])))
    shape = col["epsilon"] + col["gamma"] * log_r if law == "inference" else None
    if form == "additive":
        parts.append(shape)
    log_pred = np.logaddexp.reduce(parts, axis=0)
    if form == "inference":
        log_pred += np.logaddexp(0.0, shape)
    r = np.abs(logs[3] - log_pred)
    expected = np.sum(np.where(r <= huber.DELTA, r**2 / 2, huber.DELTA * (r - huber.DELTA / 2)))
    value, grad = huber.objective(u, form, where, logs)
    assert value == pytest.approx(expected, rel=1e-12)
    h = 1e-6
    central = [
        (
            huber.objective(u + h * e, form, where, logs)[0]
            - huber.objective(u - h * e, form, where, logs)[0]
        )
        / (2 * h)
        for e in np.eye(len(u))
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-5, atol=1e-9)


def test_vectorised_fit_reaches_scipys_optimum_from_the_same_starts():
    from scipy.optimize import minimize

    law, tie = "chinchilla", "none"
    points, _, y = synthetic(law, tie, "tiny", noise=0.005)
    logs = (np.log(points["N"]), np.log(points["D"]), None, np.log(y))
    where = positions(law, tie)
    starts = huber.grid_starts(free_params(law, tie), where, law, logs)[::450]
    u, value = huber.best_optimum(huber.bound_objective(law, where, logs), starts)  # + polish

    def fun(u):
        with np.errstate(all="ignore"):
            return float(huber.objective(u, law, where, logs)[0])

    ref = min(minimize(fun, u0, method="L-BFGS-B").fun for u0 in starts)
    assert value <= ref * (1 + 1e-6)
    # The polish leaves a stationary point that scipy, with exact gradients, cannot improve.
    assert np.max(np.abs(huber.objective(u, law, where, logs)[1])) < 1e-8
    tight = {"ftol": 0.0, "gtol": 1e-14, "maxiter": 5000}
    again = minimize(
        lambda x: huber.objective(x, law, where, logs),
        u,
        jac=True,
        method="L-BFGS-B",
        options=tight,
    )
    assert again.fun >= value * (1 - 1e-12)


def test_grid_has_4500_starts_and_extends_over_the_shape_term():
    points, _, y = synthetic("inference", "none", "tiny")
    logs = (np.log(points["N"]), np.log(points["D"]), np.log(points["R"]), np.log(y))
    free = free_params("inference", "none")
    starts = huber.grid_starts(free, positions("inference", "none"), "inference", logs)
    assert starts.shape == (4500, 7)
    assert set(starts[:, free.index("epsilon")]) <= set(huber.LOG_EPSILON_STARTS)
    assert set(starts[:, free.index("gamma")]) <= set(huber.GAMMA_STARTS)
    assert len(huber.grid_starts(free_params("chinchilla", "all"), {}, "chinchilla", logs)) == 900


def test_huber_bootstrap_is_seeded_brackets_the_fit_and_gives_prediction_bands():
    points, _, y = synthetic("inference", "all", "paper", noise=0.002)
    one = fit("inference", "all", points, y, method="huber", bootstrap=50, seed=4)
    two = fit("inference", "all", points, y, method="huber", bootstrap=50, seed=4)
    assert one["bootstrap"] == two["bootstrap"]
    assert one["intervals"] == one["bootstrap"]["ci95"]
    assert set(one["intervals"]) == set(PARAMS["inference"])
    for p, (lo, hi) in one["intervals"].items():
        assert lo <= one["params"][p] * (1 + 1e-9) and one["params"][p] <= hi * (1 + 1e-9)
    assert all(
        len(v) == 50 - one["bootstrap"]["failed"] for v in one["bootstrap"]["samples"].values()
    )
    saved = json.loads(json.dumps(one, allow_nan=False))
    lo, hi = predict_interval(saved, points["N"], points["D"], points["R"])
    mid = predict(saved, points["N"], points["D"], points["R"])
    assert np.all(lo < hi) and np.mean((lo <= mid) & (mid <= hi)) > 0.9


def test_lm_bootstrap_refits_from_ones():
    points, _, y = unit_points("chinchilla", "none", noise=0.002)
    boot = fit("chinchilla", "none", points, y, bootstrap=10)["bootstrap"]
    assert (boot["k"], boot["unit"], boot["n_units"]) == (10, "point", len(y))
    assert boot["failed"] == 0 and len(boot["samples"]["A"]) == 10


def test_predict_interval_is_none_without_samples():
    result = fit_law("chinchilla", [1e5, 2e5, 3e5, 4e5], [1e6, 3e6, 2e6, 9e6], [4, 3.5, 3.4, 3.1])
    assert predict_interval(result, [1e5], [1e6]) is None


def test_scales_are_the_ones_test_laws_uses():
    assert set(SCALES) == {"paper", "tiny"} and len(grid("tiny")["N"]) == 90
