"""``infscale compare`` end to end through the real CLI: the contract's columns and meanings,
the run-level bootstrap (the same draws and refits as ``infscale fit``), and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run

from infscale.fit.compare import CONTRACT_COLUMNS, predict
from infscale.fit.laws import law_loss

# The paper's law with gamma free (gamma != alpha), so that tie alpha-beta is the true form.
TRUTH = {"A": 50.0, "B": 70.0, "E": 1.8, "alpha": 0.3, "beta": 0.3, "gamma": 0.6, "epsilon": 0.01}
SHAPES = ((16, 8), (32, 4), (64, 2), (128, 1))  # (d_model scale, n_layers): R from 2 to 128


def points(noise: float = 0.002) -> pd.DataFrame:
    """3 size groups x 4 shapes x multipliers 4 and 16, one run per shape; fit_small marks the
    two smaller groups, so the largest is the test set."""
    rng = np.random.default_rng(7)
    rows = []
    for g, (size, n0) in enumerate((("s", 1e5), ("m", 4e5), ("l", 1.6e6))):
        for v, (scale, layers) in enumerate(SHAPES):
            d = scale * (g + 1)
            N = n0 * (1 + 0.03 * v)
            for mult in (4, 16):
                rows.append(
                    {
                        "run": f"{size}-v{v}",
                        "size_group": size,
                        "d_model": d,
                        "n_layers": layers,
                        "N": N,
                        "D": mult * N,
                        "fit_small": int(size != "l"),
                    }
                )
    frame = pd.DataFrame(rows)
    R = (frame["d_model"] / frame["n_layers"]).to_numpy()
    clean = law_loss("inference", TRUTH, frame["N"].to_numpy(), frame["D"].to_numpy(), R)
    return frame.assign(loss=clean * (1 + noise * rng.standard_normal(len(frame))))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One huber comparison with a fit set and a bootstrap, and the matching ``infscale fit``."""
    from infscale.cli import main

    tmp = tmp_path_factory.mktemp("compare")
    data, table, fit = tmp / "points.csv", tmp / "table.csv", tmp / "fit.json"
    points().to_csv(data, index=False)
    common = ["--data", data, "--method", "huber", "--fit-set", "fit_small"]
    boot = ["--bootstrap", "20", "--seed", "3"]
    args = ["compare", *common, "--laws", "chinchilla,inference", *boot, "--out", table]
    assert main([str(a) for a in args]) == 0
    args = ["fit", *common, "--law", "inference", "--tie", "alpha-beta", *boot, "--out", fit]
    assert main([str(a) for a in args]) == 0
    return pd.read_csv(data), pd.read_csv(table), json.loads(fit.read_text())


@pytest.mark.slow
def test_the_contract_columns_and_their_meanings(compared):
    data, table, _ = compared
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert list(zip(table["law"], table["tie"], strict=True)) == [
        (law, tie) for law in ("chinchilla", "inference") for tie in ("all", "alpha-beta", "none")
    ]
    assert list(table["n_params"]) == [4, 4, 5, 5, 6, 7]
    assert (table["method"] == "huber").all() and table["error"].isna().all()
    fit, test = data[data["fit_small"] == 1], data[data["fit_small"] == 0]
    assert (table["n_fit"] == len(fit)).all()
    R_fit = (fit["d_model"] / fit["n_layers"]).to_numpy()
    R_test = (test["d_model"] / test["n_layers"]).to_numpy()
    for row in table.itertuples():
        params = json.loads(row.params)
        on_fit = predict(row.law, params, fit["N"], fit["D"], R_fit)
        on_test = predict(row.law, params, test["N"], test["D"], R_test)
        rss = float(np.sum((fit["loss"] - on_fit) ** 2))
        assert row.fit_mse == pytest.approx(rss / len(fit), rel=1e-6)
        assert row.aic == pytest.approx(len(fit) * np.log(rss / len(fit)) + 2 * row.n_params)
        assert row.test_mse == pytest.approx(np.mean((test["loss"] - on_test) ** 2), rel=1e-6)
        assert row.test_max_abs_err == pytest.approx(np.max(np.abs(test["loss"] - on_test)))
    best = table["aic"].min()
    assert table["delta_aic"].tolist() == pytest.approx((table["aic"] - best).tolist())
    assert table["delta_aic"].min() == 0.0 and table["delta_aic"].max() > 0
    rows = table.set_index(["law", "tie"])
    paper, chinchilla = rows.loc[("inference", "alpha-beta")], rows.loc[("chinchilla", "all")]
    # the true form extrapolates (to the test group and group by group) and ranks the test
    # group's shapes; Chinchilla, blind to shape, does neither
    assert paper["test_mse"] < chinchilla["test_mse"] / 10
    assert paper["logo_rel_err"] < chinchilla["logo_rel_err"] / 3
    assert paper["logo_folds"] == 2  # every group after the first, all rows (fit set or not)
    assert paper["test_spearman"] > 0.9
    assert paper["aic"] < chinchilla["aic"]


