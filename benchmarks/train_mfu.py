"""Training throughput and MFU of the trainer's step on this machine (a benchmark, not a test).

What is timed is :class:`infscale.train.loop.TrainStep`, the object the training loop calls once per
step (forward and backward over the micro-batches, z-loss, clipping, fused AdamW), built from the
config exactly as the trainer builds it; only the data is random. A setting is what a run can be
given: ``train.batch_size``, ``train.micro_batch_size``, ``train.dtype``, ``train.compile``,
``data.seq_len`` and the rule's thread count.

MFU = model FLOPs/s ÷ the matmul peak of the same dtype at the same thread count, measured in this
run. Model FLOPs per token (flops.py, PaLM's count): ``6·M + 12·L·d·T``, M the parameters used in
matmuls (every block's projections and the output head, not the embedding lookup) and
``12·L·d·T`` attention's scores and values forward and backward, causal masking not discounted;
norms, activations, softmax and the optimizer are not counted. The peak is the best rate of a
2048³ matmul (flops.py). Flash attention skips the masked half, so at long sequences, where the
attention term dominates, that count is well above the arithmetic done; each line therefore also
shows ``causal``: the MFU with attention counted at ``6·L·d·T``, the work a causal kernel does.

The machine may be shared, so every setting is timed in several short windows, alternating with
windows of the peak measurement; a busy neighbour then slows both. Reported: the best window
(headline) and the median window, both against the best peak window of the whole run.

It prints the three default shapes (config/config.yaml: the largest of each size group) at the
default config's setting, sweeps the settings for the largest (:func:`sweep`), prints the best,
and prints the three shapes again at that setting.

    flock /tmp/infscale-cpu.lock python benchmarks/train_mfu.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from infscale.checks import load_config
from infscale.grid import grid_runs
from infscale.io import write_json
from infscale.shapes import Shape
from infscale.train.flops import flops_per_token, measure_matmul_peak
from infscale.train.loop import TrainStep
from infscale.train.model import build_model

REPO = Path(__file__).resolve().parents[1]
PEAK_SIZE = {"cpu": 2048, "cuda": 8192}  # a GPU needs the larger matmul to reach its peak
PEAK_WINDOW_S = 0.4


@dataclass(frozen=True)
class Setting:
    threads: int
    batch: int
    micro: int
    seq_len: int
    dtype: str
    compile: bool

    def label(self) -> str:
        return (
            f"threads {self.threads} batch {self.batch:>3} micro {self.micro:>3} seq "
            f"{self.seq_len:>4} {self.dtype:8s} compile {int(self.compile)}"
        )


def default_shapes(config: dict) -> list[Shape]:
    """The largest (by N) shape of each size group of the default config, small to large."""
    best: dict[str, Shape] = {}
    for run in grid_runs(config):
        if run.size not in best or run.shape.n_params > best[run.size].n_params:
            best[run.size] = run.shape
    return sorted(best.values(), key=lambda s: s.n_params)


class Bench:
    """Times settings, alternating with peak windows; keeps the best peak per (threads, dtype).

    On ``device`` (benchmarks/gpu_check.py times a GPU with it); the thread count matters on CPU.
    """

    def __init__(
        self, config: dict, rounds: int, window_s: float, device: torch.device | None = None
    ) -> None:
        self.config, self.rounds, self.window_s = config, rounds, window_s
        self.device = device or torch.device("cpu")
        self.peaks: dict[tuple[int, str], float] = {}
        self.rows: list[dict] = []

    def peak(self, setting: Setting) -> float:
        key = (setting.threads, setting.dtype)
        rate = measure_matmul_peak(
            getattr(torch, setting.dtype),
            str(self.device),
            PEAK_SIZE[self.device.type],
            PEAK_WINDOW_S,
        )
        self.peaks[key] = max(self.peaks.get(key, 0.0), rate)
        return self.peaks[key]

    def measure(self, shape: Shape, setting: Setting) -> dict:
        torch.set_num_threads(setting.threads)
        torch._dynamo.reset()  # each setting compiles as a fresh training process would
        cfg = {
            **self.config["train"],
            "batch_size": setting.batch,
            "micro_batch_size": setting.micro,
            "dtype": setting.dtype,
            "compile": setting.compile,
        }
        model = build_model(
            shape,
            max_position=setting.seq_len,
            seed=0,
            rope_theta=self.config["model"]["rope_theta"],
            norm=self.config["model"]["norm"],
        ).to(self.device)
        step = TrainStep(model, cfg, self.device, world=1)
        gen = torch.Generator().manual_seed(0)
        data = torch.randint(
            0, shape.vocab_size, (setting.batch, setting.seq_len + 1), generator=gen
        ).to(self.device)
        batches = list(data.split(setting.micro))
        started = time.perf_counter()
        for _ in range(2):  # warm-up; compiles when compile is set
            step(batches, cfg["lr"]).tolist()
        warmup_s = time.perf_counter() - started
        rates = []
        for _ in range(self.rounds):
            self.peak(setting)
            n, start = 0, time.perf_counter()
            while n < 1 or time.perf_counter() - start < self.window_s:
                step(batches, cfg["lr"]).tolist()  # the trainer's one host read per step
                n += 1
            rates.append(n * setting.batch * setting.seq_len / (time.perf_counter() - start))
        self.peak(setting)
        row = {
            "shape": shape.label,
            "N": shape.n_params,
            **asdict(setting),
            "flops_per_token": flops_per_token(shape, setting.seq_len),
            "causal_flops_per_token": causal_flops_per_token(shape, setting.seq_len),
            "tokens_per_s": round(max(rates), 1),
            "tokens_per_s_median": round(statistics.median(rates), 1),
            "warmup_s": round(warmup_s, 1),
        }
        self.rows.append(row)
        self._score(row)
        print(f"{_line(row)}  (warm-up {warmup_s:.0f} s; peak so far)", flush=True)
        return row

    def _score(self, row: dict) -> None:
        """MFU of the best and the median window against the best peak window so far."""
        peak = self.peaks[row["threads"], row["dtype"]]
        row["peak_gflops_per_s"] = round(peak / 1e9, 1)
        row["model_gflops_per_s"] = round(row["tokens_per_s"] * row["flops_per_token"] / 1e9, 2)
        for key, rate in (("mfu", "tokens_per_s"), ("mfu_median", "tokens_per_s_median")):
            row[key] = round(row[rate] * row["flops_per_token"] / peak, 4)
        row["mfu_causal"] = round(row["tokens_per_s"] * row["causal_flops_per_token"] / peak, 4)

    def final(self) -> list[dict]:
        """Every row scored against the best peak window of the whole run."""
        for row in self.rows:
            self._score(row)
        return self.rows


def causal_flops_per_token(shape: Shape, seq_len: int) -> int:
    """PaLM's count with attention's masked half left out (``6·L·d·T`` instead of ``12·L·d·T``)."""
    return flops_per_token(shape, seq_len) - 6 * shape.n_layers * shape.d_model * seq_len


def _setting(row: dict) -> Setting:
    return Setting(**{k: row[k] for k in Setting.__dataclass_fields__})


def _line(row: dict) -> str:
    return (
        f"{row['shape']:14s} N={row['N']:>8,} {_setting(row).label()}: {row['tokens_per_s']:9,.0f} "
        f"tokens/s MFU {row['mfu']:6.1%} (causal {row['mfu_causal']:6.1%}; median window "
        f"{row['tokens_per_s_median']:9,.0f} tokens/s, {row['mfu_median']:6.1%}; peak "
        f"{row['peak_gflops_per_s']:.0f} GFLOP/s)"
    )


# (batch, micro-batch, sequence length)
BATCHES_QUICK = [(16, 16, 128), (64, 64, 128), (16, 16, 512), (4, 4, 2048)]
BATCHES_FULL = [
    *BATCHES_QUICK,
    (64, 16, 128),
    (128, 32, 128),
    (32, 8, 256),
    (8, 8, 1024),
    (8, 4, 2048),
]


def sweep(bench: Bench, shape: Shape, base: Setting, cores: int, quick: bool) -> list[dict]:
    """Batch, micro-batch and sequence length at 1 thread in float32, eager and compiled; then
    the other thread count and bfloat16 at the best of those."""
    rows = [
        bench.measure(shape, replace(base, batch=b, micro=m, seq_len=s, compile=c))
        for (b, m, s), c in itertools.product(
            BATCHES_QUICK if quick else BATCHES_FULL, (False, True)
        )
    ]
    best = max(rows, key=lambda r: r["mfu"])
    at = replace(base, batch=best["batch"], micro=best["micro"], seq_len=best["seq_len"])
    for threads, dtype in itertools.product(sorted({1, cores}), ("float32", "bfloat16")):
        if (threads, dtype) != (base.threads, base.dtype):
            for c in (False, True):
                rows.append(
                    bench.measure(shape, replace(at, threads=threads, dtype=dtype, compile=c))
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer settings, shorter timings")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")
    bench = Bench(config, rounds=4 if args.quick else 8, window_s=0.5 if args.quick else 1.0)
    cores = os.cpu_count() or 1
    shapes = default_shapes(config)
    train = config["train"]
    default = Setting(
        threads=1,  # rules/train.smk: threads 1
        batch=train["batch_size"],
        micro=train["micro_batch_size"],
        seq_len=config["data"]["seq_len"],
        dtype=train["dtype"],
        compile=train.get("compile", False),
    )
    print(f"torch {torch.__version__}, {cores} CPU cores, default {default.label()}")
    print("\n# the default config's setting, each of the three default shapes")
    for shape in shapes:
        bench.measure(shape, default)
    largest = shapes[-1]
    print(f"\n# settings for the largest default shape {largest.label}")
    tried = sweep(bench, largest, replace(default, dtype="float32"), cores, args.quick)
    best_setting = _setting(max(tried, key=lambda r: r["mfu"]))
    print(f"\n# the three default shapes at the best setting so far ({best_setting.label()})")
    at_best = [bench.measure(shape, best_setting) for shape in shapes]
    print("\n# all of it against the best peak windows of the whole run")
    for (threads, dtype), rate in sorted(bench.peaks.items()):
        print(f"matmul peak {dtype:8s} {threads} thread(s): {rate / 1e9:7.1f} GFLOP/s")
    for row in bench.final():
        print(_line(row))
    mine = [r for r in bench.rows if r["shape"] == largest.label]
    best = max(mine, key=lambda r: r["mfu"])
    best_default_seq = max(
        (r for r in mine if r["seq_len"] == default.seq_len), key=lambda r: r["mfu"]
    )
    for title, row in (("BEST", best), (f"BEST at seq_len {default.seq_len}", best_default_seq)):
        print(
            f"\n{title} for {largest.label}: {_setting(row).label()}: "
            f"{row['tokens_per_s']:,.0f} tokens/s, MFU {row['mfu']:.1%} (median window "
            f"{row['mfu_median']:.1%}; causal {row['mfu_causal']:.1%}) of the {row['dtype']} "
            f"peak at {row['threads']} thread(s), {row['peak_gflops_per_s']:.0f} GFLOP/s"
        )
    print(f"BEST JSON: {json.dumps(best)}")
    if args.out:
        write_json(
            args.out,
            {
                "peaks_gflops": {
                    f"{t}-{d}": round(v / 1e9, 1) for (t, d), v in bench.peaks.items()
                },
                "results": bench.rows,
                "best": best,
                "best_at_default_seq_len": best_default_seq,
                "shapes_at_best": at_best,
            },
        )


if __name__ == "__main__":
    main()
