"""Random-shape fit sets, the law comparison table and the loss -> accuracy fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run

from infscale.fit.compare import COLUMNS, compare_laws, fit_params, predict
from infscale.fit.downstream import fit_accuracy, predict_accuracy
from infscale.fit.fitsets import in_set, mark_fit_sets
from infscale.fit.laws import law_loss

TRUTH = {"A": 60.0, "B": 80.0, "E": 2.0, "alpha": 0.3, "beta": 0.3, "gamma": 0.3, "epsilon": 0.02}


def grid_points() -> pd.DataFrame:
    """3 size groups x 3 shapes x multipliers 4/8/16, loss from the tied inference law."""
    rows = []
    for g, (size, n0) in enumerate((("xs", 1e5), ("s", 3e5), ("m", 1e6))):
        for v, (d, layers) in enumerate(((24 + 8 * g, 8), (32 + 8 * g, 4), (40 + 8 * g, 2))):
            for mult in (4, 8, 16):
                N = n0 * (1 + 0.05 * v)
                rows.append(
                    {
                        "run": f"{size}-v{v}",
                        "size_group": size,
                        "d_model": d,
                        "n_layers": layers,
                        "N": N,
                        "D": mult * N,
                        "multiplier": mult,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["loss"] = law_loss(
        "inference",
        TRUTH,
        frame["N"].to_numpy(),
        frame["D"].to_numpy(),
        (frame["d_model"] / frame["n_layers"]).to_numpy(),
    )
    return frame


def test_random_shape_rule_picks_one_shape_per_size_group_reproducibly():
    points = grid_points()
    rule = [{"shapes_per_size": 1, "seed": 1, "multipliers": [4]}]
    member = in_set(points, rule)
    chosen = points[member]
    assert len(chosen) == 3 and chosen["size_group"].nunique() == 3
    assert (chosen["multiplier"] == 4).all()
    assert np.array_equal(member, in_set(points, rule))
    seeds = {tuple(in_set(points, [{"shapes_per_size": 1, "seed": s}])) for s in range(6)}
    assert len(seeds) > 1
    marked = mark_fit_sets(points, {"random1": [{"shapes_per_size": 2, "seed": 0}]})
    assert marked["fit_random1"].sum() == 3 * 2 * 3


def test_comparison_table_has_every_column_and_a_row_per_law_and_tie():
    table = compare_laws(grid_points(), ["chinchilla", "inference"], "lm")
    assert list(table.columns) == COLUMNS
    assert list(zip(table["law"], table["tie"], strict=True)) == [
        (law, tie) for law in ("chinchilla", "inference") for tie in ("all", "alpha-beta", "none")
    ]
    assert list(table["n_params"]) == [4, 4, 5, 5, 6, 7]
    # Chinchilla has no gamma: its all and alpha-beta rows are one fit
    assert table.iloc[0].drop("tie").equals(table.iloc[1].drop("tie"))
    inference = table.iloc[3]
    assert inference["fit_r2"] == pytest.approx(1.0) and inference["logo_rel_err"] < 1e-6
    assert inference["logo_folds"] == 2 and inference["n_fit"] == 27
    assert table.iloc[0]["aic"] > inference["aic"]
    assert table["test_mse"].isna().all()  # no fit set: no test rows


@pytest.mark.slow
def test_comparison_with_the_additive_variant_and_huber():
    table = compare_laws(grid_points(), ["inference-additive"], "huber", ties=["none"])
    assert table.iloc[0]["n_params"] == 7 and table.iloc[0]["fit_r2"] > 0.99


def test_additive_variant_recovers_itself():
    points = grid_points()
    N, D = points["N"].to_numpy(), points["D"].to_numpy()
    R = (points["d_model"] / points["n_layers"]).to_numpy()
    truth = {**TRUTH, "epsilon": 0.05, "gamma": 0.3}
    y = predict("inference-additive", truth, N, D, R)
    params = fit_params("inference-additive", "all", "huber", N, D, R, y)
    assert params == pytest.approx(truth, rel=1e-5)


def test_accuracy_fit_recovers_known_parameters():
    loss = np.linspace(2.5, 6.0, 12)
    truth = {"E": 0.8, "a": 3.0, "b": 0.7}
    acc = predict_accuracy(truth, loss)
    assert fit_accuracy(loss, acc) == pytest.approx(truth, rel=1e-5)


def test_cli_huber_bootstrap_fit_and_predict_band(capsys, tmp_path):
    path = tmp_path / "points.csv"
    grid_points().to_csv(path, index=False)
    fit_json, pred = tmp_path / "fit.json", tmp_path / "pred.csv"
    args = ["fit", "--data", path, "--law", "inference", "--method", "huber"]
    code, _, _ = run(capsys, *args, "--bootstrap", "20", "--out", fit_json)
    fit = json.loads(fit_json.read_text())
    assert code == 0 and set(fit["intervals"]) == set(TRUTH)
    assert len(fit["bootstrap"]["samples"]["A"]) == 20 - fit["bootstrap"]["failed"]
    code, _, _ = run(capsys, "predict", "--fit", fit_json, "--data", path, "--out", pred)
    table = pd.read_csv(pred)
    assert code == 0 and list(table.columns[-3:]) == ["loss_pred", "loss_pred_lo", "loss_pred_hi"]
    assert (table["loss_pred_lo"] <= table["loss_pred_hi"]).all()
    np.testing.assert_allclose(table["loss_pred"], table["loss"], rtol=1e-9)


def test_comparison_rows_for_the_conditional_law():
    """Points drawn from the conditional law: its rows fit them and extrapolate exactly, the
    paper's law does not; spearman is the within-size-group mean."""
    from test_conditional import TRUTH as CONDITIONAL_TRUTH
    from test_conditional import recovery_points, recovery_table

    N, D, v = recovery_points()
    points = recovery_table().assign(
        loss=law_loss("conditional", CONDITIONAL_TRUTH, N, D, variables=v),
        size_group=np.repeat(["s", "m", "l"], 30)[np.argsort(np.argsort(N))],
        n_layers=4,
    )
    table = pd.concat(
        [
            compare_laws(points, ["conditional"], "huber", ties=["all"]),
            compare_laws(points, ["conditional", "inference"], "lm", ties=["all"]),
        ]
    ).set_index(["law", "tie", "method"])
    assert list(table["n_params"]) == [8, 8, 5]
    exact = table.loc[("conditional", "all", "huber")]
    assert exact["fit_r2"] == pytest.approx(1.0) and exact["fit_spearman"] == pytest.approx(1.0)
    assert exact["logo_folds"] == 2 and exact["logo_rel_err"] < 1e-6
    assert table.loc[("conditional", "all", "lm"), "logo_rel_err"] < 1e-6
    assert table.loc[("inference", "all", "lm"), "logo_rel_err"] > 1e-3


