"""Snakemake script: the sweeps in one table, and what they show (R², ranking by R)."""

import pandas as pd

from infscale.io import read_csv, write_csv, write_json
from infscale.latency.sweeps import sweep_fits
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
table = pd.concat([read_csv(path) for path in snakemake.input], ignore_index=True)
fits = sweep_fits(table)
write_csv(snakemake.output.table, table)
write_json(snakemake.output.fits, {**fits, "provenance": provenance(snakemake.config)})
print(table.to_string())
print(fits)
