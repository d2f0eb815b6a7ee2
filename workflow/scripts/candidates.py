"""Snakemake script: the candidate table the selection reads (shape, N, D, latency).

Latency is measured (``select.latency_source: measure``), predicted by the latency model
(``predict``), or measured for a shortlist and predicted for the rest (``measure_top``); the
``latency_source`` column says which.
"""

from pathlib import Path

from infscale.grid import candidate_runs, grid_runs
from infscale.io import log_output_to, read_json, write_csv
from infscale.select.candidates import candidate_latency, candidate_table

log_output_to(snakemake.log[0])
model = read_json(snakemake.input.model[0]) if snakemake.input.model else None
measured = {Path(path).stem: read_json(path)["median_s"] for path in snakemake.input.latency}
runs = candidate_runs(snakemake.config)
latency = candidate_latency(runs, measured, model)
table = candidate_table(runs, grid_runs(snakemake.config), latency)
write_csv(snakemake.output[0], table)
print(table.to_string())
