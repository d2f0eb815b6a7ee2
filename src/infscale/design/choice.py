"""The top-k choice under each bootstrap resample, and how uncertain it is.

The selection of ``infscale select`` (the loss objective) is an integer program whose only
constraints are the per-candidate budgets and Σx = k: its optimum is the k feasible candidates of
lowest predicted loss. Which candidates are feasible does not depend on the resample (N, D and
latency are the candidates' own), so select.ilp decides it once and the k best are read off each
resample's predictions here: CBC takes about 18 ms a solve, the benchmark needs 10^5 of them.

The uncertainty is the entropy (bits) of the chosen set over the weighted resamples: 0 when every
resample chooses the same k, log2 of the number of sets when they split evenly. Entropy, not the
probability that the modal set is wrong, because one run can sharpen the split without yet
moving the mode: the error probability then stays flat and a greedy design would see no gain.
"""

from __future__ import annotations

import numpy as np


def top_k_sets(loss: np.ndarray, feasible: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per resample (rows of ``loss``, resamples x candidates) the index of its chosen set in
    ``sets`` (distinct sets x candidates, 0/1), and ``sets``; the chosen set holds the ``k``
    feasible candidates of lowest loss."""
    masked = np.where(feasible[None, :], loss, np.inf)
    best = np.argsort(masked, axis=1, kind="stable")[:, :k]
    chosen = np.zeros(loss.shape, dtype=np.int8)
    np.put_along_axis(chosen, best, 1, axis=1)
    sets, index = np.unique(chosen, axis=0, return_inverse=True)
    return index.ravel(), sets


def set_entropy(weights: np.ndarray, index: np.ndarray, n_sets: int) -> np.ndarray:
    """Entropy in bits of the chosen set under each row of ``weights`` (..., resamples; rows sum
    to 1), ``index`` the set each resample chooses."""
    onehot = np.zeros((len(index), n_sets), weights.dtype)
    onehot[np.arange(len(index)), index] = 1.0
    p = weights @ onehot
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, -p * np.log2(p), 0.0).sum(axis=-1)
