"""TensorBoard event files beside a run's log.jsonl, holding the same numbers.

``tensorboard --logdir results/runs`` then shows every run's curves. The event files mirror the
log, which a resumed run rewrites whole from its checkpoint: so a resume deletes the run's old
event files and writes the checkpoint's log lines again, and the steps after the checkpoint that
a killed try had logged never appear twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# log.jsonl key → TensorBoard tag
SCALARS = {
    "loss": "train/loss",
    "ce": "train/cross_entropy",
    "lr": "train/lr",
    "grad_norm": "train/grad_norm",
    "tokens_per_s": "train/tokens_per_s",
    "val_loss": "val/loss",
}
EVENT_FILES = "events.out.tfevents.*"


class TensorBoardLog:
    """A ``SummaryWriter`` in ``run_dir`` fed the run's log records (rank 0 only)."""

    def __init__(self, run_dir: str | Path, lines: Iterable[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # 0.5 s of imports: only when training

        run_dir = Path(run_dir)
        for old in run_dir.glob(EVENT_FILES):
            old.unlink()
        self.writer = SummaryWriter(log_dir=str(run_dir))
        for line in lines:
            self.write(json.loads(line))

    def write(self, record: dict[str, Any]) -> None:
        """The record's scalars at its step; records without a step's numbers (events) add none."""
        for key, tag in SCALARS.items():
            if key in record:
                self.writer.add_scalar(tag, record[key], record["step"])

    def close(self) -> None:
        self.writer.close()
