"""Snakemake script: the accuracy the loss -> accuracy fit predicts for every candidate, and its
curve over the evaluated models' loss range."""

from infscale.io import read_csv, read_json, write_csv
from infscale.script import start_script
from infscale.select.accuracy import accuracy_curve, candidate_accuracy

start_script(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
params = read_json(inp.downstream)["params"]
write_csv(out.candidates, candidate_accuracy(read_csv(inp.selected), params))
write_csv(out.curve, accuracy_curve(read_csv(inp.models), params))
