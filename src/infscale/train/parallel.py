"""How one model is spread over the processes of a ``torchrun`` job: DDP or FSDP (config
``train.parallel``), and the full state dicts that checkpoints hold in either case.

- ``ddp``: every rank holds the whole model; gradients are averaged across ranks
  (``DistributedDataParallel``).
- ``fsdp``: torch's FSDP2 (``torch.distributed.fsdp.fully_shard``) on every decoder block and on
  the root, for models that do not fit: parameters, gradients and optimizer state are sharded
  across ranks and a block's weights are gathered only while it runs. The model is built (and a
  checkpoint loaded) in host memory; sharding moves it to the device a block at a time, and
  each rank keeps only its shard there. It works on CPU with gloo as on GPUs with NCCL.

Checkpoints do not depend on the layout: model and optimizer state are saved as *full* state dicts
(``torch.distributed.checkpoint.state_dict``, optimizer state keyed by parameter name), gathered
to rank 0 under FSDP, so a run resumes under either layout, or in one process.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

from infscale.errors import InputError

MODES = ("ddp", "fsdp")
_SAVE = StateDictOptions(full_state_dict=True, cpu_offload=True)  # full tensors, on rank 0 only
_LOAD = StateDictOptions(full_state_dict=True)  # every rank passes the full state; kept: its shard


def sharded(mode: str, world: int) -> bool:
    """Whether ``mode`` on ``world`` processes shards the model (FSDP on more than one)."""
    if mode not in MODES:
        raise InputError(f"train.parallel {mode!r} is not one of {', '.join(MODES)}")
    return mode == "fsdp" and world > 1


def home(mode: str, world: int, device: torch.device) -> torch.device:
    """Where the whole model is built and a checkpoint loaded: host memory when it is sharded."""
    return torch.device("cpu") if sharded(mode, world) else device


def wrap(model: torch.nn.Module, mode: str, world: int, device: torch.device) -> torch.nn.Module:
    """The module the training step calls: ``model`` itself (one process, or FSDP, which shards
    ``model`` in place and moves the shards to ``device``) or its DDP wrapper."""
    if sharded(mode, world):
        shard(model, world, device)
        return model
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def shard(model: torch.nn.Module, world: int, device: torch.device) -> None:
    """FSDP2 on every decoder block and on the root, in place, over ``world`` processes of the
    initialised process group. :func:`wrap` calls it for ``world`` > 1; benchmarks/gpu_check.py
    calls it in one process (NCCL refuses two ranks on one GPU, so that is the FSDP a single GPU
    can run)."""
    mesh = init_device_mesh(device.type, (world,))
    for block in model.model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def grad_sync(net: torch.nn.Module, enabled: bool) -> AbstractContextManager:
    """Reduce gradients across ranks in this backward (the last micro-batch of a step) or not."""
    if isinstance(net, torch.nn.parallel.DistributedDataParallel):
        return nullcontext() if enabled else net.no_sync()
    if isinstance(net, FSDPModule):
        net.set_requires_gradient_sync(enabled)
    return nullcontext()


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a (possibly sharded) tensor."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def clip_grad_norm(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the gradients' global norm to ``max_norm``; the norm before clipping, a plain tensor."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full model state dict on CPU; on rank 0 (empty elsewhere). Every rank must call it."""
    return get_model_state_dict(model, options=_SAVE)


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full optimizer state, keyed by parameter name; on rank 0. Every rank must call it."""
    return get_optimizer_state_dict(model, optimizer, options=_SAVE)


def load_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Load a full optimizer state (from :func:`optimizer_state`) on every rank."""
    set_optimizer_state_dict(model, optimizer, state, options=_LOAD)
