"""The vLLM environment's side of infscale.latency.engine.measure_in_env: run as
``python -m infscale.latency.engine_job JOB OUT``, it times the job file's items in-process and
writes their results. A module of its own, so that the engine module (which measure imports)
imports no measurement code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infscale.errors import InputError, one_line
from infscale.io import write_json
from infscale.latency.engine import ERROR_PREFIX
from infscale.latency.measure import Item, measure_interleaved, set_threads
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape


def run_job(job_path: str, out_path: str) -> int:
    """Measure the job's items; bad input is one line after ERROR_PREFIX on stderr, exit 2."""
    job = json.loads(Path(job_path).read_text())
    try:
        set_threads(job["threads"])
        items = [Item(**{**spec, "shape": Shape(**spec["shape"])}) for spec in job["items"]]
        results = measure_interleaved(
            items, Protocol(**job["protocol"]), ttft=job["ttft"], references=job["references"]
        )
    except InputError as err:
        print(f"{ERROR_PREFIX}{one_line(err)}", file=sys.stderr)
        return 2
    write_json(out_path, results)
    return 0


if __name__ == "__main__":  # vLLM's engine spawns workers, which re-import the main module
    sys.exit(run_job(*sys.argv[1:]))
