"""The order in which training reads the packed windows, and which held-out windows it scores.

The packed file is in corpus order (one play after another, one shard after another), so reading
it front to back makes a longer run see different text, not more of the same mix: validation
loss then rises with training. Training instead reads position ``p`` of its stream from window
``perm_e[p mod n]`` of epoch ``e = p // n``, a fresh seeded permutation per epoch. The window at
a position depends only on (seed, position), so a resumed or re-sharded run reads exactly what an
uninterrupted one does, every run of a grid reads the same stream (a shorter run a prefix of a
longer one's), and no window repeats within an epoch.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def epoch_permutation(n_windows: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s order of the windows (uint32 where they fit: 4 bytes a window)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_windows)
    return order.astype(np.uint32) if n_windows < 2**32 else order


class WindowOrder:
    """Stream positions to window indices; keeps the permutation of the epoch last read."""

    def __init__(self, n_windows: int, seed: int) -> None:
        self.n_windows, self.seed = n_windows, seed
        self._epoch, self._perm = -1, np.empty(0, np.uint32)

    def windows(self, positions: Iterable[int]) -> np.ndarray:
        """The window index read at each stream position (positions may cross an epoch)."""
        positions = np.fromiter(positions, dtype=np.int64)
        epochs = positions // self.n_windows
        out = np.empty(len(positions), dtype=np.int64)
        for epoch in np.unique(epochs):
            here = epochs == epoch
            out[here] = self._permutation(int(epoch))[positions[here] % self.n_windows]
        return out

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, epoch_permutation(self.n_windows, self.seed, epoch)
        return self._perm


def validation_rows(n_windows: int, n_available: int) -> np.ndarray:
    """``n_windows`` held-out windows spread evenly over the whole split (all if fewer exist):
    the first ones would be the first documents only, one play instead of the corpus."""
    if n_windows >= n_available:
        return np.arange(n_available)
    return np.linspace(0, n_available - 1, n_windows).round().astype(np.int64)
