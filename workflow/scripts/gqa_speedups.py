"""Snakemake script: the gqa sweep's throughput of each twin over the MHA shape's."""

from infscale.io import read_csv, write_csv
from infscale.latency.sweeps import gqa_speedups
from infscale.script import start_script

start_script(snakemake.log[0])
speedups = gqa_speedups(read_csv(snakemake.input[0]))
write_csv(snakemake.output[0], speedups)
print(speedups.to_string())
