"""What a config will ask of a cluster, before anything is submitted (``infscale plan``).

Training jobs come from infscale.train.sizing, exactly as rules/train.smk sizes them; the other
GPU jobs (every latency rule, evaluation) take the SLURM profile's request (``set-resources``, at
attempt 1) and the memory model of what they hold at once. A job breaks a limit when its wall
time exceeds ``cluster.time_limit_hours``, its memory model a GPU's usable memory, or its nodes
``cluster.max_nodes``. No torch, no Snakemake: it starts in about two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infscale.grid import candidate_runs, grid_runs, latency_shapes
from infscale.latency.sweeps import (
    SWEEPS,
    sweep_items,
    sweep_lengths,
    sweep_shapes,
    throughput_shape,
)
from infscale.shapes import Shape
from infscale.train.memory import inference_memory_gb, usable_gb
from infscale.train.sizing import size_training, slice_note

COLUMNS = [
    "rule",
    "job",
    "gpus",
    "nodes",
    "micro_batch",
    "activation_checkpointing",
    "flops",
    "hours",
    "gpu_hours",
    "mem_gb_per_gpu",
    "limit",
]


@dataclass
class Job:
    """One planned job: a row of PLAN.csv."""

    rule: str
    job: str
    gpus: int
    nodes: int
    hours: float
    mem_gb_per_gpu: float | None
    micro_batch: int | None = None
    activation_checkpointing: bool | None = None
    flops: float | None = None
    limit: str = ""

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.hours

    def row(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "job": self.job,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "micro_batch": self.micro_batch,
            "activation_checkpointing": self.activation_checkpointing,
            "flops": self.flops,
            "hours": round(self.hours, 3),
            "gpu_hours": round(self.gpu_hours, 2),
            "mem_gb_per_gpu": None
            if self.mem_gb_per_gpu is None
            else round(self.mem_gb_per_gpu, 1),
            "limit": self.limit,
        }


def profile_resources(profile: Path | None) -> dict[str, dict[str, Any]]:
    """The profile's per-rule ``set-resources``, expressions evaluated at attempt 1."""
    if profile is None:
        return {}
    data = yaml.safe_load((profile / "config.yaml").read_text()) or {}
    rules: dict[str, dict[str, Any]] = {}
    for rule, resources in (data.get("set-resources") or {}).items():
        # strings are Python expressions of `attempt`, evaluated as Snakemake does
        rules[rule] = {
            key: eval(value, {"__builtins__": {}}, {"attempt": 1})
            if isinstance(value, str)
            else value
            for key, value in resources.items()
            if key in ("gpu", "runtime", "mem_mb", "cpus_per_task")
        }
    return rules


def plan_jobs(config: dict[str, Any], profile: Path | None) -> list[Job]:
    """Every job of ``config`` (validated, defaults filled) that runs on a cluster node."""
    cluster, seq_len = config["cluster"], config["data"]["seq_len"]
    jobs: list[Job] = []
    for rule, runs, cfg in (
        ("train", grid_runs(config), config["train"]),
        (
            "train_candidate",
            candidate_runs(config),
            {**config["train"], **config["select"]["train_overrides"]},
        ),
    ):
        for run in runs:
            plan = size_training(run.shape, run.total_tokens, cfg, seq_len, cluster)
            limits = list(plan.limits)
            if plan.nodes > cluster["max_nodes"]:
                limits.append(f"nodes: {plan.nodes} over cluster.max_nodes")
            note = slice_note(plan, cluster)
            jobs.append(
                Job(
                    rule,
                    run.name,
                    plan.gpus,
                    plan.nodes,
                    plan.hours,
                    plan.mem_gb,
                    plan.micro_batch,
                    plan.activation_checkpointing,
                    plan.flops,
                    "; ".join(limits + ([note] if note else [])),
                )
            )
    resources = profile_resources(profile)
    jobs += [_other(rule, name, resources, mem) for rule, name, mem in _latency_jobs(config)]
    # an evaluation scores eval.batch_size requests of up to seq_len tokens in one forward
    evaluated = [*grid_runs(config), *candidate_runs(config)[: config["select"]["k"] + 1]]
    batch = config["eval"]["batch_size"]
    for run in evaluated:
        mem = inference_memory_gb([run.shape], [(run.shape, batch)], seq_len, seq_len)
        jobs.append(_other("evaluate", run.name, resources, mem))
    limit_h = cluster["time_limit_hours"]
    usable = usable_gb(cluster["gpu_memory_gb"], cluster["memory_headroom"])
    for job in jobs:
        if job.rule.startswith("train"):
            continue
        broken = []
        if job.hours > limit_h:
            broken.append(f"wall time {job.hours:.1f} h over {limit_h:g} h")
        if job.mem_gb_per_gpu is not None and job.mem_gb_per_gpu > usable:
            broken.append(f"memory {job.mem_gb_per_gpu:.1f} GB over {usable:.1f} GB usable")
        job.limit = "; ".join(broken)
    return jobs


