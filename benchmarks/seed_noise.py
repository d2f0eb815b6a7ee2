"""Seed-to-seed noise of the loss, and the loss of candidate grid shapes, measured by training.

A default grid can only show a shape effect larger than the noise of one training run, so the
grid is chosen by measurement: this trains each given shape (``d_model x n_layers``) with
several seeds (model initialisation and data order both follow ``train.seed``) on the packed
data of a finished ``prepare_data`` job, with the config's recipe and token multipliers, and
prints per shape and multiplier the paper's loss metric and the validation loss: mean,
seed-to-seed standard deviation, and the range over shapes in units of that noise.

    python benchmarks/seed_noise.py --data /tmp/exp/results/data --shapes 48x6 --seeds 0 1 2
    python benchmarks/seed_noise.py --data ... --shapes 24x8 32x4 40x2 --seeds 0 --mults 4 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from infscale.config import load_config
from infscale.data.tokens import TokenWindows
from infscale.grid import _run
from infscale.shapes import Shape
from infscale.train.loop import train_run

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--data", type=Path, required=True, help="results/data of a run")
    parser.add_argument("--shapes", nargs="+", required=True, help="DxL, e.g. 48x6")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mults", nargs="+", type=int, default=[4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config, REPO / "config" / "schema.yaml")
    train, val = TokenWindows(args.data / "train.bin"), TokenWindows(args.data / "val.bin")
    rows = []
    for spec in args.shapes:
        d_model, n_layers = (int(v) for v in spec.split("x"))
        shape = Shape(
            d_model,
            n_layers,
            args.heads,
            config["model"]["vocab_size"],
            config["model"]["multiple_of"],
        )
        run = _run(shape.label, "bench", spec, shape, tuple(args.mults))
        for seed in args.seeds:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                _, points = train_run(
                    run,
                    train,
                    val,
                    {**config["train"], "seed": seed},
                    max_position=config["data"]["seq_len"],
                    rope_theta=config["model"]["rope_theta"],
                    log_path=Path(tmp) / "log.jsonl",
                    norm=config["model"]["norm"],
                    progress=False,
                )
            seconds = time.perf_counter() - start
            for point in points.to_dict("records"):
                rows.append({**point, "shape": spec, "seed": seed, "seconds": seconds})
            print(
                f"{spec} seed {seed}: N={shape.n_params:,} R={shape.aspect_ratio:.1f} "
                + " ".join(
                    f"{m}x loss {p['loss']:.4f} val {p['val_loss']:.4f}"
                    for m, p in zip(args.mults, points.to_dict("records"), strict=True)
                )
                + f" ({seconds:.0f} s)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    summary = table.groupby(["shape", "multiplier"]).agg(
        N=("N", "first"),
        R=("R", "first"),
        loss=("loss", "mean"),
        loss_sd=("loss", "std"),
        val=("val_loss", "mean"),
        val_sd=("val_loss", "std"),
    )
    print()
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if len(args.seeds) > 1:
        for column in ("loss", "val"):
            noise = statistics.fmean(summary[f"{column}_sd"])
            print(f"seed-to-seed sd of {column} (mean over shapes and multipliers): {noise:.4f}")
            for mult, group in summary.groupby(level="multiplier"):
                spread = group[column].max() - group[column].min()
                print(f"  {mult}x: range over shapes {spread:.4f} = {spread / noise:.1f} x noise")


if __name__ == "__main__":
    main()
