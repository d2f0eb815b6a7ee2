"""Fit sets: which training points a law is fitted on (paper Figs 8–10 compare several).

A set is a list of rules; a point belongs to the set if it matches any rule, and it matches a
rule if it satisfies every key the rule gives (``sizes``: its size group is listed;
``multipliers``: its token multiplier is listed). An empty rule matches every point.

``shapes_per_size: k`` (with ``seed``) narrows a rule further, to k shapes drawn at random in
each size group among the shapes whose points it matches: the paper's set (c), "one random
shape per size group", is ``{shapes_per_size: 1, seed: s}``, with one set per seed for its three
trials. The draw is reproducible: numpy's default_rng(seed), shapes in sorted order. A shape
is its label (the ``shape`` column the training runs write: every dimension, so variants that
share d_model and n_layers but differ in heads, KV heads or MLP width are different shapes);
a table without labels names its shapes by every dimension column it has (SHAPE_COLUMNS).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# What names a shape in a table of points without a ``shape`` label (Shape.dimensions' columns).
SHAPE_COLUMNS = ("d_model", "n_layers", "n_heads", "n_kv_heads", "ffn_hidden", "head_dim")


def in_set(points: pd.DataFrame, rules: list[dict[str, Any]]) -> np.ndarray:
    member = np.zeros(len(points), dtype=bool)
    for rule in rules:
        match = np.ones(len(points), dtype=bool)
        if "sizes" in rule:
            match &= points["size_group"].isin(rule["sizes"]).to_numpy()
        if "multipliers" in rule:
            match &= points["multiplier"].isin(rule["multipliers"]).to_numpy()
        if "shapes_per_size" in rule:
            match &= _random_shapes(points, match, rule["shapes_per_size"], rule["seed"])
        member |= match
    return member


def mark_fit_sets(points: pd.DataFrame, sets: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """``points`` plus a 0/1 column ``fit_<name>`` per set, as ``infscale fit --fit-set`` reads."""
    marked = points.copy()
    for name, rules in sets.items():
        marked[f"fit_{name}"] = in_set(points, rules).astype(int)
    return marked


def _random_shapes(points: pd.DataFrame, match: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Points of ``k`` shapes drawn per size group among the matching points' shapes.

    Groups and shapes are drawn from in sorted order, so the draw does not depend on the order
    of the points (that is, of the config's keys)."""
    rng = np.random.default_rng(seed)
    shape = shape_labels(points)
    keep = np.zeros(len(points), dtype=bool)
    for group in sorted(set(points.loc[match, "size_group"])):
        here = match & (points["size_group"] == group).to_numpy()
        shapes = sorted(set(shape[here]))
        drawn = rng.choice(len(shapes), size=min(k, len(shapes)), replace=False)
        keep |= here & shape.isin([shapes[i] for i in drawn]).to_numpy()
    return keep


def shape_labels(points: pd.DataFrame) -> pd.Series:
    """Each point's shape: its ``shape`` label, else the values of its SHAPE_COLUMNS joined
    by x (512x8x8x...)."""
    if "shape" in points.columns:
        return points["shape"].astype(str)
    columns = [c for c in SHAPE_COLUMNS if c in points.columns]
    return points[columns].astype(str).agg("x".join, axis=1)
