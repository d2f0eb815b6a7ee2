"""Snakemake script: train one run (grid or candidate) and save model, log and points.

One process, or ``resources.gpus`` processes per node under torchrun (DDP or FSDP:
``train.parallel``) on ``resources.nodes`` nodes. Under the slurm executor with the plugin's
``mpi`` resource (``srun``) the training is its own job step, one torchrun per node with the c10d
rendezvous on the allocation's first host (train/launch.py). Exits 75 after writing a checkpoint
when SIGTERM/SIGUSR1 arrives; a rerun resumes from results/runs/<run>/checkpoints/.
"""

import os
import re
import sys
from pathlib import Path

from infscale.data.manifest import manifest_files
from infscale.grid import Run
from infscale.script import start_script
from infscale.train.exits import REQUEUE_EXIT
from infscale.train.launch import launch

# The job's own output (the SLURM job log): Snakemake's retry clears the rule log, so the line
# naming the step a signal saved is written here too.
job_output = os.dup(1)
start_script(snakemake.log[0])
params = snakemake.params
run = Run.from_dict(params.run)
nproc = max(1, int(snakemake.resources.get("gpus", 0) or 0))  # processes per node
nodes = int(snakemake.resources.get("nodes", 1) or 1)
mpi = snakemake.resources.get("mpi") or None  # e.g. "srun": the job step launches per node
checkpoints = Path(params.checkpoint_dir)
print(
    f"training {run.name}: {run.shape.label}, N={run.shape.n_params:,}, "
    f"tokens={run.total_tokens:,}, threads={snakemake.threads}, "
    f"processes={nproc} per node on {nodes} node(s), "
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
code = launch(spec, nproc, checkpoints.parent / "launch.json", nodes=nodes, mpi=mpi)
if code == REQUEUE_EXIT:
    saved = re.findall(r".*checkpoint written at step \d+.*", Path(snakemake.log[0]).read_text())
    note = (
        saved[-1] if saved else f"{run.name}: exit 75 after a signal; the log names no saved step"
    )
    os.write(job_output, f"{note}\n".encode())
sys.exit(code)
