"""Generation latency as the paper measured it (FACTS.md, "Latency protocol").

A randomly initialised model of the shape is enough: latency depends on the shape, not the
weights. Batch of random prompts of exactly ``input_tokens``; exactly ``output_tokens`` new
tokens (min = max, EOS never ends a trial early); one or more warm-up calls, then timed trials
on a monotonic clock with device synchronisation. The time to first token is the same call with
one new token.

Several measurements (shapes, or batch sizes of one shape) are timed *interleaved*: trial 1 of
A, B, C, then trial 2 of A, B, C, ..., so that a slow drift of the machine (another process,
thermal throttling) hits every measurement alike instead of biasing whichever ran last. A
measurement whose coefficient of variation exceeds ``max_cv`` is timed again (at most
``max_repeats`` times, again interleaved with the other noisy ones, the new trials pooled with
the old) and flagged if it stays noisy.

Two backends: ``hf`` (transformers ``generate``, the paper's) and ``vllm`` (Appendix D; needs
vLLM and a GPU, and says so on one line where either is missing).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from infscale.errors import InputError
from infscale.provenance import device_name, versions
from infscale.shapes import Shape
from infscale.train.model import build_model

BACKENDS = ("hf", "vllm")
DEFAULT_MAX_POSITION = 2048  # the paper's context length


class BackendUnavailable(InputError):
    """The backend asked for cannot run on this machine (no vLLM, no GPU)."""


@dataclass(frozen=True)
class Protocol:
    """Everything a latency number depends on besides the shape."""

    input_tokens: int = 128
    output_tokens: int = 256
    batch_size: int = 1
    trials: int = 5
    warmup: int = 1
    dtype: str = "auto"
    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.95
    device: str = "auto"
    seed: int = 0
    backend: str = "hf"
    max_position: int = DEFAULT_MAX_POSITION

    def check(self) -> None:
        for name in ("input_tokens", "output_tokens", "batch_size", "trials", "max_position"):
            value = getattr(self, name)
            if value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        if self.warmup < 0:
            raise InputError(f"warmup must be >= 0, got {self.warmup}")
        if self.input_tokens + self.output_tokens > self.max_position:
            raise InputError(
                f"input_tokens + output_tokens = {self.input_tokens + self.output_tokens} "
                f"exceeds the position limit {self.max_position}"
            )
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        _resolve_dtype(self.dtype, "cpu")  # checks the name

    @classmethod
    def from_config(cls, latency: dict[str, Any], seed: int = 0) -> Protocol:
        """The protocol of a config's ``latency`` section."""
        keys = cls.__dataclass_fields__.keys() - {"seed"}
        return cls(seed=seed, **{k: latency[k] for k in keys if k in latency})


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
    backend: str = "hf",
    max_position: int = DEFAULT_MAX_POSITION,
    max_cv: float | None = None,
    max_repeats: int = 0,
) -> dict[str, Any]:
    """Time ``generate`` for one shape; also the time to first token (one new token)."""
    protocol = Protocol(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch_size=batch_size,
        trials=trials,
        warmup=warmup,
        dtype=dtype,
        do_sample=do_sample,
        temperature=temperature,
        top_p=top_p,
        device=device,
        seed=seed,
        backend=backend,
        max_position=max_position,
    )
    return measure_interleaved(
        [(shape, batch_size)], protocol, max_cv=max_cv, max_repeats=max_repeats
    )[0]


