"""Snakemake script: every fit's prediction of every point (the grid's and the trained
candidates'), the fit sets scored on them, and the rank correlation within each size group."""

import pandas as pd

from infscale.fit.predictions import (
    fit_key,
    fit_set_scores,
    predict_every_point,
    predictions_frame,
    spearman_table,
)
from infscale.io import read_csv, read_json, write_csv
from infscale.script import start_script

start_script(snakemake.log[0])
inp = snakemake.input
points = read_csv(inp.points)
trained_points = pd.concat([read_csv(path) for path in inp.trained_points], ignore_index=True)
fits = {fit_key(path, fit): fit for path in inp.fits for fit in [read_json(path)]}
predictions = predict_every_point(points, trained_points, fits)
scores = fit_set_scores(predictions, fits)
write_csv(snakemake.output.predictions, predictions_frame(predictions))
write_csv(snakemake.output.scores, scores)
write_csv(snakemake.output.spearman, spearman_table(predictions))
print(scores.to_string())
