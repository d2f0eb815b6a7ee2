"""Model shapes and the paper's exact parameter count.

N = 2·V·d + L·(4·d² + 3·f·d + 2·d) + d, with f the open_lm SwiGLU hidden size. This is
``sum(p.numel())`` of an untied, bias-free ``LlamaForCausalLM`` with RMSNorm (FACTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infscale.errors import InputError

PAPER_MULTIPLE_OF = 256


def ffn_hidden(d_model: int, multiple_of: int = PAPER_MULTIPLE_OF) -> int:
    """open_lm's SwiGLU width: 8d/3 rounded up to a multiple (256 in the paper)."""
    return multiple_of * math.ceil((8 * d_model // 3) / multiple_of)


def param_count(
    d_model: int, n_layers: int, vocab_size: int, multiple_of: int = PAPER_MULTIPLE_OF
) -> int:
    f = ffn_hidden(d_model, multiple_of)
    d = d_model
    return 2 * vocab_size * d + n_layers * (4 * d * d + 3 * f * d + 2 * d) + d


@dataclass(frozen=True)
class Shape:
    """One transformer shape; everything the law and the latency depend on."""

    d_model: int
    n_layers: int
    n_heads: int
    vocab_size: int
    multiple_of: int = PAPER_MULTIPLE_OF

    def __post_init__(self) -> None:
        for field in ("d_model", "n_layers", "n_heads", "vocab_size", "multiple_of"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{field} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise InputError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def ffn_hidden(self) -> int:
        return ffn_hidden(self.d_model, self.multiple_of)

    @property
    def n_params(self) -> int:
        return param_count(self.d_model, self.n_layers, self.vocab_size, self.multiple_of)

    @property
    def aspect_ratio(self) -> float:
        """R = d_model / n_layers, the shape variable of the inference-efficient law."""
        return self.d_model / self.n_layers

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def label(self) -> str:
        return f"d{self.d_model}-l{self.n_layers}-h{self.n_heads}"
