"""The greedy design: which runs, trained next, most shrink the uncertainty of the top-k per FLOP.

The fit's bootstrap resamples stand for what is known. A run's outcome is simulated under each
resample in turn taken as the truth (its predicted loss plus run-level noise of sd ``noise_sd``);
the resamples are then reweighted by the likelihood of that outcome (importance weights: no
refit), and the choice's entropy (infscale.design.choice) recomputed under those weights. The
expected entropy after the run, over the simulated truths, against the entropy before, is the
run's gain. Runs are added greedily by gain per FLOP; each added run's likelihood stays in the
weights, so the next run is valued given the runs already chosen (it gains little if it only
repeats what they tell). The noise draws are fixed up front from ``seed``: the same inputs and
seed give the same design.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from infscale.design.choice import set_entropy, top_k_sets

# Noise draws per resample taken as the truth: 2 x 200 resamples = 400 simulated outcomes a run.
DRAWS = 2
# A run expected to shrink the entropy by less than this (bits) is not worth its FLOPs: the
# design stops there even with budget left (Monte Carlo noise alone is smaller than this).
MIN_GAIN = 1e-4
# Runs valued at once (memory: CHUNK x simulated outcomes x resamples floats).
CHUNK = 16


class Step(NamedTuple):
    """One chosen run: its index among the proposals, FLOPs, FLOPs spent so far, its expected
    gain (bits) and the expected uncertainty (bits) once it and every earlier run are in."""

    run: int
    flops: float
    cum_flops: float
    gain: float
    uncertainty_after: float


class Design(NamedTuple):
    uncertainty_before: float
    steps: tuple[Step, ...]


def greedy_design(
    candidate_loss: np.ndarray,
    feasible: np.ndarray,
    k: int,
    run_loss: np.ndarray,
    flops: np.ndarray,
    budget: float,
    noise_sd: float,
    seed: int,
    draws: int = DRAWS,
) -> Design:
    """Runs (columns of ``run_loss``: resamples x proposals, each resample's predicted loss)
    of total ``flops`` within ``budget``, chosen greedily by expected gain per FLOP in the
    entropy of the top-``k`` choice among the ``feasible`` candidates (``candidate_loss``:
    resamples x candidates)."""
    n_resamples, n_runs = run_loss.shape
    index, sets = top_k_sets(candidate_loss, feasible, k)
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_resamples), draws)
    outcome = run_loss[truth] + noise_sd * rng.standard_normal((len(truth), n_runs))
    log_weights = np.zeros((len(truth), n_resamples))
    uncertainty = before = float(
        set_entropy(np.full(n_resamples, 1 / n_resamples), index, len(sets))
    )
    chosen: list[Step] = []
    spent = 0.0
    while True:
        open_runs = [
            j
            for j in range(n_runs)
            if flops[j] <= budget - spent and j not in {s.run for s in chosen}
        ]
        after = _expected_entropy(
            log_weights, outcome, run_loss, open_runs, noise_sd, index, len(sets)
        )
        gain = uncertainty - after
        worth = gain > MIN_GAIN
        if not worth.any():
            break
        ratio = np.where(worth, gain / flops[open_runs], -np.inf)
        best = int(np.argmax(ratio))
        j = open_runs[best]
        log_weights += _log_likelihood(outcome[:, j], run_loss[:, j], noise_sd)
        uncertainty = float(after[best])
        spent += float(flops[j])
        chosen.append(Step(j, float(flops[j]), spent, float(gain[best]), uncertainty))
    return Design(before, tuple(chosen))


def _expected_entropy(
    log_weights: np.ndarray,
    outcome: np.ndarray,
    run_loss: np.ndarray,
    runs: list[int],
    noise_sd: float,
    index: np.ndarray,
    n_sets: int,
) -> np.ndarray:
    """Per run of ``runs``, the mean over simulated outcomes of the choice's entropy once that
    run's outcome is added to ``log_weights``."""
    out = np.empty(len(runs))
    for start in range(0, len(runs), CHUNK):
        part = runs[start : start + CHUNK]
        logs = log_weights[None] + np.stack(
            [_log_likelihood(outcome[:, j], run_loss[:, j], noise_sd) for j in part]
        )
        out[start : start + len(part)] = set_entropy(normalise(logs), index, n_sets).mean(axis=1)
    return out


def _log_likelihood(outcome: np.ndarray, predicted: np.ndarray, noise_sd: float) -> np.ndarray:
    """log p(outcome | resample), up to a constant: simulated outcomes x resamples."""
    return -0.5 * ((outcome[:, None] - predicted[None, :]) / noise_sd) ** 2


def normalise(log_weights: np.ndarray) -> np.ndarray:
    """Weights summing to 1 along the last axis, from unnormalised logs."""
    w = np.exp(log_weights - log_weights.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)
