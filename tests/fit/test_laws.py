"""The laws and their fits, on synthetic points drawn from each law at two scales.

``paper``: N 8e7-3.4e8, D 20/40/160 x N, R 17-213 (the authors' grid). ``tiny``: N 1e5-1e6,
D 2/4/8 x N, R 3-48 (a CPU grid). Findings the tests pin down about the paper's procedure (LM
from all ones): it recovers the law exactly wherever gamma is tied to alpha, at both scales; it
never leaves its start for Chinchilla with beta free at the paper's scale (an error); with gamma
free it lands on a degenerate fit (R² near 0, a term dropped) at both scales. A fit of a
less-tied form also starts from the tied form's fit (infscale.fit.nested) and so recovers the law.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.fit.bootstrap import resample_runs
from infscale.fit.core import PARAMS, FitError, expand, free_params
from infscale.fit.laws import (
    fit_law,
    law_loss,
    predict,
    predict_interval,
    predict_points,
    predict_points_interval,
)
from infscale.fit.methods import fit_lm
from infscale.fit.metrics import fit_warnings, metrics, spearman_by_group
from infscale.fit.paper import PaperProblem
from infscale.fit.points import Points

SCALES = {
    "paper": dict(n=(8e7, 3.4e8), mults=(20, 40, 160), r=(17, 213), A=406.4, B=410.7, E=1.69),
    "tiny": dict(n=(1e5, 1e6), mults=(2, 4, 8), r=(3, 48), A=60.0, B=80.0, E=2.0),
}
EXPONENTS = {"alpha": 0.34, "beta": 0.28, "gamma": 0.2, "epsilon": 0.02}


def grid(scale: str) -> dict[str, np.ndarray]:
    """6 sizes x 5 aspect ratios x 3 multipliers; N jittered so no two shapes share it."""
    s = SCALES[scale]
    n, r, m = np.meshgrid(
        np.geomspace(*s["n"], 6), np.geomspace(*s["r"], 5), s["mults"], indexing="ij"
    )
    N = n.ravel() * (1 + 0.01 * (np.arange(n.size) % 7))
    return {"N": N, "D": m.ravel() * N, "R": r.ravel(), "group": np.repeat(np.arange(6), 15)}


def truth(law: str, tie: str, scale: str) -> dict[str, float]:
    s = SCALES[scale]
    theta = [{"A": s["A"], "B": s["B"], "E": s["E"], **EXPONENTS}[p] for p in free_params(law, tie)]
    return expand(law, tie, theta)


def _problem(law: str, tie: str, points: dict, y: np.ndarray) -> PaperProblem:
    """The law's problem (infscale.fit.problem) on synthetic points."""
    N, D, R = (np.asarray(points[c], dtype=float) for c in ("N", "D", "R"))
    return PaperProblem(law, law, tie, Points(N, D, np.asarray(y, dtype=float), R=R))


def synthetic(law: str, tie: str, scale: str, noise: float = 0.0):
    points, params = grid(scale), truth(law, tie, scale)
    y = law_loss(law, params, points["N"], points["D"], points["R"])
    y = y * (1 + noise * np.random.default_rng(0).standard_normal(y.size))
    return points, params, y


def fit(law, tie, points, y, **kwargs):
    return fit_law(law, points["N"], points["D"], y, points["R"], tie=tie, **kwargs)


RECOVERED = [  # (scale, law, tie) where LM from ones finds the true law
    *[(s, "chinchilla", t) for s in SCALES for t in ("all", "alpha-beta")],
    ("tiny", "chinchilla", "none"),
    *[(s, "inference", "all") for s in SCALES],
]


@pytest.mark.parametrize(("scale", "law", "tie"), RECOVERED)
def test_lm_recovers_noise_free_law(scale, law, tie):
    points, params, y = synthetic(law, tie, scale)
    result = fit(law, tie, points, y)
    assert result["params"] == pytest.approx(params, rel=1e-6)
    assert result["metrics"]["r2"] == pytest.approx(1.0, abs=1e-12)
    assert result["warnings"] == []


