"""The training stage's config checks (gathered by infscale.checks): the micro-batch divides
the batch and every run fits the cluster section; and the warning about loss points read
inside the learning-rate warmup."""

from __future__ import annotations

from typing import Any

from infscale.errors import InputError
from infscale.grid import CANDIDATES, boundary_steps, run_table
from infscale.train.sizing import size_training


def check_train(config: dict[str, Any]) -> None:
    """Raise InputError, naming the key, for a training setup no job could run."""
    train = config["train"]
    if train["batch_size"] % train["micro_batch_size"]:
        raise InputError(
            f"config key train.micro_batch_size: {train['micro_batch_size']} does not divide "
            f"train.batch_size {train['batch_size']}"
        )
    _check_cluster(config)


def _check_cluster(config: dict[str, Any]) -> None:
    """What the cluster section cannot give: a time limit that leaves no compute, more GPUs than
    a job may hold, a training run that fits no micro-batch.
    Said here, before anything is submitted, rather than by sbatch or an OOM days later."""
    cluster = config["cluster"]
    if cluster["time_limit_hours"] * 60 <= cluster["overhead_minutes"]:
        raise InputError(
            f"config key cluster.time_limit_hours: {cluster['time_limit_hours']:g} h leaves no "
            f"time after cluster.overhead_minutes {cluster['overhead_minutes']:g}"
        )
    pinned, per_node, nodes = cluster["train_gpus"], cluster["gpus_per_node"], cluster["max_nodes"]
    if pinned and pinned > nodes * per_node:
        raise InputError(
            f"config key cluster.train_gpus: {pinned} GPUs per job exceed cluster.max_nodes × "
            f"cluster.gpus_per_node = {nodes} × {per_node}"
        )
    if pinned and pinned > per_node and pinned % per_node:
        raise InputError(
            f"config key cluster.train_gpus: {pinned} GPUs over several nodes must be whole nodes "
            f"of cluster.gpus_per_node {per_node}"
        )
    seq_len, train = config["data"]["seq_len"], config["train"]
    for run in run_table(config).values():
        cfg = {**train, **config["select"]["train_overrides"]} if run.size == CANDIDATES else train
        if pinned and cfg["batch_size"] % pinned:
            raise InputError(
                f"config key cluster.train_gpus: {pinned} does not divide run {run.name}'s "
                f"batch_size {cfg['batch_size']}"
            )
        plan = size_training(run.shape, run.total_tokens, cfg, seq_len, cluster)
        for limit in plan.limits:
            raise InputError(f"config key cluster: run {run.name}: {limit}")


def warmup_warnings(config: dict[str, Any]) -> list[str]:
    """Loss points read while the learning rate still warms up. Allowed, because the paper's
    are (paper.yaml: the 80M and 86M groups at 20N), but such a point measures the schedule
    as much as the shape, so say so."""
    train, overrides = config["train"], config["select"]["train_overrides"]
    inside = []
    for run in run_table(config).values():
        cfg = {**train, **overrides} if run.size == CANDIDATES else train
        steps = boundary_steps(run, cfg["batch_size"] * config["data"]["seq_len"])
        for i, step in enumerate(steps):
            if step <= cfg["warmup_steps"]:
                at = f"{run.multipliers[i]}N" if run.multipliers else "its end"
                warmup = cfg["warmup_steps"]
                inside.append(f"{run.name} at {at} (step {step:,} of {warmup:,} warmup steps)")
    if not inside:
        return []
    return [f"loss points inside the learning-rate warmup (as in the paper): {', '.join(inside)}"]
