"""Every training job sized at plan time from its FLOPs and memory against the config's
``cluster`` section: GPUs, nodes, micro-batch, activation checkpointing, wall time, slices.

Pure Python, no torch import: the Snakefile calls it while it plans, and ``infscale plan``
prints it. FLOPs are 6·N·D (docs/facts.md, "Published results"; the README's hand computation
uses the same).

- GPUs: the fewest of 1, 2, 4, … up to a node, then whole nodes up to ``max_nodes``, that divide
  the batch, fit the memory model (memory.py) and finish 6·N·D at ``peak_tflops`` × ``mfu`` per
  GPU within the time limit less ``overhead_minutes`` (start-up, compile, checkpoints).
- A run that cannot finish even on the most GPUs runs on those in *slices*: jobs of the full
  time limit, each ended by SLURM's signal with a checkpoint and exit 75, resubmitted by
  Snakemake's retries and resumed (rules/train.smk gives the rule enough retries).
- Micro-batch: the largest that divides the per-rank batch, is at most ``train.micro_batch_size``
  (so a config that fits trains as written) and fits, without activation checkpointing where
  any does, else with; FSDP where DDP fits none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from infscale.shapes import Shape
from infscale.train.memory import GB, TrainMemory, train_memory, usable_gb

HOST_BASE_GB = 8.0  # the Snakemake job step, Python, the data loader's memory maps
FAILURE_RETRIES = 2  # resubmissions for failures other than the time limit (node loss, OOM)


@dataclass(frozen=True)
class TrainPlan:
    """One training job as planned: what it asks SLURM for and how it trains."""

    gpus: int  # processes in all (GPUs, or CPU processes where cluster.device is cpu)
    nodes: int
    per_node: int  # processes per node: torchrun's --nproc-per-node, resources.gpus
    micro_batch: int
    activation_checkpointing: bool
    parallel: str
    flops: float
    compute_hours: float  # 6·N·D at the planning MFU on ``gpus``
    slices: int  # jobs the run takes, each at most the time limit
    runtime_minutes: int  # the wall time each job asks for
    memory: TrainMemory | None  # per process; None: no micro-batch fits
    cpus_per_task: int  # one task per node
    mem_mb: int  # host memory per node
    overhead_hours: float  # start-up and checkpoints, paid by every slice
    limits: tuple[str, ...] = field(default=())  # limits of the cluster section it breaks

    @property
    def hours(self) -> float:
        """Wall hours over all slices, each paying the overhead."""
        return self.compute_hours + self.slices * self.overhead_hours

    @property
    def gpu_hours(self) -> float:
        return self.hours * self.gpus

    @property
    def mem_gb(self) -> float:
        return self.memory.total if self.memory else math.inf


def gpu_counts(cluster: dict[str, Any]) -> list[int]:
    """The GPU counts a job may take: powers of two below a node, then whole nodes."""
    per_node, counts, g = cluster["gpus_per_node"], [], 1
    while g < per_node:
        counts.append(g)
        g *= 2
    return counts + [per_node * k for k in range(1, cluster["max_nodes"] + 1)]


def process_memory_gb(cluster: dict[str, Any]) -> float:
    """What one training process may use: a GPU's memory, or on a CPU rehearsal its share of
    the node's host memory, less the headroom (memory.py)."""
    total = cluster["gpu_memory_gb"]
    if cluster["device"] == "cpu":
        total = cluster["host_memory_gb"] / cluster["gpus_per_node"]
    return usable_gb(total, cluster["memory_headroom"])


def fit_micro_batch(
    shape: Shape, seq_len: int, cfg: dict[str, Any], world: int, cluster: dict[str, Any]
) -> tuple[int, bool, str, TrainMemory] | None:
    """(micro-batch, checkpointing, parallel, memory) for ``world`` ranks, or None if none fits."""
    if cfg["batch_size"] % world:
        return None
    per_rank, limit = cfg["batch_size"] // world, process_memory_gb(cluster)
    micros = [m for m in range(min(per_rank, cfg["micro_batch_size"]), 0, -1) if per_rank % m == 0]
    layouts = [cfg["parallel"]] + (["fsdp"] if world > 1 and cfg["parallel"] != "fsdp" else [])
    checkpointing = [True] if cfg["activation_checkpointing"] else [False, True]
    for parallel in layouts:
        for ckpt in checkpointing:
            for micro in micros:
                sharded = parallel == "fsdp" and world > 1
                memory = train_memory(shape, seq_len, micro, world, sharded, ckpt)
                if memory.total <= limit:
                    return micro, ckpt, parallel, memory
    return None


