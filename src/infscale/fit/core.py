"""What every law shares: the parameter names, the tie modes, the two base formulas, the
checks of input arrays and the error a failed fit raises. Depends on no law: the families
(infscale.fit.paper, infscale.fit.conditional) and the registry (infscale.fit.law) build on it.
numpy only, so that the CLI starts fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

PARAMS: dict[str, tuple[str, ...]] = {
    "chinchilla": ("A", "B", "E", "alpha", "beta"),
    "inference": ("A", "B", "E", "alpha", "beta", "gamma", "epsilon"),
    "conditional": ("A", "B", "E", "alpha", "beta", "a1", "a2", "b1", "b2"),
}
# Tie mode -> the exponents that take alpha's value (one a law lacks is ignored).
TIED: dict[str, tuple[str, ...]] = {
    "all": ("beta", "gamma"),
    "alpha-beta": ("beta",),
    "none": (),
}
# The parameter families: a FIT.json's ``law`` (infscale.fit.law.LAWS names each variant).
FAMILIES = tuple(PARAMS)
TIES = tuple(TIED)
METHODS = ("lm", "huber", "vp")  # the optimisers (infscale.fit.law.Law.fit)


class FitError(InputError):
    """The optimiser found no usable fit: a property of the data, so reported as bad input."""


def free_params(law: str, tie: str) -> tuple[str, ...]:
    """The parameters an optimiser searches over for ``law`` under ``tie``, in PARAMS order."""
    check_choice("law", law, FAMILIES)
    check_choice("tie", tie, TIES)
    return tuple(p for p in PARAMS[law] if p not in TIED[tie])


def positions(law: str, tie: str) -> dict[str, int]:
    """Where each of the law's parameters sits in the free vector (tied exponents: at alpha)."""
    free = free_params(law, tie)
    return {p: free.index("alpha" if p in TIED[tie] else p) for p in PARAMS[law]}


def expand(law: str, tie: str, theta: ArrayLike) -> dict[str, float]:
    """All of the law's parameters from a free-parameter vector."""
    theta = np.ravel(theta)
    if len(theta) != len(free_params(law, tie)):
        raise ValueError(f"{len(theta)} values for {free_params(law, tie)}")
    return {p: float(theta[j]) for p, j in positions(law, tie).items()}


def chinchilla_loss(
    N: np.ndarray, D: np.ndarray, A: float, B: float, E: float, alpha: float, beta: float
) -> np.ndarray:
    return E + A * N**-alpha + B * D**-beta


def inference_loss(
    N: np.ndarray,
    D: np.ndarray,
    R: np.ndarray,
    A: float,
    B: float,
    E: float,
    alpha: float,
    beta: float,
    gamma: float,
    epsilon: float,
) -> np.ndarray:
    return chinchilla_loss(N, D, A, B, E, alpha, beta) * (1 + epsilon * R**gamma)


def table_columns(frame: pd.DataFrame, names: Sequence[str], reader: str) -> list[np.ndarray]:
    """The named columns as positive float arrays; InputError naming a missing one (which
    ``reader`` needs) or a bad value."""
    import pandas as pd

    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} ({reader} needs them)")
    return [positive(f"column {c}", pd.to_numeric(frame[c], errors="coerce")) for c in names]


def positive(name: str, values: ArrayLike) -> np.ndarray:
    """``values`` as a float array; an InputError naming ``name`` if any is not > 0 and finite."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not all numbers") from None
    bad = ~(np.isfinite(array) & (array > 0))
    if bad.any():
        raise InputError(
            f"{name}: {int(bad.sum())} value(s) not positive and finite (first: {array[bad][0]:g})"
        )
    return array


def log_coefficient(value: float) -> float:
    """log of a coefficient the huber method fits as a log: one that underflowed to 0 (its
    term vanished, log far below -700) maps to the smallest normal float's log, where its term
    is still 0 to double precision; a negative one (an lm fit's) to nan."""
    return float(np.log(value)) if value > 0 else (LOG_TINY if value == 0 else float("nan"))


LOG_TINY = float(np.log(np.finfo(float).tiny))


@contextmanager
def numerical_warnings(into: list[str]) -> Iterator[None]:
    """Catch the warnings (numpy's overflow, scipy's) raised inside into ``into``, one line
    each and each once, rather than printing them: a fit's reader finds them in its row."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        line = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if line not in into:
            into.append(line)


def check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
