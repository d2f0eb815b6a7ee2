import csv

import pytest
from conftest import SHARED

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
    path = SHARED / "paper" / table
    if not path.exists():
        pytest.skip("shared/paper is not beside the checkout")
    for row in csv.DictReader(path.open()):
        n = param_count(
            int(row["d_model"]), int(row["n_layers"]), int(row.get("vocab_size", 50432))
        )
        assert n == int(row["N"]), row
        if "ffn_hidden" in row:
            assert ffn_hidden(int(row["d_model"])) == int(row["ffn_hidden"])


@pytest.mark.parametrize(("d", "layers", "heads", "multiple"), [(64, 3, 4, 16), (96, 2, 4, 32)])
def test_formula_equals_module_parameter_count(d, layers, heads, multiple):
    shape = Shape(d, layers, heads, 512, multiple)
    model = build_model(shape, max_position=64, seed=0)
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
