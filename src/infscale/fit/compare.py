"""The law comparison on any table of points (``infscale compare``; DESIGN.md has the contract):
which way of putting shape into the law fits and extrapolates.

Laws (the names ``--laws`` takes; the default is the contract's first three):

- ``chinchilla``: L = E + A·N^-alpha + B·D^-beta (no shape)
- ``inference``:  the paper's L = (E + A·N^-alpha + B·D^-beta)·(1 + epsilon·R^gamma)
- ``conditional``: the follow-up's law, Chinchilla's times a U-shaped width factor and an
  MLP-ratio factor (infscale.fit.conditional, whose fitters its rows use; a factor whose
  variable does not vary over the fit points is dropped, as in every conditional fit)
- ``inference-additive``: the paper's law with shape as its own additive term,
  E + A·N^-alpha + B·D^-beta + epsilon·R^gamma (the reducible loss does not scale with shape)
- ``conditional-additive``: the follow-up's additive variant, Chinchilla's plus the two factors

The additive variants are laws of their own here, not a column, so that the table keeps the
contract's key: one row per (law, tie) for the method asked for. Every law is fitted in every
tie mode (``all``: every exponent = alpha; ``alpha-beta``: gamma free; ``none``); a law without
gamma has the same free parameters under ``all`` and ``alpha-beta``, fitted once and reported
in both rows. ``lm`` is the paper's procedure (the follow-up's, LM from a Chinchilla fit, for
the conditional laws; it cannot fit ``inference-additive``, whose rows then carry an error);
``huber`` is Chinchilla's, from the same start grid for every law, so that only the law differs.
Either fits a less-tied form also from its special case's optimum and keeps the better
(infscale.fit.nested), so that no row reports a worse objective than the form it nests.

The table is made here: which laws can read the points, the points cut once into the fit set,
the test rows and the folds (infscale.fit.points.split), one row per (law, tie) and delta_aic;
a row's scores are infscale.fit.metrics' (fit_scores, test_scores, progressive,
bootstrap_intervals).

Columns (COLUMNS; the contract's first, then extras the report and select.law auto read):
n_params (free), n_fit (fit-set rows), fit_mse; test_mse, test_max_abs_err (|y - ŷ|) and
test_spearman (the mean within-group rank correlation: ranking the shapes of one size is what
selection needs) over the rows outside the fit set, empty when there are none; logo_rel_err,
the progressive extrapolation error (the follow-up's test): groups ordered by median N, for
each group after the first fit on every smaller group and predict it, the mean |y - ŷ|/y over
every predicted point (logo_max_rel_err the max; a fold with fewer rows than parameters, or
whose fit fails or predicts a non-finite loss, is skipped, counted in logo_skipped and
named in warnings). It uses every row, fit set or not: it
is its own split. aic = n·ln(RSS/n) + 2k over the fit set (Gaussian residuals); params is a
JSON object of every parameter (tied and dropped ones included), as FIT.json has them;
warnings a JSON list: signs of a degenerate fit (metrics.fit_warnings: a negative coefficient, E or
an exponent at its bound 0, a dropped term; a conditional factor dropped, and why), why each
empty metric is empty (a skipped fold and its reason, no test rows, no ranking), and the
numerical warnings raised, caught instead of
printed; error why the law did not run (a missing column, too few fit rows, a failed fit).
Extras: delta_aic (the row's aic less the table's lowest: every row is fitted on the same
points by the same method, so the difference ranks the laws), fit_r2, fit_spearman (on the fit
set), logo_max_rel_err, logo_folds, logo_skipped, and
with a bootstrap bootstrap_k, bootstrap_failed and params_ci95: a JSON object
{parameter: [2.5 %, 97.5 %]} from K refits on resamples of whole runs (the column ``run``;
without it, of rows), drawn with one seed for every row, as ``infscale fit --bootstrap`` draws
them and by its refit code (huber: warm-started at the full fit's optimum).
"""

from __future__ import annotations

import itertools
import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

import numpy as np

from infscale.errors import InputError
from infscale.fit import nested
from infscale.fit.core import METHODS, TIES, FitError, check_choice, free_params, numerical_warnings
from infscale.fit.core import table_columns as columns
from infscale.fit.law import LAWS, Law
from infscale.fit.metrics import bootstrap_intervals, fit_scores, progressive, test_scores
from infscale.fit.points import Points, Split, split, vocab_hint, with_shape_defaults
from infscale.shapes import PAPER_MULTIPLE_OF

if TYPE_CHECKING:  # pandas is imported where it is used: the CLI reads LAWS and starts fast
    import pandas as pd

