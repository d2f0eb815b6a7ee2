"""The release pick (paper Fig. 6, step E): which trained candidate to release, decided by
evidence rather than by the third decimal of an accuracy.

The trained candidates are compared on average zero-shot accuracy. The *band* of a difference
between two models is its combined standard error, sqrt(se_a² + se_b²), a model's se of the
average being sqrt(Σ se_task²) / n_tasks (the tasks' documents are independent). A difference
within ``z`` bands is a tie, and a tie goes to the lower latency: the paper released Morph-1B
for being 1.8x faster at an accuracy equal to the baseline's. Where the eval JSONs carry the
smooth metric (infscale.evaluate.harness.SMOOTH, negative log-likelihood of the correct answer
per byte, lower is better), the models tied on accuracy are compared on it next, by the same
band rule, before latency decides.

Latency is a measurement too: two medians whose log ratio lies within ``timing_z``
(select.timing_z) combined standard errors (``latency_log_se``) are a tie, and among models
tied on latency as well the most accurate wins. Without that, two shapes of one depth, timed
1 % apart, would hand the release to whichever the machine's noise favoured in that run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.evaluate.harness import SMOOTH

# A difference within one standard error of the difference is a tie (the issue asked for one
# standard error: the candidates are a handful of models on a few hundred documents per task).
Z_TIE = 1.0
# What a model's eval JSON contributes to the comparison, as columns of the models table.
EVAL_COLUMNS = ("average", "average_stderr", SMOOTH, f"{SMOOTH}_stderr")
# The standard error of a median is about sqrt(pi / 2) times that of a mean (normal errors).
MEDIAN_SE = math.sqrt(math.pi / 2)
LOG_LATENCY = "log_latency"  # ln(latency_s), compared by the band rule with its stderr
VERDICTS = ("better", "tied", "worse")


def mean_stderr(stderrs: Iterable[float | None]) -> float:
    """The standard error of a plain mean of independent estimates with these standard errors:
    sqrt(Σ se²) / n; NaN when one is unknown."""
    values = [math.nan if se is None else float(se) for se in stderrs]
    if not values:
        return math.nan
    return math.sqrt(sum(se**2 for se in values)) / len(values)


def eval_summary(result: Mapping[str, Any]) -> dict[str, float]:
    """A model's average accuracy and smooth metric with their standard errors, from its eval
    JSON (``tasks: {name: {value, stderr, ...}}, average``, and the smooth metric's mean and
    stderr where the harness wrote them; NaN where absent)."""

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    return {
        "average": float(result["average"]),
        "average_stderr": mean_stderr(task["stderr"] for task in result["tasks"].values()),
        SMOOTH: number(result.get(SMOOTH)),
        f"{SMOOTH}_stderr": number(result.get(f"{SMOOTH}_stderr")),
    }


def latency_log_se(cv: ArrayLike, trials: ArrayLike) -> np.ndarray:
    """The standard error of the log of a median time from ``trials`` timings whose coefficient
    of variation is ``cv`` (to first order, the CV of a time is the sd of its log)."""
    return MEDIAN_SE * np.asarray(cv, dtype=float) / np.sqrt(np.asarray(trials, dtype=float))


def measured_log_se(timings: pd.DataFrame) -> np.ndarray:
    """:func:`latency_log_se` of each row of a latency or throughput table: its CV relative to
    the job's reference shape where it has one (``cv_basis`` relative), else its own CV, over
    its number of trials (column ``trials``, or the length of ``trials_s``)."""
    cv = timings["relative_cv"].where(timings["cv_basis"] == "relative", timings["cv"])
    trials = timings["trials"] if "trials" in timings else timings["trials_s"].map(len)
    return latency_log_se(cv.astype(float), trials)


def band(se_a: float, se_b: float) -> float:
    """The standard error of the difference of two independent estimates."""
    return math.hypot(se_a, se_b)


def tied(diff: float, width: float) -> bool:
    """Within the band; an unknown band (NaN) ties only equal values."""
    return abs(diff) <= (width if math.isfinite(width) else 0.0)


def _within(rows: pd.DataFrame, column: str, best: pd.Series, z: float) -> pd.DataFrame:
    """The rows whose ``column`` ties ``best``'s."""
    se = f"{column}_stderr"
    keep = [
        tied(row[column] - best[column], z * band(row[se], best[se])) for _, row in rows.iterrows()
    ]
    return rows[keep]


