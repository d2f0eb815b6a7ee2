"""The analytic cross-check: the follow-up's FLOPs per token, the memory traffic of decoding, and
the shapes whose measured time runs against the model's order."""

import numpy as np
import pytest

from infscale.latency.analytic import (
    bytes_per_token,
    cross_check,
    discordant_pairs,
    flops_per_token,
    mean_kv_length,
)
from infscale.shapes import Shape

SHAPE = Shape(64, 2, 2, 300)  # head size 32, d_q 64


def test_flops_per_token_is_the_follow_ups_formula():
    assert flops_per_token(SHAPE, 0) == 2 * SHAPE.non_embedding_params
    # attention adds 2·n_layers·T·d_q: 2·2·10·64
    assert flops_per_token(SHAPE, 10) - flops_per_token(SHAPE, 0) == 2560


def test_memory_traffic_reads_weights_once_per_step_and_each_sequences_cache():
    weights = SHAPE.non_embedding_params + 300 * 64
    kv = 2 * 2 * 2 * 32 * 100  # K, V × layers × kv heads × head size × T
    assert bytes_per_token(SHAPE, 100, 1, 4) == 4 * (weights + kv)
    assert bytes_per_token(SHAPE, 100, 8, 2) == 2 * (weights / 8 + kv)
    gqa = Shape(64, 2, 2, 300, n_kv_heads=1)
    assert bytes_per_token(SHAPE, 100, 1, 4) - bytes_per_token(gqa, 100, 1, 4) == pytest.approx(
        4 * (kv / 2 + SHAPE.non_embedding_params - gqa.non_embedding_params)
    )


def test_mean_kv_length_is_the_midpoint_of_the_decoding_steps():
    assert mean_kv_length(128, 1) == 128
    assert mean_kv_length(128, 5) == 130  # steps at 128 ... 132


def test_a_pair_out_of_order_beyond_the_noise_is_discordant():
    cost = np.array([1.0, 2.0, 3.0])
    assert discordant_pairs(cost, np.array([1.0, 2.0, 3.0])) == []
    assert discordant_pairs(cost, np.array([2.2, 2.0, 3.0])) == [(0, 1)]
    se = np.array([0.1, 0.1, 0.1])  # log(2.2/2) = 0.095 < hypot = 0.141: a tie
    assert discordant_pairs(cost, np.array([2.2, 2.0, 3.0]), se) == []


def test_cross_check_flags_the_shape_out_of_the_memory_models_order():
    shapes = [Shape(64, 1, 2, 300), Shape(64, 2, 2, 300), Shape(64, 4, 2, 300)]
    common = {"input_tokens": 8, "output_tokens": 4, "batch_sizes": [1, 1, 1], "dtype": "float32"}
    traffic = np.array([bytes_per_token(s, mean_kv_length(8, 4), 1, 4) for s in shapes])
    table, agreement = cross_check(shapes, 1e9 / traffic, **common)  # time ∝ bytes
    assert not table["flagged"].any() and agreement["spearman_memory"] == pytest.approx(1.0)
    assert table["measured_over_memory_model"].to_numpy() == pytest.approx([1, 1, 1])
    slow_first = 1e9 / traffic
    slow_first[0] = slow_first[2] / 2  # the shallowest measured slowest of all
    table, agreement = cross_check(shapes, slow_first, **common)
    assert table["flagged"].tolist() == [True, True, True]
    assert table.loc[0, "departs_from"] == "d64-l2-h2 d64-l4-h2"
    assert table.loc[1, "departs_from"] == "d64-l1-h2"
    assert agreement["spearman_memory"] == pytest.approx(-0.5)
    # at batch 4, a sequence's token takes 4 / tokens_per_s; the weights are read once per step
    table, _ = cross_check(shapes, slow_first, **{**common, "batch_sizes": [4, 4, 4]})
    assert table["s_per_token"].to_numpy() == pytest.approx(4 / slow_first)
    assert table.loc[0, "bytes_per_token"] == bytes_per_token(shapes[0], 9.5, 4, 4)
    with pytest.raises(ValueError, match="int8"):
        cross_check(shapes, slow_first, **{**common, "dtype": "int8"})
