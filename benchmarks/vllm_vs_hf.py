"""HF generate vs vLLM (its CPU build here) on the same equal-N sweep across R.

Times the shapes of ``infscale.latency.engines.equal_params_sweep`` with the paper's protocol
(sampling, min = max new tokens, warm-up, interleaved trials) through both backends, HF in this
process and vLLM in the vLLM environment (``make vllm-env``), then prints the table side by side,
the Spearman rank agreement of the two engines' medians, the vLLM/HF time ratio, and the host's
fp32 matmul peak. ``--out`` writes the table as CSV (the latency stage's engines.csv).

    python benchmarks/vllm_vs_hf.py [--params 1000000] [--head-dim 32] [--n-layers 1 2 4 8 16]
        [--input-tokens 128] [--output-tokens 64] [--trials 5] [--threads 1] [--out CSV]
"""

from __future__ import annotations

import argparse
import json
import time

from infscale.io import write_csv
from infscale.latency.engines import ENGINES, engine_table, equal_params_sweep
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import VLLM_PYTHON, Protocol
from infscale.train.flops import measure_matmul_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--n-layers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--multiple-of", type=int, default=16)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--python", default=VLLM_PYTHON)
    parser.add_argument("--out")
    args = parser.parse_args()

    set_threads(args.threads)
    shapes = equal_params_sweep(
        args.params, args.head_dim, args.n_layers, args.vocab_size, args.multiple_of
    )
    print(f"fp32 matmul peak before: {measure_matmul_peak() / 1e9:.1f} GFLOP/s")
    results, seconds = {}, {}
    for engine in ENGINES:
        protocol = Protocol(
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            trials=args.trials,
            device="cpu",
            backend=engine,
            python=args.python,
        )
        start = time.perf_counter()
        results[engine] = measure_interleaved([Item(s, 1) for s in shapes], protocol)
        seconds[engine] = time.perf_counter() - start
    print(f"fp32 matmul peak after: {measure_matmul_peak() / 1e9:.1f} GFLOP/s")
    table, summary = engine_table(shapes, results)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(json.dumps(summary))
    print("wall time per engine (s, engine start included):", json.dumps(seconds))
    for note in results["vllm"][0]["engine_notes"]:
        print(f"vllm: {note}")
    if args.out:
        write_csv(args.out, table)


if __name__ == "__main__":
    main()
