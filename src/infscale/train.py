"""The training loop: open_lm's recipe on a transformers Llama, and the loss the paper fits.

The recipe (FACTS.md, Table 3): AdamW (β2 0.95) with weight decay on every parameter, linear
warmup then cosine to the cooldown LR over the whole run, z-loss, gradient clipping. A point is
read at each multiplier boundary: the paper's metric (mean of the EMA of the training loss since
step 0) beside a held-out validation loss.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from infscale.errors import InputError
from infscale.grid import Run
from infscale.model import build_model, count_parameters
from infscale.tokens import TokenWindows

EMA_WEIGHT = (
    0.9  # weight of the newest loss in the authors' EMA: ema_t = 0.9·loss_t + 0.1·ema_{t-1}
)


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then cosine to ``min_lr`` at the last step."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def paper_loss_metric(losses: np.ndarray, weight: float = EMA_WEIGHT) -> np.ndarray:
    """Entry t is the mean over steps 0..t of the EMA of the training loss (ema_0 = loss_0)."""
    ema = np.empty(len(losses))
    for t, loss in enumerate(losses):
        ema[t] = loss if t == 0 else weight * loss + (1 - weight) * ema[t - 1]
    return np.cumsum(ema) / np.arange(1, len(ema) + 1)


def lm_loss(
    logits: torch.Tensor, targets: torch.Tensor, z_loss: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy plus ``z_loss·mean(logsumexp(logits)²)``; returns (total, cross-entropy)."""
    logits = logits.float().reshape(-1, logits.shape[-1])
    ce = F.cross_entropy(logits, targets.reshape(-1))
    z = torch.logsumexp(logits, dim=-1).pow(2).mean()
    return ce + z_loss * z, ce


def boundary_steps(run: Run, tokens_per_step: int) -> list[int]:
    """The step count at which each multiplier's token budget is first reached."""
    return [math.ceil(tokens / tokens_per_step) for tokens in run.tokens]


@torch.no_grad()
def validation_loss(model: torch.nn.Module, val: TokenWindows, n_windows: int, batch: int) -> float:
    """Mean next-token cross-entropy over the first ``n_windows`` held-out windows."""
    model.eval()
    n = min(n_windows, len(val))
    total = 0.0
    for start in range(0, n, batch):
        x = val.batch(range(start, min(n, start + batch))).to(model.device)
        logits = model(input_ids=x[:, :-1]).logits.float()
        total += (
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
            ).item()
            / x[:, 1:].shape[1]
        )
    model.train()
    return total / n


def train_run(
    run: Run,
    train: TokenWindows,
    val: TokenWindows,
    cfg: dict[str, Any],
    *,
    max_position: int,
    rope_theta: float,
    log_path: str | Path,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train ``run`` from scratch; return the model and one row per multiplier boundary."""
    batch, micro = cfg["batch_size"], cfg["micro_batch_size"]
    if batch % micro:
        raise InputError(f"train.batch_size {batch} is not a multiple of micro_batch_size {micro}")
    tokens_per_step = batch * train.seq_len
    steps_at = boundary_steps(run, tokens_per_step)
    total_steps = steps_at[-1]
    if total_steps * batch > len(train):
        raise InputError(
            f"{run.name} needs {total_steps * tokens_per_step:,} training tokens but the corpus "
            f"holds {len(train) * train.seq_len:,}; the paper trains one pass without repeats"
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(
        run.shape, max_position=max_position, seed=cfg["seed"], rope_theta=rope_theta
    ).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg["lr"],
        betas=tuple(cfg["betas"]),
        eps=cfg["eps"],
        weight_decay=cfg["weight_decay"],
    )
    losses = np.empty(total_steps)
    rows = []
    model.train()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        for step in range(total_steps):
            lr = lr_at(step, total_steps, cfg["warmup_steps"], cfg["lr"], cfg["min_lr"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, ce = 0.0, 0.0
            for rows_idx in _micro_batches(step * batch, batch, micro):
                x = train.batch(rows_idx).to(device)
                with _autocast(cfg["dtype"], device):
                    logits = model(input_ids=x[:, :-1]).logits
                total, cross = lm_loss(logits, x[:, 1:], cfg["z_loss"])
                (total * (len(rows_idx) / batch)).backward()
                loss += total.item() * len(rows_idx) / batch
                ce += cross.item() * len(rows_idx) / batch
            if not math.isfinite(loss):
                raise FloatingPointError(f"{run.name}: non-finite loss {loss} at step {step}")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses[step] = loss
            elapsed = time.perf_counter() - start
            tokens = (step + 1) * tokens_per_step
            record = {
                "step": step + 1,
                "tokens": tokens,
                "loss": loss,
                "ce": ce,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens_per_s": tokens / elapsed,
            }
            log.write(json.dumps(record) + "\n")
            if step + 1 in steps_at:
                i = steps_at.index(step + 1)
                rows.append(
                    _point(
                        run,
                        model,
                        i,
                        tokens,
                        losses[: step + 1],
                        validation_loss(model, val, cfg["val_windows"], micro),
                    )
                )
                log.flush()
    return model, pd.DataFrame(rows)


def _point(
    run: Run, model: torch.nn.Module, i: int, tokens: int, losses: np.ndarray, val_loss: float
) -> dict[str, Any]:
    shape = run.shape
    return {
        "run": run.name,
        "size_group": run.size,
        "variant": run.variant,
        "d_model": shape.d_model,
        "n_layers": shape.n_layers,
        "n_heads": shape.n_heads,
        "vocab_size": shape.vocab_size,
        "ffn_hidden": shape.ffn_hidden,
        "R": shape.aspect_ratio,
        "N": shape.n_params,
        "N_module": count_parameters(model),
        "multiplier": run.multipliers[i] if run.multipliers else None,
        "D": tokens,
        "steps": len(losses),
        "loss": float(paper_loss_metric(losses)[-1]),
        "final_train_loss": float(losses[-1]),
        "val_loss": val_loss,
    }


def _micro_batches(first: int, batch: int, micro: int) -> Iterator[range]:
    for start in range(first, first + batch, micro):
        yield range(start, start + micro)


def _autocast(dtype: str, device: str) -> AbstractContextManager:
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, dtype))
