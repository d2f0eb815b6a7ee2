"""Snakemake script: every grid point in one table, marked with the fit sets it belongs to."""

import pandas as pd

from infscale.fit.fitsets import mark_fit_sets
from infscale.io import read_csv, write_csv
from infscale.script import start_script

start_script(snakemake.log[0])
points = pd.concat([read_csv(path) for path in snakemake.input.points], ignore_index=True)
marked = mark_fit_sets(points, snakemake.params.sets)
write_csv(snakemake.output[0], marked)
print(marked.to_string())
