"""Snakemake script: every per-shape latency of the run, timed interleaved in one job."""

from infscale.io import log_output_to, write_json
from infscale.latency import Protocol, measure_interleaved, set_threads, summary_line
from infscale.provenance import provenance
from infscale.shapes import Shape

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
for path, result in zip(snakemake.output, results, strict=True):
    write_json(path, {**result, "provenance": provenance(snakemake.config)})
    print(summary_line(result))
