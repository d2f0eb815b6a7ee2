"""The follow-up's throughput protocol (``latency.throughput_protocol``): every candidate at
fixed input and output lengths, at batch sizes rising towards saturation, each the mean of
``runs`` timed runs; a candidate's throughput is that of its best batch size.

Throughput is ``batch · output_tokens / mean run time`` (the follow-up reports a mean of 5
runs; the latency figures elsewhere are medians). A candidate whose best batch size is the
largest timed, and which still gained at least ``SATURATION_GAIN`` there over the next smaller
one, has not saturated: its figure is a lower bound, and the table says so (``saturated``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from infscale.latency.sweeps import throughput_rows

SATURATION_GAIN = 0.05  # a larger batch that adds under 5 % throughput: saturated


def throughput_settings(latency: dict[str, Any]) -> dict[str, Any]:
    """The latency section's protocol for the throughput job: ``runs`` trials, its lengths, and
    its backend where it names one (else the section's)."""
    spec = latency["throughput_protocol"]
    settings = {
        "input_tokens": spec["input_tokens"],
        "output_tokens": spec["output_tokens"],
        "trials": spec["runs"],
    }
    if spec["backend"] is not None:
        settings["backend"] = spec["backend"]
    return settings


def by_batch(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (shape, batch size), with ``tokens_per_s`` from the mean run time."""
    table = throughput_rows(results)
    mean = pd.Series([r["mean_s"] for r in results], index=table.index)
    return table.assign(
        mean_s=mean, tokens_per_s=table["batch_size"] * table["output_tokens"] / mean
    )


def at_saturation(table: pd.DataFrame, gain: float = SATURATION_GAIN) -> pd.DataFrame:
    """Per shape, the row of its best batch size, with ``batch_sizes`` (those timed) and
    ``saturated``: whether a larger batch would be unlikely to help (see the module)."""
    rows = []
    for _, group in table.groupby("shape", sort=False):
        group = group.sort_values("batch_size")
        best = group.loc[group["tokens_per_s"].idxmax()].copy()
        tps = group["tokens_per_s"].to_numpy()
        largest = best["batch_size"] == group["batch_size"].iloc[-1]
        rising = len(tps) < 2 or tps[-1] >= (1 + gain) * tps[-2]
        best["batch_sizes"] = " ".join(map(str, group["batch_size"]))
        best["saturated"] = bool(not (largest and rising))
        rows.append(best)
    return pd.DataFrame(rows).reset_index(drop=True)
