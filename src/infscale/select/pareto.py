"""The accuracy-latency Pareto front (paper Fig. 1): the models no other model beats on both."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def pareto_front(latency: Iterable[float], accuracy: Iterable[float]) -> np.ndarray:
    """Mask of the points no other point beats: lower-or-equal latency and higher-or-equal
    accuracy, one of them strictly. Equal points do not dominate each other; NaN is never on it.
    """
    lat = np.asarray(latency, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    no_worse = (lat[:, None] <= lat[None, :]) & (acc[:, None] >= acc[None, :])
    better = (lat[:, None] < lat[None, :]) | (acc[:, None] > acc[None, :])
    dominated = (no_worse & better).any(axis=0)
    return ~dominated & ~np.isnan(lat) & ~np.isnan(acc)