def size_training(
    shape: Shape, tokens: int, cfg: dict[str, Any], seq_len: int, cluster: dict[str, Any]
) -> TrainPlan:
    """The plan of one training job: ``shape`` on ``tokens`` tokens with train config ``cfg``."""
    flops = 6 * shape.n_params * tokens
    limit_h, overhead_h = cluster["time_limit_hours"], cluster["overhead_minutes"] / 60
    rate = cluster["peak_tflops"] * 1e12 * cluster["mfu"] * 3600  # FLOPs per GPU-hour
    counts = [cluster["train_gpus"]] if cluster["train_gpus"] else gpu_counts(cluster)
    fitting = [
        (g, fit) for g in counts if (fit := fit_micro_batch(shape, seq_len, cfg, g, cluster))
    ]
    chosen = next(((g, f) for g, f in fitting if flops / (g * rate) <= limit_h - overhead_h), None)
    if chosen is None and fitting:
        chosen = fitting[-1]  # the most GPUs: the fewest slices
    limits: list[str] = []
    if chosen is None:
        gpus, (micro, ckpt, parallel, memory) = counts[-1], (1, True, "fsdp", None)
        worst = train_memory(shape, seq_len, 1, gpus, gpus > 1, True).total
        limits.append(
            f"memory: no micro-batch fits {process_memory_gb(cluster):.1f} GB per process "
            f"(micro-batch 1 with checkpointing on {gpus}: {worst:.1f} GB)"
        )
    else:
        gpus, (micro, ckpt, parallel, memory) = chosen
    compute_h = flops / (gpus * rate)
    slices = max(1, math.ceil(compute_h / (limit_h - overhead_h)))
    runtime = math.ceil((compute_h + overhead_h) * 60) if slices == 1 else int(limit_h * 60)
    nodes = math.ceil(gpus / cluster["gpus_per_node"])
    per_node = gpus // nodes
    n = shape.n_params
    # per process on the host: a CPU rehearsal's whole training memory; on GPUs the fp32 model
    # built on the host and a checkpoint's copy
    cpu = cluster["device"] == "cpu"
    per_process = (memory.total if memory else 0.0) if cpu else 8 * n / GB
    host_gb = HOST_BASE_GB + per_node * per_process + 16 * n / GB  # rank 0 saves full states
    if host_gb > cluster["host_memory_gb"]:
        limits.append(f"host memory: {host_gb:.0f} GB per node over {cluster['host_memory_gb']}")
    return TrainPlan(
        gpus=gpus,
        nodes=nodes,
        per_node=per_node,
        micro_batch=micro,
        activation_checkpointing=ckpt,
        parallel=parallel,
        flops=float(flops),
        compute_hours=compute_h,
        slices=slices,
        runtime_minutes=runtime,
        memory=memory,
        cpus_per_task=per_node * max(1, cluster["cpus_per_node"] // cluster["gpus_per_node"]),
        mem_mb=math.ceil(host_gb * GB / 1e6),
        overhead_hours=overhead_h,
        limits=tuple(limits),
    )


def planned_train_config(cfg: dict[str, Any], plan: TrainPlan) -> dict[str, Any]:
    """The train config the job runs with: ``cfg`` with the planned micro-batch, activation
    checkpointing and parallel layout, so that it trains as it was sized."""
    return {
        **cfg,
        "micro_batch_size": plan.micro_batch,
        "activation_checkpointing": plan.activation_checkpointing,
        "parallel": plan.parallel,
    }


def slice_note(plan: TrainPlan, cluster: dict[str, Any]) -> str:
    """What the plan says of a run that takes more than one job, else ''."""
    if plan.slices == 1:
        return ""
    return (
        f"continues across {plan.slices} jobs of {cluster['time_limit_hours']:g} h "
        "(checkpoint at the time-limit signal, resubmitted by Snakemake's retries)"
    )


def train_retries(plans: list[TrainPlan]) -> int | None:
    """Retries a training rule needs where a run takes several jobs: one per extra slice of
    the longest, plus those for failures (each resubmission resumes from the last checkpoint).
    None where every run fits one job: the profile's or the command line's retries then hold
    (a rule's `retries` would override them, also a test's --retries 0)."""
    slices = max((p.slices for p in plans), default=1)
    return None if slices == 1 else slices - 1 + FAILURE_RETRIES
