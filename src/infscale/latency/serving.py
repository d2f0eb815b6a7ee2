"""Per-token latency as a serving lab reports it, under vLLM's benchmark field names.

``vllm bench latency`` reports a batch's end-to-end time as ``avg_latency``, ``latencies`` and
``percentiles`` (10/25/50/75/90/99, seconds); ``vllm bench serve`` reports time to first token
(TTFT), time per output token (TPOT: the decode time after the first token over the tokens after
it) and end-to-end latency (E2EL) as ``mean_*_ms``, ``median_*_ms``, ``std_*_ms`` and
``p{q}_*_ms``. Here a trial's TTFT is the time of the same call asked for one new token (the
paper's definition), timed in the same round as the full call, so that trial r's TPOT is
``(e2e_r - ttft_r) / (output_tokens - 1)``. Pure functions over the trial times.
"""

from __future__ import annotations

import numpy as np

BENCH_PERCENTILES = (10, 25, 50, 75, 90, 99)  # vllm bench latency's
SERVE_PERCENTILES = (50, 90, 99)  # the p50/p90/p99, as vllm bench serve names them


def tpot(e2e_s: np.ndarray, ttft_s: np.ndarray, output_tokens: int) -> np.ndarray:
    """Per trial, seconds per output token after the first (NaN for a single output token,
    where there is none after the first)."""
    e2e_s, ttft_s = np.asarray(e2e_s, dtype=float), np.asarray(ttft_s, dtype=float)
    if output_tokens < 2:
        return np.full(e2e_s.shape, np.nan)
    return (e2e_s - ttft_s) / (output_tokens - 1)


def bench_latency_fields(e2e_s: np.ndarray) -> dict[str, object]:
    """``vllm bench latency``'s JSON: the trials' mean, the trials, and their percentiles."""
    e2e_s = np.asarray(e2e_s, dtype=float)
    return {
        "avg_latency": float(e2e_s.mean()),
        "latencies": e2e_s.tolist(),
        "percentiles": {str(q): float(np.percentile(e2e_s, q)) for q in BENCH_PERCENTILES},
    }


def serve_fields(metric: str, seconds: np.ndarray) -> dict[str, float | None]:
    """``vllm bench serve``'s summary of one metric (ttft, tpot, e2el), in milliseconds; None
    where the metric has no finite value (TPOT of a one-token output)."""
    ms = 1000 * np.asarray(seconds, dtype=float)
    ms = ms[np.isfinite(ms)]
    names = ["mean", "median", "std", *(f"p{q}" for q in SERVE_PERCENTILES)]
    if not len(ms):
        return {f"{name}_{metric}_ms": None for name in names}
    values = [ms.mean(), np.median(ms), ms.std(), *np.percentile(ms, SERVE_PERCENTILES)]
    return {f"{name}_{metric}_ms": float(v) for name, v in zip(names, values, strict=True)}


def per_token_fields(e2e_s: np.ndarray, ttft_s: np.ndarray, output_tokens: int) -> dict:
    """Every per-token field of a latency JSON: the bench-latency trio for the full call, and
    TTFT, TPOT and E2EL as bench serve summarises them. ``e2e_s`` and ``ttft_s`` pair trial by
    trial (the same rounds); extra e2e trials (re-timings of a noisy shape) have no TTFT pair
    and count only for the end-to-end figures."""
    e2e_s, ttft_s = np.asarray(e2e_s, dtype=float), np.asarray(ttft_s, dtype=float)
    paired = min(len(e2e_s), len(ttft_s))
    return {
        **bench_latency_fields(e2e_s),
        **serve_fields("ttft", ttft_s),
        **serve_fields("tpot", tpot(e2e_s[:paired], ttft_s[:paired], output_tokens)),
        **serve_fields("e2el", e2e_s),
    }
