"""An analytic cross-check of measured throughput: what a CPU-only user can trust without a GPU.

Two costs of generating one output token, per sequence (the follow-up, App. H):
- compute: ``2·P_nonemb + 2·n_layers·T·d_q`` FLOPs, T the KV length, d_q = n_heads·head_dim (the
  matrix products of the non-embedding weights, and attention's scores and weighted sum);
- memory traffic of a decoding step at batch B: every weight matrix read once (the
  non-embedding weights and the output head, V·d), plus each sequence's KV cache
  (2·n_layers·n_kv_heads·head_dim·T values); per output token, that over B. Decoding at small
  batch is bound by it.
Both averaged over the generation's KV lengths (input … input + output − 1; linear in T, so the
midpoint). A shape's measured time per output token set against a model's cost should follow its
ranking; a pair of shapes in the opposite order, beyond their timing noise, is flagged.
Pure functions over arrays and shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from infscale.shapes import Shape

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def mean_kv_length(input_tokens: int, output_tokens: int) -> float:
    """The KV length averaged over the decoding steps of one generation."""
    return input_tokens + (output_tokens - 1) / 2


def flops_per_token(shape: Shape, kv_length: float) -> float:
    """The follow-up's inference FLOPs per token: 2·P_nonemb + 2·n_layers·T·d_q."""
    d_q = shape.n_heads * shape.head_dim
    return 2 * shape.non_embedding_params + 2 * shape.n_layers * kv_length * d_q


def bytes_per_token(shape: Shape, kv_length: float, batch_size: int, value_bytes: int) -> float:
    """Memory read per output token of one sequence: the weights a step reads (non-embedding
    and the output head), shared by the batch, plus the sequence's own KV cache."""
    weights = shape.non_embedding_params + shape.vocab_size * shape.d_model
    kv_cache = 2 * shape.n_layers * shape.n_kv_heads * shape.head_dim * kv_length
    return value_bytes * (weights / batch_size + kv_cache)


def discordant_pairs(
    cost: np.ndarray, seconds: np.ndarray, log_se: np.ndarray | None = None, z: float = 1.0
) -> list[tuple[int, int]]:
    """Pairs (i, j) the model orders i before j (cheaper) but measured slower, by more than ``z``
    combined standard errors of the log time (``log_se``; None: any difference counts)."""
    cost, seconds = np.asarray(cost, dtype=float), np.asarray(seconds, dtype=float)
    se = np.zeros_like(seconds) if log_se is None else np.nan_to_num(np.asarray(log_se, float))
    pairs = []
    for i in range(len(cost)):
        for j in range(len(cost)):
            if cost[i] < cost[j]:
                gap = np.log(seconds[i] / seconds[j])
                if gap > z * np.hypot(se[i], se[j]):
                    pairs.append((i, j))
    return pairs


def cross_check(
    shapes: Sequence[Shape],
    tokens_per_s: np.ndarray,
    *,
    input_tokens: int,
    output_tokens: int,
    batch_sizes: Sequence[int],
    dtype: str,
    log_se: np.ndarray | None = None,
    z: float = 1.0,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per shape (timed at ``batch_sizes[i]``): its measured seconds per output token per
    sequence beside both models' costs, each
    normalised to the shapes' median (so 1.0 reads "typical"), the ratio of measured time to the
    memory model's, and the shapes it runs out of the memory model's order with (``departs``).
    Also the Spearman rank agreement of measured time with each model."""
    from scipy.stats import spearmanr

    if dtype not in DTYPE_BYTES:
        raise ValueError(f"no byte width for dtype {dtype!r}")
    tokens_per_s = np.asarray(tokens_per_s, dtype=float)
    seconds = np.asarray(batch_sizes) / tokens_per_s  # per output token per sequence
    kv = mean_kv_length(input_tokens, output_tokens)
    flops = np.array([flops_per_token(s, kv) for s in shapes])
    traffic = np.array(
        [
            bytes_per_token(s, kv, batch, DTYPE_BYTES[dtype])
            for s, batch in zip(shapes, batch_sizes, strict=True)
        ]
    )
    ratio = (seconds / traffic) / np.median(seconds / traffic)
    pairs = discordant_pairs(traffic, seconds, log_se, z)
    labels = [s.label for s in shapes]
    departs = [
        " ".join(
            sorted(
                {labels[j] for a, j in pairs if a == i} | {labels[a] for a, j in pairs if j == i}
            )
        )
        for i in range(len(shapes))
    ]
    table = pd.DataFrame(
        {
            "shape": labels,
            "batch_size": batch_sizes,
            "tokens_per_s": tokens_per_s,
            "s_per_token": seconds,
            "flops_per_token": flops,
            "bytes_per_token": traffic,
            "flops_rel": flops / np.median(flops),
            "bytes_rel": traffic / np.median(traffic),
            "measured_over_memory_model": ratio,
            "departs_from": departs,
            "flagged": [bool(d) for d in departs],
        }
    )
    agreement = {
        "spearman_flops": _spearman(spearmanr, flops, seconds),
        "spearman_memory": _spearman(spearmanr, traffic, seconds),
        "kv_length": kv,
        "flagged": int(table["flagged"].sum()),
    }
    return table, agreement


def _spearman(spearmanr, x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation, None where it is undefined (fewer than 3 shapes, or a constant)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)
