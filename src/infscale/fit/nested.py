"""The nested start, written once for every law and method: a less-tied form is also fitted
from the optimum of the tie mode it nests, and the better objective is kept."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Mapping

import numpy as np

from infscale.fit.core import FitError

# Tie mode -> the tie mode it nests (its special case: all ⊂ alpha-beta ⊂ none).
NESTS: dict[str, str] = {"none": "alpha-beta", "alpha-beta": "all"}
NESTED_KEPT = 256  # fits remembered by fit_nested: a comparison asks for each tied form again
# memo -> (the fit or its error, the warnings its fitting raised: a caller that hits the memo
# gets them again, so its row still names them)
Entry = tuple[dict[str, float] | FitError, list[warnings.WarningMessage]]
_NESTED: dict[tuple, Entry] = {}


def remembered(besides: Collection[tuple] = ()) -> dict[tuple, Entry]:
    """The memo's entries but those keyed in ``besides``: what a worker process fitted, for its
    parent to :func:`remember`."""
    return {memo: entry for memo, entry in _NESTED.items() if memo not in besides}


def remember(entries: Mapping[tuple, Entry]) -> None:
    """Take fits made in another process into the memo: the next call for them is a hit."""
    for memo, entry in entries.items():
        if memo not in _NESTED and len(_NESTED) >= NESTED_KEPT:
            del _NESTED[next(iter(_NESTED))]
        _NESTED[memo] = entry


def fit_nested(
    tie: str,
    key: tuple,
    free: Callable[[str], tuple[str, ...]],
    fit: Callable[[str, Mapping[str, float] | None], dict[str, float]],
    objective: Callable[[str, Mapping[str, float]], float],
) -> dict[str, float]:
    """The fit under ``tie`` with the lowest ``objective`` of: ``fit(tie, None)`` (the method's
    own starts), the fit of the tie mode it nests (NESTS, by this function: the special case is
    a point of this form) and ``fit(tie, that fit)``. A less-tied form's optimum can never be
    worse than its special case's (docs/facts.md, "Nested forms"); one that reported
    worse would have failed to converge. ``free(tie)``: the free parameters (a tie mode that
    frees none more is its special case's fit); ``key`` names the law, method and points for
    the memo. FitError when no candidate has a finite objective."""
    more = NESTS.get(tie)
    if more is not None and free(more) == free(tie):
        return fit_nested(more, key, free, fit, objective)
    memo = (*key, tie)
    if memo not in _NESTED:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            found = _fit_nested(tie, more, key, free, fit, objective)
        if len(_NESTED) >= NESTED_KEPT:
            del _NESTED[next(iter(_NESTED))]
        _NESTED[memo] = (found, raised)
    found, raised = _NESTED[memo]
    for w in raised:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if isinstance(found, FitError):
        raise found
    return dict(found)


def _fit_nested(
    tie: str,
    more: str | None,
    key: tuple,
    free: Callable[[str], tuple[str, ...]],
    fit: Callable[[str, Mapping[str, float] | None], dict[str, float]],
    objective: Callable[[str, Mapping[str, float]], float],
) -> dict[str, float] | FitError:
    """fit_nested's work for one memo entry: the best candidate, or the error to raise."""
    candidates: list[tuple[float, dict[str, float]]] = []
    errors: list[FitError] = []

    def attempt(start: Mapping[str, float] | None) -> None:
        try:
            params = fit(tie, start)
        except FitError as err:
            errors.append(err)
            return
        candidates.append((objective(tie, params), params))

    attempt(None)
    if more is not None:
        try:
            tied = fit_nested(more, key, free, fit, objective)
        except FitError:
            tied = None
        if tied is not None:
            candidates.append((objective(tie, tied), tied))
            attempt(tied)
    finite = [c for c in candidates if np.isfinite(c[0])]
    if finite:
        return min(finite, key=lambda c: c[0])[1]
    return errors[0] if errors else FitError("no fit reached a finite objective")
