import csv
import random

import pytest
from conftest import PAPER

from infscale.cli import main
from infscale.errors import InputError
from infscale.shapes import Shape, ffn_hidden, param_count
from infscale.train.model import build_model, count_parameters


def test_paper_check_value():
    assert param_count(512, 8, 50432) == 78_914_048


def test_ffn_rule_matches_open_lm():
    # floor(8·512/3) = 1365 → next multiple of 256 is 1536; d=384 → 1024 exactly
    assert ffn_hidden(512) == 1536
    assert ffn_hidden(384) == 1024
    assert ffn_hidden(48, multiple_of=16) == 128


@pytest.mark.parametrize("table", ["grid_experiments.csv", "candidates_1b.csv"])
def test_every_paper_shape(table):
    rows = list(csv.DictReader((PAPER / table).open()))
    assert len(rows) == {"grid_experiments.csv": 31, "candidates_1b.csv": 12}[table]
    for row in rows:
        n = param_count(
            int(row["d_model"]), int(row["n_layers"]), int(row.get("vocab_size", 50432))
        )
        assert n == int(row["N"]), row
        if "ffn_hidden" in row:
            assert ffn_hidden(int(row["d_model"])) == int(row["ffn_hidden"])


@pytest.mark.parametrize(("d", "layers", "heads", "multiple"), [(64, 3, 4, 16), (96, 2, 4, 32)])
def test_formula_equals_module_parameter_count(d, layers, heads, multiple):
    shape = Shape(d, layers, heads, 512, multiple)
    model = build_model(shape, max_position=64, seed=0, rope_theta=1e4, norm="rmsnorm")
    assert count_parameters(model) == shape.n_params


def test_shape_properties():
    shape = Shape(96, 4, 6, 512, 16)
    assert shape.aspect_ratio == 24.0
    assert shape.head_dim == 16
    assert shape.label == "d96-l4-h6"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 2, 2, 100), "d_model must be a positive integer"),
        ((64, 2, 5, 100), "not divisible by n_heads"),
        ((64, -1, 4, 100), "n_layers must be a positive integer"),
    ],
)
def test_bad_shapes_rejected(args, message):
    with pytest.raises(InputError, match=message):
        Shape(*args)


def _random_shape(rng: random.Random) -> dict:
    """A shape with every optional dimension drawn (or left to its default)."""
    heads = rng.choice([1, 2, 3, 4, 6, 8])
    kv = rng.choice([k for k in range(1, heads + 1) if heads % k == 0])
    head_dim = rng.choice([None, 2 * rng.randint(1, 12)])
    d_model = heads * 2 * rng.randint(1, 12)
    return {
        "d_model": d_model,
        "n_layers": rng.randint(1, 3),
        "n_heads": heads,
        "vocab_size": rng.randint(8, 300),
        "multiple_of": rng.choice([1, 16, 256]),
        "n_kv_heads": rng.choice([None, kv]),
        "ffn_hidden": rng.choice([None, rng.randint(1, 300)]),
        "head_dim": head_dim,
    }


def test_params_command_equals_the_built_models_parameters_for_random_shapes(capsys):
    """`infscale params` with --n-kv-heads / --ffn-hidden / --head-dim is sum(p.numel()) of the
    LlamaForCausalLM built from the same shape; StableLm's LayerNorm adds its biases."""
    rng = random.Random(13)
    flags = {"n_kv_heads": "--n-kv-heads", "ffn_hidden": "--ffn-hidden", "head_dim": "--head-dim"}
    flags |= {"multiple_of": "--multiple-of"}
    seen_gqa = seen_ffn = 0
    for i in range(50):
        spec = _random_shape(rng)
        shape = Shape(**spec)
        argv = ["params", "--d-model", str(spec["d_model"]), "--n-layers", str(spec["n_layers"])]
        argv += ["--n-heads", str(spec["n_heads"]), "--vocab-size", str(spec["vocab_size"])]
        argv += [
            item for k, f in flags.items() if spec[k] is not None for item in (f, str(spec[k]))
        ]
        assert main(argv) == 0, argv
        printed = int(capsys.readouterr().out)
        assert main([*argv, "--non-embedding"]) == 0
        non_embedding = int(capsys.readouterr().out)
        model = build_model(shape, max_position=8, seed=0, rope_theta=1e4, norm="rmsnorm")
        assert printed == count_parameters(model), spec
        assert printed - non_embedding == 2 * shape.vocab_size * shape.d_model
        assert model.config.num_key_value_heads == shape.n_kv_heads
        assert model.config.intermediate_size == shape.ffn_hidden
        if i % 5 == 0 and shape.n_heads * shape.head_dim == shape.d_model:  # StableLm: HD = d/H
            stable = build_model(shape, max_position=8, seed=0, rope_theta=1e4, norm="layernorm")
            biases = (2 * shape.n_layers + 1) * shape.d_model
            assert count_parameters(stable) == printed + biases, spec
        seen_gqa += shape.n_kv_heads < shape.n_heads
        seen_ffn += shape.ffn_hidden != ffn_hidden(shape.d_model, shape.multiple_of)
    assert seen_gqa >= 10 and seen_ffn >= 10  # the draw exercised both dimensions


