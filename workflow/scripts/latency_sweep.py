"""Snakemake script: one latency sweep (paper Fig. 3), its shapes timed interleaved."""

from infscale.io import log_output_to, write_csv
from infscale.latency.measure import measure_shapes, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import sweep_rows
from infscale.shapes import Shape

log_output_to(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
table = sweep_rows(snakemake.wildcards.sweep, measure_shapes(shapes, protocol))
write_csv(snakemake.output[0], table)
print(table.to_string())
