"""Seed-to-seed noise of the loss, and the loss of candidate grid shapes, measured by training.

A default grid can only show a shape effect larger than the noise of one training run, so the
grid is chosen by measurement: this trains each given shape (``DxL``, or ``DxLfF`` with SwiGLU
width F) with several seeds (model initialisation and data order both follow ``train.seed``)
on the token files of a finished data stage (its ``manifest.json``), with the config's recipe
and token multipliers, and prints per shape and multiplier the paper's loss metric and the
validation loss: mean, seed-to-seed standard deviation, and the range over shapes in units of
that noise.

    python benchmarks/seed_noise.py --data results/data/manifest.json --shapes 48x6 --seeds 0 1
    python benchmarks/seed_noise.py --data ... --shapes 72x1 88x1f48 --seeds 0 --mults 4 8
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from infscale.checks import load_config
from infscale.data.tokens import manifest_windows
from infscale.grid import make_run
from infscale.shapes import Shape
from infscale.train.loop import train_run

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument(
        "--data", type=Path, required=True, help="a run's results/data/manifest.json"
    )
    parser.add_argument(
        "--shapes", nargs="+", required=True, help="DxL or DxLfF, e.g. 48x6 80x1f112"
    )
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mults", nargs="+", type=int, default=[4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config, REPO / "config" / "schema.yaml")
    windows = manifest_windows(args.data)
    train, val = windows["train"], windows["val"]
    rows = []
    try:
        shapes = {spec: _shape(spec, args.heads, config["model"]) for spec in args.shapes}
    except ValueError as err:
        parser.error(str(err))
    for spec, shape in shapes.items():
        run = make_run(shape.label, "bench", spec, shape, tuple(args.mults))
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


def _shape(spec: str, n_heads: int, model: dict) -> Shape:
    """``DxL`` or ``DxLfF`` (SwiGLU width F instead of open_lm's) as a Shape."""
    match = re.fullmatch(r"(\d+)x(\d+)(?:f(\d+))?", spec)
    if match is None:
        raise ValueError(f"shape {spec!r} is not DxL or DxLfF (e.g. 48x6, 80x1f112)")
    d_model, n_layers, ffn = match.groups()
    return Shape(
        int(d_model),
        int(n_layers),
        n_heads,
        model["vocab_size"],
        model["multiple_of"],
        ffn_hidden=int(ffn) if ffn else None,
    )


if __name__ == "__main__":
    main()
