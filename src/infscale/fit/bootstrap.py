"""The bootstrap's draws, written once for every law: run-level resamples as point counts (each
law refits them and summarises the refits: infscale.fit.law.Law.bootstrap)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def resample_runs(runs: ArrayLike, k: int, rng: np.random.Generator) -> np.ndarray:
    """Point counts (k, n_points) of ``k`` bootstrap resamples of whole runs: each resample
    draws as many runs as there are, with replacement, and every point of a drawn run counts
    once per draw. ``runs``: one run id per point."""
    ids, run_of = np.unique(np.asarray(runs), return_inverse=True)
    draws = rng.integers(0, len(ids), (k, len(ids)))
    per_run = np.zeros((k, len(ids)), dtype=int)
    np.add.at(per_run, (np.arange(k)[:, None], draws), 1)
    return per_run[:, run_of.ravel()]