def test_defaults_spelled_out_are_the_same_shape():
    plain = Shape(512, 8, 8, 50432)
    spelled = Shape(512, 8, 8, 50432, 256, n_kv_heads=8, ffn_hidden=1536, head_dim=64)
    assert plain == spelled and plain.label == spelled.label == "d512-l8-h8"
    assert plain.n_params == 78_914_048  # the paper's check value, every default filled
    gqa = Shape(512, 8, 8, 50432, n_kv_heads=2, ffn_hidden=2048)
    assert gqa.label == "d512-l8-h8-kv2-f2048"
    # per layer: q and o 2·512², k and v 2·512·2·64, SwiGLU 3·512·2048, norms 2·512
    layer = 2 * 512 * 512 + 2 * 512 * 128 + 3 * 512 * 2048 + 2 * 512
    assert gqa.n_params == 2 * 50432 * 512 + 8 * layer + 512
    assert Shape(64, 2, 4, 100, head_dim=32).label == "d64-l2-h4-hd32"


def test_with_params_widens_the_mlp_to_equal_n():
    mha = Shape(256, 4, 8, 512, 16)
    for kv in (4, 2, 1):
        twin = Shape(256, 4, 8, 512, 16, kv).with_params(mha.n_params)
        assert twin.n_kv_heads == kv and twin.ffn_hidden % 16 == 0
        assert twin.ffn_hidden > mha.ffn_hidden
        # the nearest multiple of 16: within half a step (3·d·L·16 / 2) of the MHA shape's N
        assert abs(twin.n_params - mha.n_params) <= 3 * 256 * 4 * 16 / 2
        for other in (twin.ffn_hidden - 16, twin.ffn_hidden + 16):
            worse = Shape(256, 4, 8, 512, 16, kv, other)
            assert abs(worse.n_params - mha.n_params) >= abs(twin.n_params - mha.n_params)
    assert mha.with_params(mha.n_params) == mha


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_kv_heads": 3}, "n_heads 8 is not a multiple of n_kv_heads 3"),
        ({"n_kv_heads": 0}, "n_kv_heads must be a positive integer"),
        ({"ffn_hidden": 0}, "ffn_hidden must be a positive integer"),
        ({"head_dim": 9}, "head_dim 9 .* is odd"),
        ({"d_model": 72}, "head_dim 9 .* is odd"),
    ],
)
def test_bad_combinations_rejected(kwargs, message):
    with pytest.raises(InputError, match=message):
        Shape(**{"d_model": 64, "n_layers": 2, "n_heads": 8, "vocab_size": 100, **kwargs})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-kv-heads", "3"], "n_heads 8 is not a multiple of n_kv_heads 3"),
        (["--ffn-hidden", "0"], "--ffn-hidden: must be a positive integer"),
        (["--head-dim", "7"], "head_dim 7"),
    ],
)
def test_params_command_rejects_bad_combinations_with_one_line(capsys, extra, message):
    argv = ["params", "--d-model", "64", "--n-layers", "2", "--n-heads", "8", "--vocab-size", "9"]
    assert main([*argv, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and message in captured.err
