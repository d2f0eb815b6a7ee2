"""``--method vp``: variable projection recovers noise-free laws exactly, from no start values,
fits at least as well as lm and huber in squared error on published runs, keeps nested forms
consistent, and runs through ``infscale fit`` and ``infscale compare``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run
from test_nested import MARIN, TIES, check_nested, inputs, marin, synthetic

from infscale.fit.compare import fit_params, predict
from infscale.fit.core import TIED
from infscale.fit.laws import fit_law, law_loss

TRUTH = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28, "gamma": 0.2}


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's scale: 6 sizes x 5 aspect ratios x 3 token multipliers."""
    n, r, m = np.meshgrid(
        np.geomspace(8e7, 3.4e8, 6), np.geomspace(17, 213, 5), (20, 40, 160), indexing="ij"
    )
    N = n.ravel() * (1 + 0.01 * (np.arange(n.size) % 7))
    return N, m.ravel() * N, r.ravel()


@pytest.mark.parametrize(
    ("law", "tie", "epsilon"),
    [
        *[("chinchilla", tie, None) for tie in ("all", "none")],
        *[("inference", tie, 0.02) for tie in TIES],
        ("inference", "none", -0.02),  # a factor below 1: epsilon < 0, as LM may fit
    ],
)
def test_vp_recovers_noise_free_parameters_to_1e_6(law, tie, epsilon):
    N, D, R = grid()
    truth = {p: v for p, v in TRUTH.items() if law == "inference" or p != "gamma"}
    if law == "inference":
        truth["epsilon"] = epsilon
    truth |= {p: truth["alpha"] for p in TIED[tie] if p in truth}
    y = law_loss(law, truth, N, D, R if law == "inference" else None)
    fit = fit_law(law, N, D, y, R if law == "inference" else None, method="vp", tie=tie)
    assert fit["method"] == "vp"
    assert fit["params"] == pytest.approx(truth, rel=1e-6)


@pytest.mark.parametrize("law", ["chinchilla", "inference"])
def test_vp_fits_published_runs_at_least_as_well_as_lm_and_huber(law):
    """In squared error, vp's objective (and lm's); huber minimises another."""
    N, D, R, y, _ = inputs(marin())
    for tie in TIES:
        rss = {
            method: float(
                np.sum((y - predict(law, fit_params(law, tie, method, N, D, R, y), N, D, R)) ** 2)
            )
            for method in ("lm", "huber", "vp")
        }
        assert rss["vp"] <= min(rss["lm"], rss["huber"]) * (1 + 1e-9), (tie, rss)


@pytest.mark.parametrize("law", ["chinchilla", "inference"])
def test_vp_keeps_nested_forms_consistent(law):
    check_nested(marin(), law, "vp")
    check_nested(synthetic(law), law, "vp")


def test_vp_through_fit_and_compare(capsys, tmp_path):
    """FIT.json as for the other methods; compare gives the conditional law's multiplicative
    form, which vp does not fit, its rows with the reason and exits 0."""
    out = tmp_path / "fit.json"
    code, _, err = run(
        capsys, "fit", "--data", MARIN, "--law", "inference", "--method", "vp", "--out", out
    )
    assert code == 0, err
    fit = json.loads(out.read_text())
    assert fit["method"] == "vp" and fit["n_points"] == 38
    assert set(fit["metrics"]) == {"mse", "r2", "max_rel_err", "spearman"}
    table_path = tmp_path / "t.csv"
    args = ["--method", "vp", "--vocab-size", "128256", "--group-by", "shape"]
    code, _, err = run(capsys, "compare", "--data", MARIN, *args, "--out", table_path)
    assert code == 0, err
    table = pd.read_csv(table_path)
    assert len(table) == 9 and (table["method"] == "vp").all()
    conditional = table[table["law"] == "conditional"]
    assert (
        conditional["error"].str.contains("cannot fit the conditional law's multiplicative").all()
    )
    assert table[table["law"] != "conditional"]["logo_rel_err"].notna().all()


