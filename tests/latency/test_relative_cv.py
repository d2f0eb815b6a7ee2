"""Noise judged relative to a reference timed in the same round: a drift common to a round
cancels, a measurement with noise of its own stands out."""

import numpy as np
import pytest

from infscale.latency import measure
from infscale.latency.measure import (
    Item,
    absolute_cv,
    measure_interleaved,
    pick_references,
    relative_cv,
    relative_median,
)
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape

BASE = np.array([0.5, 1.0, 2.0])  # three shapes' true times; the median one is item 1


def drifting(rounds=8, seed=0):
    """True times × a drift factor per round (±25 %, the VM's), common to every shape."""
    drift = np.random.default_rng(seed).uniform(0.75, 1.25, rounds)
    return BASE[:, None] * drift[None, :]


def test_common_drift_cancels_in_the_relative_cv():
    times = drifting()
    references = pick_references(times)
    assert (absolute_cv(times) > 0.1).all()  # every shape would be flagged on its own spread
    assert relative_cv(times, references) == pytest.approx(np.zeros(3), abs=1e-12)
    # each shape's time over the median shape's; the median shape's over its nearest (item 0)
    assert relative_median(times, references) == pytest.approx([0.5, 2.0, 2.0])


def test_a_shape_with_its_own_noise_is_the_only_one_flagged():
    times = drifting()
    own = 1 + 0.2 * np.random.default_rng(1).standard_normal(times.shape[1])
    times[2] *= own
    references = pick_references(times)
    rel = relative_cv(times, references)
    assert rel[2] == pytest.approx(own.std(ddof=1) / own.mean())
    assert list(rel > 0.1) == [False, False, True]


def test_reference_is_the_median_item_and_it_is_compared_with_its_steadiest_partner():
    times = drifting()[[2, 0, 1]]  # medians 2, 0.5, 1: the median item is row 2
    assert list(pick_references(times)) == [2, 2, 0]  # all steady: the first other item
    times[0] *= 1 + 0.2 * np.random.default_rng(1).standard_normal(times.shape[1])
    assert list(pick_references(times)) == [2, 2, 1]  # not the noisy row 0
    assert list(pick_references(drifting()[:2])) == [1, 0]


def test_rounds_an_item_sat_out_are_skipped():
    times = drifting(rounds=4)
    times[0, 2:] = np.nan  # item 0 timed in the first two rounds only
    assert relative_cv(times, np.array([1, 0, 1])) == pytest.approx(np.zeros(3), abs=1e-12)


def fake_machine(monkeypatch, noisy_item: int | None = None, own: float = 0.3):
    """Generators (no model runs) that return BASE[item] × a drift factor drawn afresh (±25 %)
    whenever the order of calls starts over, i.e. once per round, and noise of its own (sd
    ``own``) for ``noisy_item`` (-1: every item)."""
    rng = np.random.default_rng(2)
    state = {"last": len(BASE), "drift": 1.0}
    sizes = {d: i for i, d in enumerate((32, 40, 48))}

    def generator(model, shape, protocol, clock):
        item = sizes[shape.d_model]

        def once(new_tokens, batch):
            if item <= state["last"]:  # a new round
                state["drift"] = rng.uniform(0.75, 1.25)
            state["last"] = item
            noisy = noisy_item in (item, -1)
            factor = 1 + own * rng.standard_normal() if noisy else 1.0
            return float(BASE[item] * state["drift"] * factor)

        return once

    monkeypatch.setattr(measure, "load_model", lambda item, protocol, dtype: object())
    monkeypatch.setattr(measure, "_hf_generator", generator)
    return [Item(Shape(d, 2, 4, 300, 16), 1) for d in sizes]


def test_drift_alone_flags_nothing_and_repeats_nothing(monkeypatch):
    items = fake_machine(monkeypatch)
    protocol = Protocol(trials=10, max_cv=0.1, max_repeats=1)
    results = measure_interleaved(items, protocol, ttft=False)
    assert all(r["cv"] > 0.1 for r in results)  # the absolute CV would have flagged them all
    assert all(r["cv_basis"] == "relative" and r["relative_cv"] < 1e-9 for r in results)
    assert [r["flagged"] for r in results] == [False, False, False]
    assert [r["repeats"] for r in results] == [0, 0, 0]
    assert [r["reference"] for r in results] == [items[1].label, items[0].label, items[1].label]


def test_a_noisy_shape_is_repeated_with_its_reference_then_flagged(monkeypatch):
    items = fake_machine(monkeypatch, noisy_item=2)
    protocol = Protocol(trials=10, max_cv=0.1, max_repeats=1)
    results = measure_interleaved(items, protocol, ttft=False)
    assert [r["flagged"] for r in results] == [False, False, True]
    assert [r["repeats"] for r in results] == [0, 1, 1]  # the noisy one and its reference
    assert [len(r["trials_s"]) for r in results] == [10, 20, 20]
    assert results[2]["median_s"] == np.median(results[2]["trials_s"])  # absolute, pooled


def test_noise_every_shape_shares_is_the_machines_and_flags_none(monkeypatch):
    items = fake_machine(monkeypatch, noisy_item=-1, own=0.2)
    protocol = Protocol(trials=10, max_cv=0.1, max_repeats=1)
    results = measure_interleaved(items, protocol, ttft=False)
    assert all(r["relative_cv"] > 0.1 for r in results)  # a fixed threshold flags them all
    assert [r["flagged"] for r in results] == [False, False, False]
    assert [r["repeats"] for r in results] == [0, 0, 0]  # and nothing is re-timed


def test_a_flag_needs_the_threshold_and_twice_the_jobs_median():
    noise = np.array([0.25, 0.3, 0.35, 0.8, 0.05])
    assert list(measure._outliers(noise, 0.1)) == [False, False, False, True, False]
    assert list(measure._outliers(noise, 0.9)) == [False] * 5  # the threshold still applies
    assert not measure._outliers(noise, None).any()
    # two measurements (a checkpoint and its twin) or one: the threshold alone
    assert list(measure._outliers(np.array([0.3, 0.05]), 0.1)) == [True, False]
    assert list(measure._outliers(np.array([0.3]), 0.1)) == [True]
