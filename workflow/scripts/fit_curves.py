"""Snakemake script: the curves the fitted laws draw on the selection's fit set (the IsoFLOP
curves, the compute-optimal frontier, the loss along R) and every point's training compute."""

import pandas as pd

from infscale.fit.curves import (
    compute_points,
    frontier_table,
    isoflop_table,
    ratio_fit,
    ratio_table,
)
from infscale.fit.predictions import fit_key
from infscale.io import read_csv, read_json, write_csv
from infscale.script import start_script

start_script(snakemake.log[0])
inp, out, fit_set = snakemake.input, snakemake.output, snakemake.params.fit_set

points = read_csv(inp.points)
trained_points = pd.concat([read_csv(path) for path in inp.trained_points], ignore_index=True)
every_point = pd.concat([points, trained_points], ignore_index=True)  # the test set
fits = {fit_key(path, fit): fit for path in inp.fits for fit in [read_json(path)]}
on_set = {law: fit for (law, s), fit in fits.items() if s == fit_set}
N, D, ratio = every_point["N"], every_point["D"], float(every_point["R"].median())

write_csv(out.isoflop, isoflop_table(on_set, N, D, ratio))
write_csv(out.frontier, frontier_table(on_set["chinchilla"], N, D))
write_csv(out.ratio, ratio_table(points, ratio_fit(read_json(inp.chosen), on_set["inference"])))
write_csv(out.points, compute_points(every_point))
