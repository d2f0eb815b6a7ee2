"""Snakemake script: every candidate's generation throughput under latency.throughput_protocol
(each batch size the mean of its runs), interleaved across candidates and batch sizes where
latency.interleave says so, else one candidate loaded at a time; one row per candidate at its
best batch size, and every batch size in a second table."""

from infscale.io import write_csv
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.throughput import at_saturation, by_batch
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
items = [Item(shape, batch) for shape in shapes for batch in snakemake.params.batch_sizes]
# latency.interleave: all candidates loaded and timed in turn; else one at a time in memory
# (twelve 1-2B candidates at once would not fit one GPU)
if snakemake.config["latency"]["interleave"]:
    results = measure_interleaved(items, protocol, ttft=False)
else:
    results = [
        r
        for shape in shapes
        for r in measure_interleaved([i for i in items if i.shape == shape], protocol, ttft=False)
    ]
batches = by_batch(results)
table = at_saturation(batches)
write_csv(snakemake.output.batches, batches)
write_csv(snakemake.output.table, table)
print(table.to_string())
for _, row in table[~table["saturated"]].iterrows():
    print(
        f"{row['shape']}: throughput still rising at batch {row['batch_size']} "
        "(not saturated): add larger latency.throughput_protocol.batch_sizes"
    )