@pytest.mark.parametrize(("scale", "law", "tie"), RECOVERED)
def test_lm_with_small_noise_stays_close(scale, law, tie):
    """0.2% noise: coefficients wander (A and B trade against E), the law itself does not."""
    points, params, y = synthetic(law, tie, scale, noise=0.002)
    result = fit(law, tie, points, y)
    clean = law_loss(law, params, points["N"], points["D"], points["R"])
    fitted = law_loss(law, result["params"], points["N"], points["D"], points["R"])
    assert np.max(np.abs(fitted / clean - 1)) < 0.002
    for p in ("alpha", "beta"):
        assert result["params"][p] == pytest.approx(params[p], abs=0.07)
    assert result["metrics"]["r2"] > 0.99


def test_lm_never_leaves_its_start_for_free_beta_at_paper_scale_but_the_nested_fit_does():
    """LM from ones fails; from the tied fit too (fit_nested), it recovers the law."""
    points, params, y = synthetic("chinchilla", "none", "paper")
    with pytest.raises(FitError, match="never left its start"):
        fit_lm(_problem("chinchilla", "none", points, y))
    assert fit("chinchilla", "none", points, y)["params"] == pytest.approx(params, rel=1e-6)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("tie", ["alpha-beta", "none"])
def test_lm_with_free_gamma_lands_on_a_degenerate_fit_that_nesting_avoids(scale, tie):
    """The paper tied gamma to alpha; freed, LM from ones drops the N and D terms. Started
    from the tied fit too, the less-tied form keeps the better fit: the true law."""
    points, params, y = synthetic("inference", tie, scale)
    degenerate = fit_lm(_problem("inference", tie, points, y))
    assert degenerate["alpha"] > 100 * params["alpha"]
    assert fit_warnings(degenerate, points["N"], points["D"])
    result = fit("inference", tie, points, y)
    assert result["params"] == pytest.approx(params, rel=1e-6)
    assert result["warnings"] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scale", "law", "tie"), [("tiny", "chinchilla", "all"), ("paper", "inference", "alpha-beta")]
)
def test_huber_recovers_noise_free_law(scale, law, tie):
    """Including gamma free, where LM from ones fails."""
    points, params, y = synthetic(law, tie, scale)
    result = fit(law, tie, points, y, method="huber")
    assert result["method"] == "huber"
    assert result["params"] == pytest.approx(params, rel=1e-6)


@pytest.mark.parametrize(
    ("law", "tie"), [("chinchilla", "none"), ("inference", "all"), ("inference", "none")]
)
def test_huber_gradient_is_exact(law, tie):
    points, _, y = synthetic(law, tie, "tiny", noise=0.01)
    n_free = len(free_params(law, tie))
    u = np.array([3.0, 4.0, 0.5] + [0.3] * (n_free - 3)) + np.random.default_rng(1).normal(
        0, 0.1, n_free
    )

    objective = _problem(law, tie, points, y).huber_objective
    grad = objective(u[None, :], None)[1][0]
    h = 1e-6
    central = [
        (objective((u + h * e)[None, :], None)[0][0] - objective((u - h * e)[None, :], None)[0][0])
        / (2 * h)
        for e in np.eye(n_free)
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-5, atol=1e-9)


def test_result_has_the_fit_json_keys_and_tied_exponents():
    points, _, y = synthetic("inference", "all", "tiny")
    result = fit("inference", "all", points, y, groups=points["group"])
    assert list(result)[:6] == ["law", "method", "tie", "n_points", "params", "metrics"]
    assert "warnings" in result
    assert list(result["params"]) == list(PARAMS["inference"])
    assert set(result["metrics"]) == {"mse", "r2", "max_rel_err", "spearman"}
    p = result["params"]
    assert p["alpha"] == p["beta"] == p["gamma"]
    assert set(result["spearman_by_group"]) == {str(g) for g in range(6)}
    json.dumps(result, allow_nan=False)


