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
GADRE = Path(__file__).parent / "published" / "gadre_c4_original.csv"


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


def test_compare_on_gadre_runs_runs_every_law_it_can_and_says_why_not_the_other(capsys, tmp_path):
    """Gadre et al.'s C4 runs, the paper's columns only: Chinchilla fits and extrapolates from
    the smaller shapes to the next; the conditional law, without vocab_size, gets its rows with
    the reason and the command still exits 0; with --vocab-size (open_lm's) it runs too."""
    points = pd.read_csv(GADRE)
    assert len(points) == 31 and points["shape"].nunique() == 4
    assert {"vocab_size", "ffn_hidden"}.isdisjoint(points.columns)
    assert ((points["D"] / (20 * points["N"])).round(6) == points["multiplier"]).all()
    out = tmp_path / "table.csv"
    code, _, err = run(capsys, "compare", "--data", GADRE, "--method", "lm", "--out", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert len(table) == 9 and (table["n_fit"] == 31).all()
    conditional = table[table["law"] == "conditional"]
    assert conditional["error"].str.contains("vocab_size").all()
    assert conditional["error"].str.contains("--vocab-size").all()
    assert err.count("infscale: warning: conditional") == 3
    chinchilla = table[table["law"] == "chinchilla"]
    assert chinchilla["error"].isna().all() and (chinchilla["logo_folds"] == 3).all()
    assert (chinchilla["fit_mse"] < 0.02).all() and (chinchilla["logo_rel_err"] < 0.15).all()
    # R is confounded with N here (one shape per size): the shape law extrapolates worse
    inference = table[table["law"] == "inference"]
    assert (inference["logo_rel_err"] > chinchilla["logo_rel_err"].max()).all()
    assert choose_form(table, "lm")["law"] == "chinchilla"

    args = ["--laws", "conditional", "--method", "lm", "--vocab-size", "50432"]
    code, _, err = run(capsys, "compare", "--data", GADRE, *args, "--out", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert table["error"].isna().all() and table["fit_mse"].notna().all()
