"""The fit stage's Spearman table (results/fit/spearman.csv): one row per fit and size group."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from infscale.fit.predictions import spearman_table


def test_spearman_table_gives_each_groups_rank_correlation_and_none_where_undefined():
    frame = pd.DataFrame(
        {
            "size_group": ["s1", "s1", "s1", "s2", "s2", "s2", "candidates"],
            "loss": [4.0, 3.9, 3.8, 3.5, 3.4, 3.3, 3.0],
            # s1 ranked right; s2 reversed in its first two and right in the last
            "loss_pred": [4.1, 3.95, 3.7, 3.40, 3.45, 3.2, 3.1],
        }
    )
    table = spearman_table({("inference", "all"): frame, ("chinchilla", "base"): frame})
    assert list(table.columns) == ["law", "fit_set", "size_group", "spearman"]
    assert table["law"].tolist() == ["inference"] * 3 + ["chinchilla"] * 3
    rows = table[table["law"] == "inference"].set_index("size_group")["spearman"]
    assert rows["s1"] == pytest.approx(1.0)
    assert rows["s2"] == pytest.approx(0.5)  # ranks (3, 2, 1) vs (2, 3, 1): 1 - 6·2/24
    assert math.isnan(rows["candidates"])  # one point: no correlation
