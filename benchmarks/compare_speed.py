"""``infscale compare`` on 200 points: 3 laws × 3 tie modes by lm, huber and vp, and by huber
with a bootstrap; the host's fp32 matmul peak printed beside the times.

The points come from the follow-up's conditional law itself (multiplicative, a U-shaped width
factor with its optimum at d/√N = 0.08 and an MLP-ratio factor at r = 1.03, Chinchilla's
coefficients as Besiroglu et al. re-estimated them) with 0.5 % multiplicative noise (fixed seed):
5 size groups (80M to 1.2B parameters, GPT-NeoX's vocabulary), 10 shapes each (5 widths × 2 MLP
widths, each at the depth that brings N nearest the group's size) and 4 token multipliers per shape,
one run per shape (so the bootstrap resamples 50 runs). Each command is a fresh ``infscale``
process, timed from its start to its exit (TABLE.csv written). Prints the
median of ``--repeats`` runs of each method (vp: the conditional law's multiplicative rows
carry the reason), one huber + bootstrap run, the machine's load average
before each, and the tables' key columns. Wall and CPU seconds are both printed: on a shared machine
the wall time also counts the other jobs' turns.

    [OPENBLAS_NUM_THREADS=1] python benchmarks/compare_speed.py [--repeats 3] [--bootstrap 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infscale.fit.conditional import factor_variables
from infscale.fit.laws import law_loss
from infscale.shapes import param_count

VOCAB = 50432
TRUTH = {
    "A": 482.0,
    "B": 2085.0,
    "E": 1.82,
    "alpha": 0.348,
    "beta": 0.366,
    "a1": 0.02,
    "a2": 0.0016,  # x* = a2 / a1 = 0.08
    "b1": 0.02,
    "b2": 0.0206,  # r* = b2 / b1 = 1.03
}
# Size group -> (its N, its five widths): the widest has about 4 layers, the narrowest 10-40.
SIZES = {
    "80M": (8e7, (384, 448, 512, 576, 640)),
    "150M": (1.5e8, (512, 640, 768, 896, 1024)),
    "300M": (3e8, (768, 896, 1024, 1280, 1536)),
    "600M": (6e8, (1024, 1280, 1536, 1792, 2048)),
    "1.2B": (1.2e9, (1536, 1792, 2048, 2560, 3072)),
}
FFN_RATIOS = (2.0, 4.0)  # ffn_hidden / d_model: r = 3f / 4d = 1.5 and 3
MULTIPLIERS = (10, 20, 40, 80)


def points(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for size, (target, widths) in SIZES.items():
        for d in widths:
            for ratio in FFN_RATIOS:
                f = int(ratio * d)
                per_layer = param_count(d, 1, VOCAB, ffn=f) - param_count(d, 0, VOCAB, ffn=f)
                layers = max(2, round((target - param_count(d, 0, VOCAB, ffn=f)) / per_layer))
                N = param_count(d, layers, VOCAB, ffn=f)
                for mult in MULTIPLIERS:
                    rows.append(
                        {
                            "run": f"{size}-d{d}-l{layers}-f{f}",
                            "size_group": size,
                            "d_model": d,
                            "n_layers": layers,
                            "n_heads": d // 64,
                            "ffn_hidden": f,
                            "vocab_size": VOCAB,
                            "N": N,
                            "D": mult * N,
                        }
                    )
    frame = pd.DataFrame(rows)
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    clean = law_loss("conditional", TRUTH, N, D, variables=factor_variables(frame))
    return frame.assign(loss=clean * (1 + 0.005 * rng.standard_normal(len(frame))))


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``infscale`` process (its start included; on a shared
    machine the wall time also counts the other jobs' turns)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infscale.cli", *args], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per method (the median is printed)"
    )
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "points.csv", Path(tmp) / "table.csv"
        frame = points()
        frame.to_csv(data, index=False)
        blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
        print(
            f"{len(frame)} points, {frame['size_group'].nunique()} size groups, "
            f"{frame['run'].nunique()} runs; OPENBLAS_NUM_THREADS={blas}; "
            f"{os.cpu_count()} CPUs"
        )
        from infscale.train.flops import measure_matmul_peak

        print(f"fp32 matmul peak: {measure_matmul_peak() / 1e9:.1f} GFLOP/s")
        base = ["compare", "--data", str(data), "--out", str(out)]
        tables = []
        for method in ("lm", "huber", "vp"):
            runs = []
            for _ in range(args.repeats):
                load = os.getloadavg()[0]
                runs.append(timed([*base, "--method", method]))
                print(
                    f"{method}: {runs[-1][0]:.2f} s, CPU {runs[-1][1]:.2f} s "
                    f"(load average before: {load:.2f})"
                )
            wall, cpu = (statistics.median(t) for t in zip(*runs, strict=True))
            print(f"{method}, median of {len(runs)}: {wall:.2f} s, CPU {cpu:.2f} s")
            tables.append(pd.read_csv(out))
        load = os.getloadavg()[0]
        wall, cpu = timed([*base, "--method", "huber", "--bootstrap", str(args.bootstrap)])
        print(
            f"huber --bootstrap {args.bootstrap}: {wall:.2f} s, CPU {cpu:.2f} s (load average "
            f"before: {load:.2f}; acceptance: <= 30 s)"
        )
        tables.append(pd.read_csv(out))
    shown = ["law", "tie", "method", "n_params", "fit_mse", "logo_rel_err", "aic"]
    print(pd.concat(tables)[[*shown, "bootstrap_failed"]].to_string())


if __name__ == "__main__":
    main()
