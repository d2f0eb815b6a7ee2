"""The accuracy the loss -> accuracy fit (infscale.fit.downstream) predicts for the selection:
each candidate's, from its predicted loss, and the fit's curve over the evaluated models' loss
range (paper Fig. 7). Written to results/select/accuracy.csv and accuracy_curve.csv."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from infscale.fit.downstream import predict_accuracy

CURVE_POINTS = 100  # points along the loss axis of the accuracy curve


def candidate_accuracy(selected: pd.DataFrame, params: Mapping[str, float]) -> pd.DataFrame:
    """Every candidate of selected.csv with its predicted loss and the accuracy the fit
    predicts at that loss: ``name, loss_pred, acc_pred``."""
    frame = selected[["name", "loss_pred"]].reset_index(drop=True)
    return frame.assign(acc_pred=predict_accuracy(params, frame["loss_pred"]))


def accuracy_curve(models: pd.DataFrame, params: Mapping[str, float]) -> pd.DataFrame:
    """The fit's accuracy at CURVE_POINTS losses spanning the evaluated models' (models.csv):
    ``loss, acc_pred``."""
    loss = np.linspace(models["loss"].min(), models["loss"].max(), CURVE_POINTS)
    return pd.DataFrame({"loss": loss, "acc_pred": predict_accuracy(params, loss)})
