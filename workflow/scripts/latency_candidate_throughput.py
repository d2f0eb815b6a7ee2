"""Snakemake script: every candidate's generation throughput at one batch size, interleaved
across candidates where latency.interleave says so, else one candidate loaded at a time."""

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
# latency.interleave: all candidates loaded and timed in turn; else one at a time in memory
# (twelve 1-2B candidates at once would not fit one GPU)
if snakemake.config["latency"]["interleave"]:
    results = measure_interleaved(items, protocol, ttft=False)
else:
    results = [r for item in items for r in measure_interleaved([item], protocol, ttft=False)]
table = throughput_rows(results)
write_csv(snakemake.output[0], table)
print(table.to_string())
