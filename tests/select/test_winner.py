"""The winner: accuracy within one combined standard error is a tie, and a tie goes to the
smooth metric (where every contender has it), then to the lower latency; latencies within
their combined standard error tie too, and then the more accurate wins."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.select.winner import (
    SMOOTH,
    Z_TIE,
    choose_winner,
    eval_summary,
    latency_log_se,
    mean_stderr,
)

SE = 0.01  # every model's se of the average: the band of a difference is 0.01·sqrt(2) = 0.0141


def trained(*rows: tuple, smooth: bool = False) -> pd.DataFrame:
    """(name, average, latency_s[, smooth metric]) per trained candidate, each with se SE."""
    frame = pd.DataFrame(
        [row[:3] for row in rows], columns=["name", "average", "latency_s"]
    ).assign(average_stderr=SE)
    if smooth:
        frame = frame.assign(**{SMOOTH: [row[3] for row in rows], f"{SMOOTH}_stderr": 0.002})
    return frame


SELECTED = pd.DataFrame({"name": ["base", "fast", "slow"], "latency_s": [4.0, 2.0, 3.0]})


def test_a_higher_accuracy_within_the_band_loses_to_a_faster_model():
    winner = choose_winner(trained(("slow", 0.53, 3.0), ("fast", 0.52, 2.0)), SELECTED, "base")
    assert winner["winner"] == "fast" and winner["decided_by"] == "latency"
    assert winner["contenders"] == ["slow", "fast"]  # by accuracy
    assert winner["z"] == Z_TIE == 1.0
    assert winner["band"] == pytest.approx(SE * math.sqrt(2))
    assert winner["accuracy"] == 0.52 and winner["accuracy_stderr"] == SE


def test_a_higher_accuracy_outside_the_band_wins():
    winner = choose_winner(trained(("slow", 0.55, 3.0), ("fast", 0.52, 2.0)), SELECTED, "base")
    assert winner["winner"] == "slow" and winner["decided_by"] == "accuracy"
    assert winner["contenders"] == ["slow"]
    # z widens the band: at z = 3 the 0.03 gap (2.1 bands) is a tie
    assert (
        choose_winner(trained(("slow", 0.55, 3.0), ("fast", 0.52, 2.0)), SELECTED, "x", z=3)[
            "winner"
        ]
        == "fast"
    )


def test_contenders_are_those_tied_with_the_most_accurate_not_with_each_other():
    # mid ties top (0.01 < 0.0141); low ties mid but not top (0.02 > 0.0141)
    rows = trained(("top", 0.54, 3.0), ("mid", 0.53, 2.5), ("low", 0.52, 1.0))
    winner = choose_winner(rows, SELECTED, "base")
    assert winner["contenders"] == ["top", "mid"] and winner["winner"] == "mid"


def test_the_smooth_metric_separates_tied_accuracies_before_latency():
    rows = trained(("slow", 0.53, 3.0, 1.10), ("fast", 0.52, 2.0, 1.20), smooth=True)
    winner = choose_winner(rows, SELECTED, "base")
    # accuracies tie; 0.10 nats/byte apart is far outside the smooth band 0.002·sqrt(2)
    assert winner["winner"] == "slow" and winner["decided_by"] == SMOOTH
    assert winner["contenders"] == ["slow", "fast"]  # tied on accuracy
    assert winner[SMOOTH] == 1.10
    close = trained(("slow", 0.53, 3.0, 1.100), ("fast", 0.52, 2.0, 1.101), smooth=True)
    assert choose_winner(close, SELECTED, "base")["winner"] == "fast"  # tied again: latency
    partial = rows.assign(**{SMOOTH: [1.10, math.nan]})
    assert choose_winner(partial, SELECTED, "base")["winner"] == "fast"  # not all have it


def test_against_a_trained_baseline_the_verdict_uses_the_band():
    rows = trained(("fast", 0.52, 2.0), ("base", 0.515, 4.0))
    winner = choose_winner(rows, SELECTED, "base")
    assert winner["winner"] == "fast" and winner["baseline_trained"] is True
    assert winner["speedup"] == 2.0 and winner["accuracy_diff"] == pytest.approx(0.005)
    assert winner["accuracy_diff_band"] == pytest.approx(SE * math.sqrt(2))
    assert winner["verdict"] == "tied"
    better = choose_winner(trained(("fast", 0.56, 2.0), ("base", 0.52, 4.0)), SELECTED, "base")
    assert better["verdict"] == "better"


def test_against_an_untrained_baseline_there_is_no_accuracy():
    winner = choose_winner(trained(("fast", 0.52, 2.0), ("slow", 0.5, 3.0)), SELECTED, "base")
    assert winner["speedup"] == 2.0  # the selection's latency of the baseline
    assert winner["baseline_trained"] is False and winner["baseline_accuracy"] is None
    assert winner["accuracy_diff"] is None and winner["accuracy_diff_band"] is None
    assert winner["verdict"] is None
    assert choose_winner(trained(("fast", 0.52, 2.0)), SELECTED, "nope")["speedup"] is None
    with pytest.raises(InputError):
        choose_winner(trained(("fast", 0.52, 2.0)).iloc[:0], SELECTED, "base")


def test_without_standard_errors_only_equal_accuracies_tie():
    rows = trained(("a", 0.53, 3.0), ("b", 0.53, 2.0), ("c", 0.529, 1.0)).drop(
        columns="average_stderr"
    )
    winner = choose_winner(rows, SELECTED, "a")
    assert winner["winner"] == "b" and winner["band"] is None
    assert winner["verdict"] == "tied"  # b vs a: equal


def test_eval_summary_adds_the_task_errors_in_quadrature():
    result = {
        "average": 0.5,
        "tasks": {"a": {"value": 0.4, "stderr": 0.03}, "b": {"value": 0.6, "stderr": 0.04}},
    }
    summary = eval_summary(result)
    assert summary["average"] == 0.5 and summary["average_stderr"] == pytest.approx(0.025)
    assert math.isnan(summary[SMOOTH]) and math.isnan(summary[f"{SMOOTH}_stderr"])
    smooth = eval_summary(result | {SMOOTH: 1.2, f"{SMOOTH}_stderr": 0.01})
    assert smooth[SMOOTH] == 1.2 and smooth[f"{SMOOTH}_stderr"] == 0.01
    assert math.isnan(mean_stderr([0.1, None]))


def test_latencies_within_their_noise_tie_and_the_more_accurate_of_them_wins():
    # accuracies tie (0.01 < 0.0141); c9 is 1 % faster than c6, c1 2.5x slower
    rows = trained(("c1", 0.344, 0.457), ("c6", 0.335, 0.180), ("c9", 0.330, 0.178))
    se = latency_log_se(0.15, 5)  # about 0.084: a CV of 0.15 over 5 trials
    assert se == pytest.approx(math.sqrt(math.pi / 2) * 0.15 / math.sqrt(5))
    noisy = rows.assign(latency_log_se=se)
    winner = choose_winner(noisy, SELECTED, "c1")
    assert winner["winner"] == "c6" and winner["decided_by"] == "accuracy, tied on latency"
    assert winner["latency_tied"] == [
        "c6",
        "c9",
    ]  # by accuracy; ln(0.180/0.178) = 0.011 < 0.084·sqrt(2)
    # c1 is slower beyond the noise (ln 2.57 = 0.94), so accuracy alone would not give it back
    assert "c1" not in winner["latency_tied"]
    # measured tightly, 1 % is outside the band and the faster wins
    tight = choose_winner(rows.assign(latency_log_se=0.002), SELECTED, "c1")
    assert tight["winner"] == "c9" and tight["decided_by"] == "latency"
    assert tight["latency_tied"] == []
    # without the latency's se only equal times tie: the faster wins, as before
    assert choose_winner(rows, SELECTED, "c1")["winner"] == "c9"


def test_what_rests_on_timings_is_only_the_latency_step():
    # b and c tie on accuracy exactly: their order, the contenders and the band follow the
    # name, whichever was timed faster
    for b_s, c_s in ((2.0, 3.0), (3.0, 2.0)):
        rows = trained(("a", 0.54, 4.0), ("c", 0.53, c_s), ("b", 0.53, b_s))
        winner = choose_winner(rows, SELECTED, "base")
        assert winner["contenders"] == ["a", "b", "c"]
        assert winner["winner"] == ("b" if b_s < c_s else "c")
