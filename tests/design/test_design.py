"""infscale design: the top-k choice per resample, the gain of a run, and the greedy design."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from infscale.cli import main
from infscale.design.choice import set_entropy, top_k_sets
from infscale.design.greedy import greedy_design, likelihood_scale, log_likelihood, normalise
from infscale.design.problem import OUTPUT_COLUMNS
from infscale.select.ilp import select_top_k
from infscale.shapes import Shape

PARAMS = {"A": 60.0, "B": 60.0, "E": 1.5, "alpha": 0.3, "beta": 0.3, "gamma": -0.5, "epsilon": 0.1}
RESAMPLES = 120


def tied_world(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two feasible candidates tied on average, each better in half the resamples (delta's sign),
    and a third that is infeasible; run 0's outcome follows delta, run 1's does not."""
    rng = np.random.default_rng(seed)
    delta = rng.normal(0, 0.01, RESAMPLES)
    other = rng.normal(0, 0.01, RESAMPLES)
    candidates = np.stack([3.0 + delta, 3.0 - delta, np.full(RESAMPLES, 2.0)], axis=1)
    runs = np.stack([2.5 + 3 * delta, 2.5 + other], axis=1)
    return candidates, np.array([True, True, False]), runs


def test_top_k_sets_agree_with_the_integer_program():
    rng = np.random.default_rng(1)
    candidates = pd.DataFrame(
        {
            "name": [f"c{i}" for i in range(6)],
            "d_model": [64] * 6,
            "n_layers": [2] * 6,
            "N": [1e5, 2e5, 3e5, 4e5, 5e5, 6e5],
            "D": [1e6] * 6,
            "latency_s": [0.1, 0.5, 0.2, 0.3, 0.9, 0.15],
        }
    )
    loss = 3 + rng.normal(0, 0.1, (25, 6))
    feasible = select_top_k(candidates, loss[0], 2, max_latency=0.4)["feasible"].to_numpy(bool)
    index, sets = top_k_sets(loss, feasible, 2)
    for row, chosen in zip(loss, index, strict=True):
        table = select_top_k(candidates, row, 2, max_latency=0.4)
        assert sets[chosen].tolist() == table["selected"].tolist()


def test_entropy_of_an_even_split_is_one_bit_and_of_a_sure_choice_zero():
    index = np.array([0, 0, 1, 1, 2])
    assert set_entropy(np.array([0.25, 0.25, 0.25, 0.25, 0]), index, 3) == pytest.approx(1.0)
    assert set_entropy(np.array([0.5, 0.5, 0, 0, 0]), index, 3) == pytest.approx(0.0)
    # three sets at 1/2, 1/4, 1/4: 1.5 bits; rows are weighted independently
    rows = np.array([[0.25, 0.25, 0.25, 0, 0.25], [0, 0, 0, 0, 1.0]])
    assert set_entropy(rows, index, 3) == pytest.approx([1.5, 0.0])


def test_a_run_that_separates_two_tied_candidates_gains_more_than_one_that_cannot():
    candidates, feasible, runs = tied_world()
    flops = np.array([1.0, 1.0])
    one_run = 1.0
    # Either run alone: the separating one is chosen and gains most of the bit.
    alone = [
        greedy_design(candidates, feasible, 1, runs[:, [j]], flops[:1], one_run, 0.01, 0)
        for j in (0, 1)
    ]
    assert alone[0].uncertainty_before == pytest.approx(1.0, abs=0.01)
    assert len(alone[0].steps) == 1 and alone[0].steps[0].gain > 0.5
    # run 1 tells only of a parameter the choice does not read: its gain is the chance
    # correlation of 120 resamples, a hundredth of run 0's
    assert alone[1].steps[0].gain < alone[0].steps[0].gain / 50
    constant = greedy_design(
        candidates, feasible, 1, np.full((RESAMPLES, 1), 2.5), flops[:1], one_run, 0.01, 0
    )
    assert constant.steps == ()  # no gain at all: not worth its FLOPs
    both = greedy_design(candidates, feasible, 1, runs, flops, one_run, 0.01, 0)
    assert [s.run for s in both.steps] == [0]


def test_a_cheaper_run_of_equal_information_is_chosen_first():
    candidates, feasible, runs = tied_world()
    twins = np.stack([runs[:, 0], runs[:, 0] + 0.1], axis=1)  # the same law, shifted
    design = greedy_design(candidates, feasible, 1, twins, np.array([4.0, 1.0]), 5.0, 0.01, 0)
    assert design.steps[0].run == 1


