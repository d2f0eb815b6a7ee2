"""What TensorBoard logging adds to a short training run (a benchmark, not a test).

A short run of the default config's cheapest step (its smallest grid shape, the default batch and
sequence length: the step where a fixed per-step cost weighs most) is trained with
:func:`infscale.train.loop.train_run` on random windows, which writes log.jsonl and the event
files. Then exactly the TensorBoard work of that run is timed on its own: a fresh
:class:`~infscale.train.tracking.TensorBoardLog` fed the run's log records and closed (flushed),
as the trainer does. Printed: the median of ``--repeats`` of each, and the overhead: TensorBoard
time ÷ (training time − TensorBoard time).

    flock /tmp/infscale-cpu.lock python benchmarks/tensorboard_overhead.py [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from infscale.checks import load_config
from infscale.data.tokens import TokenWindows, write_windows
from infscale.grid import Run, grid_runs
from infscale.train.loop import train_run
from infscale.train.tracking import TensorBoardLog

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")
    cfg = {**config["train"], "checkpoint_every": 0}
    seq, batch = config["data"]["seq_len"], cfg["batch_size"]
    smallest = min(grid_runs(config), key=lambda r: r.shape.n_params)
    tokens = args.steps * batch * seq
    run = Run(smallest.name, smallest.size, smallest.variant, smallest.shape, (1,), (tokens,))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        vocab = run.shape.vocab_size
        docs = [rng.integers(1, vocab, 500).tolist() for _ in range(args.steps * batch // 3 + 8)]
        write_windows(docs, root / "train.bin", seq, 0, vocab)
        write_windows(docs[:40], root / "val.bin", seq, 0, vocab)
        train, val = TokenWindows(root / "train.bin"), TokenWindows(root / "val.bin")
        train_s, board_s = [], []
        for i in range(args.repeats):
            run_dir = root / f"run{i}"
            run_dir.mkdir()
            start = time.perf_counter()
            train_run(
                run,
                train,
                val,
                cfg,
                max_position=seq,
                rope_theta=config["model"]["rope_theta"],
                log_path=run_dir / "log.jsonl",
                norm=config["model"]["norm"],
                progress=False,
            )
            train_s.append(time.perf_counter() - start)
            records = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
            replay = root / f"replay{i}"
            replay.mkdir()
            start = time.perf_counter()
            board = TensorBoardLog(replay, [])
            for record in records:
                board.write(record)
            board.close()
            board_s.append(time.perf_counter() - start)
    train_med, board_med = statistics.median(train_s), statistics.median(board_s)
    overhead = board_med / (train_med - board_med)
    print(
        f"{run.shape.label} batch {batch} seq {seq}, {args.steps} steps, {args.threads} thread(s), "
        f"median of {args.repeats}: training {train_med:.3f} s ({train_med / args.steps * 1e3:.1f}"
        f" ms/step), TensorBoard {board_med * 1e3:.1f} ms "
        f"({board_med / args.steps * 1e6:.0f} µs/step): overhead {overhead:.2%}"
    )


if __name__ == "__main__":
    main()
