"""Snakemake script (select.latency_source: measure_top): predict every candidate's latency and
loss, and mark the best few within the budgets for measurement."""

from infscale.fit.laws import predict_points
from infscale.grid import grid_runs, run_table
from infscale.io import read_json, write_csv
from infscale.script import start_script
from infscale.select.candidates import budgets, candidate_latency, candidate_table
from infscale.select.shortlist import shortlist, shortlist_size

start_script(snakemake.log[0])
config = snakemake.config
runs = [run_table(config)[name] for name in snakemake.params.candidates]
model, fit = read_json(snakemake.input.model), read_json(snakemake.input.fit)
table = candidate_table(runs, grid_runs(config), candidate_latency(runs, {}, model))
table = shortlist(
    table,
    predict_points(fit, table),
    shortlist_size(config["select"]),
    **budgets(config["select"], table),
    margin=model["loo_max_rel_err"],
)
write_csv(snakemake.output[0], table)
print(table.to_string())