def _latency_jobs(config: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(rule, job, peak GB) of every latency job: each shape alone; each sweep, the throughput
    curve and the trained candidates with their items loaded together (timed interleaved); the
    candidates' throughput one candidate at a time."""
    latency = config["latency"]
    prompt, tokens = latency["input_tokens"], latency["input_tokens"] + latency["output_tokens"]
    jobs = [
        ("latency", label, inference_memory_gb([s], [(s, latency["batch_size"])], prompt, tokens))
        for label, s in latency_shapes(config).items()
    ]
    for sweep in SWEEPS:
        lengths = {"input_tokens": prompt, "output_tokens": latency["output_tokens"]}
        lengths |= sweep_lengths(config, sweep)
        shapes = sweep_shapes(config, sweep)
        timed = [
            (Shape(**item["shape"]), item["batch_size"]) for item in sweep_items(config, sweep)
        ]
        total = lengths["input_tokens"] + lengths["output_tokens"]
        mem = inference_memory_gb(shapes, timed, lengths["input_tokens"], total)
        jobs.append(("latency_sweep", sweep, mem))
    curve = throughput_shape(config)
    batches = latency["throughput"]["batch_sizes"]
    jobs.append(
        (
            "latency_throughput",
            curve.label,
            inference_memory_gb([curve], [(curve, b) for b in batches], prompt, tokens),
        )
    )
    candidates = {run.shape.label: run.shape for run in candidate_runs(config)}.values()
    spec = latency["throughput_protocol"]
    each = spec["input_tokens"], spec["input_tokens"] + spec["output_tokens"]
    held = [inference_memory_gb([c], [(c, max(spec["batch_sizes"]))], *each) for c in candidates]
    jobs.append(("latency_candidate_throughput", "candidates", max(held)))
    # the trained candidates (k and the baseline) and their random-init twins, all loaded
    trained = sorted(candidates, key=lambda c: c.n_params)[-(config["select"]["k"] + 1) :]
    timed = [(c, latency["batch_size"]) for c in trained]
    jobs.append(
        ("latency_trained", "candidates", inference_memory_gb(trained * 2, timed, prompt, tokens))
    )
    return jobs


def _other(rule: str, name: str, resources: dict[str, dict[str, Any]], mem: float | None) -> Job:
    """A non-training job at its profile request (one GPU, the profile's runtime)."""
    request = resources.get(rule, {})
    return Job(rule, name, int(request.get("gpu", 1)), 1, request.get("runtime", 60) / 60, mem)


def stage_of(rule: str) -> str:
    if rule.startswith("latency"):
        return "latency"
    return "candidates" if rule == "train_candidate" else rule


def summary(jobs: list[Job], config: dict[str, Any]) -> list[str]:
    """The plan as a researcher reads it: per stage, then totals. Candidates count the k + 1
    largest (the selection picks k, and the baseline is trained in any case)."""
    lines = [
        f"{'stage':<11}{'jobs':>6}{'GPUs/job':>10}{'nodes/job':>10}{'GPU-hours':>11}"
        f"{'longest h':>11}{'peak GB/GPU':>13}"
    ]
    total = 0.0
    for stage in ("train", "candidates", "latency", "evaluate"):
        members = [j for j in jobs if stage_of(j.rule) == stage]
        if not members:
            continue
        counted = members
        if stage == "candidates":
            k = config["select"]["k"] + 1
            counted = sorted(members, key=lambda j: j.gpu_hours, reverse=True)[:k]
        hours = sum(j.gpu_hours for j in counted)
        total += hours
        gpus = sorted({j.gpus for j in members})
        nodes = max(j.nodes for j in members)
        mems = [j.mem_gb_per_gpu for j in members if j.mem_gb_per_gpu is not None]
        lines.append(
            f"{stage:<11}{len(members):>6}{_span(gpus):>10}{nodes:>10}{hours:>11,.0f}"
            f"{max(j.hours for j in members):>11.1f}{(max(mems) if mems else 0):>13.1f}"
        )
    lines.append(
        f"total GPU-hours {total:,.0f} (candidates: the {config['select']['k'] + 1} largest)"
    )
    return lines


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
