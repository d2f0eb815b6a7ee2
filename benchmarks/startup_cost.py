"""What a workflow job costs before it does any work: the floor under the test suite's time.

The suite is CPU-bound on 2 cores (docs/benchmarks.md), and its whole-workflow tests spend most
of their CPU starting processes. This prints the median CPU seconds (user + system, the process
and its children) of ``--repeats`` fresh processes for each kind of start:

- a Snakemake start: a dry run of the workflow on the micro config (tests/configs/micro.yaml)
  in an empty directory. An sbatch job starts Snakemake twice: in the batch shell, then under
  ``srun``;
- a model job's imports: a training rank (``infscale.train.loop``), an evaluation (lm-eval's HF
  model, through ``infscale.evaluate.window``, and the model classes it loads) and a latency job
  (``infscale.latency.measure``); each loads torch and transformers;

then the CPU that starting alone takes in the micro run's model jobs (counted in the dry run,
which sees the DAG up to the selection checkpoint: the grid's jobs, not the candidates') and in
the rehearsal's sbatch jobs (``--sbatch-jobs`` and ``--model-jobs``: 37 in its slurm_logs at
b382d0a, 34 of them model jobs). The host's fp32 matmul peak is printed beside them.

    python benchmarks/startup_cost.py [--repeats 5] [--sbatch-jobs 37] [--model-jobs 34]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

from infscale.train.flops import measure_matmul_peak

REPO = Path(__file__).resolve().parents[1]
MICRO = REPO / "tests" / "configs" / "micro.yaml"
# The rules whose job loads torch and transformers, by the start it pays.
MODEL_JOBS = {
    "train": "training rank",
    "train_candidate": "training rank",
    "evaluate": "evaluation",
    "latency": "latency job",
    "latency_sweep": "latency job",
    "latency_throughput": "latency job",
    "latency_candidate_throughput": "latency job",
    "latency_trained": "latency job",
}
IMPORTS = {
    "training rank": "import infscale.train.loop",
    "evaluation": "import infscale.evaluate.window, infscale.train.model",
    "latency job": "import infscale.latency.measure",
}


def child_cpu(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """CPU seconds of ``cmd`` and its children, and its stdout."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return usage.ru_utime + usage.ru_stime, out


def median_cpu(cmd: list[str], cwd: Path, repeats: int) -> tuple[float, str]:
    runs = [child_cpu(cmd, cwd) for _ in range(repeats)]
    return statistics.median(cpu for cpu, _ in runs), runs[-1][1]


def job_counts(dry_run: str) -> Counter[str]:
    """The jobs a dry run prints, by rule."""
    return Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", dry_run, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sbatch-jobs", type=int, default=37)
    parser.add_argument("--model-jobs", type=int, default=34)
    args = parser.parse_args()

    torch.set_num_threads(2)
    print(f"fp32 matmul peak: {measure_matmul_peak() / 1e9:.0f} GFLOP/s on 2 threads")
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    with tempfile.TemporaryDirectory() as scratch:
        dry = [*snakemake, "-d", scratch, f"--configfile={MICRO}", "-n", "--cores", "2"]
        start_smk, output = median_cpu(dry, REPO, args.repeats)
        starts = {
            kind: median_cpu([sys.executable, "-c", code], REPO, args.repeats)[0]
            for kind, code in IMPORTS.items()
        }
    print(f"\nmedian CPU-s of {args.repeats} fresh processes")
    print(f"  Snakemake start (dry run, micro config): {start_smk:5.2f}")
    for kind, cpu in starts.items():
        print(f"  {kind + ' imports:':39s} {cpu:5.2f}")

    counts = job_counts(output)
    print("\nthe micro config's model jobs (dry run, up to the selection checkpoint)")
    floor = 0.0
    for rule, kind in MODEL_JOBS.items():
        if counts.get(rule):
            floor += counts[rule] * starts[kind]
            print(f"  {rule:30s} {counts[rule]:3d} x {starts[kind]:.2f}")
    total = sum(counts.values())
    print(f"  their starts: {floor:.0f} CPU-s ({total} jobs in all)")
    sbatch = args.sbatch_jobs * 2 * start_smk + args.model_jobs * statistics.median(starts.values())
    print(
        f"\nthe rehearsal's {args.sbatch_jobs} sbatch jobs, two Snakemake starts each, and the"
        f" imports of its {args.model_jobs} model jobs: {sbatch:.0f} CPU-s"
    )


if __name__ == "__main__":
    main()
