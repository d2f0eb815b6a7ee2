"""The candidate table marks every shape variable a law reads that lies beyond the grid's range."""

import math

import pytest

from infscale.grid import Run
from infscale.select.candidates import candidate_table, shape_variables, variables_read
from infscale.shapes import Shape


def _run(variant: str, shape: Shape) -> Run:
    return Run(variant, "c", variant, shape, (1,), (shape.n_params,))


GRID = [
    _run("g1", Shape(32, 8, 4, 512, 16)),  # R 4
    _run("g2", Shape(48, 2, 4, 512, 16)),  # R 24
]


def _outside(*shapes: Shape) -> list[str]:
    runs = [_run(f"c{i}", shape) for i, shape in enumerate(shapes)]
    latency = {shape.label: (0.1, "measured") for shape in shapes}
    return candidate_table(runs, GRID, latency)["outside_grid"].tolist()


def test_shape_variables_are_the_laws_variables():
    shape = Shape(96, 2, 4, 512, 16, n_kv_heads=1, ffn_hidden=304)
    got = shape_variables(shape)
    assert got["R"] == 48
    assert got["x"] == pytest.approx(96 / math.sqrt(shape.n_params - 2 * 512 * 96))
    # MLP 3·96·304 against q, o 96·96 each and k, v 96·24 each: the KV heads raise r
    assert got["r"] == pytest.approx(3 * 96 * 304 / (2 * 96 * 96 + 2 * 96 * 24))
    assert got["r"] > shape_variables(Shape(96, 2, 4, 512, 16, ffn_hidden=304))["r"]


def test_candidates_beyond_the_grid_are_marked_in_each_variable():
    inside = Shape(40, 4, 4, 512, 16)  # R 10, the default MLP
    wide = Shape(96, 1, 4, 512, 16)  # R 96 > 24, and wider for its size than any grid shape
    gqa = Shape(40, 4, 4, 512, 16, n_kv_heads=1)  # r 2.1 · 8/5: beyond the grid's r
    narrow = Shape(40, 4, 4, 512, 16, ffn_hidden=48)
    assert _outside(inside, wide, gqa, narrow) == ["", "R x", "r", "r"]


@pytest.mark.parametrize(
    ("fit", "read"),
    [
        ({"law": "chinchilla"}, ()),
        ({"law": "inference"}, ("R",)),
        ({"law": "inference-additive"}, ("R",)),
        ({"law": "conditional", "dropped": []}, ("x", "r")),
        ({"law": "conditional", "dropped": ["mlp_ratio"]}, ("x",)),
    ],
)
def test_variables_read_follow_the_law_and_its_kept_factors(fit, read):
    assert variables_read(fit) == read
