"""Snakemake script: one latency sweep (paper Fig. 3), its shapes timed interleaved."""

from infscale.io import log_output_to, write_csv
from infscale.latency import Protocol, measure_interleaved, set_threads
from infscale.shapes import Shape
from infscale.sweeps import sweep_rows

log_output_to(snakemake.log[0])
set_threads(snakemake.threads)
settings = snakemake.params.protocol
protocol = Protocol.from_config(settings, seed=snakemake.params.seed)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
results = measure_interleaved(
    [(shape, protocol.batch_size) for shape in shapes],
    protocol,
    max_cv=settings["max_cv"],
    max_repeats=settings["max_repeats"],
)
table = sweep_rows(snakemake.wildcards.sweep, results)
write_csv(snakemake.output[0], table)
print(table.to_string())
