"""TensorBoard event files of a training run, read back with TensorBoard's own reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN
from tensorboard.backend.event_processing import event_accumulator

from infscale.data.tokens import TokenWindows, write_windows
from infscale.grid import Run
from infscale.shapes import Shape
from infscale.train import checkpoint as ckpt
from infscale.train.loop import train_run
from infscale.train.steplog import events, step_records
from infscale.train.tracking import SCALARS

SEQ, VOCAB, BATCH, STEPS = 16, 96, 4, 12
SHAPE = Shape(d_model=16, n_layers=1, n_heads=2, vocab_size=VOCAB, multiple_of=16)
CFG = TINY_TRAIN | {"batch_size": BATCH}


@pytest.fixture(scope="module")
def windows(tmp_path_factory) -> tuple[TokenWindows, TokenWindows]:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, VOCAB, rng.integers(3, 40)).tolist() for _ in range(400)]
    write_windows(docs, root / "train.bin", SEQ, 0, VOCAB)
    write_windows(docs[:40], root / "val.bin", SEQ, 0, VOCAB)
    return TokenWindows(root / "train.bin"), TokenWindows(root / "val.bin")


def _train(windows, run_dir: Path) -> None:
    per_step = BATCH * SEQ
    run = Run("t-v1", "t", "v1", SHAPE, (1, 2), (per_step * STEPS // 2, per_step * STEPS))
    train, val = windows
    train_run(
        run,
        train,
        val,
        CFG,
        max_position=SEQ,
        rope_theta=10000.0,
        log_path=run_dir / "log.jsonl",
        norm="layernorm",
        checkpoint_dir=run_dir / "checkpoints",
        progress=False,
    )


def _events(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _logged(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """log.jsonl's numbers, as float32 as TensorBoard stores them."""
    lines = step_records(run_dir / "log.jsonl")
    return {
        tag: [(r["step"], float(np.float32(r[key]))) for r in lines if key in r]
        for key, tag in SCALARS.items()
    }


def test_event_files_hold_the_logged_values(windows, tmp_path):
    _train(windows, tmp_path)
    assert list(tmp_path.glob("events.out.tfevents.*"))
    logged, board = _logged(tmp_path), _events(tmp_path)
    assert set(board) == set(SCALARS.values())
    assert [step for step, _ in board["train/loss"]] == list(range(1, STEPS + 1))
    assert [step for step, _ in board["val/loss"]] == [STEPS // 2, STEPS]  # the boundaries
    assert board == logged
    assert board["train/loss"][-1][1] < board["train/loss"][0][1]


def test_a_resumed_run_rewrites_its_events_without_repeats(windows, tmp_path):
    """Resumed from step 10 (the step-12 checkpoint removed): steps 11, 12 are logged once."""
    _train(windows, tmp_path)
    checkpoints = tmp_path / "checkpoints"
    shutil.rmtree(ckpt.step_dir(checkpoints, STEPS))
    _train(windows, tmp_path)
    resumed = events(tmp_path / "log.jsonl")[-1]
    assert (resumed["event"], resumed["step"]) == ("resumed", STEPS - 2)
    assert [r["step"] for r in step_records(tmp_path / "log.jsonl")] == list(range(1, STEPS + 1))
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    assert _events(tmp_path) == _logged(tmp_path)
