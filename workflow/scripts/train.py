"""Snakemake script: train one run (grid or candidate) and save model, log and points."""

import torch
from transformers import AutoTokenizer

from infscale.grid import Run
from infscale.io import atomic_write_dir, log_output_to, write_csv
from infscale.tokens import TokenWindows
from infscale.train import train_run

log_output_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
params = snakemake.params
run = Run.from_dict(params.run)
train, val = TokenWindows(snakemake.input.train), TokenWindows(snakemake.input.val)
print(
    f"training {run.name}: {run.shape.label}, N={run.shape.n_params:,}, "
    f"tokens={run.total_tokens:,}, threads={snakemake.threads}"
)
model, points = train_run(
    run,
    train,
    val,
    params.train,
    max_position=params.seq_len,
    rope_theta=params.rope_theta,
    log_path=snakemake.output.steps,
)


def save_model(tmp):
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(snakemake.input.tokenizer).save_pretrained(tmp)


atomic_write_dir(snakemake.output.model, save_model)
write_csv(snakemake.output.points, points)
print(points.to_string())
