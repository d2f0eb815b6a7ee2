import itertools
import math

import numpy as np
import pytest
import torch
from conftest import REPO

from infscale.checks import validate_config
from infscale.errors import InputError
from infscale.grid import Run
from infscale.shapes import Shape
from infscale.train.loop import TrainStep, boundary_steps, lm_loss, lr_at, paper_loss_metric
from infscale.train.model import build_model


def test_lr_schedule_warmup_then_cosine_to_min():
    lr, lo = 3e-3, 3e-5
    assert lr_at(0, 100, 10, lr, lo) == pytest.approx(lr / 10)
    assert lr_at(9, 100, 10, lr, lo) == pytest.approx(lr)
    assert lr_at(10, 100, 10, lr, lo) == pytest.approx(lr)
    # halfway through the decay the cosine is at the midpoint
    mid = 10 + (100 - 1 - 10) / 2
    assert lr_at(int(mid), 100, 10, lr, lo) == pytest.approx(
        lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * (int(mid) - 10) / 89))
    )
    assert lr_at(99, 100, 10, lr, lo) == pytest.approx(lo)
    steps = [lr_at(s, 100, 10, lr, lo) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(steps))


def test_paper_loss_metric_on_known_sequence():
    losses = np.array([4.0, 2.0, 1.0])
    # ema: 4, 0.9*2 + 0.1*4 = 2.2, 0.9*1 + 0.1*2.2 = 1.12; running means: 4, 3.1, 2.44
    np.testing.assert_allclose(paper_loss_metric(losses), [4.0, 3.1, 2.44])


def test_z_loss_adds_mean_squared_logsumexp():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    targets = torch.tensor([[1]])
    total, ce = lm_loss(logits, targets, z_loss=1e-4)
    # p(target) = 3/4; logsumexp = log 4
    assert ce.item() == pytest.approx(-math.log(0.75))
    assert total.item() == pytest.approx(-math.log(0.75) + 1e-4 * math.log(4.0) ** 2)


def test_boundaries_are_first_steps_reaching_each_budget():
    shape = Shape(32, 2, 4, 512, 16)
    run = Run("x", "s", "v", shape, (1, 2), (1000, 2000))
    assert boundary_steps(run, 300) == [4, 7]


@pytest.mark.parametrize(
    ("compile_", "checkpointing"), [(True, False), (False, True), (True, True)]
)
def test_compiled_and_checkpointed_steps_match_the_plain_step(compile_, checkpointing):
    """torch.compile of the blocks and activation checkpointing (recomputing each block in the
    backward, what the sizing plans where no micro-batch fits without it) train as the plain
    eager step does."""
    shape = Shape(d_model=16, n_layers=2, n_heads=2, vocab_size=64, multiple_of=16)
    cfg = {"lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.033}
    cfg |= {"z_loss": 1e-4, "grad_clip": 1.0, "dtype": "float32", "parallel": "ddp"}
    x = torch.randint(0, 64, (4, 17), generator=torch.Generator().manual_seed(0))
    curves, weights = [], []
    for options in ((False, False), (compile_, checkpointing)):
        model = build_model(shape, max_position=16, seed=0, rope_theta=1e4, norm="layernorm")
        layout = dict(zip(("compile", "activation_checkpointing"), options, strict=True))
        step = TrainStep(model, cfg | layout, torch.device("cpu"), world=1)
        curves.append([step([x[:2], x[2:]], 3e-3).tolist() for _ in range(3)])
        weights.append(model.state_dict())
    assert model.is_gradient_checkpointing == checkpointing
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)
    assert curves[0][0][0] > curves[0][1][0] > curves[0][2][0]  # it fits the repeated batch
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=1e-4, atol=1e-5)


def test_parallel_layout_is_validated(config):
    config["train"]["parallel"] = "zero3"
    with pytest.raises(InputError, match=r"train\.parallel"):
        validate_config(config, REPO / "config" / "schema.yaml")
