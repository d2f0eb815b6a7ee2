"""Snakemake script: the law comparison table (forms x tie modes, the conditional law's included:
progressive extrapolation error, AIC, MSE, R², within-group Spearman)."""

from infscale.fit.compare import compare_laws
from infscale.io import log_output_to, read_csv, write_csv

log_output_to(snakemake.log[0])
table = compare_laws(read_csv(snakemake.input.points))
write_csv(snakemake.output[0], table)
print(table.to_string())
