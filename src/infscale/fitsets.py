"""Fit sets: which training points a law is fitted on (paper Figs 8–10 compare several).

A set is a list of rules; a point belongs to the set if it matches any rule, and it matches a
rule if it satisfies every key the rule gives (``sizes``: its size group is listed;
``multipliers``: its token multiplier is listed). An empty rule matches every point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def in_set(points: pd.DataFrame, rules: list[dict[str, Any]]) -> np.ndarray:
    member = np.zeros(len(points), dtype=bool)
    for rule in rules:
        match = np.ones(len(points), dtype=bool)
        if "sizes" in rule:
            match &= points["size_group"].isin(rule["sizes"]).to_numpy()
        if "multipliers" in rule:
            match &= points["multiplier"].isin(rule["multipliers"]).to_numpy()
        member |= match
    return member


def mark_fit_sets(points: pd.DataFrame, sets: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """``points`` plus a 0/1 column ``fit_<name>`` per set, as ``infscale fit --fit-set`` reads."""
    marked = points.copy()
    for name, rules in sets.items():
        marked[f"fit_{name}"] = in_set(points, rules).astype(int)
    return marked