def measure_interleaved(
    items: Sequence[tuple[Shape, int]],
    protocol: Protocol,
    *,
    max_cv: float | None = None,
    max_repeats: int = 0,
    ttft: bool = True,
) -> list[dict[str, Any]]:
    """Time every (shape, batch size) of ``items`` with trials interleaved across them.

    One model per distinct shape is built up front. Every item gets ``warmup`` untimed calls,
    then round r times trial r of every item in turn; the same for the time to first token. An
    item whose CV exceeds ``max_cv`` gets another ``trials`` rounds (at most ``max_repeats``
    times), pooled with its earlier trials: on a machine whose speed drifts, a new sample is no
    steadier than the old, but the median of both is. Still above: returned with ``flagged``.
    """
    protocol.check()
    if not items:
        return []
    device = _resolve_device(protocol.device)
    torch_dtype = _resolve_dtype(protocol.dtype, device)
    protocol = replace(protocol, device=device)
    make = _vllm_generator if protocol.backend == "vllm" else _hf_generator
    generators: dict[Shape, Callable[[int, int], float]] = {}
    for shape, _ in items:
        if shape not in generators:
            generators[shape] = make(shape, protocol, torch_dtype)

    calls = [(generators[shape], batch) for shape, batch in items]
    torch.manual_seed(protocol.seed)
    with torch.inference_mode():
        for call, batch in calls:
            for _ in range(protocol.warmup):
                call(protocol.output_tokens, batch)
        times = _rounds(calls, protocol.output_tokens, protocol.trials)
        first = _rounds(calls, 1, protocol.trials) if ttft else None
        repeats = [0] * len(items)
        noisy = [i for i in range(len(items)) if _over(times[i], max_cv)]
        for _ in range(max_repeats):
            if not noisy:
                break
            again = _rounds([calls[i] for i in noisy], protocol.output_tokens, protocol.trials)
            for i, new in zip(noisy, again, strict=True):
                times[i], repeats[i] = np.concatenate([times[i], new]), repeats[i] + 1
            noisy = [i for i in noisy if _over(times[i], max_cv)]

    results = []
    for i, (shape, batch) in enumerate(items):
        median = float(np.median(times[i]))
        result = {
            "shape": shape.label,
            "d_model": shape.d_model,
            "n_layers": shape.n_layers,
            "n_heads": shape.n_heads,
            "vocab_size": shape.vocab_size,
            "N": shape.n_params,
            "R": shape.aspect_ratio,
            "input_tokens": protocol.input_tokens,
            "output_tokens": protocol.output_tokens,
            "batch_size": batch,
            "do_sample": protocol.do_sample,
            "temperature": protocol.temperature if protocol.do_sample else None,
            "top_p": protocol.top_p if protocol.do_sample else None,
            "warmup": protocol.warmup,
            "backend": protocol.backend,
            "dtype": str(torch_dtype).removeprefix("torch."),
            **summarize(times[i]),
            "trials_s": times[i].tolist(),
            "per_token_ms": 1000 * median / protocol.output_tokens,
            "tokens_per_s": batch * protocol.output_tokens / median,
            "repeats": repeats[i],
            "max_cv": max_cv,
            "flagged": bool(_over(times[i], max_cv)),
            "device": device_name() if device != "cpu" else f"cpu: {device_name()}",
            "threads": torch.get_num_threads(),
            "versions": versions(),
        }
        if first is not None:
            result |= {"ttft_s": float(np.median(first[i])), "ttft_trials_s": first[i].tolist()}
        results.append(result)
    return results


def measure_shapes(
    shapes: Sequence[Shape], settings: dict[str, Any], seed: int
) -> list[dict[str, Any]]:
    """Every shape at the batch size of a config's ``latency`` section, interleaved, with its
    repeat rule: what a sweep job and the all-shapes job both time."""
    protocol = Protocol.from_config(settings, seed=seed)
    return measure_interleaved(
        [(shape, protocol.batch_size) for shape in shapes],
        protocol,
        max_cv=settings["max_cv"],
        max_repeats=settings["max_repeats"],
    )


def summary_line(result: dict[str, Any]) -> str:
    """One line per measurement for the log: the median, its spread, and the flag."""
    return (
        f"{result['shape']}: median {result['median_s']:.4g} s "
        f"({result['per_token_ms']:.4g} ms/token, cv {result['cv']:.3f}"
        f"{', flagged' if result['flagged'] else ''}), "
        f"ttft {result['ttft_s']:.4g} s on {result['device']}"
    )


