"""Snakemake script: the candidate table the selection reads (shape, N, D, latency, throughput).

Latency is measured (``select.latency_source: measure``), predicted by the latency model
(``predict``), or measured for a shortlist and predicted for the rest (``measure_top``); the
``latency_source`` column says which. Throughput is always measured (every candidate, in one
interleaved job), with the standard error of the log of its median time, by the same rule as
the winner's latencies (relative CV where the job had a reference shape), for the throughput
objective's band rule.
"""

from pathlib import Path

from infscale.grid import candidate_runs, grid_runs
from infscale.io import read_csv, read_json, write_csv
from infscale.script import start_script
from infscale.select.candidates import candidate_latency, candidate_table
from infscale.select.winner import measured_log_se

start_script(snakemake.log[0])
model = read_json(snakemake.input.model[0]) if snakemake.input.model else None
measured = {Path(path).stem: read_json(path)["median_s"] for path in snakemake.input.latency}
timed = read_csv(
    snakemake.input.throughput,
    required=["shape", "tokens_per_s", "cv", "relative_cv", "cv_basis", "trials"],
)
log_se = measured_log_se(timed)
runs = candidate_runs(snakemake.config)
table = candidate_table(
    runs,
    grid_runs(snakemake.config),
    candidate_latency(runs, measured, model),
    dict(zip(timed["shape"], zip(timed["tokens_per_s"], log_se, strict=True), strict=True)),
)
write_csv(snakemake.output[0], table)
print(table.to_string())
