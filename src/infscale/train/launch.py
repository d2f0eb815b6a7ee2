"""One training job, in one process or in several under ``torchrun`` (DDP or FSDP), on one node
or several.

A job is described by a plain JSON-able *spec* (the run, data files, train config, output paths).
:func:`launch` runs it

- in this process when one process on one node is asked for;
- else, outside SLURM's ``mpi`` path, as ``python -m torch.distributed.run --standalone
  --nproc-per-node N -m infscale.train.launch SPEC`` on this node;
- under SLURM with the executor plugin's ``mpi`` resource (the plugin then runs the job's
  Snakemake in the batch shell, not inside ``srun -n1``), as its own job step: ``srun --nodes=M
  --ntasks=M --ntasks-per-node=1 python -m infscale.train.launch --node ...``, one launcher per
  node, each starting ``torchrun --nnodes=M --nproc-per-node=N --rdzv-backend=c10d
  --rdzv-endpoint=FIRST_HOST:PORT --rdzv-id=SLURM_JOB_ID`` (the first host of the allocation,
  from ``scontrol``: the plugin strips SLURM_JOB_NODELIST from the job's environment).

Every rank then calls :func:`run_job`, which sets up the process group (NCCL on GPUs, gloo on
CPU), trains, and lets rank 0 write the outputs.

Signals. On SLURM's time-limit warning (``--signal=USR1@300``: every process of the job's steps,
not the batch shell) each rank gets SIGUSR1 itself; the per-node launcher starts torchrun with
SIGUSR1 ignored (torchrun has no handler for it and would die, taking the rendezvous store with
it), the ranks agree on a stop at the end of the current step, write one checkpoint and exit
:data:`~infscale.train.exits.REQUEUE_EXIT`; launcher, srun and script then exit with it too. The
job's Snakemake lives in the batch shell on this path and is not signalled. Outside SLURM,
SIGTERM/SIGUSR1 sent to the launcher are passed to torchrun as SIGTERM (which it forwards to the
workers).

The job never deletes its checkpoints: Snakemake may still reject its outputs (a slow shared file
system that outlasts ``latency-wait``) and rerun it, which then resumes. rules/train.smk's
remove_checkpoints removes them once the outputs are accepted, where the config asks for it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.train.exits import FAILED_EXIT, REQUEUE_EXIT


def run_job(spec: dict[str, Any]) -> None:
    """Train the spec's run on this rank; rank 0 writes the model, the points and the log."""
    import torch
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
    if threads:  # the job's CPUs, shared by this node's ranks (on a GPU: for its CPU side)
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))  # this node's processes
        torch.set_num_threads(max(1, int(threads) // local))

    def late(signum: int, frame: Any) -> None:  # outside the training loop: finish the outputs
        print(f"{signal.Signals(signum).name} received outside training; finishing", flush=True)

    previous = {signum: signal.signal(signum, late) for signum in (signal.SIGTERM, signal.SIGUSR1)}
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
        for signum, handler in previous.items():  # a job run in-process leaves none behind
            signal.signal(signum, handler)


def exit_code(spec: dict[str, Any]) -> int:
    """Run the job in this process; 0, :data:`REQUEUE_EXIT` after a signal, else 1."""
    from infscale.train.checkpoint import DamagedCheckpoints
    from infscale.train.loop import NonFiniteLoss, Preempted

    try:
        run_job(spec)
    except Preempted as err:
        print(f"{err}; rerun to resume", file=sys.stderr, flush=True)
        return REQUEUE_EXIT
    except (NonFiniteLoss, InputError, DamagedCheckpoints) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return FAILED_EXIT
    return 0


def launch(
    spec: dict[str, Any],
    nproc: int,
    spec_path: str | Path,
    *,
    nodes: int = 1,
    mpi: str | None = None,
) -> int:
    """Run the job with ``nproc`` processes per launcher on ``nodes`` nodes; return the exit code.

    ``mpi`` is the executor plugin's resource of that name (``srun``, maybe with options): under
    SLURM (SLURM_JOB_ID set) it makes the training its own job step, one launcher per node.
    """
    if nodes < 1 or nproc < 1:
        raise InputError(
            f"a training job needs resources nodes >= 1 and gpus (processes per node) >= 1, got "
            f"nodes={nodes}, gpus={nproc}"
        )
    job_id = os.environ.get("SLURM_JOB_ID")
    if mpi and job_id:
        return _srun_launch(spec, nproc, spec_path, nodes, mpi, job_id)
    if nodes > 1:
        where = "outside a SLURM job" if not job_id else "without the plugin's mpi resource"
        raise InputError(
            f"a training job on {nodes} nodes cannot run {where}: give it resources mpi='srun' "
            "under the slurm executor, or nodes=1"
        )
    if job_id:
        print(
            "note: no mpi resource: SLURM's time-limit signal also reaches the Snakemake that "
            "the executor plugin runs inside `srun -n1`, which ends before a checkpoint; give "
            "training jobs resources mpi='srun'",
            flush=True,
        )
    if nproc <= 1:
        return exit_code(spec)
    from infscale.io import write_json

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
    # torchrun forwards SIGTERM to its workers, which checkpoint
    return _supervise(command, {signal.SIGTERM: signal.SIGTERM, signal.SIGUSR1: signal.SIGTERM})


def _supervise(command: list[str], forward: dict[int, int], ignore_usr1: bool = True) -> int:
    """Run ``command``, SIGUSR1 ignored in it if ``ignore_usr1`` (torchrun would die of it and
    takes no handler; the ranks install their own); remember SIGTERM/SIGUSR1 sent here and pass
    each on to the child as ``forward`` says. 0; REQUEUE_EXIT when the child exits with it, or
    fails after a signal came; else 1."""
    print("launching:", " ".join(command), flush=True)
    signalled: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    if ignore_usr1:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # inherited through exec, as no handler is
    try:
        child = subprocess.Popen(command)

        def note(signum: int, frame: Any) -> None:
            signalled.append(signum)
            print(f"launcher: {signal.Signals(signum).name} received", flush=True)
            if signum in forward:
                child.send_signal(forward[signum])

        for signum in previous:
            signal.signal(signum, note)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code == REQUEUE_EXIT or (code != 0 and signalled):
        return REQUEUE_EXIT
    return FAILED_EXIT if code else 0


def _srun_launch(
    spec: dict[str, Any],
    nproc: int,
    spec_path: str | Path,
    nodes: int,
    mpi: str,
    job_id: str,
) -> int:
    """The training as its own job step: one launcher per node, the rendezvous on the first host."""
    from infscale.io import write_json

    prefix = shlex.split(str(mpi))
    if not prefix or Path(prefix[0]).name != "srun":
        raise InputError(f"resources.mpi must start with srun (got {mpi!r})")
    allocation = slurm_allocation(job_id)
    if len(allocation.hosts) != nodes:
        raise InputError(
            f"the job asks for nodes={nodes} but SLURM job {job_id} holds "
            f"{len(allocation.hosts)} ({','.join(allocation.hosts)}): set the sbatch node count "
            "through resources.nodes"
        )
    write_json(spec_path, spec)
    # The batch shell (this process) runs on the allocation's first node: a port free here.
    endpoint = f"{allocation.first_address}:{free_port()}"
    command = [
        *prefix,
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={allocation.cpus_per_node}",
        "--wait=120",  # after the first launcher ends, the others get 2 min, then are killed
        sys.executable,
        "-m",
        "infscale.train.launch",
        "--node",
        f"--nnodes={nodes}",
        f"--nproc-per-node={nproc}",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id={job_id}",
        str(spec_path),
    ]
    # srun relays TERM/USR1 to every task (only reached when someone signals this process: the
    # time limit's signal skips the batch shell and goes to the step's processes directly)
    same = {signal.SIGTERM: signal.SIGTERM, signal.SIGUSR1: signal.SIGUSR1}
    return _supervise(command, same, ignore_usr1=False)


class Allocation:
    """The hosts of a SLURM job, its first host's address and its CPUs per node."""

    def __init__(self, hosts: list[str], first_address: str, cpus_per_node: int) -> None:
        self.hosts, self.first_address, self.cpus_per_node = hosts, first_address, cpus_per_node


def _scontrol(*args: str) -> str:
    try:
        done = subprocess.run(
            ["scontrol", *args], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"scontrol {' '.join(args)} failed: {err}") from err
    if done.returncode:
        raise InputError(f"scontrol {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def slurm_allocation(job_id: str) -> Allocation:
    """From ``scontrol``: the executor plugin removes SLURM_JOB_NODELIST and friends from the
    environment of the job's Snakemake, so this asks the controller."""
    job = _scontrol("show", "job", "-o", job_id)
    fields = dict(re.findall(r"(?:^|\s)(NodeList|NumNodes|NumCPUs)=(\S+)", job))
    if "NodeList" not in fields or "NumCPUs" not in fields:
        raise InputError(f"scontrol shows no node list for SLURM job {job_id}: {job.strip()}")
    hosts = _scontrol("show", "hostnames", fields["NodeList"]).split()
    node = _scontrol("show", "node", "-o", hosts[0])
    address = re.search(r"(?:^|\s)NodeAddr=(\S+)", node)
    cpus = int(fields["NumCPUs"]) // max(1, len(hosts))
    return Allocation(hosts, address.group(1) if address else hosts[0], max(1, cpus))


def free_port() -> int:
    """A TCP port free on this host now (the rendezvous store binds it moments later)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def node_main(args: list[str]) -> int:
    """``--node --nnodes=M --nproc-per-node=N --rdzv-endpoint=H:P --rdzv-id=ID SPEC``: one node's
    launcher in the srun step; starts torchrun with the c10d rendezvous. The step's first task
    hosts the rendezvous store (on the first host: srun's block distribution)."""
    options = dict(re.fullmatch(r"--([a-z-]+)=(.+)", a).groups() for a in args[:-1])
    first = os.environ.get("SLURM_PROCID", "0") == "0"  # one task per node: task 0 is node 0
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={options['nnodes']}",
        f"--nproc-per-node={options['nproc-per-node']}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={options['rdzv-endpoint']}",
        f"--rdzv-id={options['rdzv-id']}",
        f"--rdzv-conf=is_host={str(first).lower()}",
        "--max-restarts=0",
        "-m",
        "infscale.train.launch",
        args[-1],
    ]
    # SLURM signals every process of the step, the ranks and torchrun included: nothing to pass on.
    return _supervise(command, {})


NODE_OPTIONS = ("nnodes", "nproc-per-node", "rdzv-endpoint", "rdzv-id")
USAGE = (
    "usage: python -m infscale.train.launch SPEC.json\n"
    "       python -m infscale.train.launch --node --nnodes=M --nproc-per-node=N "
    "--rdzv-endpoint=HOST:PORT --rdzv-id=ID SPEC.json"
)


def main(argv: list[str] | None = None) -> int:
    """``torchrun … -m infscale.train.launch SPEC.json``: one rank of a job; with ``--node``,
    one node's launcher of a multi-node job."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--node"]:
        rest = args[1:]
        names = [m.group(1) for a in rest[:-1] if (m := re.fullmatch(r"--([a-z-]+)=.+", a))]
        if len(rest) != len(NODE_OPTIONS) + 1 or sorted(names) != sorted(NODE_OPTIONS):
            print(USAGE, file=sys.stderr)
            return 2
        return node_main(rest)
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    return exit_code(spec)


if __name__ == "__main__":
    sys.exit(main())
