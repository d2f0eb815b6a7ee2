"""``infscale compare`` on published runs (tests/fit/published/SOURCE.md): the Marin isoflop
sweep, six shapes × up to seven compute budgets. Real losses, real noise: Chinchilla must
extrapolate from the smaller shapes to the next within a few percent, and with R confined to
85-98 the evidence must not pick a shape law."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import run

from infscale.fit.choice import choose_form

POINTS = Path(__file__).parent / "published" / "marin_isoflop_dclm.csv"


def test_compare_on_published_runs_picks_chinchilla_where_shape_barely_varies(capsys, tmp_path):
    points = pd.read_csv(POINTS)
    assert len(points) == 38 and points["shape"].nunique() == 6
    assert (points["d_model"] / points["n_layers"]).between(85, 99).all()
    out = tmp_path / "table.csv"
    args = ["--laws", "chinchilla,inference", "--method", "lm", "--group-by", "shape"]
    code, _, err = run(capsys, "compare", "--data", POINTS, *args, "--out", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert len(table) == 6 and (table["n_fit"] == 38).all()
    chinchilla = table[table["law"] == "chinchilla"]
    # fit on d512 .. d(k), predict d(k+1): the five extrapolations, 1.9B the last
    assert chinchilla["logo_rel_err"].min() < 0.035
    assert (chinchilla["fit_mse"] < 0.003).all()
    best = chinchilla.loc[chinchilla["logo_rel_err"].idxmin()]
    params = json.loads(best["params"])
    assert 2.0 < params["E"] < 3.5 and 0.3 < params["beta"] < 0.9
    # the shape forms gain nothing on these runs, and a fit that failed says so on one line
    assert choose_form(table, "lm")["law"] == "chinchilla"
    failed = table[table["fit_mse"].isna()]
    assert len(failed) == sum(
        line.startswith("infscale: warning: inference") for line in err.splitlines()
    )
