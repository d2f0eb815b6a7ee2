"""One training job, in one process or in several under ``torchrun`` (DDP or FSDP).

A job is described by a plain JSON-able *spec* (the run, data files, train config, output paths).
:func:`launch` runs it in this process when one process is asked for, else starts
``python -m torch.distributed.run --standalone --nproc-per-node N -m infscale.train.launch SPEC``;
every rank then calls :func:`run_job`, which sets up the process group (NCCL on GPUs, gloo on CPU),
trains, and lets rank 0 write the outputs. SIGTERM/SIGUSR1 sent to the launcher are passed to
torchrun as SIGTERM (which it forwards to the workers); the workers write a checkpoint and the
launcher returns :data:`~infscale.train.loop.REQUEUE_EXIT`.

The job never deletes its checkpoints: Snakemake may still reject its outputs (a slow shared file
system that outlasts ``latency-wait``) and rerun it, which then resumes. rules/train.smk's
remove_checkpoints removes them once the outputs are accepted, where the config asks for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from infscale.errors import InputError

FAILED_EXIT = 1


def run_job(spec: dict[str, Any]) -> None:
    """Train the spec's run on this rank; rank 0 writes the model, the points and the log."""
    import torch.distributed as dist

    from infscale.data.tokens import WindowSet
    from infscale.grid import Run
    from infscale.io import atomic_write_dir, write_csv
    from infscale.train import parallel
    from infscale.train.loop import train_run

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    threads = spec.get("threads")
    if threads and not torch.cuda.is_available():
        torch.set_num_threads(max(1, int(threads) // world))

    def late(signum: int, frame: Any) -> None:  # outside the training loop: finish the outputs
        print(f"{signal.Signals(signum).name} received outside training; finishing", flush=True)

    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, late)
    try:
        run = Run.from_dict(spec["run"])
        model, points = train_run(
            run,
            WindowSet(spec["train"]),
            WindowSet(spec["val"]),
            spec["cfg"],
            max_position=spec["max_position"],
            rope_theta=spec["rope_theta"],
            log_path=spec["log_path"],
            norm=spec["norm"],
            checkpoint_dir=spec.get("checkpoint_dir"),
            progress=spec.get("progress", True),
        )
        weights = parallel.model_state(model) if spec.get("model_out") else {}  # all ranks
        if rank == 0:
            if spec.get("model_out"):

                def save_model(tmp: Path) -> None:
                    model.save_pretrained(tmp, state_dict=weights)
                    if spec.get("tokenizer"):
                        from transformers import AutoTokenizer

                        AutoTokenizer.from_pretrained(spec["tokenizer"]).save_pretrained(tmp)

                atomic_write_dir(spec["model_out"], save_model)
            if spec.get("points_out"):
                write_csv(spec["points_out"], points)
            print(points.to_string(), flush=True)
        if dist.is_initialized():
            dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def exit_code(spec: dict[str, Any]) -> int:
    """Run the job in this process; 0, :data:`REQUEUE_EXIT` after a signal, else 1."""
    from infscale.train.checkpoint import DamagedCheckpoints
    from infscale.train.loop import REQUEUE_EXIT, NonFiniteLoss, Preempted

    try:
        run_job(spec)
    except Preempted as err:
        print(f"{err}; rerun to resume", file=sys.stderr, flush=True)
        return REQUEUE_EXIT
    except (NonFiniteLoss, InputError, DamagedCheckpoints) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return FAILED_EXIT
    return 0


def launch(spec: dict[str, Any], nproc: int, spec_path: str | Path) -> int:
    """Run the job with ``nproc`` processes (torchrun when more than one); return the exit code."""
    if nproc <= 1:
        return exit_code(spec)
    from infscale.io import write_json
    from infscale.train.loop import REQUEUE_EXIT

    write_json(spec_path, spec)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "infscale.train.launch",
        str(spec_path),
    ]
    print("launching:", " ".join(command), flush=True)
    child = subprocess.Popen(command)
    signalled: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        signalled.append(signum)
        child.send_signal(signal.SIGTERM)  # torchrun forwards SIGTERM to every worker

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code != 0 and signalled:
        return REQUEUE_EXIT
    return FAILED_EXIT if code else 0


def main(argv: list[str] | None = None) -> int:
    """``torchrun … -m infscale.train.launch SPEC.json``: one rank of a job."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m infscale.train.launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    return exit_code(spec)


if __name__ == "__main__":
    sys.exit(main())
