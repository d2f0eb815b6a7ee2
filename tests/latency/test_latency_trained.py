"""Latency from a saved checkpoint: the same time as the random-init model of the shape."""

import numpy as np
import pytest
import torch

from infscale.errors import InputError
from infscale.latency.measure import Item, load_model
from infscale.latency.protocol import Protocol
from infscale.latency.trained import agreement, measure_trained, trained_table
from infscale.shapes import Shape
from infscale.train.model import build_model

SHAPE = Shape(32, 2, 4, 300, 16)
SAVED_POSITIONS = 16  # shorter than the protocol's 8 + 12 positions, as a trained run's seq_len


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("c1") / "model"
    model = build_model(
        SHAPE, max_position=SAVED_POSITIONS, seed=5, rope_theta=1e4, norm="layernorm"
    )
    with torch.no_grad():
        for p in model.parameters():  # weights no random init would give
            p.mul_(0.5).add_(0.01)
    model.save_pretrained(folder)
    return folder, model


def test_checkpoint_latency_agrees_with_the_random_init_of_its_shape(checkpoint):
    folder, _ = checkpoint
    protocol = Protocol(input_tokens=8, output_tokens=12, trials=9, warmup=1, do_sample=False)
    table = measure_trained({"c1": (SHAPE, folder)}, protocol)
    row = table.iloc[0]
    assert (row["name"], row["shape"], row["trials"]) == ("c1", SHAPE.label, 9)
    assert row["architecture"] == "StableLmForCausalLM"  # the checkpoint's, for both
    assert row["ratio"] == pytest.approx(row["checkpoint_median_s"] / row["random_median_s"])
    assert row["band"] == pytest.approx(2 * row["relative_cv"])
    assert row["agree"], row.to_dict()


def test_trained_weights_are_loaded_and_the_twin_gets_fresh_ones(checkpoint):
    folder, saved = checkpoint
    protocol = Protocol(input_tokens=8, output_tokens=12)
    trained = load_model(Item(SHAPE, 1, str(folder), "trained"), protocol, torch.float32)
    twin = load_model(Item(SHAPE, 1, str(folder), "random"), protocol, torch.float32)
    weight = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(trained.state_dict()[weight], saved.state_dict()[weight])
    assert not torch.equal(twin.state_dict()[weight], saved.state_dict()[weight])
    assert type(twin) is type(trained) is type(saved)
    assert trained.config.max_position_embeddings == twin.config.max_position_embeddings == 20


def test_checkpoint_of_another_shape_is_an_input_error(checkpoint):
    folder, _ = checkpoint
    other = Item(Shape(32, 3, 4, 300, 16), 1, str(folder), "trained")
    with pytest.raises(InputError, match="not the shape d32-l3-h4"):
        load_model(other, Protocol(input_tokens=8, output_tokens=12), torch.float32)
    with pytest.raises(InputError, match="need a checkpoint"):
        Item(SHAPE, 1, weights="trained")


def test_agreement_band_and_table_from_results():
    assert list(agreement(np.array([1.0, 1.05, 0.9]), np.array([0.01, 0.03, 0.03]))) == [
        True,
        True,
        False,  # |ln 0.9| = 0.105 > 2 · 0.03
    ]

    def result(median, relative_median, cv, flagged=False):
        return {
            "shape": SHAPE.label,
            "d_model": 32,
            "n_layers": 2,
            "architecture": "LlamaForCausalLM",
            "median_s": median,
            "relative_median": relative_median,
            "relative_cv": cv,
            "trials_s": [median] * 5,
            "flagged": flagged,
            "device": "cpu: test",
            "threads": 1,
        }

    results = [result(1.2, 1.01, 0.02), result(1.0, 0.99, 0.02, flagged=True)]
    row = trained_table(["c1"], results).iloc[0]
    assert row["ratio"] == pytest.approx(1.2)  # the two medians, from rounds of other speeds
    assert row["paired_ratio"] == 1.01 and row["agree"]  # judged on the paired ratio
    assert row["flagged"]
