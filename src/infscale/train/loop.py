"""The training loop: open_lm's recipe on a transformers model, and the loss the paper fits.

The recipe (docs/facts.md, "Training recipe"): AdamW (β2 0.95) with weight decay on every
parameter, linear warmup then cosine to the cooldown LR over the whole run, z-loss, gradient
clipping, bf16 autocast where the hardware has it. A point is read at each multiplier
boundary: the paper's metric (mean of the EMA of the training loss since step 0) beside a
held-out validation loss.

The loop runs in one process or in several under ``torchrun`` (DDP or FSDP: parallel.py). Step
``s`` reads positions ``s·B … (s+1)·B - 1`` of the training stream, a seeded permutation of the
packed windows per epoch (order.py); rank ``r`` of ``W`` takes the ``r``-th contiguous ``B/W`` of
them, in micro-batches (gradient accumulation). So the data a step sees depends only on the step,
never on the number of processes or on a restart, and no window is read twice unless
``train.epochs`` allows it. Checkpoints (checkpoint.py) are written
every ``train.checkpoint_every`` steps and when SIGTERM or SIGUSR1 arrives (SLURM's warning before
a time limit); the run then exits with :data:`REQUEUE_EXIT` and the rerun resumes from the newest
good checkpoint, bitwise identical to an uninterrupted run on CPU. Rank 0 logs every step to
log.jsonl (step records and events: steplog.py) and the same numbers to TensorBoard event files
beside it (tracking.py).

One optimisation step is :class:`TrainStep`, the only code that trains (benchmarks/train_mfu.py
times it). What makes it fast on small models, each measured on this step:
``train.compile`` compiles each decoder block and the loss rather than the whole model (the
rotary cos/sin is then computed once per forward instead of being fused into, and recomputed by,
every attention kernel, and the one block graph serves every layer, so compiling takes seconds);
fused AdamW; no KV cache built in training forwards; one logsumexp shared by cross-entropy and
z-loss; one host read per step; and on CPU, freed activation memory kept for the next step instead
of being returned to the OS and faulted in again.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F

from infscale.data.tokens import TokenWindows
from infscale.errors import InputError
from infscale.grid import Run, boundary_steps
from infscale.train import checkpoint as ckpt
from infscale.train import parallel
from infscale.train.exits import REQUEUE_EXIT
from infscale.train.flops import flops_per_token, measure_matmul_peak
from infscale.train.model import build_model, count_parameters
from infscale.train.order import WindowOrder, validation_rows
from infscale.train.steplog import EVENT
from infscale.train.tracking import TensorBoardLog

EMA_WEIGHT = (
    0.9  # weight of the newest loss in the authors' EMA: ema_t = 0.9·loss_t + 0.1·ema_{t-1}
)
STATUS_SECONDS = 60.0  # a status line at least this often, and at every 5 % of the run


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class Preempted(RuntimeError):
    """SIGTERM/SIGUSR1 arrived; a checkpoint was written and the run should be requeued."""


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
    """Cross-entropy plus ``z_loss·mean(logsumexp(logits)²)``; returns (total, cross-entropy).

    Cross-entropy is written as ``logsumexp - target logit`` so that both terms share one
    logsumexp (one pass over the logits forward and one backward instead of two).
    """
    logits = logits.float().reshape(-1, logits.shape[-1])
    lse = torch.logsumexp(logits, dim=-1)
    ce = (lse - logits.gather(1, targets.reshape(-1, 1)).squeeze(1)).mean()
    return ce + z_loss * lse.pow(2).mean(), ce


def shard_rows(step: int, batch: int, rank: int, world: int) -> range:
    """The stream positions rank ``rank`` of ``world`` trains on at ``step``: contiguous and
    disjoint across ranks and steps (order.WindowOrder maps them to windows)."""
    per_rank = batch // world
    first = step * batch + rank * per_rank
    return range(first, first + per_rank)


class TrainStep:
    """One optimisation step: forward and backward over the micro-batches (gradient accumulation,
    gradients reduced across ranks only after the last), z-loss, gradient clipping, AdamW.

    Builds what the step needs from a freshly built (or resumed) ``model``: the compiled blocks and
    loss when ``train.compile`` is set, the DDP/FSDP layout of ``train.parallel`` for ``world`` > 1
    processes, and the optimizer (weight decay on every parameter, norms and embeddings included).
    """

    def __init__(
        self, model: torch.nn.Module, cfg: dict[str, Any], device: torch.device, world: int
    ) -> None:
        if device.type == "cpu":
            _retain_freed_memory()
        self.loss = lm_loss
        if cfg["activation_checkpointing"]:  # planned where no micro-batch fits without it
            model.activation_checkpointing_enable({"use_reentrant": False})
        if cfg["compile"]:
            for block in model.model.layers:
                block.compile()  # in place: state-dict names are unchanged
            self.loss = torch.compile(lm_loss)
        self.model, self.world, self.device = model, world, device
        self.net = parallel.wrap(model, cfg["parallel"], world, device)
        self.optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=cfg["lr"],
            betas=tuple(cfg["betas"]),
            eps=cfg["eps"],
            weight_decay=cfg["weight_decay"],
            fused=True,
        )
        self.dtype = _train_dtype(cfg["dtype"], device)
        self.z_loss, self.grad_clip = cfg["z_loss"], cfg["grad_clip"]
        model.train()

    def __call__(self, batches: list[torch.Tensor], lr: float, stop: bool = False) -> torch.Tensor:
        """Train on this rank's micro-batches (windows of ``seq_len + 1`` tokens) at ``lr``.

        Returns float64 ``[loss, cross-entropy, stop, grad norm]``: the losses averaged over the
        global batch and ``stop`` true if any rank asked to stop, identical on every rank. The
        caller reads it once; nothing in the step waits for the device.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        per_rank = sum(len(x) for x in batches)
        stats = torch.zeros(4, dtype=torch.float64, device=self.device)
        for i, x in enumerate(batches):
            with parallel.grad_sync(self.net, i == len(batches) - 1):
                with _autocast(self.dtype, self.device):
                    logits = self.net(input_ids=x[:, :-1], use_cache=False).logits
                total, cross = self.loss(logits, x[:, 1:], self.z_loss)
                # the ranks' gradients are averaged: weight each micro-batch by its share of
                # this rank's rows
                (total * (len(x) / per_rank)).backward()
            stats[0] += total.detach().double() * (len(x) / (per_rank * self.world))
            stats[1] += cross.detach().double() * (len(x) / (per_rank * self.world))
        stats[2] = float(stop)
        if self.world > 1:
            dist.all_reduce(stats)
        stats[3] = parallel.clip_grad_norm(self.model, self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return stats


@torch.no_grad()
def validation_loss(model: torch.nn.Module, val: TokenWindows, n_windows: int, batch: int) -> float:
    """Mean next-token cross-entropy over ``n_windows`` held-out windows spread over the split.

    Every rank computes it on the same windows (under FSDP every rank must run the forwards).
    """
    model.eval()
    device = next(model.parameters()).device
    rows = validation_rows(n_windows, len(val))
    n = len(rows)
    total = 0.0
    for start in range(0, n, batch):
        x = val.batch(rows[start : start + batch]).to(device)
        logits = model(input_ids=x[:, :-1], use_cache=False).logits.float()
        total += (
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
            ).item()
            / x[:, 1:].shape[1]
        )
    model.train()
    return total / n


