"""Every fit's prediction of every point, and the fit sets scored on them (paper Figs 8-10).

The test set is the paper's: every grid point and the trained candidates' points.
results/fit/predictions.csv holds the predictions, one block of rows per fit (``law``,
``fit_set``); results/fit/fit_sets.csv the scores, one row per fit; results/fit/spearman.csv
the rank correlation within each size group.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from infscale.fit.laws import predict_points, predict_points_interval
from infscale.fit.metrics import metrics, spearman_by_group
from infscale.grid import CANDIDATES

FitKey = tuple[str, str]  # (law, fit set)
BAND = ("loss_pred_lo", "loss_pred_hi")  # the bootstrap's 95% band, where the fit has one


def fit_key(path: str | Path, fit: Mapping[str, Any]) -> FitKey:
    """A fit's key from its file, results/fit/<law>-<fit set>.json, and its JSON."""
    return str(fit["law"]), Path(path).stem.split("-", 1)[1]


def predict_every_point(
    points: pd.DataFrame, trained_points: pd.DataFrame, fits: Mapping[FitKey, dict[str, Any]]
) -> dict[FitKey, pd.DataFrame]:
    """Every fit's prediction of every point (the grid's and the trained candidates'), with
    the bootstrap's 95% band where the fit has one."""
    tested = pd.concat([points, trained_points], ignore_index=True)
    out = {}
    for key, fit in fits.items():
        frame = tested.assign(loss_pred=predict_points(fit, tested))
        band = predict_points_interval(fit, tested)
        if band is not None:
            frame = frame.assign(**dict(zip(BAND, band, strict=True)))
        out[key] = frame
    return out


def predictions_frame(predictions: Mapping[FitKey, pd.DataFrame]) -> pd.DataFrame:
    """The predictions as one table (predictions.csv): ``law, fit_set``, then each point's
    columns and its prediction; the band's columns empty for a fit without one."""
    return pd.concat(
        [
            frame.assign(law=law, fit_set=fit_set)[
                ["law", "fit_set", *[c for c in frame.columns if c not in ("law", "fit_set")]]
            ]
            for (law, fit_set), frame in predictions.items()
        ],
        ignore_index=True,
    )


def by_fit(frame: pd.DataFrame) -> dict[FitKey, pd.DataFrame]:
    """predictions.csv back as {(law, fit set): that fit's rows}, in the table's order, each
    without the ``law, fit_set`` columns and without a band it does not have."""
    out = {}
    for (law, fit_set), rows in frame.groupby(["law", "fit_set"], sort=False):
        rows = rows.drop(columns=["law", "fit_set"]).reset_index(drop=True)
        out[(str(law), str(fit_set))] = rows.drop(
            columns=[c for c in BAND if c in rows and rows[c].isna().all()]
        )
    return out


def fit_set_scores(
    predictions: Mapping[FitKey, pd.DataFrame], fits: Mapping[FitKey, dict[str, Any]]
) -> pd.DataFrame:
    """The fit-set ablation (fit_sets.csv): each law fitted on each set, scored on its own
    points (``fit_*``, from the fit), on every point (``test_*``; Spearman within each size
    group) and on the trained candidates alone (``candidates_*``: the largest extrapolation)."""
    rows = []
    for (law, fit_set), frame in predictions.items():
        fit = fits[(law, fit_set)]
        test = metrics(frame["loss"], frame["loss_pred"], frame["size_group"].astype(str))
        held = frame[frame["size_group"] == CANDIDATES]
        candidates = metrics(held["loss"], held["loss_pred"]) if len(held) else dict.fromkeys(test)
        rows.append(
            {
                "law": law,
                "fit_set": fit_set,
                "n_fit": fit["n_points"],
                "fit_mse": fit["metrics"]["mse"],
                "fit_r2": fit["metrics"]["r2"],
                "n_test": len(frame),
                "test_mse": test["mse"],
                "test_r2": test["r2"],
                "test_max_rel_err": test["max_rel_err"],
                "test_spearman": test["spearman"],
                "candidates_max_rel_err": candidates["max_rel_err"],
                "candidates_spearman": candidates["spearman"],
                "warnings": len(fit.get("warnings", [])),
            }
        )
    return pd.DataFrame(rows)


def spearman_table(predictions: Mapping[FitKey, pd.DataFrame]) -> pd.DataFrame:
    """Each fit's Spearman correlation of predicted with actual loss within each size group
    (spearman.csv): ``law, fit_set, size_group, spearman``; ``spearman`` empty where it is
    undefined (one point, or constant loss)."""
    rows = [
        {"law": law, "fit_set": fit_set, "size_group": group, "spearman": rho}
        for (law, fit_set), frame in predictions.items()
        for group, rho in spearman_by_group(
            frame["loss"], frame["loss_pred"], frame["size_group"]
        ).items()
    ]
    return pd.DataFrame(rows, columns=["law", "fit_set", "size_group", "spearman"])
