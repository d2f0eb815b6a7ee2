"""Repeatability of a latency measurement across two workflow runs.

Times one shape twice, each time in a fresh ``infscale latency`` process (as two separate
workflow runs would), with the config's protocol and 5 trials, then prints both medians and
their relative difference. The acceptance bound is 10 % on a quiet machine; run it alone
(``flock /tmp/infscale-cpu.lock python benchmarks/latency_repeat.py``).

    python benchmarks/latency_repeat.py [--configfile config/config.yaml] [--shape d48-l4-h4]
        [--threads 2] [--bound 0.10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from infscale.checks import load_config

REPO = Path(__file__).resolve().parents[1]


def run_once(shape: tuple[int, int, int], config: dict, threads: int, out: Path) -> dict:
    d_model, n_layers, n_heads = shape
    protocol, model = config["latency"], config["model"]
    cmd = [
        sys.executable,
        "-m",
        "infscale.cli",
        "latency",
        *("--d-model", str(d_model), "--n-layers", str(n_layers), "--n-heads", str(n_heads)),
        *("--vocab-size", str(model["vocab_size"]), "--multiple-of", str(model["multiple_of"])),
        *("--input-tokens", str(protocol["input_tokens"])),
        *("--output-tokens", str(protocol["output_tokens"])),
        *("--batch-size", str(protocol["batch_size"]), "--trials", "5"),
        *("--warmup", str(protocol["warmup"]), "--dtype", protocol["dtype"]),
        *("--device", protocol["device"], "--threads", str(threads)),
        *(
            ("--temperature", str(protocol["temperature"]), "--top-p", str(protocol["top_p"]))
            if protocol["do_sample"]
            else ("--greedy",)
        ),
        *("--out", str(out)),
    ]
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--shape", default="d48-l4-h4", help="dD-lL-hH (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--bound", type=float, default=0.10)
    args = parser.parse_args()
    match = re.fullmatch(r"d(\d+)-l(\d+)-h(\d+)", args.shape)
    if not match:
        parser.error(f"--shape must look like d48-l4-h4, got {args.shape!r}")
    shape = tuple(int(g) for g in match.groups())
    config = load_config(args.configfile, REPO / "config" / "schema.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        first = run_once(shape, config, args.threads, Path(tmp) / "first.json")
        second = run_once(shape, config, args.threads, Path(tmp) / "second.json")
    a, b = first["median_s"], second["median_s"]
    diff = abs(a - b) / min(a, b)
    print(
        f"shape {args.shape}, {first['input_tokens']} in / {first['output_tokens']} out, "
        f"batch {first['batch_size']}, 5 trials, {first['threads']} threads, {first['device']}"
    )
    print(f"run 1: median {a:.4f} s (cv {first['cv']:.3f})")
    print(f"run 2: median {b:.4f} s (cv {second['cv']:.3f})")
    verdict = "within" if diff <= args.bound else "OUTSIDE"
    print(f"relative difference {diff:.1%} ({verdict} the {args.bound:.0%} bound)")
    return 0 if diff <= args.bound else 1


if __name__ == "__main__":
    sys.exit(main())
