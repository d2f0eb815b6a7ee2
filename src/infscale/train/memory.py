"""Memory models, per GPU (or per CPU process in a rehearsal): what a training rank and a
latency job hold at their peak, so that a job is sized before submission, not after an OOM.

Pure Python, no torch import: the Snakefile calls it while it plans.

Training (loop.py's layout). Parameters are kept in fp32 and autocast runs the matmuls in bf16,
so per parameter a rank holds 4 B weights + 4 B gradients + 8 B AdamW moments = 16 B, sharded
over the ranks under FSDP (``train.parallel: fsdp`` on more than one rank), whole under DDP,
which adds 4 B of gradient buckets. FSDP gathers a block (fp32) while it runs and prefetches the
next, and reduce-scatters its gradients: three blocks unsharded, plus the root's (embeddings,
final norm, head) parameters and gradients. Autocast caches a bf16 copy of every weight it casts
for the whole forward: 2 B per parameter, never sharded.

Activations per layer and micro-batch row (s = seq_len, h = d_model, f = the MLP width, kv =
the KV heads' width), in bytes, counted from what the decoder block saves for backward under
autocast with SDPA attention (no s² score matrix): the fp32 residual stream and the norms'
fp32 inputs and outputs (4 + 4 + 4 + 4 B·h), their bf16 casts into the projections (2 + 2 B·h),
q and rotated q, the attention output (2 + 2 + 2 B·h), k, v and rotated k (6 B·kv), and the
SwiGLU's gate, up, activation and product (8 B·f): ``s·(26·h + 6·kv + 8·f)``. With activation
checkpointing a layer keeps only its fp32 input (4 B·h·s) and one layer at a time is recomputed
in full during backward. The head's logits are bf16 (2 B·V per token) and the loss takes them in
fp32 (a 4 B copy, its 4 B gradient and the 2 B gradient of the bf16 logits): 12 B·V per token.
torch.compile fuses some of these away, so the estimate errs high.

The estimate is then held against the GPU's memory less a headroom (cluster.memory_headroom,
for the allocator's fragmentation) and a fixed 2 GB (CUDA context, cuBLAS and NCCL buffers).
GB here are GiB (2³⁰ bytes), as GPU memory is counted ("80 GB" A100: 80 GiB).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from infscale.shapes import Shape

GB = 2**30
CONTEXT_GB = 2.0  # CUDA context, cuBLAS workspace and NCCL buffers, per process
STATE_BYTES = 16  # fp32 weights, fp32 gradients, AdamW's two fp32 moments, per parameter
DDP_BUCKET_BYTES = 4  # DDP's fp32 gradient buckets beside .grad
AUTOCAST_BYTES = 2  # autocast's bf16 copy of every weight, held for the forward
FSDP_LIVE_BLOCKS = 3  # the running block, the prefetched one, one reduce-scattering
LOGIT_BYTES = 12  # bf16 logits, their fp32 copy in the loss, two gradients
INFERENCE_BYTES = 2  # bf16 weights and KV cache when timing on a GPU


@dataclass(frozen=True)
class TrainMemory:
    """A training rank's peak, in GB, by part."""

    states: float
    activations: float
    logits: float
    transient: float

    @property
    def total(self) -> float:
        return self.states + self.activations + self.logits + self.transient


def layer_activation_bytes(shape: Shape, seq_len: int) -> int:
    """Bytes one decoder layer saves for backward per micro-batch row (module docstring)."""
    h, f = shape.d_model, shape.ffn_hidden
    kv = shape.n_kv_heads * shape.head_dim
    return seq_len * (26 * h + 6 * kv + 8 * f)


def train_memory(
    shape: Shape,
    seq_len: int,
    micro_batch: int,
    world: int,
    sharded: bool,
    checkpointing: bool,
) -> TrainMemory:
    """Peak memory of one of ``world`` training ranks at ``micro_batch`` rows of ``seq_len``."""
    n = shape.n_params
    block = (n - 2 * shape.vocab_size * shape.d_model) / shape.n_layers
    root = n - block * shape.n_layers
    if sharded:
        states = STATE_BYTES * n / world
        transient = 2 * 4 * (FSDP_LIVE_BLOCKS * block + root)  # gathered weights + gradients
    else:
        states = (STATE_BYTES + DDP_BUCKET_BYTES * (world > 1)) * n
        transient = 0.0
    transient += AUTOCAST_BYTES * n
    per_layer = layer_activation_bytes(shape, seq_len) * micro_batch
    if checkpointing:
        kept = 4 * shape.d_model * seq_len * micro_batch * shape.n_layers
        activations = kept + per_layer
    else:
        activations = per_layer * shape.n_layers
    logits = LOGIT_BYTES * shape.vocab_size * seq_len * micro_batch
    return TrainMemory(states / GB, activations / GB, logits / GB, transient / GB)


def usable_gb(memory_gb: float, headroom: float) -> float:
    """What a process may plan to use of ``memory_gb``: less the headroom and the context."""
    return memory_gb * (1 - headroom) - CONTEXT_GB


def kv_cache_bytes(shape: Shape, batch: int, tokens: int) -> int:
    """The bf16 KV cache of ``batch`` sequences of ``tokens`` tokens."""
    return 2 * shape.n_layers * batch * tokens * shape.n_kv_heads * shape.head_dim * INFERENCE_BYTES


def inference_memory_gb(
    resident: Iterable[Shape], timed: Iterable[tuple[Shape, int]], prompt: int, tokens: int
) -> float:
    """Peak GB of a latency job that keeps the ``resident`` shapes' bf16 weights loaded and
    times each of ``timed`` (shape, batch) in turn, ``prompt`` tokens in, ``tokens`` in all: the
    weights, the largest KV cache with one layer's copy while the cache grows, one layer's
    hidden states and MLP intermediates over the whole prompt (the prefill), and the last
    token's fp32 logits (generate computes no others)."""
    weights = sum(INFERENCE_BYTES * s.n_params for s in resident)
    peak = max(
        (
            kv_cache_bytes(s, b, tokens) * (1 + 1 / s.n_layers)
            + INFERENCE_BYTES * b * prompt * (4 * s.d_model + 2 * s.ffn_hidden)
            + 4 * b * s.vocab_size
            for s, b in timed
        ),
        default=0,
    )
    return (weights + peak) / GB
