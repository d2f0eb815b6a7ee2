"""The bootstrap written once for every law: run-level resamples as point counts, and the
summary of the refits (a law draws, refits and summarises them: infscale.fit.law.Law.bootstrap)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from infscale.fit.core import PARAMS


def resample_runs(runs: ArrayLike, k: int, rng: np.random.Generator) -> np.ndarray:
    """Point counts (k, n_points) of ``k`` bootstrap resamples of whole runs: each resample
    draws as many runs as there are, with replacement, and every point of a drawn run counts
    once per draw. ``runs``: one run id per point."""
    ids, run_of = np.unique(np.asarray(runs), return_inverse=True)
    draws = rng.integers(0, len(ids), (k, len(ids)))
    per_run = np.zeros((k, len(ids)), dtype=int)
    np.add.at(per_run, (np.arange(k)[:, None], draws), 1)
    return per_run[:, run_of.ravel()]


def bootstrap_summary(law: str, fits: Sequence[Mapping[str, float]], failed: int) -> dict:
    """``failed``, the 95% percentile interval of each parameter (``ci95``) and every converged
    resample's parameters (``samples``: one list per parameter), from which
    ``predict_interval`` gives intervals for predictions; both None when every refit failed."""
    if not fits:
        return {"failed": failed, "ci95": None, "samples": None}
    samples = {p: [f[p] for f in fits] for p in PARAMS[law]}
    ci = {p: np.percentile(v, [2.5, 97.5]).tolist() for p, v in samples.items()}
    return {"failed": failed, "ci95": ci, "samples": samples}
