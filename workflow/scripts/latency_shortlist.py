"""Snakemake script (select.latency_source: measure_top): predict every candidate's latency and
loss, and mark the top ``select.measure_top`` for measurement."""

import pandas as pd

from infscale.fit.laws import predict_points
from infscale.grid import run_table
from infscale.io import log_output_to, read_json, write_csv
from infscale.latency.model import predict_latency, shortlist

log_output_to(snakemake.log[0])
runs = [run_table(snakemake.config)[name] for name in snakemake.params.candidates]
model, fit = read_json(snakemake.input.model), read_json(snakemake.input.fit)
table = pd.DataFrame(
    {
        "name": [run.variant for run in runs],
        "shape": [run.shape.label for run in runs],
        "d_model": [run.shape.d_model for run in runs],
        "n_layers": [run.shape.n_layers for run in runs],
        "n_heads": [run.shape.n_heads for run in runs],
        "vocab_size": [run.shape.vocab_size for run in runs],
        "ffn_hidden": [run.shape.ffn_hidden for run in runs],
        "N": [run.shape.n_params for run in runs],
        "D": [run.total_tokens for run in runs],
    }
)
table["latency_pred_s"] = predict_latency(
    model, table["d_model"], table["n_layers"], runs[0].shape.vocab_size
)
select = snakemake.config["select"]
loss = predict_points(fit, table)
table = shortlist(
    table,
    loss,
    snakemake.params.n,
    max_params=select["max_params"],
    max_tokens=select["max_tokens"],
    max_latency=select["max_latency_s"],
    margin=model["loo_max_rel_err"],
)
write_csv(snakemake.output[0], table)
print(table.to_string())
