"""Snakemake script: the law comparison table (forms x tie modes: LOGO error, AIC, MSE, R²)."""

from infscale.fit.compare import compare_laws
from infscale.io import log_output_to, read_csv, write_csv

log_output_to(snakemake.log[0])
table = compare_laws(read_csv(snakemake.input.points))
write_csv(snakemake.output[0], table)
print(table.to_string())