DEFAULT_LAWS = ("chinchilla", "inference", "conditional")
CONTRACT_COLUMNS = [
    "law",
    "tie",
    "method",
    "n_params",
    "n_fit",
    "fit_mse",
    "test_mse",
    "test_max_abs_err",
    "test_spearman",
    "logo_rel_err",
    "aic",
    "params",
    "warnings",
    "error",
]
COLUMNS = [
    *CONTRACT_COLUMNS,
    "delta_aic",
    "fit_r2",
    "fit_spearman",
    "logo_max_rel_err",
    "logo_folds",
    "logo_skipped",
]
BOOTSTRAP_COLUMNS = ["bootstrap_k", "bootstrap_failed", "params_ci95"]
# How the worker processes of compare_laws(jobs > 1) start: forked on Linux (no re-import: a
# worker costs milliseconds, where the fits of a small table take about a second; numpy's
# OpenBLAS resets its threads across a fork), from a fork server elsewhere (macOS's system
# libraries are not fork-safe). A script that calls it with jobs > 1 off Linux needs the
# ``if __name__ == "__main__"`` guard.
START_METHOD = "fork" if sys.platform == "linux" else "forkserver"


def compare_laws(
    points: pd.DataFrame,
    law_names: Sequence[str] = DEFAULT_LAWS,
    method: str = "lm",
    *,
    fit_set: str | None = None,
    group_by: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    ties: Sequence[str] = TIES,
    vocab_size: int | None = None,
    multiple_of: int = PAPER_MULTIPLE_OF,
    jobs: int = 1,
) -> pd.DataFrame:
    """The comparison table (COLUMNS, + BOOTSTRAP_COLUMNS with ``bootstrap``), one row per
    (law, tie) (``ties``: the contract's every tie mode, fewer for the workflow's lm rows),
    fitted by ``method`` on the rows whose ``fit_set`` column is 1 (default: all).
    ``group_by`` names the size-group column (default ``size_group`` where present; without
    one there is no progressive extrapolation and Spearman is over all test rows).
    ``vocab_size`` and ``multiple_of`` stand in for missing vocab_size and ffn_hidden columns,
    as ``infscale params`` defaults them. A law that cannot run (a missing column, a fit set
    smaller than its parameter count, a failed fit) gets rows with the reason in ``error``, so
    that it never aborts the others; an InputError names bad input common to all of them
    (an unknown law, tie or method, a missing N, D or loss) or says why no law ran. ``jobs``
    processes fit the laws side by side (the table is the same)."""
    import pandas as pd

    unknown = [name for name in law_names if name not in LAWS]
    if unknown or not law_names:
        raise InputError(
            f"unknown law {', '.join(unknown) or '(none given)'} (--laws): "
            f"choose from {', '.join(LAWS)}"
        )
    check_choice("method", method, METHODS)
    chosen = [LAWS[name] for name in dict.fromkeys(law_names)]
    data, unreadable = _read_points(points, chosen, group_by, vocab_size, multiple_of)
    fit = np.ones(len(points), dtype=bool)
    if fit_set is not None:
        if fit_set not in points.columns:
            raise InputError(f"no column {fit_set} (--fit-set)")
        fit = (points[fit_set] == 1).to_numpy()
        if not fit.any():
            raise InputError(f"no row has {fit_set} = 1 (--fit-set)")
    parts = split(data, fit)
    for tie in ties:
        check_choice("tie", tie, TIES)
    if jobs > 1:
        runnable = [law.name for law in chosen if law.name not in unreadable]
        _fit_ahead(runnable, ties, method, parts, jobs)
    done: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    rows = []
    for law in chosen:
        for tie in ties:
            # Tie modes that free the same parameters of the law's family are one fit (a factor
            # the conditional law drops is dropped in every tie mode): one row, reported in each.
            key = (law.name, free_params(law.family, tie))
            if key not in done:
                reason = unreadable.get(law.name)
                done[key] = _row(law, tie, method, parts, reason, bootstrap, seed)
            rows.append(done[key] | {"tie": tie})
    table = pd.DataFrame(rows, columns=COLUMNS + (BOOTSTRAP_COLUMNS if bootstrap else []))
    table["delta_aic"] = table["aic"] - table["aic"].min()
    if table["error"].notna().all():
        first = table.iloc[0]
        raise InputError(
            f"no law ran; {first['law']} tie {first['tie']}: {first['error']}"
            + (f" (and {len(table) - 1} more row(s) failed)" if len(table) > 1 else "")
        )
    return table


def _read_points(
    points: pd.DataFrame,
    chosen: Sequence[Law],
    group_by: str | None,
    vocab_size: int | None,
    multiple_of: int,
) -> tuple[Points, dict[str, str]]:
    """The points with every input the ``chosen`` laws read, and {law: why it cannot read
    them}."""
    N, D, y = columns(points, ["N", "D", "loss"], "the comparison")
    shaped = with_shape_defaults(points, vocab_size, multiple_of)
    inputs: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for law in chosen:
        try:
            inputs |= law.read(shaped, ())
        except InputError as err:
            unreadable[law.name] = str(err) + vocab_hint(points, vocab_size, err)
    if group_by is not None and group_by not in points.columns:
        raise InputError(f"no column {group_by} (--group-by)")
    column = group_by or ("size_group" if "size_group" in points.columns else None)
    group = None if column is None else points[column].astype(str).to_numpy()
    runs = points["run"].astype(str).to_numpy() if "run" in points.columns else None
    return Points(N, D, y, groups=group, runs=runs, **inputs), unreadable


