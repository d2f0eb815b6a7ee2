"""Snakemake script: fit the latency model on every measured shape; write model.json."""

import pandas as pd

from infscale.io import read_csv, read_json, write_json
from infscale.latency.model import fit_latency_model, measured_table
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
records = [read_json(path) for path in snakemake.input.measured]
sweeps = read_csv(snakemake.input.sweeps, required=["d_model", "n_layers", "vocab_size"])
table = pd.concat([measured_table(records), measured_table(sweeps)], ignore_index=True)
model = fit_latency_model(table)
write_json(snakemake.output[0], {**model, "provenance": provenance(snakemake.config)})
print(pd.DataFrame(model["loo"]).to_string())
print(f"leave-one-out median relative error {model['loo_median_rel_err']:.3f}")