def test_free_parameters_per_tie():
    assert free_params("chinchilla", "all") == ("A", "B", "E", "alpha")
    assert free_params("chinchilla", "none") == ("A", "B", "E", "alpha", "beta")
    assert free_params("inference", "all") == ("A", "B", "E", "alpha", "epsilon")
    assert free_params("inference", "alpha-beta") == ("A", "B", "E", "alpha", "gamma", "epsilon")
    assert len(free_params("inference", "none")) == 7


def test_predict_reproduces_the_fits_own_predictions():
    points, _, y = synthetic("inference", "all", "tiny", noise=0.01)
    result = fit("inference", "all", points, y)
    own = law_loss("inference", result["params"], points["N"], points["D"], points["R"])
    again = predict(json.loads(json.dumps(result)), points["N"], points["D"], points["R"])
    np.testing.assert_allclose(again, own, rtol=1e-9, atol=0)
    assert metrics(y, again)["mse"] == pytest.approx(result["metrics"]["mse"], rel=1e-9)


def test_chinchilla_prediction_ignores_R():
    result = {"law": "chinchilla", "params": truth("chinchilla", "none", "tiny")}
    assert predict(result, [1e5], [4e5])[0] == predict(result, [1e5], [4e5], [7.0])[0]


def test_metrics_match_hand_computed_values():
    y = [1.0, 2.0, 3.0, 4.0]
    y_pred = [1.1, 1.9, 4.2, 3.8]  # residuals -0.1, 0.1, -1.2, 0.2; the last pair swapped
    m = metrics(y, y_pred)
    assert m["mse"] == pytest.approx(1.5 / 4)
    assert m["r2"] == pytest.approx(1 - 1.5 / 5)  # SS_tot = 2.25 + 0.25 + 0.25 + 2.25
    assert m["max_rel_err"] == pytest.approx(1.2 / 3)
    assert m["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    groups = ["a", "a", "b", "b"]
    assert spearman_by_group(y, y_pred, groups) == pytest.approx({"a": 1.0, "b": -1.0})
    assert metrics(y, y_pred, groups)["spearman"] == pytest.approx(0.0)


def test_spearman_ranks_ties_at_their_mean_rank_and_is_undefined_for_a_constant_side():
    """y ranks 1, 2.5, 2.5, 4 and ŷ 1, 3, 2, 4: rho = 4.5 / sqrt(4.5 · 5), by hand."""
    y, y_pred = [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0]
    assert metrics(y, y_pred)["spearman"] == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert metrics(y, [2.0, 2.0, 2.0, 2.0])["spearman"] is None
    assert metrics([3.0, 1.0], [1.0, 3.0])["spearman"] == pytest.approx(-1.0)


def test_spearman_undefined_for_a_single_point_group():
    by_group = spearman_by_group([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], ["a", "a", "b"])
    assert by_group == {"a": pytest.approx(1.0), "b": None}
    rho = metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], ["a", "a", "b"])["spearman"]
    assert rho == pytest.approx(1.0)


def test_warnings_name_negative_coefficients_and_dropped_terms():
    N, D = np.array([1e8]), np.array([2e9])
    params = {"A": -5.0, "B": 400.0, "E": 2.0, "alpha": 0.3, "beta": 50.0}
    found = fit_warnings(params, N, D)
    assert any(w.startswith("A = -5 is negative") for w in found)
    assert any(w.startswith("B·D^-beta is below 1e-6") for w in found)
    assert fit_warnings({**params, "A": 5.0, "beta": 0.3}, N, D) == []
    negative_e = fit_warnings({**params, "A": 5.0, "beta": 0.3, "E": -11821.0}, N, D)
    assert negative_e == ["E = -11821 is negative: the fitted law is not physical"]