def test_vp_from_a_start_where_the_law_is_not_finite_fails_as_a_fit_error():
    """A start whose design overflows (alpha at its bound on tiny N) is skipped, not a crash."""
    from infscale.fit.core import FitError
    from infscale.fit.vp import fit_vp

    N = np.geomspace(1e-200, 1e-190, 8)
    y = 2.0 + 0.1 * np.arange(8)
    start = {"A": 1.0, "B": 1.0, "E": 1.0, "alpha": 3.0, "beta": 3.0}
    with pytest.raises(FitError, match="no finite fit from 1 start"):
        fit_vp("chinchilla", tuple(start), "all", N, N, None, y, start)


@pytest.mark.parametrize("tie", ["all", "none"])
def test_vp_solves_the_conditional_additive_forms_shape_coefficients_linearly(tie):
    """L = E + A·N^-alpha + B·D^-beta + a1·ln x + a2/x + b1·ln r + b2/r is linear once alpha
    and beta are fixed: recovered to 1e-6 (b2 < 0: the shape coefficients take either sign).
    Three MLP widths, so that ln r, 1/r and E are not collinear. The multiplicative form's
    factors do not enter linearly: a FitError says so."""
    from infscale.fit import conditional
    from infscale.fit.core import FitError

    rows = [
        {"d_model": d, "n_layers": layers, "ffn_hidden": ratio * d, "vocab_size": 1000, "N": N}
        for n0 in (2e7, 5e7, 1.2e8, 3e8)
        for d, layers in ((256, 32), (512, 16), (1024, 8), (2048, 16))
        for ratio in (2, 3, 4)
        for N in [n0 * (1 + 0.01 * layers)]
    ]
    frame = pd.DataFrame(rows)
    frame = pd.concat([frame.assign(D=10 * frame["N"]), frame.assign(D=40 * frame["N"])])
    V = conditional.factor_variables(frame)
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    beta = 0.33 if tie == "all" else 0.29
    truth = {"A": 400.0, "B": 900.0, "E": 1.9, "alpha": 0.33, "beta": beta}
    truth |= {"a1": 0.02, "a2": 0.002, "b1": 0.01, "b2": -0.012}
    y = law_loss("conditional", truth, N, D, variables=V, form="additive")
    fit = fit_law("conditional", N, D, y, variables=V, form="additive", method="vp", tie=tie)
    assert fit["dropped"] == [] and fit["params"] == pytest.approx(truth, rel=1e-6)
    with pytest.raises(FitError, match="multiplicative form: its shape factors do not enter"):
        fit_law("conditional", N, D, y, variables=V, method="vp", tie=tie)


@pytest.mark.parametrize(
    ("form", "names", "theta"),
    [
        ("chinchilla", ("alpha", "beta"), (0.4, 0.3)),
        ("inference", ("alpha", "beta", "gamma", "epsilon"), (0.4, 0.3, 0.5, 0.01)),
        ("additive", ("alpha", "gamma"), (0.4, 0.2)),
    ],
)
def test_projection_jacobian_matches_central_differences(form, names, theta):
    """The refinement's Jacobian of the projected residual (Golub-Pereyra, complex step) is the
    derivative of the residual itself: central differences of it agree to 1e-6."""
    from infscale.fit.vp import _design, _projection_jacobian, _solve

    def residual(theta):
        X = _design(names, form, theta[None, :], x)[0]
        coefs = _solve(X, x, loss)
        return X, coefs, loss - X @ coefs

    N, D, R = grid()
    loss = law_loss("inference", TRUTH | {"epsilon": 0.02}, N, D, R) * (
        1 + 0.01 * np.sin(np.arange(len(N)))
    )
    x = (np.log(N), np.log(D), np.log(R), {})
    theta = np.array(theta)
    jac = _projection_jacobian(names, form, theta, x, *residual(theta))
    numeric = np.empty_like(jac)
    for k in range(len(theta)):
        step = np.zeros(len(theta))
        step[k] = 1e-6
        plus, minus = (residual(theta + s)[2] for s in (step, -step))
        numeric[:, k] = (plus - minus) / 2e-6
    assert np.max(np.abs(jac - numeric)) < 1e-6 * np.max(np.abs(numeric))
