"""The latency model (fit, leave-one-out error, prediction) and the sweep shapes and fits."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from infscale.checks import validate_config
from infscale.errors import InputError
from infscale.latency.model import FORM, fit_latency_model, predict_latency
from infscale.latency.sweeps import (
    FIG3_SWEEPS,
    linear_fit,
    sweep_fits,
    sweep_shapes,
    throughput_shape,
    width_for_params,
)
from infscale.shapes import Shape, param_count


def synthetic_shapes():
    """Multi-head shapes over width and depth, plus GQA and narrow-MLP twins of some."""
    shapes = [
        Shape(d, layers, 4, 512, multiple_of=16)
        for d in (32, 48, 64, 96, 128)
        for layers in (1, 2, 4, 8)
        if not (d == 128 and layers == 8)
    ]
    twins = [Shape(64, 2, 4, 512, 16, n_kv_heads=1), Shape(96, 4, 4, 512, 16, ffn_hidden=96)]
    return shapes + twins


def true_latency(shapes):
    d, L, N = (
        np.array([getattr(s, a) for s in shapes]) for a in ("d_model", "n_layers", "n_params")
    )
    W = N - 2 * 512 * d - (2 * L + 1) * d  # the layers' matrix weights
    return 0.3 + 0.15 * L + 1e-4 * L * d + 2e-7 * W + 1e-6 * d * 512


def synthetic(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    shapes = synthetic_shapes()
    true = true_latency(shapes)
    y = true * (1 + noise * rng.standard_normal(len(true)))
    table = pd.DataFrame([s.dimensions | {"N": s.n_params} for s in shapes]).assign(median_s=y)
    return table, true


def test_recovers_an_exact_model():
    table, true = synthetic()
    model = fit_latency_model(table)
    assert model["form"] == FORM
    assert model["loo_median_rel_err"] < 1e-3
    assert model["coefficients"]["b"] == pytest.approx(0.15, rel=1e-3)
    assert model["coefficients"]["e"] == pytest.approx(2e-7, rel=1e-3)
    predicted = predict_latency(model, synthetic_shapes())
    np.testing.assert_allclose(predicted, true, rtol=1e-3)
    assert len(model["loo"]) == len(table)  # the twins are shapes of their own, not merged
    assert all(v >= 0 for v in model["coefficients"].values())


def test_kv_heads_and_mlp_width_change_the_prediction():
    model = fit_latency_model(synthetic()[0])
    mha = Shape(128, 4, 8, 512, 16)
    gqa, narrow = replace(mha, n_kv_heads=2), replace(mha, ffn_hidden=128)
    t_mha, t_gqa, t_narrow = predict_latency(model, [mha, gqa, narrow])
    # K = H/4 drops 2·d·(d - d/4) weights per layer; F 352 -> 128 drops 3·d·224
    assert t_mha - t_gqa == pytest.approx(2e-7 * 4 * 2 * 128 * 96, rel=1e-3)
    assert t_mha - t_narrow == pytest.approx(2e-7 * 4 * 3 * 128 * (mha.ffn_hidden - 128), rel=1e-3)


def test_loo_error_reflects_noise():
    table, _ = synthetic(noise=0.05)
    model = fit_latency_model(table)
    assert 0.005 < model["loo_median_rel_err"] < 0.1


def test_duplicate_shapes_are_merged_and_too_few_rejected():
    table, _ = synthetic()
    model = fit_latency_model(pd.concat([table, table]))
    assert model["n_shapes"] == len(table)
    with pytest.raises(InputError, match="distinct shapes"):
        fit_latency_model(table.head(4))
    with pytest.raises(InputError, match="missing column"):
        fit_latency_model(table.drop(columns="median_s"))
    with pytest.raises(InputError, match="not a latency model"):
        predict_latency({"form": "T = x"}, [Shape(32, 1, 4, 512)])


def test_sweep_shapes_of_the_default_config(default_config):
    layers = sweep_shapes(default_config, "layers")
    assert len({s.d_model for s in layers}) == 1 and len({s.n_layers for s in layers}) > 2
    width = sweep_shapes(default_config, "width")
    assert len({s.n_layers for s in width}) == 1 and len({s.d_model for s in width}) > 2
    ratio = sweep_shapes(default_config, "ratio")
    n = [s.n_params for s in ratio]
    assert max(n) / min(n) < 1.25  # about fixed N
    assert len({s.aspect_ratio for s in ratio}) == len(ratio)
    assert throughput_shape(default_config).d_model > 0
    with pytest.raises(InputError, match="unknown sweep"):
        sweep_shapes(default_config, "depth")


def test_sweeps_default_when_config_has_none():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    del config["latency"]["sweeps"]
    validate_config(config, REPO / "config" / "schema.yaml")  # fills the schema's sweeps
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    default = schema["properties"]["latency"]["properties"]["sweeps"]["default"]
    assert set(default) == set(FIG3_SWEEPS)
    assert {sweep: config["latency"]["sweeps"][sweep] for sweep in default} == default
    shapes = {sweep: sweep_shapes(config, sweep) for sweep in FIG3_SWEEPS}
    assert [(s.d_model, s.n_layers, s.n_heads) for s in shapes["layers"]] == [
        (32, layers, 4) for layers in (1, 2, 4, 6, 8)
    ]
    assert [(s.d_model, s.n_layers) for s in shapes["width"]] == [(d, 2) for d in (32, 64, 96, 128)]
    ratio = shapes["ratio"]
    assert [s.n_layers for s in ratio] == [1, 2, 4, 8]
    assert all(abs(s.n_params - 150_000) < 0.1 * 150_000 for s in ratio)


def test_width_for_params_is_closest_multiple():
    d = width_for_params(150000, 4, 4, 512, 16)
    assert d % 8 == 0
    best = min(range(8, 400, 8), key=lambda w: abs(param_count(w, 4, 512, 16) - 150000))
    assert d == best


def test_sweep_fits_report_r2_and_ranking():
    rows = [("layers", f"d32-l{L}", 32, L, 32 / L, 0.5 + 0.2 * L) for L in (1, 2, 4, 8)]
    rows += [("width", f"d{d}-l2", d, 2, d / 2, 1.0 + d / 1000) for d in (32, 64)]
    rows += [("ratio", f"d{d}-l{L}", d, L, d / L, 0.4 + 0.2 * L) for d, L in ((80, 1), (48, 4))]
    table = pd.DataFrame(rows, columns=["sweep", "shape", "d_model", "n_layers", "R", "median_s"])
    table = table.assign(N=1000, flagged=False)
    fits = sweep_fits(table)
    assert fits["layers"]["r2"] == pytest.approx(1.0)
    assert fits["layers"]["slope"] == pytest.approx(0.2)
    assert fits["ratio"]["widest_shallowest_fastest"] is True
    assert fits["ratio"]["fastest"] == "d80-l1"
    assert fits["flagged"] == []
    assert linear_fit([1, 2, 3], [1, 1, 1])["r2"] == 1.0
