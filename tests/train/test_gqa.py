"""A grouped-query shape with its own MLP width through training, the saved model, its reload
and the latency stage's checkpoint check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN
from transformers import AutoModelForCausalLM

from infscale.data.tokens import TokenWindows, write_windows
from infscale.errors import InputError
from infscale.grid import Run
from infscale.latency.measure import Item, load_model
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape
from infscale.train.flops import matmul_params
from infscale.train.launch import launch

SEQ, VOCAB, BATCH = 16, 128, 4
GQA = Shape(d_model=32, n_layers=2, n_heads=4, vocab_size=VOCAB, multiple_of=16, n_kv_heads=1)
GQA = GQA.with_params(Shape(32, 2, 4, VOCAB, 16).n_params)  # F widened: about MHA's N


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_gqa_shape_trains_saves_and_reloads_with_its_kv_heads(tmp_path, norm):
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, VOCAB, rng.integers(3, 40)).tolist() for _ in range(400)]
    write_windows(docs, tmp_path / "train.bin", SEQ, 0, VOCAB)
    write_windows(docs[:40], tmp_path / "val.bin", SEQ, 0, VOCAB)
    tokens = BATCH * SEQ * 2  # two steps
    run = Run("xs-gqa", "xs", "gqa", GQA, (1,), (tokens,))
    cfg = TINY_TRAIN | {"batch_size": BATCH, "warmup_steps": 1, "checkpoint_every": 1}
    spec = {
        "run": run.to_dict(),
        "train": str(tmp_path / "train.bin"),
        "val": str(tmp_path / "val.bin"),
        "tokenizer": None,
        "cfg": cfg,
        "max_position": SEQ,
        "rope_theta": 10000.0,
        "norm": norm,
        "log_path": str(tmp_path / "log.jsonl"),
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "model_out": str(tmp_path / "model"),
        "points_out": str(tmp_path / "points.csv"),
        "threads": 1,
        "progress": False,
    }
    assert launch(spec, 1, tmp_path / "spec.json") == 0

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (4, 1)
    assert model.config.intermediate_size == GQA.ffn_hidden != Shape(32, 2, 4, VOCAB, 16).ffn_hidden
    attention = model.model.layers[0].self_attn
    assert attention.k_proj.weight.shape == attention.v_proj.weight.shape == (8, 32)  # 1 head of 8
    biases = (2 * GQA.n_layers + 1) * GQA.d_model if norm == "layernorm" else 0
    assert sum(p.numel() for p in model.parameters()) == GQA.n_params + biases
    with torch.no_grad():
        logits = model(TokenWindows(spec["val"]).batch([0])[:, :SEQ]).logits
    assert logits.shape == (1, SEQ, VOCAB) and torch.isfinite(logits).all()

    point = pd.read_csv(tmp_path / "points.csv").iloc[0]
    assert (point["n_heads"], point["n_kv_heads"], point["ffn_hidden"]) == (4, 1, GQA.ffn_hidden)
    assert (point["N"], point["N_module"]) == (GQA.n_params, GQA.n_params + biases)

    protocol = Protocol(input_tokens=4, output_tokens=4, device="cpu")
    trained = load_model(Item(GQA, 1, str(tmp_path / "model"), "trained"), protocol, torch.float32)
    assert trained.config.num_key_value_heads == 1
    mha = Shape(32, 2, 4, VOCAB, 16, ffn_hidden=GQA.ffn_hidden)  # the same but for its KV heads
    with pytest.raises(InputError, match="n_kv_heads"):
        load_model(Item(mha, 1, str(tmp_path / "model"), "trained"), protocol, torch.float32)


def test_matmul_params_count_the_kv_projections_a_shape_has():
    mha = Shape(64, 3, 8, 100, 16)
    d, f = 64, mha.ffn_hidden
    assert matmul_params(mha) == 3 * (4 * d * d + 3 * f * d) + 100 * d  # PaLM's, as before
    gqa = Shape(64, 3, 8, 100, 16, n_kv_heads=2, ffn_hidden=300)
    assert matmul_params(gqa) == 3 * (2 * d * d + 2 * d * 2 * 8 + 3 * 300 * d) + 100 * d
