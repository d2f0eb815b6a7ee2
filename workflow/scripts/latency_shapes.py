"""Snakemake script: per-shape latency JSONs, every shape of the job timed interleaved (one shape
where latency.interleave is off)."""

from infscale.io import write_json
from infscale.latency.measure import measure_shapes, set_threads, summary_line
from infscale.latency.protocol import Protocol
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
results = measure_shapes(shapes, protocol)
for path, result in zip(snakemake.output, results, strict=True):
    write_json(path, {**result, "provenance": provenance(snakemake.config)})
    print(summary_line(result))