def n_params(name: str, tie: str, variables: Mapping[str, np.ndarray] | None = None) -> int:
    """How many parameters law ``name`` fits under ``tie`` (the conditional laws: less their
    dropped factors', all of them without ``variables``)."""
    points = Points(np.empty(0), np.empty(0), variables=variables)
    return len(LAWS[name].free(tie, points))


def predict(name: str, params: Mapping[str, float], N, D, R=None, variables=None) -> np.ndarray:
    """The law's loss; ``R`` is read by the inference laws, ``variables`` ({factor: values})
    by the conditional ones."""
    return LAWS[name].loss(params, Points(N, D, R=R, variables=variables))


def fit_params(name: str, tie: str, method: str, N, D, R, loss, variables=None) -> dict[str, float]:
    """The fitted parameters (every one of the law's, tied and dropped ones included)."""
    return LAWS[name].fit(tie, method, Points(N, D, loss, R=R, variables=variables))


def _row(
    law: Law,
    tie: str,
    method: str,
    parts: Split,
    unreadable: str | None,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """One (law, tie) row: the law's fit on the fit set, and its scores. A law that cannot run
    has the reason in ``error``: why it cannot read the table (``unreadable``), a fit set
    smaller than its free parameters, or its failed fit. ``warnings`` (a JSON list) says why
    each empty metric is empty and holds the numerical warnings raised on the way, caught
    rather than printed."""
    train = parts.train
    k = len(law.free(tie, train))
    row: dict[str, Any] = {"law": law.name, "method": method, "n_params": k, "n_fit": len(train)}
    reason = unreadable or (
        f"{len(train)} fit row(s) for the {k} free parameters: need at least {k}"
        if len(train) < k
        else None
    )
    if reason:
        return row | {"error": reason}
    notes: list[str] = []
    with numerical_warnings(notes):
        try:
            params = law.fit(tie, method, train)
        except FitError as err:
            row["error"] = " ".join(str(err).split())
        else:
            row["params"] = json.dumps(params)
            row |= fit_scores(law, params, train, k, notes)
            row |= test_scores(law, params, parts.test, notes)
            row |= progressive(law, tie, method, parts, notes)
            if bootstrap:
                row |= bootstrap_intervals(law, tie, method, train, params, bootstrap, seed, notes)
    return row | {"warnings": json.dumps(notes, ensure_ascii=False) if notes else None}


def _fit_ahead(
    names: Sequence[str], ties: Sequence[str], method: str, parts: Split, jobs: int
) -> None:
    """Fit every law in every tie mode on every point set the rows fit (the fit set, each
    fold's), ``jobs`` processes side by side, into the fit memo (infscale.fit.nested): the rows
    are then built as without, their fits memo hits. Each fit is a function of its points
    alone, so the table is the same. A task is one point set and a law with the laws that start
    from its optimum (Law.starts_from), which it then holds; the largest point sets go first,
    so that the last tasks to finish are short."""
    together: dict[str, list[str]] = {}
    for name in names:
        root = LAWS[name].starts_from
        together.setdefault(root if root in names else name, []).append(name)
    groups = [tuple(group) for group in together.values()]
    by_size = sorted([parts.train, *(fit for fit, _ in parts.folds)], key=len, reverse=True)
    tasks = [(group, points) for points in by_size for group in groups]
    workers = min(jobs, len(tasks))
    if workers < 2:
        return
    with ProcessPoolExecutor(workers, mp_context=get_context(START_METHOD)) as pool:
        fitted = pool.map(
            _fit_every_tie,
            *zip(*tasks, strict=True),
            itertools.repeat(tuple(ties)),
            itertools.repeat(method),
        )
        for entries in fitted:
            nested.remember(entries)


def _fit_every_tie(
    names: tuple[str, ...], points: Points, ties: tuple[str, ...], method: str
) -> dict[tuple, nested.Entry]:
    """A worker's task: the laws ``names`` fitted in every tie mode on ``points`` (those with
    fewer points than free parameters skipped, as the rows skip them); the memo's new entries.
    The warnings stay in the entries: the rows raise them again, and catch them."""
    known = set(nested.remembered())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for law, tie in itertools.product((LAWS[name] for name in names), ties):
            if len(points) >= len(law.free(tie, points)):
                with suppress(FitError):  # remembered too: the row reads the error from the memo
                    law.fit(tie, method, points)
    return nested.remembered(known)
