"""``infscale compare`` speed, 3 laws × 3 tie modes, each case a fresh ``infscale`` process;
the host's fp32 matmul peak printed beside the times.

Cases (the acceptance figures of the fitting issue):

- 76 points (19 of the 200-point set's 50 runs, drawn with a fixed seed, all 4 multipliers each)
  by huber and by vp, and their ratio;
- 200 points by lm, huber and vp, and by huber with a 200-resample bootstrap;
- the Marin fixture (tests/fit/published, real runs) by huber and by vp, with the fit MSE of
  every row both methods fit (vp's must be at most huber's: "at equal or better objective").

The points come from the follow-up's conditional law itself (multiplicative, a U-shaped width
factor with its optimum at d/√N = 0.08 and an MLP-ratio factor at r = 1.03, Chinchilla's
coefficients as Besiroglu et al. re-estimated them) with 0.5 % multiplicative noise (fixed seed):
5 size groups (80M to 1.2B parameters, GPT-NeoX's vocabulary), 10 shapes each (5 widths × 2 MLP
widths, each at the depth that brings N nearest the group's size) and 4 token multipliers per
shape, one run per shape. With two MLP widths r takes two values, so the conditional laws drop
their MLP factor (its coefficients and E are not identified there; the rows say so). vp fits no
conditional multiplicative rows (their error column says why), so its comparison does less work
than huber's. Prints the median of ``--repeats`` runs of
each case, wall and CPU seconds (on a shared machine the wall time also counts the other jobs'
turns, so both are printed), and the load average before each.

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
MARIN = (
    Path(__file__).resolve().parents[1] / "tests" / "fit" / "published" / "marin_isoflop_dclm.csv"
)
MARIN_VOCAB = 128256  # Llama 3's tokenizer (tests/fit/published/SOURCE.md)


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


def subset(frame: pd.DataFrame, runs: int = 19, seed: int = 1) -> pd.DataFrame:
    """Every point of ``runs`` runs drawn at random: 19 runs × 4 multipliers = 76 points."""
    drawn = np.random.default_rng(seed).choice(frame["run"].unique(), runs, replace=False)
    return frame[frame["run"].isin(drawn)].reset_index(drop=True)


def marin() -> pd.DataFrame:
    """The Marin isoflop fixture, its compute budgets as size groups."""
    frame = pd.read_csv(MARIN)
    return frame.assign(size_group=frame["budget_flops"].astype(str))


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``infscale`` process (its start included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infscale.cli", *args], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def case(
    name: str, data: Path, out: Path, extra: list[str], repeats: int
) -> tuple[tuple[float, float], pd.DataFrame]:
    """The median wall and CPU seconds of ``repeats`` comparisons (printed, with the load)."""
    runs = []
    for _ in range(repeats):
        load = os.getloadavg()[0]
        runs.append(timed(["compare", "--data", str(data), "--out", str(out), *extra]))
        print(f"  {name}: {runs[-1][0]:.2f} s, CPU {runs[-1][1]:.2f} s (load before {load:.2f})")
    wall, cpu = (statistics.median(t) for t in zip(*runs, strict=True))
    print(f"{name}, median of {len(runs)}: {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
    return (wall, cpu), pd.read_csv(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median printed)")
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    from infscale.train.flops import measure_matmul_peak

    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(
        f"fp32 matmul peak: {measure_matmul_peak() / 1e9:.1f} GFLOP/s; {os.cpu_count()} CPUs; "
        f"OPENBLAS_NUM_THREADS={blas}"
    )
    shown = ["law", "tie", "method", "n_params", "fit_mse", "logo_rel_err", "aic"]
    with tempfile.TemporaryDirectory() as tmp:
        tables = {}
        sets = {"76 points": subset(points()), "200 points": points(), "Marin": marin()}
        paths = {}
        for label, frame in sets.items():
            paths[label] = Path(tmp) / f"{label.replace(' ', '_')}.csv"
            frame.to_csv(paths[label], index=False)
        out = Path(tmp) / "table.csv"
        walls = {}
        plan = [
            ("76 points", "huber", []),
            ("76 points", "vp", []),
            ("200 points", "lm", []),
            ("200 points", "huber", []),
            ("200 points", "vp", []),
            ("Marin", "huber", ["--vocab-size", str(MARIN_VOCAB)]),
            ("Marin", "vp", ["--vocab-size", str(MARIN_VOCAB)]),
        ]
        for label, method, extra in plan:
            name = f"{label}, {method}"
            walls[name], tables[name] = case(
                name, paths[label], out, ["--method", method, *extra], args.repeats
            )
        name = f"200 points, huber + bootstrap {args.bootstrap}"
        walls[name], tables[name] = case(
            name,
            paths["200 points"],
            out,
            ["--method", "huber", "--bootstrap", str(args.bootstrap)],
            1,
        )
    print("\nacceptance: 76 points huber <= 10 s, vp <= 3 s; 200 points + bootstrap <= 30 s")
    for label in ("76 points", "200 points", "Marin"):
        (h_wall, h_cpu), (v_wall, v_cpu) = walls[f"{label}, huber"], walls[f"{label}, vp"]
        both = tables[f"{label}, huber"].merge(
            tables[f"{label}, vp"], on=["law", "tie"], suffixes=("_huber", "_vp")
        )
        both = both[both["fit_mse_vp"].notna() & both["fit_mse_huber"].notna()]
        better = int((both["fit_mse_vp"] <= both["fit_mse_huber"] * (1 + 1e-9)).sum())
        print(
            f"{label}: huber / vp = {h_wall / v_wall:.1f}x wall, {h_cpu / v_cpu:.1f}x CPU "
            f"(acceptance >= 5x); vp's fit MSE <= "
            f"huber's on {better} of the {len(both)} rows both fit"
        )
    print()
    print(pd.concat(tables.values())[[*shown, "bootstrap_failed"]].to_string())


if __name__ == "__main__":
    main()