def test_warnings_name_e_and_exponents_at_their_lower_bound():
    """The default run's Chinchilla fit had E = 4.5e-12: huber's log E ran off to -inf."""
    N, D = np.array([1e8]), np.array([2e9])
    params = {"A": 5.0, "B": 400.0, "E": 4.5e-12, "alpha": 0.3, "beta": 0.0}
    assert fit_warnings(params, N, D) == [
        "E = 4.5e-12 is at its lower bound 0: the points do not pin the irreducible loss",
        "beta = 0 is at its lower bound 0: its term is a constant, not a power law",
    ]
    assert fit_warnings({**params, "E": 1.5, "beta": 0.3}, N, D) == []


def test_bootstrap_intervals_are_seeded_and_bracket_the_fit():
    points, _, y = synthetic("chinchilla", "all", "tiny", noise=0.002)
    one = fit("chinchilla", "all", points, y, bootstrap=20, seed=3)
    two = fit("chinchilla", "all", points, y, bootstrap=20, seed=3)
    assert one["bootstrap"] == two["bootstrap"]
    assert one["bootstrap"]["k"] == 20
    for p, (lo, hi) in one["bootstrap"]["ci95"].items():
        assert lo <= one["params"][p] <= hi


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"N": [-1.0, 2e5, 3e5, 4e5, 5e5, 6e5]}, "N: 1 value"),
        ({"loss": [np.nan, 3.0, 3.0, 3.0, 3.0, 3.0]}, "loss: 1 value"),
        ({"D": ["x", 1, 1, 1, 1, 1]}, "D: not all numbers"),
        ({"R": None}, "needs R"),
        ({"law": "kaplan"}, "law must be one of"),
        ({"tie": "some"}, "tie must be one of"),
        ({"method": "adam"}, "method must be one of"),
        (
            {"N": [1e5] * 4, "D": [4e5] * 4, "loss": [3.0] * 4, "R": [5.0] * 4},
            "4 point\\(s\\) for the 5 free parameters",
        ),
        ({"bootstrap": -1}, "bootstrap must be an integer >= 0"),
        ({"bootstrap": 3, "seed": -1}, "seed must be an integer >= 0"),
        ({"runs": ["a", "b"]}, "2 run ids for 6 points"),
        ({"form": "additive"}, "form applies only to the conditional law"),
    ],
)
def test_bad_input_is_an_input_error(change, message):
    args = {
        "law": "inference",
        "N": np.geomspace(1e5, 1e6, 6),
        "D": np.geomspace(4e5, 4e6, 6),
        "loss": np.linspace(4, 3, 6),
        "R": np.linspace(3, 30, 6),
        **change,
    }
    with pytest.raises(InputError, match=message):
        fit_law(
            args.pop("law"), args.pop("N"), args.pop("D"), args.pop("loss"), args.pop("R"), **args
        )


@pytest.mark.parametrize(
    "fit_dict", [{"law": "chinchilla", "params": {"A": 1.0}}, {"law": "x"}, {"params": {}}]
)
def test_predict_rejects_a_malformed_fit(fit_dict):
    with pytest.raises(InputError):
        predict(fit_dict, [1e5], [1e6], [3.0])


def test_resample_runs_keeps_the_points_of_a_run_together():
    runs = np.array(["a", "a", "a", "b", "c", "c", "d"])
    sizes = {"a": 3, "b": 1, "c": 2, "d": 1}
    counts = resample_runs(runs, 2000, np.random.default_rng(0))
    assert counts.shape == (2000, 7)
    per_run = {}
    for run in sizes:
        block = counts[:, runs == run]
        assert (block == block[:, :1]).all(), run  # one count for every point of the run
        per_run[run] = block[:, 0]
    assert (sum(per_run.values()) == 4).all()  # each resample draws 4 runs
    assert (counts.sum(axis=1) == sum(per_run[r] * n for r, n in sizes.items())).all()
    # A run is left out of a resample with probability (3/4)^4.
    assert np.mean(per_run["a"] == 0) == pytest.approx(0.75**4, abs=0.03)


