"""Snakemake script: train one run (grid or candidate) and save model, log and points.

One process, or ``resources.gpus`` processes under torchrun (DDP or FSDP: ``train.parallel``).
Exits 75 after writing a checkpoint when SIGTERM/SIGUSR1 arrives; a rerun resumes from
results/runs/<run>/checkpoints/.
"""

import sys
from pathlib import Path

import torch

from infscale.data.manifest import manifest_files
from infscale.grid import Run
from infscale.script import start_script
from infscale.train.launch import launch

start_script(snakemake.log[0])
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
data = manifest_files(snakemake.input.manifest)
spec = {
    "run": params.run,
    "train": data["train"],
    "val": data["val"],
    "tokenizer": data["tokenizer"],
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
