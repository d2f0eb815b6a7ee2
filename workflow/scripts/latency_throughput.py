"""Snakemake script: tokens per second vs batch size (paper Fig. 4), batch sizes interleaved."""

from infscale.io import log_output_to, write_csv
from infscale.latency.measure import Protocol, measure_interleaved, set_threads
from infscale.latency.sweeps import throughput_rows
from infscale.shapes import Shape

log_output_to(snakemake.log[0])
set_threads(snakemake.threads)
settings = snakemake.params.protocol
protocol = Protocol.from_config(settings, seed=snakemake.params.seed)
shape = Shape(**snakemake.params.shape)
results = measure_interleaved(
    [(shape, batch) for batch in snakemake.params.batch_sizes],
    protocol,
    max_cv=settings["max_cv"],
    max_repeats=settings["max_repeats"],
    ttft=False,
)
table = throughput_rows(results)
write_csv(snakemake.output[0], table)
print(table.to_string())
