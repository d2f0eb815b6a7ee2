"""Snakemake script: the candidate table the selection reads (shape, N, D, latency).

Latency is measured (``select.latency_source: measure``), predicted by the latency model
(``predict``), or measured for a shortlist and predicted for the rest (``measure_top``); the
``latency_source`` column says which.
"""

from pathlib import Path

import pandas as pd

from infscale.grid import run_table
from infscale.io import log_output_to, read_json, write_csv
from infscale.latency.model import predict_latency

log_output_to(snakemake.log[0])
runs = run_table(snakemake.config)
model = read_json(snakemake.input.model[0]) if snakemake.input.model else None
measured = {Path(path).stem: path for path in snakemake.input.latency}
rows = []
for name in snakemake.params.candidates:
    run = runs[name]
    shape = run.shape
    if shape.label in measured:
        latency, source = read_json(measured[shape.label]), "measured"
    else:
        predicted = predict_latency(model, shape.d_model, shape.n_layers, shape.vocab_size)
        latency, source = {"median_s": float(predicted[0])}, "predicted"
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
            "latency_source": source,
        }
    )
table = pd.DataFrame(rows)
write_csv(snakemake.output[0], table)
print(table.to_string())
