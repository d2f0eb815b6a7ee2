"""The latency stage's config checks (gathered by infscale.checks): every sweep and the
throughput shape can be built, the job layout suits the backend and the latency source, and on
a GPU cluster each timing job fits one GPU."""

from __future__ import annotations

from typing import Any

from infscale.errors import InputError
from infscale.latency.sweeps import (
    SWEEPS,
    latency_settings,
    sweep_items,
    sweep_lengths,
    throughput_shape,
)
from infscale.shapes import Shape
from infscale.train.memory import inference_memory_gb, usable_gb


def check_latency(config: dict[str, Any]) -> None:
    """Raise InputError, naming the key, for a latency section the stage cannot run."""
    for sweep in SWEEPS:
        sweep_items(config, sweep)
        sweep_lengths(config, sweep)
    throughput_shape(config)
    latency = config["latency"]
    if latency["interleave"] and latency["backend"] == "vllm" and latency["device"] != "cpu":
        # on a CPU each engine's KV cache is a small host buffer, and engines interleave well
        raise InputError(
            "config key latency.interleave: true times every shape in one process, and the vllm "
            "backend holds one engine per shape there, each with most of the GPU's memory: set "
            "it false, or latency.device to cpu"
        )
    if config["latency"]["interleave"] and config["select"]["latency_source"] == "measure_top":
        raise InputError(
            "config key latency.interleave: true times every shape in one job, but "
            "select.latency_source measure_top picks its shapes only after the fits"
        )
    if config["cluster"]["device"] == "gpu":
        _check_latency_memory(config)


def _check_latency_memory(config: dict[str, Any]) -> None:
    """A sweep keeps every item's weights loaded (its items are timed interleaved) and times one
    at a time; throughput times one shape at each batch size: the weights and the largest KV
    cache must fit one GPU."""
    cluster, latency = config["cluster"], config["latency"]
    limit = usable_gb(cluster["gpu_memory_gb"], cluster["memory_headroom"])
    jobs = {}
    for sweep in SWEEPS:
        items = [(Shape(**i["shape"]), i["batch_size"]) for i in sweep_items(config, sweep)]
        lengths = sweep_lengths(config, sweep)
        prompt = lengths.get("input_tokens", latency["input_tokens"])
        tokens = prompt + lengths.get("output_tokens", latency["output_tokens"])
        jobs[f"latency.sweeps.{sweep}"] = ({s for s, _ in items}, items, prompt, tokens)
    shape = throughput_shape(config)
    sizes = latency_settings(config)["throughput"]["batch_sizes"]
    tokens = latency["input_tokens"] + latency["output_tokens"]
    jobs["latency.throughput"] = (
        {shape},
        [(shape, b) for b in sizes],
        latency["input_tokens"],
        tokens,
    )
    for key, (resident, timed, prompt, tokens) in jobs.items():
        need = inference_memory_gb(resident, timed, prompt, tokens)
        if need > limit:
            raise InputError(
                f"config key {key}: weights and KV cache need {need:.0f} GB at the largest batch, "
                f"over the {limit:.0f} GB usable of cluster.gpu_memory_gb "
                f"{cluster['gpu_memory_gb']:g} (fewer or smaller batch_sizes, or a larger GPU)"
            )
