"""Snakemake script: every candidate's generation throughput at one batch size, interleaved."""

from infscale.io import write_csv
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import throughput_rows
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
items = [Item(Shape(**spec), protocol.batch_size) for spec in snakemake.params.shapes]
table = throughput_rows(measure_interleaved(items, protocol, ttft=False))
write_csv(snakemake.output[0], table)
print(table.to_string())