@pytest.mark.slow
def test_the_bootstrap_is_infscale_fits_own(compared):
    """Same runs drawn with the same seed, same warm-started refits: the same intervals."""
    _, table, fit = compared
    row = table.set_index(["law", "tie"]).loc[("inference", "alpha-beta")]
    assert json.loads(row["params"]) == pytest.approx(fit["params"], rel=1e-9)
    ci = json.loads(row["params_ci95"])
    assert ci.keys() == fit["intervals"].keys()
    for p, (lo, hi) in fit["intervals"].items():
        assert ci[p] == pytest.approx([lo, hi], rel=1e-9)
    assert row["bootstrap_k"] == 20 and row["bootstrap_failed"] == fit["bootstrap"]["failed"]
    assert ci["gamma"][0] < TRUTH["gamma"] < ci["gamma"][1]


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (lambda f: f.drop(columns="loss"), [], "missing column(s) loss"),
        (lambda f: f.drop(columns="n_layers"), ["--laws", "inference"], "n_layers"),
        (lambda f: f, ["--laws", "chinchilla,kaplan"], "unknown law kaplan (--laws)"),
        (lambda f: f, ["--laws", "chinchilla", "--fit-set", "fit_big"], "no column fit_big"),
        (lambda f: f, ["--laws", "chinchilla", "--group-by", "family"], "no column family"),
        (
            lambda f: f.head(4),
            ["--laws", "inference"],
            "no law ran; inference tie all: 4 fit row(s) for the 5 free parameters",
        ),
        (lambda f: f.drop(columns="d_model"), ["--laws", "conditional"], "d_model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, change, args, message):
    data = tmp_path / "points.csv"
    change(points()).to_csv(data, index=False)
    code, _, err = run(capsys, "compare", "--data", data, *args, "--out", tmp_path / "t.csv")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "t.csv").exists()


def test_a_law_with_more_parameters_than_the_smallest_group_has_points_skips_its_folds():
    """The micro workflow's case: the first size group holds 4 points (4 shapes, so x takes 4
    values and the width factor stays), fewer than the conditional law's 6 free parameters here
    (its MLP factor dropped: r does not vary), so its one fold is skipped and the row has no
    extrapolation score; the comparison completes, and tied Chinchilla (4 parameters) still
    extrapolates."""
    from infscale.fit.compare import compare_laws

    table = points()
    small = table[(table["size_group"] != "l") & (table["D"] == 4 * table["N"])]
    small = small.assign(vocab_size=64, ffn_hidden=4 * small["d_model"])
    out = compare_laws(small, ["chinchilla", "conditional"], "huber", ties=("all",))
    conditional = out[out["law"] == "conditional"].iloc[0]
    assert conditional["logo_folds"] == 0 and conditional["logo_skipped"] == 1
    assert pd.isna(conditional["logo_rel_err"])
    assert json.loads(conditional["warnings"])[-2:] == [
        "fold 1 (predict m) skipped: 4 row(s) for 6 free parameters",
        "logo_rel_err, logo_max_rel_err empty: all 1 fold(s) skipped",
    ]
    assert_every_empty_metric_has_a_reason(out)
    chinchilla = out[out["law"] == "chinchilla"].iloc[0]
    assert chinchilla["logo_folds"] == 1 and chinchilla["logo_rel_err"] > 0