def test_random_shape_rule_tells_apart_variants_that_share_width_and_depth():
    """Six variants of 512 x 8 (heads, KV heads, MLP width), as config/architecture.yaml has
    them, are six shapes: one drawn per group keeps one variant's points, not all six."""
    kv_heads = [8, 2, 4, 8, 8, 8]
    ffn = [1536, 1536, 1536, 1024, 2048, 1536]
    heads = [8, 8, 8, 8, 8, 16]
    labels = [
        f"d512-l8-h{h}" + (f"-kv{k}" if k != h else "") + (f"-f{f}" if f != 1536 else "")
        for h, k, f in zip(heads, kv_heads, ffn, strict=True)
    ]
    assert len(set(labels)) == 6
    points = pd.DataFrame(
        {
            "shape": np.repeat(labels, 2),
            "size_group": "s",
            "d_model": 512,
            "n_layers": 8,
            "multiplier": [10, 20] * 6,
        }
    )
    member = in_set(points, [{"shapes_per_size": 1, "seed": 0}])
    assert member.sum() == 2 and points.loc[member, "shape"].nunique() == 1
    drawn = {
        points.loc[in_set(points, [{"shapes_per_size": 1, "seed": s}]), "shape"].iloc[0]
        for s in range(20)
    }
    assert len(drawn) > 1
    # without labels, every dimension column present names the shape
    unlabelled = points.drop(columns="shape").assign(
        n_heads=np.repeat(heads, 2), n_kv_heads=np.repeat(kv_heads, 2), ffn_hidden=np.repeat(ffn, 2)
    )
    assert in_set(unlabelled, [{"shapes_per_size": 1, "seed": 0}]).sum() == 2
