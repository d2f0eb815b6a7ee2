"""The points a law is fitted to or predicts: one typed bundle instead of the (N, D, R, loss,
variables) tuples, so that every method, the bootstrap, the metrics and the comparison pass one
thing and cut it the same way (``take``). The law comparison cuts its points once (``split``):
the fit set, the rows outside it and the progressive folds, which every row then reads.

A table of points takes ``infscale params``' defaults for the shape columns the conditional law
reads (``with_shape_defaults``) before a law reads it, and a law that cannot read it names the
flag that would help (``vocab_hint``): ``infscale fit`` and the comparison read tables alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from infscale.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


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


@dataclass(frozen=True)
class Split:
    """Points cut the way the law comparison (infscale.fit.compare) fits them: ``train`` the
    fit set, ``test`` the rows outside it, ``order`` the size groups by median N (None without
    groups) and ``folds`` the progressive extrapolation's (fit, predicted) points: every group
    before each in ``order``, and that group (none without groups)."""

    train: Points
    test: Points
    order: list[str] | None
    folds: list[tuple[Points, Points]]


def split(points: Points, fit: np.ndarray) -> Split:
    """``points`` cut once at the fit set ``fit`` (a boolean mask) and at their size groups,
    so that every row of a comparison, and the fits made ahead of them, read the same cuts."""
    import pandas as pd

    if points.groups is None:
        return Split(points.take(fit), points.take(~fit), None, [])
    order = pd.Series(points.N).groupby(points.groups).median().sort_values().index.tolist()
    folds = [
        (points.take(np.isin(points.groups, order[:j])), points.take(points.groups == order[j]))
        for j in range(1, len(order))
    ]
    return Split(points.take(fit), points.take(~fit), order, folds)


def with_shape_defaults(
    points: pd.DataFrame, vocab_size: int | None, multiple_of: int
) -> pd.DataFrame:
    """``points`` with ``infscale params``' defaults for the law's missing columns: vocab_size
    (when given: ``--vocab-size``) and the open_lm SwiGLU width rounded up to ``multiple_of``."""
    extra: dict[str, int] = {}
    if "vocab_size" not in points.columns and vocab_size is not None:
        extra["vocab_size"] = vocab_size
    if "ffn_hidden" not in points.columns and "multiple_of" not in points.columns:
        extra["multiple_of"] = multiple_of
    return points.assign(**extra)


def vocab_hint(points: pd.DataFrame, vocab_size: int | None, error: InputError) -> str:
    """What to add to an ``error`` about a missing vocab_size column: the flag for it."""
    missing = "vocab_size" not in points.columns and vocab_size is None
    return " (or give --vocab-size)" if missing and "vocab_size" in str(error) else ""