def choose_winner(
    trained: pd.DataFrame,
    selected: pd.DataFrame,
    baseline: str,
    z: float = Z_TIE,
    timing_z: float = Z_TIE,
) -> dict[str, Any]:
    """The winner among ``trained`` (one row per trained candidate: ``name, latency_s`` and the
    EVAL_COLUMNS, and ``latency_log_se``; the smooth ones and the latency's se may be absent),
    and how it compares with ``baseline``.

    The most accurate model and every model tied with it are the ``contenders``; if every
    contender has the smooth metric, only those tied with the lowest stay; of those, the
    fastest and those tied with it on latency stay (``latency_tied`` when more than one; an
    unknown se ties only equal times), and the most accurate of them wins (then the faster,
    then the name, so that row order never matters). ``decided_by`` says which step left
    one model: ``accuracy``, SMOOTH, ``latency``, or ``accuracy, tied on latency``. ``band``
    is z times the combined standard error of the two most accurate models (None with one).

    Against ``baseline``: speed-up = baseline latency / winner latency, the accuracy difference
    winner - baseline, its band (z · combined se) and the ``verdict`` (VERDICTS: outside the band
    either way, or within it). A baseline that was not trained has no accuracy (difference,
    band and verdict None) and its latency is the selection's (``selected``); one absent there
    too leaves the speed-up None.
    """
    if trained.empty:
        raise InputError("no trained candidate to choose from")
    rows = (
        trained.assign(
            **{c: trained.get(c, np.nan) for c in EVAL_COLUMNS},
            **{
                LOG_LATENCY: np.log(trained["latency_s"].astype(float)),
                f"{LOG_LATENCY}_stderr": trained.get("latency_log_se", np.nan),
            },
        )
        .astype({c: float for c in (*EVAL_COLUMNS, f"{LOG_LATENCY}_stderr")})
        # by accuracy, then name: what rests on measured times is decided below, not by order
        .sort_values(["average", "name"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    top = rows.iloc[0]
    contenders = _within(rows, "average", top, z)
    left, decided_by = contenders, "accuracy"
    if len(left) > 1 and left[SMOOTH].notna().all():
        left, decided_by = _within(left, SMOOTH, left.loc[left[SMOOTH].idxmin()], z), SMOOTH
    if len(left) > 1:  # the same band rule on the log of the times
        fastest = left.sort_values(["latency_s", "name"], kind="stable").iloc[0]
        left = _within(left, LOG_LATENCY, fastest, timing_z)
        decided_by = "latency" if len(left) == 1 else "accuracy, tied on latency"
    best = left.sort_values(
        ["average", "latency_s", "name"], ascending=[False, True, True], kind="stable"
    ).iloc[0]

    base = rows[rows["name"] == baseline]
    trained_baseline = not base.empty
    if not trained_baseline:
        base = selected[selected["name"] == baseline]
    base_latency = float(base["latency_s"].iloc[0]) if len(base) else None
    diff = diff_band = verdict = None
    if trained_baseline:
        b = base.iloc[0]
        diff = float(best["average"] - b["average"])
        diff_band = z * band(best["average_stderr"], b["average_stderr"])
        verdict = "tied" if tied(diff, diff_band) else "better" if diff > 0 else "worse"
    return {
        "winner": str(best["name"]),
        "accuracy": float(best["average"]),
        "accuracy_stderr": _number(best["average_stderr"]),
        SMOOTH: _number(best[SMOOTH]),
        "latency_s": float(best["latency_s"]),
        "decided_by": decided_by,
        "contenders": [str(name) for name in contenders["name"]],
        "latency_tied": [str(name) for name in left["name"]] if len(left) > 1 else [],
        "z": z,
        "band": _number(z * band(rows["average_stderr"].iloc[0], rows["average_stderr"].iloc[1]))
        if len(rows) > 1
        else None,
        "baseline": baseline,
        "baseline_trained": trained_baseline,
        "baseline_accuracy": float(base["average"].iloc[0]) if trained_baseline else None,
        "baseline_latency_s": base_latency,
        "speedup": base_latency / float(best["latency_s"]) if base_latency is not None else None,
        "accuracy_diff": diff,
        "accuracy_diff_band": _number(diff_band),
        "verdict": verdict,
    }


def _number(value: float | None) -> float | None:
    """A float, or None for what is unknown (None or NaN), as the winner's JSON-able dict says."""
    return None if value is None or np.isnan(value) else float(value)
