"""Model FLOPs and the machine's measured matmul peak, for tokens/s → MFU.

Model FLOPs per trained token follow PaLM (Chowdhery et al. 2022, App. B): ``6·M + 12·L·d·T``,
with ``M`` the parameters that take part in a matmul (every block's projections and the output
head, not the input embedding, which is a lookup) and ``12·L·d·T`` the attention scores and
values (forward + backward, T the sequence length, causal masking not discounted). Norms,
activations and the softmax are not counted, as usual, so MFU never flatters the run.
"""

from __future__ import annotations

import time

import torch

from infscale.shapes import Shape


def matmul_params(shape: Shape) -> int:
    """Parameters used in matmuls: N less the input embedding (V·d) and the norms ((2·L + 1)·d),
    i.e. every projection (q, k, v, o at the shape's KV heads, the SwiGLU) and the output head;
    ``L·(4·d² + 3·f·d) + V·d`` for multi-head attention."""
    d = shape.d_model
    return shape.n_params - shape.vocab_size * d - (2 * shape.n_layers + 1) * d


def flops_per_token(shape: Shape, seq_len: int) -> int:
    """Training FLOPs (forward + backward) per token; the attention term's width is the query
    heads' (n_heads · head_dim, d_model unless a head_dim is given)."""
    width = shape.n_heads * shape.head_dim
    return 6 * matmul_params(shape) + 12 * shape.n_layers * width * seq_len


def measure_matmul_peak(
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    size: int = 2048,
    seconds: float = 2.0,
) -> float:
    """Best sustained FLOP/s of a ``size``³ matmul in ``dtype`` on ``device`` (current threads)."""
    gen = torch.Generator(device=device).manual_seed(0)  # leaves the global RNG untouched
    a = torch.randn(size, size, device=device, generator=gen).to(dtype)
    b = torch.randn(size, size, device=device, generator=gen).to(dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up: library init, page faults
    _sync(device)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        reps = 0
        while reps < 1 or time.perf_counter() - start < 0.2:
            torch.matmul(a, b, out=out)
            reps += 1
        _sync(device)
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start))
    return best


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
