"""Model shapes and their exact parameter count.

Per layer: D·H·HD (q) + 2·D·K·HD (k, v) + H·HD·D (o) + 3·D·F (SwiGLU) + 2·D (norms); plus
2·V·D (untied embeddings) and D (final norm). K (``n_kv_heads``) defaults to H (multi-head
attention), HD to D / H and F to the open_lm SwiGLU width. With those defaults this is the
paper's N = 2·V·d + L·(4·d² + 3·f·d + 2·d) + d, ``sum(p.numel())`` of an untied, bias-free
``LlamaForCausalLM`` with RMSNorm (docs/facts.md, "Parameter count").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from infscale.errors import InputError

PAPER_MULTIPLE_OF = 256


def ffn_hidden(d_model: int, multiple_of: int = PAPER_MULTIPLE_OF) -> int:
    """open_lm's SwiGLU width: 8d/3 rounded up to a multiple (256 in the paper)."""
    return multiple_of * math.ceil((8 * d_model // 3) / multiple_of)


def param_count(
    d_model: int,
    n_layers: int,
    vocab_size: int,
    multiple_of: int = PAPER_MULTIPLE_OF,
    *,
    q_width: int | None = None,
    kv_width: int | None = None,
    ffn: int | None = None,
) -> int:
    """N; ``q_width`` = H·HD and ``kv_width`` = K·HD (both d_model for multi-head attention
    at HD = D / H), ``ffn`` = F (default: the open_lm width)."""
    d = d_model
    q = d if q_width is None else q_width
    kv = q if kv_width is None else kv_width
    f = ffn_hidden(d, multiple_of) if ffn is None else ffn
    return 2 * vocab_size * d + n_layers * (2 * d * q + 2 * d * kv + 3 * f * d + 2 * d) + d


@dataclass(frozen=True)
class Shape:
    """One transformer shape; everything the law and the latency depend on.

    ``n_kv_heads``, ``ffn_hidden`` and ``head_dim`` given as None take their defaults (n_heads,
    the open_lm width, d_model / n_heads) at construction, so a shape written with the defaults
    spelled out is the same shape (equal, same label) as one written without them.
    """

    d_model: int
    n_layers: int
    n_heads: int
    vocab_size: int
    multiple_of: int = PAPER_MULTIPLE_OF
    n_kv_heads: int | None = None
    ffn_hidden: int | None = None
    head_dim: int | None = None

    def __post_init__(self) -> None:
        for field in ("d_model", "n_layers", "n_heads", "vocab_size", "multiple_of"):
            _check_positive(field, getattr(self, field))
        for field in ("n_kv_heads", "ffn_hidden", "head_dim"):
            if getattr(self, field) is not None:
                _check_positive(field, getattr(self, field))
        if self.d_model % self.n_heads:  # transformers' configs ask it even with a head_dim
            raise InputError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        defaults = {
            "n_kv_heads": self.n_heads,
            "ffn_hidden": ffn_hidden(self.d_model, self.multiple_of),
            "head_dim": self.d_model // self.n_heads,
        }
        for field, default in defaults.items():
            if getattr(self, field) is None:
                object.__setattr__(self, field, default)
        if self.n_heads % self.n_kv_heads:
            raise InputError(
                f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise InputError(
                f"head_dim {self.head_dim} (d_model / n_heads unless given) is odd "
                "(rotary embeddings need it even)"
            )

    @property
    def dimensions(self) -> dict[str, str | int]:
        """The shape's columns in every result table that lists shapes: its label, then what
        the label abbreviates."""
        return {
            "shape": self.label,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "vocab_size": self.vocab_size,
            "ffn_hidden": self.ffn_hidden,
        }

    @property
    def n_params(self) -> int:
        return param_count(
            self.d_model,
            self.n_layers,
            self.vocab_size,
            q_width=self.n_heads * self.head_dim,
            kv_width=self.n_kv_heads * self.head_dim,
            ffn=self.ffn_hidden,
        )

    @property
    def non_embedding_params(self) -> int:
        """N without the untied input and output embeddings (2·V·D)."""
        return self.n_params - 2 * self.vocab_size * self.d_model

    @property
    def aspect_ratio(self) -> float:
        """R = d_model / n_layers, the shape variable of the inference-efficient law."""
        return self.d_model / self.n_layers

    @property
    def label(self) -> str:
        """``d{D}-l{L}-h{H}``, plus ``-kv{K}``, ``-f{F}``, ``-hd{HD}`` where those differ from
        their defaults (result paths are named by it, so default shapes keep their old names)."""
        label = f"d{self.d_model}-l{self.n_layers}-h{self.n_heads}"
        if self.n_kv_heads != self.n_heads:
            label += f"-kv{self.n_kv_heads}"
        if self.ffn_hidden != ffn_hidden(self.d_model, self.multiple_of):
            label += f"-f{self.ffn_hidden}"
        if self.n_heads * self.head_dim != self.d_model:
            label += f"-hd{self.head_dim}"
        return label

    def with_params(self, params: int) -> Shape:
        """This shape with the ffn_hidden, a multiple of multiple_of, whose N is closest to
        ``params``: the MLP absorbs a change elsewhere (fewer KV heads) at about equal N."""
        per_unit = 3 * self.d_model * self.n_layers  # N per unit of ffn_hidden
        rest = self.n_params - per_unit * self.ffn_hidden
        f = max(1, round((params - rest) / per_unit / self.multiple_of)) * self.multiple_of
        return replace(self, ffn_hidden=f)


def _check_positive(field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{field} must be a positive integer, got {value!r}")
