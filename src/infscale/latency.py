"""Generation latency as the paper measured it (FACTS.md, "Latency protocol").

A randomly initialised model of the shape is enough: latency depends on the shape, not the
weights. Batch of random prompts of exactly ``input_tokens``; exactly ``output_tokens`` new
tokens (min = max, EOS never ends a trial early); one or more warm-up calls, then timed trials
on a monotonic clock with device synchronisation.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from infscale.errors import InputError
from infscale.model import build_model
from infscale.provenance import device_name, versions
from infscale.shapes import Shape


def measure_latency(
    shape: Shape,
    *,
    input_tokens: int = 128,
    output_tokens: int = 256,
    batch_size: int = 1,
    trials: int = 5,
    warmup: int = 1,
    dtype: str = "auto",
    do_sample: bool = True,
    temperature: float = 0.8,
    top_p: float = 0.95,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Time ``generate`` for one shape; also the time to first token (one new token)."""
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("batch_size", batch_size),
        ("trials", trials),
    ):
        if value <= 0:
            raise InputError(f"{name} must be positive, got {value}")
    if warmup < 0:
        raise InputError(f"warmup must be >= 0, got {warmup}")
    device = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, device)
    model = build_model(shape, max_position=input_tokens + output_tokens, seed=seed)
    model = model.to(device=device, dtype=torch_dtype).eval()
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, shape.vocab_size, (batch_size, input_tokens), generator=generator)
    prompt = prompt.to(device)

    def once(new_tokens: int) -> float:
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if do_sample
            else {"do_sample": False}
        )
        _sync(device)
        start = time.perf_counter()
        out = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            min_new_tokens=new_tokens,
            max_new_tokens=new_tokens,
            pad_token_id=0,
            eos_token_id=None,
            use_cache=True,
            **sampling,
        )
        _sync(device)
        elapsed = time.perf_counter() - start
        if out.shape[1] != input_tokens + new_tokens:
            raise RuntimeError(f"generated {out.shape[1] - input_tokens} tokens, not {new_tokens}")
        return elapsed

    torch.manual_seed(seed)
    with torch.inference_mode():
        for _ in range(warmup):
            once(output_tokens)
        times = np.array([once(output_tokens) for _ in range(trials)])
        ttft = np.array([once(1) for _ in range(trials)])
    return {
        "shape": shape.label,
        "d_model": shape.d_model,
        "n_layers": shape.n_layers,
        "n_heads": shape.n_heads,
        "vocab_size": shape.vocab_size,
        "N": shape.n_params,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "batch_size": batch_size,
        "do_sample": do_sample,
        "dtype": str(torch_dtype).removeprefix("torch."),
        **summarize(times),
        "trials_s": times.tolist(),
        "per_token_ms": 1000 * float(np.median(times)) / output_tokens,
        "ttft_s": float(np.median(ttft)),
        "ttft_trials_s": ttft.tolist(),
        "device": device_name() if device != "cpu" else f"cpu: {device_name()}",
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }


def summarize(times: np.ndarray) -> dict[str, float]:
    """Median (the number used downstream) and the spread around it."""
    q1, q3 = np.percentile(times, [25, 75])
    mean = float(times.mean())
    return {
        "median_s": float(np.median(times)),
        "mean_s": mean,
        "min_s": float(times.min()),
        "iqr_s": float(q3 - q1),
        "cv": float(times.std(ddof=1) / mean) if len(times) > 1 else 0.0,
    }


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no GPU")
    return device


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto``: bf16 on the GPU as the paper did, fp32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in {"float32", "bfloat16", "float16"}:
        raise InputError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    return getattr(torch, dtype)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (a Snakemake job's ``threads``) before timing."""
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