@dataclass
class _History:
    """What a run has done so far: a checkpoint restores it, each step extends it."""

    losses: np.ndarray  # the training loss of every step, for the paper's loss metric
    points: list[dict[str, Any]] = field(default_factory=list)  # one per boundary reached
    lines: list[str] = field(default_factory=list)  # the log, rewritten whole on a resume
    step: int = 0  # steps done


def train_run(
    run: Run,
    train: TokenWindows,
    val: TokenWindows,
    cfg: dict[str, Any],
    *,
    max_position: int,
    rope_theta: float,
    log_path: str | Path,
    norm: str,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train ``run`` (resuming from ``checkpoint_dir`` if it holds a good checkpoint).

    Returns the model (sharded under FSDP: save it through :func:`parallel.model_state`) and one
    row per multiplier boundary. Under ``torchrun`` every rank calls this; rank 0 writes the log
    and the checkpoints.
    """
    distributed = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    batch, micro = cfg["batch_size"], cfg["micro_batch_size"]
    steps_at = _boundaries(run, cfg, train, world)
    total_steps, tokens_per_step = steps_at[-1], batch * train.seq_len
    device = _device(rank)
    home = parallel.home(cfg["parallel"], world, device)
    model = build_model(
        run.shape, max_position=max_position, seed=cfg["seed"], rope_theta=rope_theta, norm=norm
    ).to(home)
    resumed = ckpt.load_latest(checkpoint_dir, home) if checkpoint_dir else None
    if resumed is not None:
        model.load_state_dict(resumed.model)  # whole, before FSDP shards it
    train_step = TrainStep(model, cfg, device, world)
    history = _restore(resumed, model, train_step, total_steps, run.name, rank)
    held = sum(parallel.local(p).numel() for p in model.parameters())  # under FSDP: a shard
    layout = {
        "processes": world,
        "parallel": cfg["parallel"] if world > 1 else None,
        "dtype": str(train_step.dtype).removeprefix("torch."),
        "compiled": cfg["compile"],
    }
    event = {EVENT: "resumed" if resumed else "start", "step": history.step}
    history.lines.append(json.dumps({**event, **layout, "params_per_rank": held}))
    order = WindowOrder(len(train), cfg["seed"])
    stop = _StopSignal() if checkpoint_dir else None
    status = _Status(
        run, total_steps, history.step, tokens_per_step, device, train_step.dtype, train.seq_len
    )

    def save_checkpoint(step: int) -> None:
        if checkpoint_dir:
            _save_checkpoint(checkpoint_dir, step, model, train_step, history, run, batch, rank)

    bar = _progress_bar(
        run.name,
        total_steps * tokens_per_step,
        history.step * tokens_per_step,
        progress and rank == 0,
    )
    # line-buffered: each step's record is in the file as the step ends (`tail -f` follows it)
    log = open(log_path, "w", buffering=1) if rank == 0 else None  # noqa: SIM115 - closed in finally
    board = TensorBoardLog(Path(log_path).parent, history.lines) if rank == 0 else None
    try:
        if log:
            log.writelines(line + "\n" for line in history.lines)
            log.flush()
        for step in range(history.step, total_steps):
            lr = lr_at(step, total_steps, cfg["warmup_steps"], cfg["lr"], cfg["min_lr"])
            windows = order.windows(shard_rows(step, batch, rank, world))
            batches = [
                train.batch(chunk).to(device, non_blocking=True)
                for chunk in _micro_batches(windows, micro)
            ]
            stats = train_step(batches, lr, stop.requested if stop else False)
            loss, ce, stop_flag, grad_norm = stats.tolist()  # the step's one host read
            _check_finite(loss, run.name, step, checkpoint_dir)  # before its weights are saved
            tokens = (step + 1) * tokens_per_step
            history.losses[step], history.step = loss, step + 1
            record = {
                "step": step + 1,
                "tokens": tokens,
                "loss": loss,
                "ce": ce,
                "lr": lr,
                "grad_norm": grad_norm,
                "tokens_per_s": status.tokens_per_s(step + 1),
            }
            if step + 1 in steps_at:
                val_loss = validation_loss(model, val, cfg["val_windows"], micro)
                i = steps_at.index(step + 1)
                history.points.append(
                    _point(run, model, i, tokens, history.losses[: step + 1], val_loss)
                )
                record["val_loss"] = val_loss
            history.lines.append(json.dumps(record))
            if log:
                log.write(history.lines[-1] + "\n")
            if board:
                board.write(record)
            if bar is not None:
                bar.update(tokens_per_step)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if rank == 0:
                status.maybe_print(step + 1, loss, force=step + 1 == total_steps)
            every = cfg["checkpoint_every"]
            last = step + 1 == total_steps  # also at the end: a kill while saving loses nothing
            if stop_flag or last or (every and (step + 1) % every == 0):
                if log:
                    log.flush()
                save_checkpoint(step + 1)
            if stop_flag:
                _preempted(run.name, step + 1, stop, rank)
    finally:
        if log:
            log.close()
        if board:
            board.close()
        if bar is not None:
            bar.close()
        if stop:
            stop.restore()
    return model, pd.DataFrame(history.points)


def _boundaries(run: Run, cfg: dict[str, Any], train: TokenWindows, world: int) -> list[int]:
    """The boundary steps of ``run``, once the batch splits evenly over ``world`` processes and
    micro-batches and the corpus holds every token the run needs."""
    batch, micro = cfg["batch_size"], cfg["micro_batch_size"]
    if batch % world:
        raise InputError(f"train.batch_size {batch} is not divisible by {world} processes")
    per_rank = batch // world
    if per_rank % micro:
        raise InputError(
            f"train.batch_size {batch} / {world} process(es) = {per_rank} is not a multiple of "
            f"micro_batch_size {micro}"
        )
    tokens_per_step = batch * train.seq_len
    steps_at = boundary_steps(run, tokens_per_step)
    epochs = cfg["epochs"]
    if steps_at[-1] * batch > len(train) * epochs:
        raise InputError(
            f"{run.name} needs {steps_at[-1] * tokens_per_step:,} training tokens but the corpus "
            f"holds {len(train) * train.seq_len:,} × train.epochs {epochs}; the paper trains one "
            "pass without repeats"
        )
    return steps_at


def _restore(
    resumed: ckpt.Checkpoint | None,
    model: torch.nn.Module,
    train_step: TrainStep,
    total_steps: int,
    name: str,
    rank: int,
) -> _History:
    """A fresh history, or the checkpoint's, with the optimizer state and RNGs it holds."""
    history = _History(np.empty(total_steps))
    if resumed is None:
        return history
    parallel.load_optimizer_state(model, train_step.optimizer, resumed.state["optimizer"])
    history.step = resumed.step
    history.losses[: resumed.step] = resumed.state["losses"].numpy()
    history.points, history.lines = resumed.meta["points"], resumed.log_lines
    _set_rng(resumed.state["rng"])
    if rank == 0:
        print(f"{name}: resumed from step {resumed.step} ({resumed.path})", flush=True)
    return history


def _save_checkpoint(
    checkpoint_dir: str | Path,
    step: int,
    model: torch.nn.Module,
    train_step: TrainStep,
    history: _History,
    run: Run,
    batch: int,
    rank: int,
) -> None:
    """Every rank gathers its part; rank 0 writes (checkpoint.py makes it atomic)."""
    weights = parallel.model_state(model)  # gathered to rank 0 under FSDP
    optimizer_state = parallel.optimizer_state(model, train_step.optimizer)
    distributed = dist.is_available() and dist.is_initialized()
    if rank == 0:
        ckpt.save(
            checkpoint_dir,
            step,
            weights,
            {
                "optimizer": optimizer_state,
                "losses": torch.from_numpy(history.losses[:step].copy()),
                "rng": _get_rng(),
            },
            {
                "points": history.points,
                "next_position": step * batch,
                "lr_schedule_step": step,
                "world_size": dist.get_world_size() if distributed else 1,
                "run": run.name,
            },
            history.lines,
        )
    if distributed:
        dist.barrier()


def _check_finite(loss: float, name: str, step: int, checkpoint_dir: str | Path | None) -> None:
    if not math.isfinite(loss):
        kept = (
            f"the last good checkpoint in {checkpoint_dir} is kept"
            if checkpoint_dir
            else "no checkpoint directory was given"
        )
        raise NonFiniteLoss(f"{name}: non-finite training loss {loss} at step {step + 1}; {kept}")


def _preempted(name: str, step: int, stop: _StopSignal | None, rank: int) -> None:
    if rank == 0:
        print(
            f"{name}: {stop.name if stop else 'signal'} received, checkpoint written at step "
            f"{step}; exiting {REQUEUE_EXIT} to be requeued",
            flush=True,
        )
    raise Preempted(f"{name}: stopped by a signal at step {step}")


def _point(
    run: Run, model: torch.nn.Module, i: int, tokens: int, losses: np.ndarray, val_loss: float
) -> dict[str, Any]:
    shape = run.shape
    return {
        "run": run.name,
        "size_group": run.size,
        "variant": run.variant,
        **shape.dimensions,
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


def _micro_batches(rows: np.ndarray, micro: int) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), micro):
        yield rows[start : start + micro]