def _rounds(
    calls: Sequence[tuple[Callable[[int, int], float], int]], new_tokens: int, trials: int
) -> list[np.ndarray]:
    """``trials`` rounds, each timing every call once in order: A B C A B C ..."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(trials):
        for slot, (call, batch) in zip(times, calls, strict=True):
            slot.append(call(new_tokens, batch))
    return [np.array(slot) for slot in times]


def _over(times: np.ndarray, max_cv: float | None) -> bool:
    return max_cv is not None and summarize(times)["cv"] > max_cv


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


def _hf_generator(
    shape: Shape, protocol: Protocol, torch_dtype: torch.dtype
) -> Callable[[int, int], float]:
    """A timed ``generate`` call of a fresh random model: (new tokens, batch) -> seconds."""
    device = protocol.device
    model = build_model(
        shape, max_position=protocol.input_tokens + protocol.output_tokens, seed=protocol.seed
    )
    model = model.to(device=device, dtype=torch_dtype).eval()
    prompts: dict[int, torch.Tensor] = {}
    sampling = (
        {"do_sample": True, "temperature": protocol.temperature, "top_p": protocol.top_p}
        if protocol.do_sample
        else {"do_sample": False}
    )

    def once(new_tokens: int, batch: int) -> float:
        if batch not in prompts:
            generator = torch.Generator().manual_seed(protocol.seed + batch)
            prompts[batch] = torch.randint(
                0, shape.vocab_size, (batch, protocol.input_tokens), generator=generator
            ).to(device)
        prompt = prompts[batch]
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
        if out.shape[1] != protocol.input_tokens + new_tokens:
            raise RuntimeError(
                f"generated {out.shape[1] - protocol.input_tokens} tokens, not {new_tokens}"
            )
        return elapsed

    return once


def vllm_unavailable(device: str = "auto") -> str | None:
    """Why the vLLM backend cannot run here, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed"
    if device == "cpu" or not torch.cuda.is_available():
        return "no GPU is available"
    return None


def _vllm_generator(
    shape: Shape, protocol: Protocol, torch_dtype: torch.dtype
) -> Callable[[int, int], float]:
    """The same protocol served by vLLM (Appendix D): the random model saved, then loaded.

    Prompts go in as token ids (no tokenizer); ``ignore_eos`` and ``min_tokens = max_tokens``
    make every call generate exactly the asked number of tokens.
    """
    reason = vllm_unavailable(protocol.device)
    if reason:
        raise BackendUnavailable(f"latency backend vllm skipped: {reason} (use backend hf)")
    from vllm import LLM, SamplingParams  # optional dependency, GPU machines only

    model = build_model(
        shape, max_position=protocol.input_tokens + protocol.output_tokens, seed=protocol.seed
    )
    folder = tempfile.mkdtemp(prefix="infscale-vllm-")
    model.to(torch_dtype).save_pretrained(folder)
    del model
    llm = LLM(
        model=folder,
        skip_tokenizer_init=True,
        dtype=str(torch_dtype).removeprefix("torch."),
        seed=protocol.seed,
        max_model_len=protocol.input_tokens + protocol.output_tokens,
        gpu_memory_utilization=float(os.environ.get("INFSCALE_VLLM_GPU_FRACTION", "0.3")),
    )
    prompts: dict[int, list[dict[str, list[int]]]] = {}

    def once(new_tokens: int, batch: int) -> float:
        if batch not in prompts:
            generator = torch.Generator().manual_seed(protocol.seed + batch)
            ids = torch.randint(
                0, shape.vocab_size, (batch, protocol.input_tokens), generator=generator
            )
            prompts[batch] = [{"prompt_token_ids": row.tolist()} for row in ids]
        params = SamplingParams(
            n=1,
            temperature=protocol.temperature if protocol.do_sample else 0.0,
            top_p=protocol.top_p if protocol.do_sample else 1.0,
            min_tokens=new_tokens,
            max_tokens=new_tokens,
            ignore_eos=True,
            detokenize=False,
            seed=protocol.seed,
        )
        _sync("cuda")
        start = time.perf_counter()
        outputs = llm.generate(prompts[batch], params, use_tqdm=False)
        _sync("cuda")
        elapsed = time.perf_counter() - start
        made = {len(out.outputs[0].token_ids) for out in outputs}
        if made != {new_tokens}:
            raise RuntimeError(f"vLLM generated {sorted(made)} tokens, not {new_tokens}")
        return elapsed

    return once


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