def test_the_papers_columns_alone_run_every_law_and_a_law_that_cannot_says_why(capsys, tmp_path):
    """N, D, loss, d_model, n_layers, n_heads, size_group only: the conditional law lacks
    vocab_size and, without --vocab-size, gets its rows with the reason; the others run. With
    --vocab-size and --multiple-of it runs, exactly as on the columns params would default."""
    from infscale.fit.compare import compare_laws
    from infscale.shapes import ffn_hidden

    paper = points().assign(n_heads=lambda f: f["d_model"] // 8)
    paper = paper[["N", "D", "loss", "d_model", "n_layers", "n_heads", "size_group"]]
    data, out = tmp_path / "points.csv", tmp_path / "t.csv"
    paper.to_csv(data, index=False)
    code, _, err = run(capsys, "compare", "--data", data, "--out", out)
    assert code == 0, err
    table = pd.read_csv(out)
    assert list(zip(table["law"], table["tie"], strict=True)) == [
        (law, tie)
        for law in ("chinchilla", "inference", "conditional")
        for tie in ("all", "alpha-beta", "none")
    ]
    failed = table[table["law"] == "conditional"]
    assert failed["error"].str.contains("vocab_size").all()
    assert failed["error"].str.contains("--vocab-size").all()
    assert failed["fit_mse"].isna().all()
    assert table[table["law"] == "chinchilla"]["fit_mse"].notna().all()
    assert err.count("infscale: warning: conditional") == 3
    assert_every_empty_metric_has_a_reason(table)

    defaulted = compare_laws(
        paper, ["conditional"], "huber", ties=["all"], vocab_size=64, multiple_of=16
    )
    given = paper.assign(
        vocab_size=64, ffn_hidden=[ffn_hidden(int(d), 16) for d in paper["d_model"]]
    )
    explicit = compare_laws(given, ["conditional"], "huber", ties=["all"])
    assert defaulted["error"].isna().all()
    assert json.loads(defaulted["params"][0]) == json.loads(explicit["params"][0])


def test_fit_takes_the_same_stand_ins_for_missing_vocab_size_and_ffn_hidden(capsys, tmp_path):
    """``infscale fit --law conditional`` on the paper's columns: without --vocab-size one line
    naming the column and the flag, exit 2; with --vocab-size and --multiple-of the fit equals
    the one on the columns ``params`` would default."""
    from infscale.shapes import ffn_hidden

    paper = points().assign(n_heads=lambda f: f["d_model"] // 8)
    paper = paper[["N", "D", "loss", "d_model", "n_layers", "n_heads", "size_group"]]
    given = paper.assign(
        vocab_size=64, ffn_hidden=[ffn_hidden(int(d), 16) for d in paper["d_model"]]
    )
    bare, full = tmp_path / "bare.csv", tmp_path / "full.csv"
    paper.to_csv(bare, index=False)
    given.to_csv(full, index=False)
    common = ["fit", "--law", "conditional", "--method", "huber"]
    code, _, err = run(capsys, *common, "--data", bare, "--out", tmp_path / "x.json")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "vocab_size" in err and "--vocab-size" in err
    assert not (tmp_path / "x.json").exists()
    flags = ["--vocab-size", "64", "--multiple-of", "16"]
    code, _, err = run(capsys, *common, "--data", bare, *flags, "--out", tmp_path / "d.json")
    assert code == 0, err
    code, _, err = run(capsys, *common, "--data", full, "--out", tmp_path / "e.json")
    assert code == 0, err
    defaulted, explicit = (json.loads((tmp_path / f).read_text()) for f in ("d.json", "e.json"))
    assert defaulted["params"] == explicit["params"]
    assert defaulted["dropped"] == explicit["dropped"] == ["mlp_ratio"]


METRICS = [
    "fit_mse",
    "test_mse",
    "test_max_abs_err",
    "test_spearman",
    "logo_rel_err",
    "aic",
    "params",
    "fit_r2",
    "fit_spearman",
    "logo_max_rel_err",
    "logo_folds",
    "logo_skipped",
]


def assert_every_empty_metric_has_a_reason(table: pd.DataFrame) -> None:
    """An empty metric is explained by its row's error, or named in its warnings."""
    for row in table.to_dict("records"):
        if pd.notna(row["error"]):
            continue
        notes = json.loads(row["warnings"]) if pd.notna(row["warnings"]) else []
        for column in METRICS:
            if pd.isna(row[column]):
                logo = column.startswith("logo_") and any("logo_* empty" in w for w in notes)
                assert logo or any(column in w for w in notes), (row["law"], row["tie"], column)


def test_numerical_warnings_go_to_the_row_not_the_terminal(capfd, tmp_path):
    """The inference law by huber on the Marin runs overflows an exp on the way (gamma free);
    the warning is the row's, and the terminal shows only the table."""
    from infscale.cli import main

    marin = Path(__file__).parent / "published" / "marin_isoflop_dclm.csv"
    args = ["compare", "--data", marin, "--laws", "inference", "--method", "huber"]
    # twice in one process: the second comparison's fits come from the memo of the first
    # (fit.nested), and its rows must still name what the fitting raised
    for out in (tmp_path / "first.csv", tmp_path / "second.csv"):
        assert main([str(a) for a in [*args, "--out", out]]) == 0
        _, err = capfd.readouterr()
        assert "Warning" not in err
        table = pd.read_csv(out)
        notes = json.loads(table.set_index("tie").loc["alpha-beta", "warnings"])
        assert "RuntimeWarning: overflow encountered in exp" in notes
        assert "logo_* empty: no size-group column (--group-by) to extrapolate across" in notes
        assert_every_empty_metric_has_a_reason(table)


def test_e_at_its_lower_bound_is_named_in_the_row():
    """Points of Chinchilla's law with E = 0 (no irreducible loss): the huber fit drives
    log E off to -inf, and the row says so."""
    from infscale.fit.compare import compare_laws

    frame = points(noise=0.0)
    truth = {"A": 50.0, "B": 70.0, "E": 0.0, "alpha": 0.3, "beta": 0.3}
    loss = law_loss("chinchilla", truth, frame["N"].to_numpy(), frame["D"].to_numpy())
    row = compare_laws(frame.assign(loss=loss), ["chinchilla"], "huber", ties=["all"]).iloc[0]
    assert json.loads(row["params"])["E"] < 1e-6
    notes = json.loads(row["warnings"])
    assert any(w.startswith("E = ") and "is at its lower bound 0" in w for w in notes), notes


def test_laws_fitted_side_by_side_give_the_same_table(tmp_path):
    """``--jobs 2`` fits in worker processes and hands the fits to the rows through the memo;
    each run is a fresh process (no memo carried over), and the tables are equal byte for byte:
    every fit, fold, warning and error row (the conditional law lacks n_heads here)."""
    data = tmp_path / "points.csv"
    points().to_csv(data, index=False)
    tables = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.csv"
        args = ["compare", "--data", data, "--method", "huber", "--jobs", jobs, "--out", out]
        subprocess.run([sys.executable, "-m", "infscale.cli", *map(str, args)], check=True)
        tables.append(out.read_text())
    assert tables[0] == tables[1]
    table = pd.read_csv(tmp_path / "jobs2.csv")
    assert table["logo_folds"].dropna().eq(2).all() and table["error"].notna().any()
