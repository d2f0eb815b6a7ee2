"""The greedy design: which runs, trained next, most shrink the uncertainty of the top-k per FLOP.

The fit's bootstrap resamples stand for what is known. A run's outcome is simulated under each
resample in turn taken as the truth (its predicted loss plus run-level noise of sd ``noise_sd``);
the resamples are then reweighted by the likelihood of that outcome (importance weights: no
refit), and the choice's entropy (infscale.design.choice) recomputed under those weights. The
expected entropy after the run, over the simulated truths, against the entropy before, is the
run's gain. Runs are added greedily by gain per FLOP; each added run's likelihood stays in the
weights, so the next run is valued given the runs already chosen (it gains little if it only
repeats what they tell). The simulated outcomes are drawn once, up front, from ``seed``: the
same inputs and seed give the same design.

The resamples are a finite cloud: with the run noise alone in the likelihood, one run whose
predictions spread far wider than that noise puts all the weight on the single nearest resample,
and the design (and any estimate read from the weights) then believes it knows everything. So
each resample stands for its neighbourhood in the cloud: a Gaussian kernel of Silverman's width
(1.06 · n^-1/5 · the resamples' sd of the run's predicted loss) around its prediction, and the
likelihood of an outcome under it is normal with the noise and that width added in quadrature.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from infscale.design.choice import set_entropy, top_k_sets

# Simulated outcomes a run is valued on, the resamples taken as the truth in turn (each twice
# for a fit with 200 resamples).
OUTCOMES = 400
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
    """The expected uncertainty (bits) before any run, and the chosen runs in order."""

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
    outcomes: int = OUTCOMES,
) -> Design:
    """Runs (columns of ``run_loss``: resamples x proposals, each resample's predicted loss)
    of total ``flops`` within ``budget``, chosen greedily by expected gain per FLOP in the
    entropy of the top-``k`` choice among the ``feasible`` candidates (``candidate_loss``:
    resamples x candidates)."""
    n_resamples, n_runs = run_loss.shape
    index, sets = top_k_sets(candidate_loss, feasible, k)
    rng = np.random.default_rng(seed)
    truth = np.resize(np.arange(n_resamples), outcomes)
    # float32: the weights need no more, and the design's cost is in these arrays
    run_loss = np.asarray(run_loss, np.float32)
    outcome = run_loss[truth] + np.float32(noise_sd) * rng.standard_normal(
        (len(truth), n_runs), np.float32
    )
    scale = likelihood_scale(run_loss, noise_sd)
    log_weights = np.zeros((len(truth), n_resamples), np.float32)
    uncertainty = before = float(
        set_entropy(np.full(n_resamples, 1 / n_resamples), index, len(sets))
    )
    chosen: list[Step] = []
    spent = 0.0
    while True:
        taken = {step.run for step in chosen}
        open_runs = [j for j in range(n_runs) if j not in taken and flops[j] <= budget - spent]
        if not open_runs:
            break
        after = _expected_entropy(
            log_weights, outcome, run_loss, open_runs, scale, index, len(sets)
        )
        gain = uncertainty - after
        worth = gain > MIN_GAIN
        if not worth.any():
            break
        ratio = np.where(worth, gain / flops[open_runs], -np.inf)
        best = int(np.argmax(ratio))
        j = open_runs[best]
        log_weights += log_likelihood(outcome[:, j], run_loss[:, j], scale[j])
        uncertainty = float(after[best])
        spent += float(flops[j])
        chosen.append(Step(j, float(flops[j]), spent, float(gain[best]), uncertainty))
    return Design(before, tuple(chosen))


def _expected_entropy(
    log_weights: np.ndarray,
    outcome: np.ndarray,
    run_loss: np.ndarray,
    runs: list[int],
    scale: np.ndarray,
    index: np.ndarray,
    n_sets: int,
) -> np.ndarray:
    """Per run of ``runs``, the mean over simulated outcomes of the choice's entropy once that
    run's outcome is added to ``log_weights``."""
    out = np.empty(len(runs))
    for start in range(0, len(runs), CHUNK):
        part = runs[start : start + CHUNK]
        logs = log_weights[None] + np.stack(
            [log_likelihood(outcome[:, j], run_loss[:, j], scale[j]) for j in part]
        )
        out[start : start + len(part)] = set_entropy(normalise(logs), index, n_sets).mean(axis=1)
    return out


def likelihood_scale(run_loss: np.ndarray, noise_sd: float) -> np.ndarray:
    """Per run (columns of ``run_loss``, resamples x runs), the sd of an outcome under one
    resample: the run noise and the resample's kernel width in quadrature."""
    width = 1.06 * len(run_loss) ** -0.2 * np.std(run_loss, axis=0)
    return np.sqrt(noise_sd**2 + width**2).astype(np.float32)


def log_likelihood(outcome: np.ndarray, predicted: np.ndarray, scale: float) -> np.ndarray:
    """log p(outcome | resample), up to a constant: outcomes x resamples."""
    outcome = np.atleast_1d(outcome)
    return np.float32(-0.5) * ((outcome[:, None] - predicted[None, :]) / scale) ** 2


def normalise(log_weights: np.ndarray) -> np.ndarray:
    """Weights summing to 1 along the last axis, from unnormalised logs."""
    w = np.exp(log_weights - log_weights.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)
