"""Snakemake script: every per-shape latency of the run, timed interleaved in one job."""

from infscale.io import log_output_to, write_json
from infscale.latency.measure import measure_shapes, set_threads, summary_line
from infscale.provenance import provenance
from infscale.shapes import Shape

log_output_to(snakemake.log[0])
set_threads(snakemake.threads)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
results = measure_shapes(shapes, snakemake.params.protocol, snakemake.params.seed)
for path, result in zip(snakemake.output, results, strict=True):
    write_json(path, {**result, "provenance": provenance(snakemake.config)})
    print(summary_line(result))
