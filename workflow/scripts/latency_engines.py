"""Snakemake script: the latency.engines sweep timed by HF generate and by vLLM (in the vLLM
environment), side by side, with the two engines' rank agreement and time ratio."""

from infscale.io import write_csv, write_json
from infscale.latency.engines import ENGINES, engine_table
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
shapes = [Shape(**spec) for spec in snakemake.params.shapes]
results = {}
for engine in ENGINES:
    settings = {**snakemake.params.protocol, "backend": engine}
    protocol = Protocol.from_config(settings, seed=snakemake.params.seed)
    results[engine] = measure_interleaved([Item(s, protocol.batch_size) for s in shapes], protocol)
table, summary = engine_table(shapes, results)
notes = results["vllm"][0]["engine_notes"]
write_csv(snakemake.output.table, table)
write_json(
    snakemake.output.summary,
    {**summary, "engine_notes": notes, "provenance": provenance(snakemake.config)},
)
print(table.to_string(index=False))
print(summary)
