"""The throughput objective (the follow-up's Eq. 4): the fastest candidates whose predicted loss
meets a target, within the same budgets as the paper's loss objective."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run

from infscale.errors import InputError
from infscale.select.ilp import select_for, select_top_k
from infscale.select.objectives import loss_target
from infscale.select.stability import selection_frequency

LOSS = [3.10, 3.00, 3.05, 2.95, 3.20, 2.90]
TPS = [900.0, 1100.0, 1500.0, 1300.0, 2000.0, 600.0]


@pytest.fixture
def candidates(candidates_1b: pd.DataFrame) -> pd.DataFrame:
    """The selection tests' candidates, all on the same D, with a measured throughput."""
    return candidates_1b.assign(D=2.9e10, throughput_tps=TPS)


def chosen(table: pd.DataFrame) -> list[str]:
    return list(table.loc[table["selected"] == 1].sort_values("rank")["name"])


def test_throughput_picks_the_fastest_that_meet_the_loss_target(candidates):
    table = select_top_k(candidates, LOSS, 2, objective="throughput", max_loss=3.05)
    # e (2000 tok/s) has loss 3.20 and a (900) 3.10: over the target; c (1500) and d (1300) win.
    assert chosen(table) == ["c", "d"]
    assert set(table.loc[table["feasible"] == 0, "name"]) == {"a", "e"}
    assert chosen(select_top_k(candidates, LOSS, 2)) == ["f", "d"]  # the loss objective's


def test_the_baseline_target_is_the_baselines_own_predicted_loss(candidates):
    assert loss_target("baseline", candidates, LOSS, "b") == 3.00
    assert loss_target(2.5, candidates, LOSS, "b") == 2.5
    table = select_for("throughput", candidates, LOSS, 2, {}, "baseline", "b")
    assert chosen(table) == ["d", "b"]  # within 3.00: b, d, f; the two fastest; b qualifies
    with pytest.raises(InputError, match="baseline 'zz' is not a candidate"):
        loss_target("baseline", candidates, LOSS, "zz")


def test_the_loss_objective_ignores_the_loss_target(candidates):
    table = select_for("loss", candidates, LOSS, 2, {"max_latency": 4.0}, 2.0, "b")
    assert chosen(table) == ["d", "b"]


def test_throughput_needs_a_positive_throughput_column(candidates):
    with pytest.raises(InputError, match="needs a throughput_tps column"):
        select_top_k(candidates.drop(columns="throughput_tps"), LOSS, 2, objective="throughput")
    bad = candidates.assign(throughput_tps=[0.0, *TPS[1:]])
    with pytest.raises(InputError, match="positive and finite"):
        select_top_k(bad, LOSS, 2, objective="throughput")
    with pytest.raises(InputError, match="fewer than k = 2"):
        select_top_k(candidates, LOSS, 2, objective="throughput", max_loss=2.92)


def test_throughputs_within_their_noise_tie_and_the_lower_predicted_loss_takes_the_tie(
    candidates,
):
    """c (1500 tok/s, loss 3.05) and d (1300, 2.95) are 14 % apart: with a log se of 0.2 each
    the band is 0.28 in log (about 33 %), so they tie and d, predicted better, ranks first; b
    (1100, 3.00) ties d but not c, the tier's anchor, and starts the next tier. With a log se of
    0.01 the same times decide alone."""
    noisy = candidates.assign(throughput_log_se=0.2)
    table = select_top_k(noisy, LOSS, 2, objective="throughput", max_loss=3.05)
    assert chosen(table) == ["d", "c"]
    tiers = dict(zip(table["name"], table["throughput_tier"], strict=True))
    assert tiers == {"c": 1, "d": 1, "b": 2, "f": 3, "a": 0, "e": 0}  # a, e: over the target
    quiet = candidates.assign(throughput_log_se=0.01)
    table = select_top_k(quiet, LOSS, 2, objective="throughput", max_loss=3.05)
    assert chosen(table) == ["c", "d"]
    assert table.loc[table["feasible"] == 1, "throughput_tier"].tolist() == [3, 1, 2, 4]  # b c d f
    # a wider band (select.timing_z) ties all four feasible ones: the lowest losses win
    table = select_top_k(quiet, LOSS, 2, objective="throughput", max_loss=3.05, z=100.0)
    assert chosen(table) == ["f", "d"]
    assert set(table.loc[table["feasible"] == 1, "throughput_tier"]) == {1}


def test_a_throughput_without_a_standard_error_ties_only_an_equal_one(candidates):
    equal = candidates.assign(throughput_tps=[900.0, 1500.0, 1500.0, 1300.0, 2000.0, 600.0])
    table = select_top_k(equal, LOSS, 1, objective="throughput", max_loss=3.05)
    assert chosen(table) == ["b"]  # b and c tie at 1500 (no se): b's 3.00 beats c's 3.05
    assert "throughput_log_se" not in table.columns


def test_stability_of_the_throughput_choice_follows_the_resampled_target(candidates):
    """Under each resample the baseline's predicted loss moves with the others, so the target
    is resolved per resample; with N-only resamples the order of losses stays and so does the
    choice."""
    fit = {
        "law": "chinchilla",
        "params": {"A": 400.0, "B": 400.0, "E": 1.7, "alpha": 0.34, "beta": 0.28},
    }
    samples = {k: [v, v * 1.01, v * 0.99] for k, v in fit["params"].items()}
    frequency = selection_frequency(samples, fit, candidates, 2, {}, "throughput", "baseline", "a")
    assert frequency.resamples == 3 and frequency.skipped == 0
    # Loss falls with N: a (1.44e9) qualifies d (1.44e9, equal), b, c, e (larger); not f.
    # The two fastest among them: e and c, in every resample.
    assert frequency.chosen_frac.tolist() == [0, 0, 1, 0, 1, 0]


def test_select_cli_throughput_objective(tmp_path, candidates, capsys):
    fit = {
        "law": "chinchilla",
        "params": {"A": 400.0, "B": 400.0, "E": 1.7, "alpha": 0.34, "beta": 0.28},
    }
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    candidates.to_csv(tmp_path / "cands.csv", index=False)
    base = ["select", "--fit", tmp_path / "fit.json", "--candidates", tmp_path / "cands.csv"]
    out = tmp_path / "sel.csv"
    code, _, err = run(capsys, *base, "--k", "2", "--objective", "throughput", "--out", out)
    assert code == 2 and "needs --max-loss" in err and "Traceback" not in err
    n = candidates["N"].to_numpy()
    loss = 1.7 + 400 * n**-0.34 + 400 * 2.9e10**-0.28
    target = float(np.sort(loss)[2])  # the three lowest losses qualify: e, c, b
    args = ("--k", "2", "--objective", "throughput", "--max-loss", f"{target + 1e-12}")
    code, shown, err = run(capsys, *base, *args, "--out", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert chosen(table) == ["e", "c"] and "throughput_tps" in shown
    code, _, err = run(
        capsys,
        "select",
        "--fit",
        tmp_path / "fit.json",
        "--candidates",
        tmp_path / "bare.csv",
        "--k",
        "1",
        "--out",
        out,
    )
    assert code == 2 and "bare.csv" in err
