"""Snakemake script: every trained candidate timed from its checkpoint beside a random-init twin
of its architecture, all interleaved in one job; trained.csv."""

from pathlib import Path

from infscale.io import write_csv
from infscale.latency.measure import set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.trained import measure_trained
from infscale.script import start_script
from infscale.shapes import Shape

start_script(snakemake.log[0])
set_threads(snakemake.config["latency"]["threads"] or snakemake.threads)
protocol = Protocol.from_config(snakemake.params.protocol, seed=snakemake.params.seed)
shapes = snakemake.params.shapes
checkpoints = {  # results/runs/candidates/{name}/model
    Path(path).parent.name: (Shape(**shapes[Path(path).parent.name]), path)
    for path in snakemake.input
}
table = measure_trained(checkpoints, protocol)
write_csv(snakemake.output[0], table)
print(table.to_string())
