"""HF vs vLLM on the same shapes: the equal-N sweep at one head size and the side-by-side table."""

import pytest

from infscale.errors import InputError
from infscale.latency.engine import CPU_HEAD_SIZES
from infscale.latency.engines import engine_shapes, engine_table, equal_params_sweep
from infscale.shapes import Shape


def test_the_sweep_holds_the_head_size_and_n_near_the_target():
    shapes = equal_params_sweep(1_000_000, 32, [1, 4, 16], 512, 16)
    assert [s.n_layers for s in shapes] == [1, 4, 16]
    assert all(s.head_dim == 32 and s.d_model == 32 * s.n_heads for s in shapes)
    for shape in shapes:  # no multiple of 32 either side is closer to 1M
        for d in (shape.d_model - 32, shape.d_model + 32):
            other = Shape(d, shape.n_layers, d // 32, 512, 16)
            assert abs(other.n_params - 1_000_000) > abs(shape.n_params - 1_000_000)
    assert [s.d_model for s in shapes] == [256, 128, 64]


def test_the_default_sweep_is_one_vllms_cpu_attention_takes(default_config):
    shapes = engine_shapes(default_config)
    assert len(shapes) >= 4 and {s.head_dim for s in shapes} <= set(CPU_HEAD_SIZES)
    assert len({round(s.aspect_ratio) for s in shapes}) == len(shapes)  # across R


def fake_result(median):
    return {
        "median_s": median,
        "median_ttft_ms": 1.0,
        "median_tpot_ms": 2.0,
        "p99_e2el_ms": 1000 * median,
        "cv": 0.1,
        "flagged": False,
    }


def test_engine_table_ranks_ratios_and_agreement():
    shapes = equal_params_sweep(1_000_000, 32, [1, 2, 4], 512, 16)
    results = {
        "hf": [fake_result(m) for m in (1.0, 2.0, 4.0)],
        "vllm": [fake_result(m) for m in (0.5, 0.25, 2.0)],  # swaps the two fastest
    }
    table, summary = engine_table(shapes, results)
    assert table["hf_rank"].tolist() == [1, 2, 3] and table["vllm_rank"].tolist() == [2, 1, 3]
    assert table["vllm_over_hf"].tolist() == [0.5, 0.125, 0.5]
    assert summary["spearman"] == pytest.approx(0.5)
    assert summary["vllm_over_hf_geomean"] == pytest.approx((0.5 * 0.125 * 0.5) ** (1 / 3))
    with pytest.raises(InputError, match="one result per shape"):
        engine_table(shapes, {"hf": results["hf"]})
