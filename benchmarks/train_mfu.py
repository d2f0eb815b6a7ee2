"""Training throughput and MFU of the trainer's step on this machine (a benchmark, not a test).

For three shapes of the default grid (config/config.yaml: the largest of each size group) it
times the trainer's optimisation step (forward, z-loss, backward, clipping, AdamW; exactly the
code of infscale.train) and prints tokens/s and MFU = model FLOPs/s (flops.py: 6·(matmul params,
output head included) + attention) / the matmul peak of the same dtype, measured on this machine
in this run with the same thread count. Then it sweeps settings (threads, batch, micro-batch,
sequence length, dtype, torch.compile) for the largest shape and prints the best.

    flock /tmp/infscale-cpu.lock python benchmarks/train_mfu.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml

from infscale.flops import flops_per_token, measure_matmul_peak
from infscale.grid import grid_runs
from infscale.model import build_model
from infscale.train import lm_loss

REPO = Path(__file__).resolve().parents[1]


def default_shapes() -> list:
    """The largest (by N) shape of each size group of the default config, small to large."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    best: dict[str, object] = {}
    for run in grid_runs(config):
        if run.size not in best or run.shape.n_params > best[run.size].shape.n_params:
            best[run.size] = run
    return sorted((r.shape for r in best.values()), key=lambda s: s.n_params), config


def time_steps(shape, *, batch, micro, seq_len, dtype, compile_, norm, seconds, threads):
    """Tokens/s of the trainer's optimisation step, after two warm-up steps."""
    torch.set_num_threads(threads)
    model = build_model(shape, max_position=seq_len, seed=0, norm=norm)
    model.train()
    net = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.033)
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, shape.vocab_size, (batch, seq_len + 1), generator=gen)
    cast = (
        nullcontext() if dtype == torch.float32 else torch.autocast(device_type="cpu", dtype=dtype)
    )

    def step():
        for start in range(0, batch, micro):
            x = data[start : start + micro]
            with cast:
                logits = net(input_ids=x[:, :-1]).logits
            total, _ = lm_loss(logits, x[:, 1:], 1e-4)
            (total * (micro / batch)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * batch * seq_len / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer settings, shorter timings")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 4.0
    cores = os.cpu_count() or 1
    shapes, config = default_shapes()
    seq_len, vocab = config["data"]["seq_len"], config["model"]["vocab_size"]
    norm = config["model"].get("norm", "layernorm")
    batch = config["train"]["batch_size"]
    print(f"torch {torch.__version__}, {cores} CPU cores, default seq_len {seq_len}, V {vocab}")
    peaks = {}
    for threads, dtype in itertools.product(range(1, cores + 1), (torch.float32, torch.bfloat16)):
        torch.set_num_threads(threads)
        peaks[threads, dtype] = measure_matmul_peak(dtype, "cpu", 2048, 3.0)
        print(
            f"matmul peak {str(dtype)[6:]:8s} {threads} thread(s): "
            f"{peaks[threads, dtype] / 1e9:8.1f} GFLOP/s"
        )
    results = []

    def measure(shape, **setting):
        dtype = setting["dtype"]
        rate = time_steps(shape, norm=norm, seconds=seconds, **setting)
        flops = flops_per_token(shape, setting["seq_len"])
        mfu = rate * flops / peaks[setting["threads"], dtype]
        row = {
            "shape": shape.label,
            "N": shape.n_params,
            **{k: (str(v)[6:] if k == "dtype" else v) for k, v in setting.items()},
            "tokens_per_s": round(rate, 1),
            "model_gflops_per_s": round(rate * flops / 1e9, 2),
            "mfu": round(mfu, 4),
        }
        results.append(row)
        print(
            f"{shape.label:18s} N={shape.n_params:>9,} batch {setting['batch']:>3} micro "
            f"{setting['micro']:>3} seq {setting['seq_len']:>4} {row['dtype']:8s} threads "
            f"{setting['threads']} compile {int(setting['compile_'])}: "
            f"{rate:10,.0f} tokens/s  MFU {mfu:6.1%}",
            flush=True,
        )
        return row

    print("\n# the default config's training setting, each of three default shapes")
    for shape in shapes:
        measure(
            shape,
            batch=batch,
            micro=config["train"]["micro_batch_size"],
            seq_len=seq_len,
            dtype=torch.float32,
            compile_=False,
            threads=cores,
        )
    largest = shapes[-1]
    print(f"\n# settings sweep for the largest default shape {largest.label}")
    grid = {
        "threads": sorted({1, cores}),
        "batch_seq": [(16, 128), (64, 128), (16, 512)]
        if args.quick
        else [(16, 128), (32, 128), (64, 128), (128, 128), (16, 512), (32, 512)],
        "dtype": [torch.float32, torch.bfloat16],
    }
    sweep = []
    for threads, (b, s), dtype in itertools.product(*grid.values()):
        sweep.append(
            measure(
                largest, batch=b, micro=b, seq_len=s, dtype=dtype, compile_=False, threads=threads
            )
        )
    # torch.compile (slow to compile on CPU): tried on the best eager setting of each dtype
    for dtype in grid["dtype"]:
        eager = max((r for r in sweep if r["dtype"] == str(dtype)[6:]), key=lambda r: r["mfu"])
        try:
            sweep.append(
                measure(
                    largest,
                    batch=eager["batch"],
                    micro=eager["micro"],
                    seq_len=eager["seq_len"],
                    dtype=dtype,
                    compile_=True,
                    threads=eager["threads"],
                )
            )
        except Exception as err:  # no C++ toolchain, or an inductor failure
            print(f"  compile skipped ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    best = max(sweep, key=lambda r: r["mfu"])
    print(f"\nBEST for {largest.label}: {json.dumps(best)}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "peaks_gflops": {
                        f"{t}-{str(d)[6:]}": round(v / 1e9, 1) for (t, d), v in peaks.items()
                    },
                    "results": results,
                    "best": best,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
