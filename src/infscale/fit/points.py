"""The points a law is fitted to or predicts: one typed bundle instead of the (N, D, R, loss,
variables) tuples, so that every method, the bootstrap, the metrics and the comparison pass one
thing and cut it the same way (``take``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Points:
    """Checked float arrays of equal length, one entry per point.

    ``R`` (d_model / n_layers) is read by the inference laws and ``variables`` ({factor: its
    variable}, infscale.fit.conditional) by the conditional ones; each is None where no law
    being fitted reads it. ``loss`` is None for points that are only predicted. ``groups``
    (size group per point) makes Spearman a within-group mean; ``runs`` (run id per point) is
    what the bootstrap resamples.
    """

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray | None = None
    R: np.ndarray | None = None
    variables: Mapping[str, np.ndarray] | None = field(default=None)
    groups: np.ndarray | None = None
    runs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.N)

    def take(self, rows: np.ndarray) -> Points:
        """The points at ``rows`` (a boolean mask or indices, repeats allowed)."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        variables = None
        if self.variables is not None:
            variables = {name: v[rows] for name, v in self.variables.items()}
        return replace(
            self,
            N=self.N[rows],
            D=self.D[rows],
            loss=cut(self.loss),
            R=cut(self.R),
            variables=variables,
            groups=cut(self.groups),
            runs=cut(self.runs),
        )
