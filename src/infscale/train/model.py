"""The open_lm architecture expressed as a stock transformers model.

Pre-norm, rotary (base: config model.rope_theta), SwiGLU of the shape's ffn_hidden (default:
open_lm's rule), attention with the shape's n_kv_heads (grouped-query where fewer than
n_heads), no linear biases, untied input and output embeddings. Two norms (config ``model.norm``):

- ``rmsnorm``: a ``LlamaForCausalLM``; ``sum(p.numel())`` is exactly the paper's N.
- ``layernorm``: open_lm's default, LayerNorm *with bias*. transformers' ``StableLmForCausalLM``
  with full rotary (``partial_rotary_factor`` 1), sequential residual, no qkv bias and no qk-norm
  is the same block with ``nn.LayerNorm`` (weight + bias), so a saved checkpoint reloads through
  ``AutoModelForCausalLM`` with nothing swapped by hand. Its module holds ``(2·L + 1)·d`` more
  parameters (the biases) than N, which counts RMSNorm weights; both counts are reported.
"""

from __future__ import annotations

import math

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    StableLmConfig,
    StableLmForCausalLM,
)

from infscale.errors import InputError
from infscale.shapes import Shape


def _shape_fields(shape: Shape, max_position: int) -> dict[str, int]:
    """The config fields a shape fixes, named alike in Llama's and StableLm's configs (head_dim:
    Llama's only; StableLm's attention is always d_model / n_heads wide)."""
    return {
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.d_model,
        "intermediate_size": shape.ffn_hidden,
        "num_hidden_layers": shape.n_layers,
        "num_attention_heads": shape.n_heads,
        "num_key_value_heads": shape.n_kv_heads,
        "max_position_embeddings": max_position,
    }


def llama_config(
    shape: Shape, *, max_position: int, rope_theta: float, norm_eps: float = 1e-5
) -> LlamaConfig:
    return LlamaConfig(
        **_shape_fields(shape, max_position),
        head_dim=shape.head_dim,
        rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta)},
        rms_norm_eps=norm_eps,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


NORMS = ("layernorm", "rmsnorm")


def layernorm_config(
    shape: Shape, *, max_position: int, rope_theta: float, norm_eps: float = 1e-5
) -> StableLmConfig:
    """open_lm's block with LayerNorm (weight and bias) as a ``StableLmConfig``."""
    if shape.n_heads * shape.head_dim != shape.d_model:
        raise InputError(
            f"shape {shape.label}: head_dim {shape.head_dim} x n_heads {shape.n_heads} is not "
            f"d_model {shape.d_model}, which model.norm layernorm (StableLm) requires"
        )
    return StableLmConfig(
        **_shape_fields(shape, max_position),
        rope_parameters={
            "rope_type": "default",
            "rope_theta": float(rope_theta),
            "partial_rotary_factor": 1.0,
        },
        layer_norm_eps=norm_eps,
        tie_word_embeddings=False,
        use_qkv_bias=False,
        qk_layernorm=False,
        use_parallel_residual=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        hidden_act="silu",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


def build_model(
    shape: Shape,
    *,
    max_position: int,
    seed: int,
    rope_theta: float,
    norm: str,
) -> PreTrainedModel:
    """A freshly initialised model, seeded, with open_lm's initialisation. ``rope_theta`` and
    ``norm`` have no default here: a trained model takes the config's (model.rope_theta,
    model.norm), a latency measurement the protocol's (infscale.latency.protocol.TIMED_MODEL)."""
    torch.manual_seed(seed)
    if norm == "rmsnorm":
        model = LlamaForCausalLM(
            llama_config(shape, max_position=max_position, rope_theta=rope_theta)
        )
    elif norm == "layernorm":
        model = StableLmForCausalLM(
            layernorm_config(shape, max_position=max_position, rope_theta=rope_theta)
        )
    else:
        raise ValueError(f"model.norm {norm!r} is not one of {', '.join(NORMS)}")
    open_lm_init(model)
    return model


@torch.no_grad()
def open_lm_init(model: PreTrainedModel) -> None:
    """Truncated normal, std 1/sqrt(fan_in); each block's output projections (attention o_proj,
    MLP down_proj) further scaled by 1/sqrt(2·(layer+1)), as open_lm does. Embeddings and head
    use std 1/sqrt(d_model); norms start at one."""
    d_model = model.config.hidden_size
    _trunc_normal(model.model.embed_tokens.weight, 1 / math.sqrt(d_model))
    _trunc_normal(model.lm_head.weight, 1 / math.sqrt(d_model))
    for index, layer in enumerate(model.model.layers):
        depth_scale = 1 / math.sqrt(2 * (index + 1))
        for name, module in layer.named_modules():
            if isinstance(module, torch.nn.Linear):
                std = 1 / math.sqrt(module.in_features)
                if name.endswith(("o_proj", "down_proj")):
                    std *= depth_scale
                _trunc_normal(module.weight, std)
            elif isinstance(module, torch.nn.LayerNorm):
                torch.nn.init.ones_(module.weight)
                torch.nn.init.zeros_(module.bias)


def _trunc_normal(weight: torch.Tensor, std: float) -> None:
    torch.nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-3 * std, b=3 * std)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
