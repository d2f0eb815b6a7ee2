"""Latency of the trained candidates, timed from their checkpoints (rule latency_trained).

Every other latency number is timed on random weights, on the claim that the time of
``generate`` does not depend on the weights. This checks the claim on the models the report
crowns: each trained checkpoint is timed with the same protocol, interleaved in one job with a
random-init *twin* (the checkpoint's own config, fresh weights: the same architecture, so only
the weights differ) and with every other pair. Each checkpoint's reference is its twin, so its
``relative_cv`` is the spread across rounds of the paired ratio checkpoint / twin, from which a
drift common to a round has cancelled.

Agreement: the two agree when ``|ln(paired_ratio)| <= 2 · relative_cv``, ``paired_ratio`` the
median over rounds of checkpoint / twin in the same round. That is a tolerance of two single
rounds' paired noise, not a test of equality: weights that change the time by more than the
timing noise fail it; two models of equal speed pass it but for about 1 % of the time at 5
trials (simulated: Gaussian or t3 noise, 3 % per trial under a ±25 % drift). The plain ratio of
the two medians is reported too but not judged: its medians may come from rounds of different
speed, which makes the same rule fail 4 % of equal pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infscale.latency.measure import Item, measure_interleaved
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape

BAND = 2.0  # relative CVs of the paired ratio within which a checkpoint agrees with its twin

TRAINED_COLUMNS = [
    "name",
    "shape",
    "d_model",
    "n_layers",
    "architecture",
    "checkpoint_median_s",
    "random_median_s",
    "ratio",
    "paired_ratio",
    "relative_cv",
    "band",
    "agree",
    "trials",
    "flagged",
    "device",
    "threads",
]


def agreement(ratio: np.ndarray, relative_cv: np.ndarray, band: float = BAND) -> np.ndarray:
    """Whether each checkpoint / twin paired ratio lies within ``band`` relative CVs of 1 (in
    log, so that faster and slower count alike)."""
    return np.abs(np.log(np.asarray(ratio, dtype=float))) <= band * np.asarray(relative_cv)


def trained_items(
    checkpoints: Mapping[str, tuple[Shape, str | Path]], batch_size: int
) -> tuple[list[Item], list[int]]:
    """Items (checkpoint, twin) for every candidate, in order, and each one's reference: the
    other of its pair."""
    items: list[Item] = []
    for name, (shape, path) in checkpoints.items():
        items.append(Item(shape, batch_size, str(path), "trained", name))
        items.append(Item(shape, batch_size, str(path), "random", f"{name} (random init)"))
    references = [i + 1 if i % 2 == 0 else i - 1 for i in range(len(items))]
    return items, references


def trained_table(names: Sequence[str], results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per candidate from the interleaved results, pairs in ``trained_items`` order."""
    trained, twins = results[0::2], results[1::2]
    frame = pd.DataFrame(
        {
            "name": list(names),
            "shape": [r["shape"] for r in trained],
            "d_model": [r["d_model"] for r in trained],
            "n_layers": [r["n_layers"] for r in trained],
            "architecture": [r["architecture"] for r in trained],
            "checkpoint_median_s": [r["median_s"] for r in trained],
            "random_median_s": [r["median_s"] for r in twins],
            "paired_ratio": [r["relative_median"] for r in trained],
            "relative_cv": [r["relative_cv"] for r in trained],
            "trials": [len(r["trials_s"]) for r in trained],
            "flagged": [r["flagged"] or t["flagged"] for r, t in zip(trained, twins, strict=True)],
            "device": [r["device"] for r in trained],
            "threads": [r["threads"] for r in trained],
        }
    )
    frame["ratio"] = frame["checkpoint_median_s"] / frame["random_median_s"]
    frame["band"] = BAND * frame["relative_cv"]
    frame["agree"] = agreement(frame["paired_ratio"], frame["relative_cv"])
    return frame[TRAINED_COLUMNS]


def measure_trained(
    checkpoints: Mapping[str, tuple[Shape, str | Path]], protocol: Protocol
) -> pd.DataFrame:
    """Time every checkpoint (name -> shape, model directory) beside its random twin, all pairs
    interleaved in one job; the table of ``trained_table``. No time to first token."""
    items, references = trained_items(checkpoints, protocol.batch_size)
    results = measure_interleaved(items, protocol, ttft=False, references=references)
    return trained_table(list(checkpoints), results)