def _device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        index = rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def _train_dtype(name: str, device: torch.device) -> torch.dtype:
    """The autocast dtype; bfloat16 falls back to float32 on a GPU without it (with a warning)."""
    dtype = getattr(torch, name)
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print("train.dtype bfloat16: not supported by this GPU, training in float32", flush=True)
        return torch.float32
    return dtype


def _autocast(dtype: torch.dtype, device: torch.device) -> AbstractContextManager:
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _retain_freed_memory() -> None:
    """Keep freed memory in the process heap (glibc only) for the next step's activations.

    By default glibc serves allocations above 128 KiB-32 MiB (most activations of a training
    step) with mmap and unmaps them when freed, so every step faults its activations in again,
    page by page: about 2,000 page faults per step and 5-15 % of the step time of the largest
    default shape. Raising the mmap and trim thresholds keeps that memory for reuse, as the CUDA
    caching allocator does on GPUs; the heap then stays at the step's peak.
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    for option in (m_trim_threshold, m_mmap_threshold):
        libc.mallopt(option, 1 << 30)


def _get_rng() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _StopSignal:
    """Remembers SIGTERM/SIGUSR1 so the loop can checkpoint at the end of the current step."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.requested, self.name = False, ""
        self._previous: dict[int, Any] = {}
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested, self.name = True, signal.Signals(signum).name

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Status:
    """tokens/s, MFU and ETA for the status line."""

    def __init__(
        self,
        run: Run,
        total_steps: int,
        start_step: int,
        tokens_per_step: int,
        device: torch.device,
        dtype: torch.dtype,
        seq_len: int,
    ) -> None:
        self.run, self.total, self.first = run, total_steps, start_step
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token(run.shape, seq_len)
        self.device, self.dtype = device, dtype
        self.peak: float | None = None
        self.every = max(1, total_steps // 20)
        self.start = self.last = time.perf_counter()

    def tokens_per_s(self, step: int) -> float:
        elapsed = time.perf_counter() - self.start
        return (step - self.first) * self.tokens_per_step / max(elapsed, 1e-9)

    def maybe_print(self, step: int, loss: float, force: bool = False) -> None:
        now = time.perf_counter()
        due = force or step == self.first + 1 or step % self.every == 0
        if not due and now - self.last < STATUS_SECONDS:
            return
        self.last = now
        if self.peak is None:  # measured once, after the first step, with the run's own threads
            size, seconds = (4096, 1.0) if self.device.type == "cuda" else (1024, 0.3)
            self.peak = measure_matmul_peak(self.dtype, str(self.device), size, seconds)
            self.start += time.perf_counter() - now  # the measurement is not training time
        rate = self.tokens_per_s(step)
        mfu = rate * self.flops_per_token / self.peak
        eta = (self.total - step) * self.tokens_per_step / max(rate, 1e-9)
        print(
            f"{self.run.name} step {step}/{self.total} tokens {step * self.tokens_per_step:,} "
            f"loss {loss:.4f} tokens/s {rate:,.0f} MFU {mfu:.1%} ETA {_hms(eta)}",
            flush=True,
        )


def _progress_bar(name: str, total: int, initial: int, enabled: bool) -> Any:
    """A bar counting tokens (its rate is tokens/s) on a terminal only: in a log file the
    status line (:class:`_Status`) prints the same numbers as whole lines."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="tok",
        unit_scale=True,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
