"""The follow-up's conditional law: its variables, its fits (both forms, both methods), the
dropped factor, its huber objective and its bootstrap.

The recovery grid puts the width optimum x* = a2/a1 = 0.08 and the MLP-ratio optimum
r* = b2/b1 = 2 inside the points, with widths and ratios on both sides of each, so a fit that
got the U wrong (a monotone factor, or the optimum at an edge) fails the tolerances.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.fit import conditional
from infscale.fit.bootstrap import resample_runs
from infscale.fit.core import PARAMS
from infscale.fit.laws import fit_law, law_loss, predict, predict_points, predict_points_interval
from infscale.fit.points import Points
from infscale.shapes import ffn_hidden, param_count

TRUTH = {
    "A": 60.0,
    "B": 80.0,
    "E": 2.0,
    "alpha": 0.3,
    "beta": 0.3,
    "a1": 0.1,
    "a2": 0.008,  # x* = 0.08
    "b1": 0.05,
    "b2": 0.1,  # r* = 2
}
WIDTHS = (0.04, 0.06, 0.08, 0.11, 0.16)
RATIOS = (0.7, 2.0, 5.0)


def recovery_table() -> pd.DataFrame:
    """3 non-embedding sizes x 5 widths x 3 MLP ratios x D = 4N, 8N (90 points), as the
    columns the law reads: d_model = x·sqrt(N_nonemb), ffn_hidden = r·4·d/3, N the total."""
    n, x, r, m = (a.ravel() for a in np.meshgrid((1e5, 3e5, 1e6), WIDTHS, RATIOS, (4, 8)))
    d = x * np.sqrt(n)
    N = n + 2 * 512 * d
    return pd.DataFrame(
        {"run": [f"n{a:g}-x{b:g}-r{c:g}" for a, b, c in zip(n, x, r, strict=True)]}
        | {"N": N, "D": m * N, "d_model": d, "vocab_size": 512, "ffn_hidden": r * 4 * d / 3}
    )


def recovery_points() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    frame = recovery_table()
    return frame["N"].to_numpy(), frame["D"].to_numpy(), conditional.factor_variables(frame)


def test_recovery_grid_straddles_both_optima():
    _, _, v = recovery_points()
    _, x, r, _ = np.meshgrid((1e5, 3e5, 1e6), WIDTHS, RATIOS, (4, 8))
    np.testing.assert_allclose(v["width"], x.ravel())
    np.testing.assert_allclose(v["mlp_ratio"], r.ravel())
    x_star, r_star = TRUTH["a2"] / TRUTH["a1"], TRUTH["b2"] / TRUTH["b1"]
    assert v["width"].min() < x_star < v["width"].max()
    assert v["mlp_ratio"].min() < r_star < v["mlp_ratio"].max()
    # The factor is U-shaped: its value at the optimum is below both neighbours.
    f = 1 + TRUTH["a1"] * np.log(WIDTHS) + TRUTH["a2"] / np.array(WIDTHS)
    assert f[2] < f[1] and f[2] < f[3]


@pytest.mark.parametrize("method", ["lm", "huber"])
@pytest.mark.parametrize("form", conditional.FORMS)
def test_fit_recovers_the_law_on_both_sides_of_the_optimum(form, method):
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v, form=form)
    fit = fit_law("conditional", N, D, y, variables=v, form=form, method=method)
    assert (fit["form"], fit["dropped"]) == (form, [])
    assert fit["params"] == pytest.approx(TRUTH, rel=1e-6)
    assert fit["x_opt"] == pytest.approx(0.08, rel=1e-6)
    assert fit["r_opt"] == pytest.approx(2.0, rel=1e-6)
    assert fit["warnings"] == []


def test_fit_with_noise_finds_the_optimum_and_tie_none_frees_beta():
    N, D, v = recovery_points()
    truth = TRUTH | {"beta": 0.25}
    y = law_loss("conditional", truth, N, D, variables=v)
    y = y * (1 + 0.002 * np.random.default_rng(0).standard_normal(y.size))
    fit = fit_law("conditional", N, D, y, variables=v, method="huber", tie="none")
    assert fit["x_opt"] == pytest.approx(0.08, rel=0.05)
    assert fit["r_opt"] == pytest.approx(2.0, rel=0.1)
    assert fit["params"]["beta"] != fit["params"]["alpha"]
    assert fit["metrics"]["r2"] > 0.99


def test_default_grid_shapes_drop_the_mlp_factor_and_say_so():
    """open_lm rounding at multiple_of 16 moves r only 2.0-2.25: not a design variable."""
    shapes = [(24, 8), (32, 4), (40, 2), (32, 8), (40, 5), (48, 3), (48, 6), (56, 4), (72, 2)]
    frame = pd.DataFrame(
        [
            {
                "d_model": d,
                "n_layers": layers,
                "vocab_size": 512,
                "ffn_hidden": ffn_hidden(d, 16),
                "N": param_count(d, layers, 512, 16),
            }
            for d, layers in shapes
            for _ in (4, 8)
        ]
    )
    frame["D"] = np.tile([4, 8], len(shapes)) * frame["N"]
    v = conditional.factor_variables(frame)
    assert v["mlp_ratio"].max() / v["mlp_ratio"].min() == pytest.approx(1.125)
    truth = TRUTH | {"a2": 0.014}  # x* = 0.14: inside this grid's widths (0.098 to 0.204)
    y = law_loss("conditional", truth | {"b1": 0.0, "b2": 0.0}, frame["N"], frame["D"], variables=v)
    fit = fit_law("conditional", frame["N"], frame["D"], y, variables=v, method="huber")
    assert fit["dropped"] == ["mlp_ratio"] and "r_opt" not in fit
    assert (fit["params"]["b1"], fit["params"]["b2"]) == (0.0, 0.0)
    assert fit["params"]["a1"] == pytest.approx(0.1, rel=1e-5)
    assert fit["x_opt"] == pytest.approx(0.14, rel=1e-5)
    assert any(w.startswith("the mlp_ratio factor is dropped") for w in fit["warnings"])
    # Prediction then needs no ffn_hidden: the dropped factor's variable is not read.
    pred = predict_points(fit, frame.drop(columns="ffn_hidden"))
    np.testing.assert_allclose(pred, y, rtol=1e-6)


def test_a_factor_whose_variable_takes_two_values_is_dropped_and_the_fit_is_reproducible():
    """Two MLP widths (f = 2d and 4d: r = 1.5 and 3, a 2x spread) leave the MLP factor's two
    coefficients and E a direction the points do not pin (an lm fit's E wandered from 1.75 to
    1.88 between runs of the same code): the factor is dropped, and the comparison's row says
    why."""
    from infscale.fit.compare import compare_laws

    rows = [
        {"d_model": d, "n_layers": layers, "ffn_hidden": ratio * d, "vocab_size": 512}
        for d, layers in ((32, 8), (48, 4), (64, 2), (96, 1))
        for ratio in (2, 4)
    ]
    frame = pd.DataFrame(rows)
    frame["N"] = [param_count(r["d_model"], r["n_layers"], 512, ffn=r["ffn_hidden"]) for r in rows]
    frame = pd.concat([frame.assign(D=m * frame["N"]) for m in (4, 8, 16)], ignore_index=True)
    v = conditional.factor_variables(frame)
    assert conditional.distinct_values(v["mlp_ratio"]) == 2
    assert conditional.dropped_factors(v) == ("mlp_ratio",)
    y = law_loss("conditional", TRUTH | {"a2": 0.014}, frame["N"], frame["D"], variables=v)
    table = compare_laws(frame.assign(loss=y), ["conditional-additive"], "lm", ties=["all"])
    notes = json.loads(table["warnings"].iloc[0])
    assert (
        "the mlp_ratio factor is dropped (b1 = b2 = 0): r takes only 2 distinct value(s) over "
        "the fit points, under 3: its two coefficients and E are not identified"
    ) in notes
    assert table["n_params"].iloc[0] == 6  # 4 Chinchilla (tie all) + the width factor's 2


def test_free_parameters_and_dropped_coefficients():
    assert conditional.free_params("all") == ("A", "B", "E", "alpha", "a1", "a2", "b1", "b2")
    assert conditional.free_params("alpha-beta") == conditional.free_params("all")
    assert len(conditional.free_params("none")) == 9
    assert conditional.free_params("all", ("mlp_ratio",)) == ("A", "B", "E", "alpha", "a1", "a2")
    where = conditional.positions("all", ("width",))
    assert where["beta"] == where["alpha"] and "a1" not in where
    empty = Points(np.empty(0), np.empty(0))
    problem = conditional.ConditionalProblem("multiplicative", "all", empty, ("width",))
    assert problem.expand([1, 2, 3, 0.3, 0.5, 0.6]) == {
        "A": 1.0,
        "B": 2.0,
        "E": 3.0,
        "alpha": 0.3,
        "beta": 0.3,
        "a1": 0.0,
        "a2": 0.0,
        "b1": 0.5,
        "b2": 0.6,
    }


def test_factor_optimum_only_for_a_u():
    assert conditional.factor_optimum(0.1, 0.008) == pytest.approx(0.08)
    assert conditional.factor_optimum(-0.1, 0.008) is None  # monotone
    assert conditional.factor_optimum(0.1, -0.008) is None
    assert conditional.factor_optimum(-0.1, -0.008) is None  # a maximum


def test_variables_from_a_table():
    frame = pd.DataFrame(
        {"N": [1_000_000, 2_000_000], "d_model": [64, 128], "vocab_size": [512, 512]}
        | {"ffn_hidden": [160, 384], "n_heads": [4, 8]}
    )
    v = conditional.factor_variables(frame)
    np.testing.assert_allclose(
        v["width"], [64 / np.sqrt(1e6 - 2 * 512 * 64), 128 / np.sqrt(2e6 - 2 * 512 * 128)]
    )
    np.testing.assert_allclose(v["mlp_ratio"], [3 * 160 / (4 * 64), 3 * 384 / (4 * 128)])
    # GQA: 2 KV heads of 8 query heads shrink k and v; head_dim given: q, k, v, o all use it.
    gqa = conditional.factor_variables(frame.assign(n_kv_heads=[2, 2], head_dim=[16, 32]))
    np.testing.assert_allclose(
        gqa["mlp_ratio"], [3 * 64 * 160 / (64 * 16 * (8 + 4)), 3 * 128 * 384 / (128 * 32 * 20)]
    )
    # No ffn_hidden but multiple_of: the open_lm width.
    rounded = conditional.factor_variables(frame.drop(columns="ffn_hidden").assign(multiple_of=16))
    np.testing.assert_allclose(
        rounded["mlp_ratio"], [3 * ffn_hidden(d, 16) / (4 * d) for d in (64, 128)]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="vocab_size"), "missing column(s) vocab_size"),
        (lambda f: f.drop(columns="ffn_hidden"), "missing column(s) ffn_hidden"),
        (lambda f: f.drop(columns="n_heads").assign(n_kv_heads=2), "missing column(s) n_heads"),
        (lambda f: f.assign(N=1000), "(the non-embedding count) is not positive"),
        (lambda f: f.assign(ffn_hidden=0), "column ffn_hidden: 2 value(s)"),
    ],
)
def test_bad_tables_name_the_column(edit, message):
    frame = pd.DataFrame(
        {"N": [1e6, 2e6], "D": [4e6, 8e6], "d_model": [64, 128], "vocab_size": [512, 512]}
        | {"ffn_hidden": [160, 384], "n_heads": [4, 8]}
    )
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        conditional.factor_variables(edit(frame))


@pytest.mark.parametrize("form", conditional.FORMS)
@pytest.mark.parametrize(("tie", "dropped"), [("all", ()), ("none", ("mlp_ratio",))])
def test_huber_objective_gradient_is_exact(form, tie, dropped):
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v, form=form)
    kept = {name: x for name, x in v.items() if name not in dropped}
    where = conditional.positions(tie, dropped)
    data = (N, D, kept, np.log(y * 1.01))
    rng = np.random.default_rng(3)
    problem = conditional.ConditionalProblem(form, tie, Points(N, D, y, variables=v), dropped)
    u0 = problem.to_u(TRUTH)
    u = u0[None, :] + rng.normal(0, 0.005, (2, len(u0)))  # within the factors' positive region
    weights = rng.integers(0, 3, (2, len(y))).astype(float)
    _, grad = conditional.huber_objective(u, form, where, data, weights)
    h = 1e-6
    for j in range(u.shape[1]):
        e = np.zeros_like(u)
        e[:, j] = h
        up = conditional.huber_objective(u + e, form, where, data, weights)[0]
        down = conditional.huber_objective(u - e, form, where, data, weights)[0]
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=1e-5, atol=1e-9)


def test_huber_objective_is_infinite_where_the_factor_goes_negative():
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v)
    where = conditional.positions("all")
    problem = conditional.ConditionalProblem("multiplicative", "all", Points(N, D, y, variables=v))
    u = problem.to_u(TRUTH | {"a2": -0.1})  # 1 - 0.1/0.04 < 0 at x = 0.04
    data = (N, D, v, np.log(y))
    value, grad = conditional.huber_objective(u[None, :], "multiplicative", where, data)
    assert np.isinf(value[0]) and not grad.any()


def test_bootstrap_intervals_by_run_and_prediction_bands():
    frame = recovery_table()
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v)
    y = y * (1 + 0.002 * np.random.default_rng(1).standard_normal(y.size))
    fit = fit_law(
        "conditional", N, D, y, variables=v, method="huber", runs=frame["run"], bootstrap=30
    )
    boot = fit["bootstrap"]
    assert (boot["k"], boot["unit"], boot["n_units"]) == (30, "run", 45)
    assert set(boot["samples"]) == set(PARAMS["conditional"]) == set(fit["intervals"])
    assert all(len(s) == 30 - boot["failed"] for s in boot["samples"].values())
    for p, (lo, hi) in fit["intervals"].items():
        assert lo <= fit["params"][p] <= hi, p
    saved = json.loads(json.dumps(fit, allow_nan=False))
    mid = predict_points(saved, frame)
    lo, hi = predict_points_interval(saved, frame)
    np.testing.assert_allclose(mid, law_loss("conditional", fit["params"], N, D, variables=v))
    assert np.all(lo < hi) and np.mean((lo <= mid) & (mid <= hi)) > 0.9


def test_lm_bootstrap_refits_from_the_full_fit():
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v, form="additive")
    fit = fit_law("conditional", N, D, y, variables=v, form="additive", bootstrap=5)
    assert fit["bootstrap"]["failed"] == 0 and fit["bootstrap"]["unit"] == "point"
    # Noise-free: every resample has the same optimum.
    for p, (lo, hi) in fit["intervals"].items():
        assert lo == pytest.approx(TRUTH[p], rel=1e-6, abs=1e-12)
        assert hi == pytest.approx(TRUTH[p], rel=1e-6, abs=1e-12)


def test_lm_resample_with_fewer_points_than_parameters_counts_as_failed():
    """Four single-point runs beside one run of every other point: a resample that misses the
    big run holds 5 points for 8 free parameters, which LM refuses (curve_fit would
    raise a TypeError): it counts as failed, and every other resample recovers the truth."""
    N, D, v = recovery_points()
    y = law_loss("conditional", TRUTH, N, D, variables=v, form="additive")
    runs = np.where(np.arange(len(y)) < len(y) - 4, "big", np.arange(len(y)).astype(str))
    k, n_free = 12, len(conditional.free_params("all", ()))
    short = int((resample_runs(runs, k, np.random.default_rng(0)).sum(axis=1) < n_free).sum())
    assert 0 < short < k
    fit = fit_law(
        "conditional", N, D, y, variables=v, form="additive", runs=runs, bootstrap=k, seed=0
    )
    assert fit["bootstrap"]["failed"] == short
    for p, (lo, hi) in fit["intervals"].items():
        assert lo == pytest.approx(TRUTH[p], rel=1e-6, abs=1e-12)
        assert hi == pytest.approx(TRUTH[p], rel=1e-6, abs=1e-12)


def test_array_predict_points_the_conditional_law_to_tables():
    fit = {"law": "conditional", "form": "additive", "params": TRUTH, "dropped": []}
    with pytest.raises(InputError, match="predict it from a table of points"):
        predict(fit, [1e6], [4e6])
    with pytest.raises(InputError, match="form must be one of"):
        predict_points(fit | {"form": "cubic"}, pd.DataFrame({"N": [1e6], "D": [4e6]}))
