import itertools
import math

import numpy as np
import pytest
import torch

from infscale.grid import Run
from infscale.shapes import Shape
from infscale.train import boundary_steps, lm_loss, lr_at, paper_loss_metric


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
