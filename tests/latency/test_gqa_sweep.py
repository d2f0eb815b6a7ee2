"""The gqa sweep: its equal-N twins, what its job times, its parse-time checks, its gains table."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import REPO

from infscale.checks import validate_config
from infscale.errors import InputError
from infscale.latency.measure import Item, measure_interleaved
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import gqa_speedups, sweep_items, sweep_lengths, sweep_shapes
from infscale.shapes import Shape

SCHEMA = REPO / "config" / "schema.yaml"


def test_default_gqa_sweep_is_an_mha_shape_and_its_equal_n_twins(default_config):
    spec, model = default_config["latency"]["sweeps"]["gqa"], default_config["model"]
    mha, *twins = sweep_shapes(default_config, "gqa")
    assert mha == Shape(
        spec["d_model"],
        spec["n_layers"],
        spec["n_heads"],
        model["vocab_size"],
        model["multiple_of"],
    )
    assert [t.n_kv_heads for t in twins] == [k for k in spec["n_kv_heads"] if k != mha.n_heads]
    for twin in twins:
        assert twin.n_heads == mha.n_heads and twin.n_kv_heads < mha.n_heads
        assert twin.ffn_hidden > mha.ffn_hidden and twin.ffn_hidden % model["multiple_of"] == 0
        step = 3 * twin.d_model * twin.n_layers * model["multiple_of"]
        assert abs(twin.n_params - mha.n_params) <= step / 2
        assert twin.label == f"{mha.label}-kv{twin.n_kv_heads}-f{twin.ffn_hidden}"
    items = sweep_items(default_config, "gqa")
    assert len(items) == (1 + len(twins)) * len(spec["batch_sizes"])
    assert {i["batch_size"] for i in items} == set(spec["batch_sizes"])
    assert len({i["name"] for i in items}) == len(items)  # a reference is named unambiguously
    assert Shape(**items[-1]["shape"]) == twins[-1]
    assert sweep_lengths(default_config, "gqa") == {
        "input_tokens": spec["input_tokens"],
        "output_tokens": spec["output_tokens"],
    }
    # the Fig. 3 sweeps keep the protocol's batch size and lengths, and their shapes' names
    layers = sweep_items(default_config, "layers")
    assert {i["batch_size"] for i in layers} == {default_config["latency"]["batch_size"]}
    assert {i["name"] for i in layers} == {None} and sweep_lengths(default_config, "layers") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["latency"]["sweeps"]["gqa"].update(n_kv_heads=[3]),
            "config key latency.sweeps.gqa: n_heads 8 is not a multiple of n_kv_heads 3",
        ),
        (
            lambda c: c["latency"]["sweeps"]["gqa"].update(input_tokens=4000),
            "config key latency.sweeps.gqa: input_tokens + output_tokens = 4064 exceeds",
        ),
        (
            lambda c: c["latency"]["sweeps"]["gqa"].update(batch_sizes=[]),
            "config key latency.sweeps.gqa.batch_sizes",
        ),
        (
            lambda c: c["select"]["candidates"]["c2"].update(n_kv_heads=3),
            "config key select.candidates.c2: n_heads 4 is not a multiple of n_kv_heads 3",
        ),
        (
            lambda c: c["select"]["candidates"]["c2"].update(ffn_hidden=0),
            "config key select.candidates.c2.ffn_hidden",
        ),
        (
            lambda c: c["grid"]["sizes"]["s"]["variants"]["v2"].update(n_kv_heads=8),
            "config key grid.sizes.s.variants.v2 (run s-v2): n_heads 4 is not a multiple",
        ),
        (
            lambda c: c["grid"]["sizes"]["xs"]["variants"]["v1"].update(d_model=36),
            "config key grid.sizes.xs.variants.v1 (run xs-v1): head_dim 9",
        ),
        (
            lambda c: c["latency"]["throughput"].update(n_kv_heads=3),
            "config key latency.throughput: n_heads 4 is not a multiple of n_kv_heads 3",
        ),
    ],
)
def test_bad_shapes_stop_at_parse_time_naming_the_key(config, change, message):
    change(config)
    with pytest.raises(InputError, match=re.escape(message)):
        validate_config(config, SCHEMA)


def test_gqa_shapes_in_the_grid_and_the_candidates_are_accepted(config):
    from infscale.grid import latency_shapes, run_table

    config["grid"]["sizes"]["s"]["variants"]["v2"].update(n_kv_heads=2)
    config["select"]["candidates"]["c3"].update(n_kv_heads=1, ffn_hidden=200)
    validate_config(config, SCHEMA)
    runs = run_table(config)
    assert runs["s-v2"].shape.label == "d40-l5-h4-kv2"
    assert runs["candidates/c3"].shape.label == "d64-l6-h4-kv1-f200"
    assert {"d40-l5-h4-kv2", "d64-l6-h4-kv1-f200"} <= set(latency_shapes(config))


def test_gqa_speedups_divide_by_mha_at_the_same_batch():
    table = pd.DataFrame(
        {
            "shape": ["a", "a", "b", "b", "c", "c"],
            "n_heads": 8,
            "n_kv_heads": [8, 8, 2, 2, 1, 1],
            "ffn_hidden": [352, 352, 416, 416, 432, 432],
            "N": 1000,
            "batch_size": [8, 32] * 3,
            "tokens_per_s": [100.0, 200.0, 120.0, 300.0, 90.0, 400.0],
            "flagged": False,
        }
    )
    out = gqa_speedups(table)
    assert out["n_kv_heads"].tolist() == [1, 1, 2, 2, 8, 8]
    assert out["heads_per_kv"].tolist() == [8, 8, 4, 4, 1, 1]
    assert out["speedup_vs_mha"].tolist() == pytest.approx([0.9, 2.0, 1.2, 1.5, 1.0, 1.0])


def test_gqa_items_are_timed_with_their_kv_heads():
    """A real (tiny) interleaved measurement: each row says which twin and batch it timed."""
    mha = Shape(32, 1, 4, 64, 16)
    twin = Shape(32, 1, 4, 64, 16, 1).with_params(mha.n_params)
    items = [Item(s, b, name=f"{s.label}-b{b}") for s in (mha, twin) for b in (1, 8)]
    protocol = Protocol(input_tokens=8, output_tokens=2, trials=2, warmup=0, device="cpu")
    rows = pd.DataFrame(measure_interleaved(items, protocol, ttft=False))
    assert rows["n_kv_heads"].tolist() == [4, 4, 1, 1]
    assert rows["ffn_hidden"].tolist() == [mha.ffn_hidden] * 2 + [twin.ffn_hidden] * 2
    assert rows["tokens_per_s"].tolist() == pytest.approx(
        (rows["batch_size"] * 2 / rows["median_s"]).tolist()
    )
    assert set(gqa_speedups(rows.assign(n_heads=4))["shape"]) == {mha.label, twin.label}