def shapes_table(specs: list[tuple[str, int, int]], D: float | None, mult: int = 1) -> pd.DataFrame:
    rows = []
    for name, d, layers in specs:
        shape = Shape(d_model=d, n_layers=layers, n_heads=4, vocab_size=512, multiple_of=16)
        rows.append(
            {
                "name": name,
                "d_model": d,
                "n_layers": layers,
                "N": shape.n_params,
                "D": D if D is not None else mult * shape.n_params,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def files(tmp_path):
    """An inference-law fit whose resamples disagree on epsilon and gamma (which candidate the
    shape term favours), default-grid shapes as proposals, candidates at one D."""
    rng = np.random.default_rng(0)
    samples = {p: (v * np.exp(rng.normal(0, 0.03, 100))).tolist() for p, v in PARAMS.items()}
    samples["gamma"] = rng.normal(-0.5, 0.4, 100).tolist()
    samples["epsilon"] = (0.1 * np.exp(rng.normal(0, 0.7, 100))).tolist()
    fit = {
        "law": "inference",
        "method": "huber",
        "tie": "alpha-beta",
        "params": PARAMS,
        "metrics": {"mse": 0.005**2},
        "bootstrap": {"k": 100, "samples": samples},
    }
    grid = [("xs-v1", 24, 8), ("xs-v2", 32, 4), ("xs-v3", 40, 2), ("xs-v4", 48, 1)]
    grid += [("s-v1", 32, 8), ("s-v3", 48, 3), ("s-v4", 72, 1), ("m-v1", 40, 8), ("m-v4", 96, 1)]
    proposals = pd.concat(
        [
            shapes_table(grid, None, m).assign(name=lambda f, m=m: f["name"] + f"-{m}x")
            for m in (4, 16)
        ]
    )
    cands = [("c1", 48, 10), ("c3", 64, 6), ("c4", 72, 4), ("c6", 96, 2), ("c7", 112, 1)]
    candidates = shapes_table(cands, 1.2e6).assign(latency_s=[0.4, 0.3, 0.2, 0.15, 0.1])
    paths = {name: tmp_path / f"{name}" for name in ("fit.json", "runs.csv", "cands.csv")}
    paths["fit.json"].write_text(json.dumps(fit))
    proposals.to_csv(paths["runs.csv"], index=False)
    candidates.to_csv(paths["cands.csv"], index=False)
    return paths


def design_args(files, out, budget: float, *extra: str) -> list[str]:
    return [
        "design",
        "--fit", str(files["fit.json"]),
        "--proposals", str(files["runs.csv"]),
        "--candidates", str(files["cands.csv"]),
        "--k", "1",
        "--budget-flops", f"{budget:g}",
        "--max-latency", "0.35",
        "--out", str(out),
        *extra,
    ]  # fmt: skip


def test_the_design_stays_within_the_budget_and_reports_each_step(files, tmp_path, capsys):
    runs = pd.read_csv(files["runs.csv"])
    flops = 6.0 * runs["N"] * runs["D"]
    budget = float(flops.sum() / 4)
    out = tmp_path / "design.csv"
    assert main(design_args(files, out, budget)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("uncertainty before: ")
    before = float(first.split()[2])
    design = pd.read_csv(out)
    assert len(design) >= 1
    assert design["cum_flops"].iloc[-1] <= budget
    assert np.allclose(design["cum_flops"], design["flops"].cumsum())
    assert np.allclose(design["flops"], 6.0 * design["N"] * design["D"])
    assert (design["gain"] > 0).all()
    # each step's uncertainty is the one before it less its gain
    previous = np.r_[before, design["uncertainty_after"].to_numpy()[:-1]]
    assert np.allclose(previous - design["gain"], design["uncertainty_after"], atol=1e-3)
    assert design["name"].is_unique


def test_the_same_seed_gives_the_same_design(files, tmp_path):
    budget = 1e13
    outs = [tmp_path / f"d{i}.csv" for i in range(3)]
    assert main(design_args(files, outs[0], budget, "--seed", "3")) == 0
    assert main(design_args(files, outs[1], budget, "--seed", "3")) == 0
    assert outs[0].read_text() == outs[1].read_text()
    assert main(design_args(files, outs[2], budget, "--seed", "4")) == 0
    # another seed draws other outcomes: the gains move, though the runs may well not
    assert outs[2].read_text() != outs[0].read_text()


def test_bad_input_is_one_line_and_exit_2(files, tmp_path, capsys):
    out = tmp_path / "d.csv"
    fit = json.loads(files["fit.json"].read_text())
    del fit["bootstrap"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(fit))
    empty = tmp_path / "empty.csv"
    pd.read_csv(files["runs.csv"]).iloc[:0].to_csv(empty, index=False)
    cases = {
        "no bootstrap resamples": ["--fit", str(bare)],
        "no runs to choose from": ["--proposals", str(empty)],
        "below the cheapest run": ["--budget-flops", "1000"],
    }
    for message, change in cases.items():
        args = design_args(files, out, 1e13)
        at = args.index(change[0])
        args[at + 1] = change[1]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_one_wide_run_does_not_put_all_the_weight_on_one_resample():
    predicted = np.linspace(3.0, 4.0, 200)[:, None]  # spread 200x the noise
    scale = likelihood_scale(predicted, 0.005)
    assert scale[0] == pytest.approx(np.hypot(0.005, 1.06 * 200**-0.2 * predicted.std()))
    weights = normalise(log_likelihood(3.5, predicted[:, 0], scale[0]))[0]
    assert 1 / (weights**2).sum() > 40  # effective resamples; the noise alone leaves about 1
    assert np.argmax(weights) in (99, 100)  # centred on the resamples nearest the outcome


def test_given_flops_are_used_and_a_settled_choice_trains_nothing(files, tmp_path, capsys):
    runs = pd.read_csv(files["runs.csv"])
    runs.assign(flops=1.0).to_csv(files["runs.csv"], index=False)  # every run nearly free
    out = tmp_path / "d.csv"
    assert main(design_args(files, out, 3.0)) == 0
    design = pd.read_csv(out)
    assert len(design) <= 3 and (design["flops"] == 1.0).all()
    assert design["cum_flops"].tolist() == list(range(1, len(design) + 1))
    # one resample, repeated: every resample chooses the same candidate
    fit = json.loads(files["fit.json"].read_text())
    fit["bootstrap"]["samples"] = {p: [v] * 10 for p, v in PARAMS.items()}
    files["fit.json"].write_text(json.dumps(fit))
    capsys.readouterr()
    assert main(design_args(files, out, 3.0)) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("uncertainty before: 0.0000 bits")
    assert "nothing to train" in printed
    empty = pd.read_csv(out)
    assert empty.empty and list(empty.columns)[-4:] == list(OUTPUT_COLUMNS)


def test_help_lists_design(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "design" in capsys.readouterr().out