def test_resample_runs_of_single_points_is_the_point_bootstrap():
    counts = resample_runs(np.arange(6), 4, np.random.default_rng(5))
    draws = np.random.default_rng(5).integers(0, 6, (4, 6))
    np.testing.assert_array_equal(counts, [np.bincount(d, minlength=6) for d in draws])


@pytest.mark.parametrize("method", ["lm", "huber"])
def test_bootstrap_draws_whole_runs(method):
    """One run holding every point: each resample is the data itself, so every refit is the
    full fit (a point bootstrap would scatter them)."""
    points, _, y = synthetic("chinchilla", "all", "tiny", noise=0.002)
    one_run = fit("chinchilla", "all", points, y, method=method, runs=["r"] * len(y), bootstrap=8)
    boot = one_run["bootstrap"]
    assert (boot["unit"], boot["n_units"], boot["failed"]) == ("run", 1, 0)
    for p, (lo, hi) in one_run["intervals"].items():
        assert lo == pytest.approx(one_run["params"][p], rel=1e-6)
        assert hi == pytest.approx(one_run["params"][p], rel=1e-6)
    by_point = fit("chinchilla", "all", points, y, method=method, bootstrap=8)
    lo, hi = by_point["intervals"]["alpha"]
    assert hi - lo > 1e-4


@pytest.mark.parametrize("law", ["chinchilla", "inference"])
def test_lm_resample_with_fewer_points_than_parameters_counts_as_failed(law):
    """A run-level resample that draws only single-point runs holds fewer points than the law's
    free parameters: curve_fit would raise a TypeError, so LM refuses it and the resample
    counts as failed, as a refit that does not converge does. Noise-free, every other resample
    holds the big run and converges to the full fit."""
    points, _, y = synthetic(law, "all", "tiny")
    k, seed, n_free = 20, 0, len(free_params(law, "all"))
    # n_free - 1 runs: a resample without the big run holds n_free - 1 points
    singles = n_free - 2
    runs = np.where(np.arange(len(y)) < len(y) - singles, "big", np.arange(len(y)).astype(str))
    short = int((resample_runs(runs, k, np.random.default_rng(seed)).sum(axis=1) < n_free).sum())
    assert 0 < short < k  # the world has both kinds of resample
    result = fit(law, "all", points, y, method="lm", runs=list(runs), bootstrap=k, seed=seed)
    assert result["bootstrap"]["failed"] == short
    assert all(len(s) == k - short for s in result["bootstrap"]["samples"].values())
    for p, (lo, hi) in result["intervals"].items():
        assert lo == pytest.approx(result["params"][p], rel=1e-6), p
        assert hi == pytest.approx(result["params"][p], rel=1e-6), p


def test_lm_refuses_fewer_points_than_parameters():
    points, _, y = synthetic("chinchilla", "all", "tiny")
    with pytest.raises(FitError, match="3 point\\(s\\) for 4 free parameters"):
        fit_lm(_problem("chinchilla", "all", points, y).take(np.arange(3)))


def test_predict_points_reads_each_laws_columns():
    points, _, y = synthetic("inference", "all", "tiny", noise=0.002)
    result = fit("inference", "all", points, y, bootstrap=5)
    frame = pd.DataFrame(
        {"N": points["N"], "D": points["D"], "d_model": points["R"] * 4, "n_layers": 4}
    )
    np.testing.assert_allclose(
        predict_points(result, frame), predict(result, points["N"], points["D"], points["R"])
    )
    band = predict_points_interval(result, frame)
    np.testing.assert_allclose(
        band, predict_interval(result, points["N"], points["D"], points["R"])
    )
    chinchilla = {"law": "chinchilla", "params": truth("chinchilla", "all", "tiny")}
    assert predict_points_interval(chinchilla, frame[["N", "D"]]) is None
    with pytest.raises(InputError, match=r"missing column\(s\) n_layers \(the inference law"):
        predict_points(result, frame.drop(columns="n_layers"))
