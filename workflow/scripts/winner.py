"""Snakemake script: the evaluated models (grid runs and trained candidates, with accuracy,
latency and the accuracy-latency Pareto front), the training FLOPs they cost, and the release
pick among the trained candidates, against the baseline."""

from pathlib import Path

import pandas as pd

from infscale.grid import CANDIDATES
from infscale.io import read_csv, read_json, write_csv, write_json
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.select.models import (
    accuracy_table,
    evaluated_models,
    trained_candidates,
    training_flops,
)
from infscale.select.winner import choose_winner

start_script(snakemake.log[0])
inp, params = snakemake.input, snakemake.params
accuracy = accuracy_table(
    {Path(path).stem: read_json(path) for path in inp.grid_eval}
    | {f"{CANDIDATES}/{Path(path).stem}": read_json(path) for path in inp.trained_eval}
)
selected = read_csv(inp.selected)
models = evaluated_models(
    read_csv(inp.points),
    pd.concat([read_csv(path) for path in inp.trained_points], ignore_index=True),
    accuracy,
    pd.DataFrame([read_json(path) for path in inp.latency]),
    selected,
)
winner = choose_winner(
    trained_candidates(models), selected, params.baseline, timing_z=params.timing_z
)
write_csv(snakemake.output.models, models)
write_json(
    snakemake.output.flops, {**training_flops(models), "provenance": provenance(snakemake.config)}
)
write_json(snakemake.output.winner, {**winner, "provenance": provenance(snakemake.config)})
print(models.to_string())
print(f"winner: {winner['winner']} ({winner['decided_by']}); verdict: {winner['verdict']}")
