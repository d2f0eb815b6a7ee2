"""Snakemake script: the candidate table the selection reads (shape, N, D, measured latency)."""

import pandas as pd

from infscale.grid import run_table
from infscale.io import log_output_to, read_json, write_csv

log_output_to(snakemake.log[0])
runs = run_table(snakemake.config)
rows = []
for name, path in zip(snakemake.params.candidates, snakemake.input.latency, strict=True):
    run, latency = runs[name], read_json(path)
    rows.append(
        {
            "name": run.variant,
            "d_model": run.shape.d_model,
            "n_layers": run.shape.n_layers,
            "n_heads": run.shape.n_heads,
            "N": run.shape.n_params,
            "D": run.total_tokens,
            "R": run.shape.aspect_ratio,
            "latency_s": latency["median_s"],
        }
    )
table = pd.DataFrame(rows)
write_csv(snakemake.output[0], table)
print(table.to_string())
