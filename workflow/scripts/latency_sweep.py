"""Snakemake script: one latency sweep (paper Fig. 3, or gqa), its items timed interleaved."""

from infscale.io import write_csv
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import sweep_rows
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
items = [Item(**{**spec, "shape": Shape(**spec["shape"])}) for spec in snakemake.params.timed]
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
table = sweep_rows(snakemake.wildcards.sweep, measure_interleaved(items, protocol))
write_csv(snakemake.output[0], table)
print(table.to_string())
