"""One law under one tie mode on one set of points: what every method fits.

A law's family (infscale.fit.paper, infscale.fit.conditional) subclasses ``Problem`` once: the
loss the law predicts at the points, its Huber objective on log L with that objective's grid of
starts, lm's start and the variable projection. The methods, the nested start and the bootstrap
refits are written once over it (infscale.fit.methods); a ``Law`` (infscale.fit.law) makes the
problem for each tie mode. numpy only, so that the CLI starts fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np

from infscale.fit import huber
from infscale.fit.core import log_coefficient
from infscale.fit.points import Points


class Problem(ABC):
    """The fit of one law to ``points`` under ``tie``.

    ``params``: every parameter of the law (FIT.json's order); ``free``: those searched;
    ``where``: each searched parameter's column in a free vector (a tied exponent: alpha's; a
    parameter fixed at 0, such as a dropped factor's, has none). The huber method searches the
    ``log_params`` as logs, so they stay positive. ``cannot``: method -> why that method cannot
    fit this law. ``refits_from_fit``: lm's bootstrap refits start at the full fit (else at
    :meth:`lm_start`, as the paper's procedure refits from all ones).
    """

    params: tuple[str, ...]
    free: tuple[str, ...]
    where: Mapping[str, int]
    log_params: tuple[str, ...]
    refits_from_fit: bool

    def __init__(self, tie: str, points: Points) -> None:
        self.tie = tie
        self.points = points
        self.cannot: dict[str, str] = {}

    @property
    def loss(self) -> np.ndarray:
        return self.points.loss

    @property
    @abstractmethod
    def key(self) -> tuple:
        """The law and the points (bytes), whatever the tie mode: the fit memo's key."""

    def expand(self, theta: Sequence[float]) -> dict[str, float]:
        """Every parameter from a free vector of raw values (one without a column: 0)."""
        return {p: float(theta[self.where[p]]) if p in self.where else 0.0 for p in self.params}

    def to_u(self, params: Mapping[str, float]) -> np.ndarray:
        """The free vector of ``params`` as the huber method searches it: the log_params as logs
        (nan where one is negative), the others raw."""
        return np.array(
            [log_coefficient(params[p]) if p in self.log_params else params[p] for p in self.free]
        )

    def from_u(self, u: np.ndarray) -> dict[str, float]:
        """Every parameter from a free vector in the huber method's space (:meth:`to_u`)."""
        raw = [np.exp(v) if p in self.log_params else v for p, v in zip(self.free, u, strict=True)]
        return self.expand(raw)

    @abstractmethod
    def predict(self, params: Mapping[str, float]) -> np.ndarray:
        """The loss the law predicts at the points."""

    @cached_property
    def huber_objective(self) -> huber.Objective:
        """Huber(log L - log L̂) summed over the points, and its gradient, for rows of free
        vectors (:meth:`to_u`), each point's term weighted (bootstrap counts) or not."""
        return self._huber_objective()

    @abstractmethod
    def _huber_objective(self) -> huber.Objective: ...

    @abstractmethod
    def huber_starts(self) -> np.ndarray:
        """The huber method's starts, one free vector (:meth:`to_u`) a row."""

    @abstractmethod
    def lm_start(self) -> dict[str, float]:
        """lm's start when it has no other (every parameter of ``free``)."""

    @abstractmethod
    def vp(self, start: Mapping[str, float] | None) -> dict[str, float]:
        """The variable projection fit (infscale.fit.vp), refined from ``start`` if given."""

    @abstractmethod
    def take(self, rows: np.ndarray) -> Problem:
        """The same problem (its dropped factors too) on the points at ``rows``."""


def arrays_key(*arrays: np.ndarray | None) -> tuple[bytes | None, ...]:
    """The arrays' bytes, for a memo key (None stays None)."""
    return tuple(None if a is None else a.tobytes() for a in arrays)
