"""select.law auto: the form with the lowest extrapolation error, AIC among near-ties."""

import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.fit.choice import LOGO_TIE, choose_form, configured_choice


def _table(rows):
    return pd.DataFrame(rows, columns=["law", "tie", "method", "aic", "logo_rel_err", "error"])


def test_lowest_extrapolation_error_wins_and_is_compared_with_chinchilla():
    table = _table(
        [
            ("chinchilla", "all", "huber", -90.0, 0.030, None),
            ("inference", "alpha-beta", "huber", -130.0, 0.014, None),
            ("conditional", "all", "huber", -131.0, 0.032, None),
            ("inference-additive", "none", "huber", -140.0, 0.001, None),  # fit can't fit it
            ("inference", "all", "lm", -150.0, 0.002, None),  # another method
            ("conditional", "none", "huber", None, None, "missing column(s) vocab_size"),
        ]
    )
    choice = choose_form(table, "huber")
    assert (choice["law"], choice["form"], choice["tie"]) == ("inference", None, "alpha-beta")
    assert choice["ratio_to_chinchilla"] == pytest.approx(0.014 / 0.030)
    assert choice["mode"] == "auto" and "extrapolation" in choice["reason"]
    # the row whose law could not run is out of the running, and the reason says why
    assert choice["reason"].endswith(
        "; out of the running: conditional tie none (missing column(s) vocab_size)"
    )


def test_near_ties_go_to_the_lower_aic():
    best = 0.020
    table = _table(
        [
            ("chinchilla", "all", "huber", -90.0, 0.030, None),
            ("inference", "none", "huber", -100.0, best, None),
            ("conditional-additive", "all", "huber", -120.0, best * (1 + LOGO_TIE / 2), None),
        ]
    )
    choice = choose_form(table, "huber")
    assert (choice["law"], choice["form"]) == ("conditional", "additive")
    assert "AIC decided" in choice["reason"]
    table.loc[2, "logo_rel_err"] = best * (1 + 2 * LOGO_TIE)  # no longer a tie
    assert choose_form(table, "huber")["law"] == "inference"


def test_no_scored_form_is_an_input_error_and_a_configured_law_says_so():
    table = _table([("chinchilla", "all", "huber", -90.0, None, "the fit diverged")])
    with pytest.raises(
        InputError, match=r"scored no huber form by extrapolation: chinchilla tie all \(the fit"
    ):
        choose_form(table, "huber")
    choice = configured_choice("conditional", "all", "lm")
    assert choice["form"] == "multiplicative" and choice["mode"] == "configured"
