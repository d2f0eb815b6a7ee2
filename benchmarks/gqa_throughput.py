"""GQA's throughput effect: tokens/s against batch size for an MHA shape and its GQA twins.

The twins have K = H, H/2, H/4, ... KV heads and, so that the comparison is at equal N, an
ffn_hidden widened to make up the k/v parameters they lose (``Shape.with_params``; the
config's ``latency.sweeps.gqa`` builds the same twins). Every (shape, batch size) is timed
interleaved with the others (``infscale.latency.measure``, the workflow's protocol), the
median of ``--trials`` repeats reported. Prints the table, then each twin's throughput over the
MHA shape's at every batch size of at least 8, and the K = H/4 ratio the README quotes. Run it
alone on the machine; the load average before and after is printed beside the figures.

    python benchmarks/gqa_throughput.py [--d-model 256] [--n-layers 4] [--n-heads 8]
        [--batch-sizes 1,8,16,32] [--input-tokens 512] [--output-tokens 32] [--trials 5]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.latency.sweeps import gqa_speedups
from infscale.shapes import Shape


def twins(mha: Shape) -> list[Shape]:
    """The MHA shape, then K = H/2, H/4, ... down to one KV head, each at the MHA shape's N."""
    shapes, k = [mha], mha.n_heads // 2
    while k >= 1 and mha.n_heads % k == 0:
        gqa = Shape(mha.d_model, mha.n_layers, mha.n_heads, mha.vocab_size, mha.multiple_of, k)
        shapes.append(gqa.with_params(mha.n_params))
        k //= 2
    return shapes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--multiple-of", type=int, default=16)
    parser.add_argument("--batch-sizes", default="1,8,16,32")
    parser.add_argument("--input-tokens", type=int, default=512)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    set_threads(args.threads)
    mha = Shape(args.d_model, args.n_layers, args.n_heads, args.vocab_size, args.multiple_of)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    items = [Item(s, b, name=f"{s.label}-b{b}") for s in twins(mha) for b in batches]
    protocol = Protocol(
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        trials=args.trials,
        device=args.device,
        do_sample=False,
    )
    load_before, start = os.getloadavg(), time.perf_counter()
    table = pd.DataFrame(measure_interleaved(items, protocol, ttft=False))
    wall, load_after = time.perf_counter() - start, os.getloadavg()

    speedups = gqa_speedups(table)
    print(
        f"{mha.label} and its equal-N GQA twins, {args.input_tokens} in / {args.output_tokens} "
        f"out, greedy, {args.trials} interleaved trials (median), {table['device'].iloc[0]}, "
        f"{args.threads} threads; {wall:.0f} s; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f}"
    )
    print(speedups.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    wide = speedups[(speedups["batch_size"] >= 8) & (speedups["n_kv_heads"] < args.n_heads)]
    print("\nthroughput / MHA's at batch >= 8:")
    print(
        wide.pivot(index="batch_size", columns="n_kv_heads", values="speedup_vs_mha")
        .rename(columns=lambda k: f"K={k}")
        .to_string(float_format=lambda x: f"{x:.3f}")
    )
    quarter = wide[wide["n_kv_heads"] == args.n_heads // 4]
    if not quarter.empty:
        ratios = ", ".join(
            f"batch {row.batch_size}: {row.speedup_vs_mha:.3f}" for row in quarter.itertuples()
        )
        print(f"K = H/4 = {args.n_heads // 4} over MHA: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
