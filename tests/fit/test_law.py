"""The law registry (infscale.fit.law): every law's loss against a hand computation, the FIT.json
round trip by (law, form), and the Points bundle the laws read."""

import math

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.fit.core import PARAMS
from infscale.fit.law import BY_FIT, LAWS, law_of
from infscale.fit.points import Points

VALUES = {
    "A": 400.0,
    "B": 1800.0,
    "E": 1.7,
    "alpha": 0.34,
    "beta": 0.28,
    "gamma": 0.6,
    "epsilon": 0.01,
    "a1": 0.02,
    "a2": 0.003,
    "b1": 0.03,
    "b2": 0.02,
}
N, D, R, X, MLP = 3e8, 6e9, 40.0, 0.07, 1.5


def by_hand(name: str) -> float:
    """The law at (N, D, R, x, r) with VALUES, written out term by term."""
    v = VALUES
    chinchilla = v["E"] + v["A"] / N ** v["alpha"] + v["B"] / D ** v["beta"]
    shape = v["epsilon"] * R ** v["gamma"]
    width = v["a1"] * math.log(X) + v["a2"] / X
    mlp = v["b1"] * math.log(MLP) + v["b2"] / MLP
    return {
        "chinchilla": chinchilla,
        "inference": chinchilla * (1 + shape),
        "inference-additive": chinchilla + shape,
        "conditional": (1 + width) * (1 + mlp) * chinchilla,
        "conditional-additive": chinchilla + width + mlp,
    }[name]


@pytest.mark.parametrize("name", list(LAWS))
def test_each_laws_loss_is_its_formula(name):
    law = LAWS[name]
    params = {p: VALUES[p] for p in law.params}
    points = Points(
        np.array([N]),
        np.array([D]),
        R=np.array([R]),
        variables={"width": np.array([X]), "mlp_ratio": np.array([MLP])},
    )
    assert law.loss(params, points)[0] == pytest.approx(by_hand(name), rel=1e-13)
    assert law.params == PARAMS[law.family]


def test_the_registry_has_the_five_laws_in_the_comparisons_order_and_fit_json_names_four():
    assert list(LAWS) == [
        "chinchilla",
        "inference",
        "conditional",
        "inference-additive",
        "conditional-additive",
    ]
    assert {law.name for law in BY_FIT.values()} == set(LAWS) - {"inference-additive"}


@pytest.mark.parametrize("law", list(BY_FIT.values()), ids=lambda law: law.name)
def test_fit_json_law_and_form_find_the_law_again(law):
    assert law_of(law.family, law.fit_form) is law


def test_law_of_defaults_and_refusals():
    assert law_of("conditional") is LAWS["conditional"]  # multiplicative, the follow-up's
    with pytest.raises(InputError, match="form applies only to the conditional law"):
        law_of("chinchilla", "additive")
    with pytest.raises(InputError, match="form must be one of multiplicative, additive"):
        law_of("conditional", "cubic")
    with pytest.raises(InputError, match="fit law must be one of"):
        law_of("kaplan", what="fit law")


def test_a_law_names_the_input_it_lacks():
    points = Points(np.array([N]), np.array([D]))
    LAWS["chinchilla"].check(points)
    with pytest.raises(InputError, match="the inference-additive law needs R"):
        LAWS["inference-additive"].check(points)
    with pytest.raises(InputError, match="the conditional-additive law needs its factors"):
        LAWS["conditional-additive"].check(points)


def test_free_parameters_follow_the_tie_and_the_dropped_factors():
    flat = Points(
        np.ones(3),
        np.ones(3),
        variables={"width": np.array([0.05, 0.1, 0.2]), "mlp_ratio": np.ones(3)},
    )
    assert LAWS["inference-additive"].free("all", flat) == ("A", "B", "E", "alpha", "epsilon")
    assert LAWS["conditional"].free("none", flat) == (
        "A",
        "B",
        "E",
        "alpha",
        "beta",
        "a1",
        "a2",
    )


def test_points_take_cuts_every_field_alike():
    points = Points(
        np.array([1.0, 2.0, 3.0]),
        np.array([4.0, 5.0, 6.0]),
        np.array([7.0, 8.0, 9.0]),
        R=np.array([10.0, 11.0, 12.0]),
        variables={"width": np.array([0.1, 0.2, 0.3])},
        groups=np.array(["a", "b", "c"]),
        runs=np.array(["r1", "r2", "r3"]),
    )
    cut = points.take(np.array([2, 0, 2]))
    assert len(cut) == 3
    assert cut.N.tolist() == [3.0, 1.0, 3.0] and cut.D.tolist() == [6.0, 4.0, 6.0]
    assert cut.loss.tolist() == [9.0, 7.0, 9.0] and cut.R.tolist() == [12.0, 10.0, 12.0]
    assert cut.variables["width"].tolist() == [0.3, 0.1, 0.3]
    assert cut.groups.tolist() == ["c", "a", "c"] and cut.runs.tolist() == ["r3", "r1", "r3"]
    masked = points.take(np.array([True, False, True]))
    assert masked.N.tolist() == [1.0, 3.0] and masked.variables["width"].tolist() == [0.1, 0.3]
    assert Points(np.ones(2), np.ones(2)).take(np.array([1])).R is None
