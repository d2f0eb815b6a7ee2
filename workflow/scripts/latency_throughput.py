"""Snakemake script: tokens per second vs batch size (paper Fig. 4), batch sizes interleaved."""

from infscale.io import write_csv
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import throughput_rows
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
shape = Shape(**snakemake.params.shape)
items = [Item(shape, b, name=f"{shape.label}-b{b}") for b in snakemake.params.batch_sizes]
table = throughput_rows(measure_interleaved(items, protocol, ttft=False))
write_csv(snakemake.output[0], table)
print(table.to_string())
