"""Snakemake script: train one run (grid or candidate) and save model, log and points.

One process, or ``resources.gpus`` processes under torchrun (DDP or FSDP: ``train.parallel``).
Exits 75 after writing a checkpoint when SIGTERM/SIGUSR1 arrives; a rerun resumes from
results/runs/<run>/checkpoints/.
"""

import sys
from pathlib import Path

import torch

from infscale.grid import Run
from infscale.io import log_output_to
from infscale.train.launch import launch

log_output_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
params = snakemake.params
run = Run.from_dict(params.run)
nproc = max(1, int(snakemake.resources.get("gpus", 0) or 0))
checkpoints = Path(params.checkpoint_dir)
print(
    f"training {run.name}: {run.shape.label}, N={run.shape.n_params:,}, "
    f"tokens={run.total_tokens:,}, threads={snakemake.threads}, processes={nproc}, "
    f"norm={params.norm}, checkpoints in {checkpoints}",
    flush=True,
)
spec = {
    "run": params.run,
    "train": snakemake.input.train,
    "val": snakemake.input.val,
    "tokenizer": snakemake.input.tokenizer,
    "cfg": dict(params.train),
    "max_position": params.seq_len,
    "rope_theta": params.rope_theta,
    "norm": params.norm,
    "log_path": snakemake.output.steps,
    "checkpoint_dir": str(checkpoints),
    "model_out": snakemake.output.model,
    "points_out": snakemake.output.points,
    "threads": snakemake.threads,
}
sys.exit(launch(spec, nproc, checkpoints.parent / "launch.json"))
