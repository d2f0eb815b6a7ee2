"""Time the default workflow end to end and per stage, then the no-op rerun.

Runs ``snakemake --cores N`` in a scratch copy of the workflow (so ``results/`` of the checkout
is untouched), reports the total wall time, the summed and the longest job time of every rule
(from Snakemake's ``benchmark:`` files), and how long an immediate second invocation takes.

    python benchmarks/workflow_time.py [--cores 2] [--configfile config/config.yaml] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run_snakemake(workdir: Path, cores: str, configfile: Path | None) -> float:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        cores,
        "all",
    ]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def stage_times(workdir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        rule = path.relative_to(workdir / "results" / "benchmarks").parts[0]
        seconds = pd.read_csv(path, sep="\t")["s"].iloc[0]
        rows.append({"stage": rule.removesuffix(".tsv"), "seconds": seconds})
    table = pd.DataFrame(rows)
    return table.groupby("stage")["seconds"].agg(jobs="count", total_s="sum", longest_s="max")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--configfile", type=Path)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="infscale-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        wall = run_snakemake(workdir, args.cores, args.configfile)
        noop = run_snakemake(workdir, args.cores, args.configfile)
        print(stage_times(workdir).round(1).to_string())
        print(f"\nend to end: {wall:.0f} s wall ({wall / 60:.1f} min) on {args.cores} cores")
        print(f"immediate rerun (nothing to do): {noop:.1f} s")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
