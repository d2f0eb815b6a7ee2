"""The measure_top shortlist: which candidates are timed before the selection."""

import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.select.shortlist import shortlist, shortlist_size


def test_shortlist_keeps_the_best_within_widened_budgets():
    table = pd.DataFrame(
        {
            "name": list("abcd"),
            "N": [10, 10, 50, 10],
            "D": [1, 1, 1, 1],
            "latency_s": [1.0, 2.1, 1.0, 3.0],
        }
    )
    loss = [3.0, 1.0, 0.5, 2.0]
    out = shortlist(table, loss, 2, max_params=20, max_latency=2.0, margin=0.1)
    # c is over the parameter budget, d over the widened latency budget; b (2.1 <= 2.2) stays
    assert list(out.loc[out["measure"] == 1, "name"]) == ["a", "b"]
    with pytest.raises(InputError, match="positive"):
        shortlist(table, loss, 0)


def test_shortlist_size_is_measure_top_or_twice_k():
    assert shortlist_size({"measure_top": 3, "k": 2}) == 3
    assert shortlist_size({"measure_top": None, "k": 2}) == 4
