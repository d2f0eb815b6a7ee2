"""The story: a few lines from the run's own numbers, first in summary.md and on the HTML
report's front page."""

from __future__ import annotations

import math
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import REPO

from infscale import outputs
from infscale.report import story, tables
from infscale.select.winner import choose_winner

CHOICE = {
    "mode": "auto",
    "law": "inference",
    "form": None,
    "tie": "all",
    "method": "huber",
    "logo_rel_err": 0.0123,
    "aic": -41.25,
    "chinchilla_logo_rel_err": 0.0301,
    "ratio_to_chinchilla": 0.41,
    "reason": "lowest progressive extrapolation error, under half of Chinchilla's.",
}
INFERENCE_FIT = {
    "law": "inference",
    "method": "huber",
    "tie": "all",
    "params": {"A": 10.0, "B": 20.0, "E": 1.0, "alpha": 0.3, "beta": 0.3, "gamma": 0.3},
    "intervals": {"epsilon": [0.011, 0.019], "gamma": [0.2, 0.4]},
    "choice": CHOICE,
}
INFERENCE_FIT["params"]["epsilon"] = 0.015
BUDGETS = {"max_params": 400_000, "max_tokens": None, "max_latency": 3.0}


@pytest.fixture
def selected() -> pd.DataFrame:
    """c1 is over the latency budget, c4 over the parameter budget; c2 and c3 are chosen."""
    return pd.DataFrame(
        {
            "name": ["c1", "c2", "c3", "c4"],
            "shape": ["d48-l10-h4", "d64-l6-h4", "d80-l3-h4", "d112-l1-h4"],
            "d_model": [48, 64, 80, 112],
            "n_layers": [10, 6, 3, 1],
            "n_heads": 4,
            "N": [300_000, 320_000, 350_000, 450_000],
            "D": 1_200_000,
            "R": [4.8, 64 / 6, 80 / 3, 112.0],
            "latency_s": [3.5, 2.0, 1.0, 0.5],
            "loss_pred": [3.90, 3.80, 3.85, 3.70],
            "loss_pred_lo": [3.86, 3.77, 3.82, 3.66],
            "loss_pred_hi": [3.94, 3.83, 3.88, 3.74],
            "feasible": [0, 1, 1, 0],
            "selected": [0, 1, 1, 0],
            "rank": pd.array([pd.NA, 1, 2, pd.NA], dtype="Int64"),
            "chosen_frac": [0.0, 0.97, 0.61, 0.0],
        }
    )


@pytest.fixture
def winner(selected) -> dict:
    trained = pd.DataFrame(
        {
            "name": ["c2", "c3", "c1"],
            "average": [0.30, 0.295, 0.25],
            "average_stderr": 0.01,
            "latency_s": [2.0, 1.0, 3.5],
        }
    )
    return choose_winner(trained, selected, "c1")


def test_the_story_says_which_law_and_why(selected, winner):
    law = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)[0]
    assert law.startswith("Law: the selection used the inference law (huber fit, tie all), ")
    assert "chosen automatically: lowest progressive extrapolation error" in law
    assert "half of Chinchilla's. Its progressive extrapolation error is 1.23% against" in law
    assert "Chinchilla's 3.01%" in law
    assert law.endswith("(ratio 0.41); AIC -41.2.")  # -41.25 to even
    configured = INFERENCE_FIT | {"choice": CHOICE | {"mode": "configured", "aic": None}}
    line = story.story_lines(configured, selected, winner, BUDGETS)[0]
    assert "as configured" in line and "AIC n/a" in line


def test_the_story_gives_the_shape_effect_with_its_intervals(selected, winner):
    shape = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)[1]
    # feasible: c2 (3.80) best, c3 (3.85) worst; c4's lower loss is over budget
    assert "the best feasible shape, c2 (d64-l6-h4: d_model 64 x 6 layers, R 10.7)" in shape
    assert (
        "3.8000 [3.7700, 3.8300]" in shape
        and "c3 (d80-l3-h4: d_model 80 x 3 layers, R 26.7)" in shape
    )
    assert "0.0500 nats/token (1.32%) in favour of the narrower, deeper shape" in shape
    assert "the 95% bands overlap" in shape  # c3's lo 3.82 <= c2's hi 3.83
    assert "epsilon = 0.015 [95%: 0.011, 0.019] (excludes 0)" in shape
    assert "gamma = 0.3 [95%: 0.2, 0.4] (excludes 0)" in shape


def test_the_shape_line_of_the_other_laws(selected, winner):
    params = {p: INFERENCE_FIT["params"][p] for p in ("A", "B", "E", "alpha", "beta")}
    chinchilla = {"law": "chinchilla", "params": params, "choice": CHOICE}
    line = story.story_lines(chinchilla, selected, winner, BUDGETS)[1]
    assert "The chinchilla law has no shape term" in line
    conditional = {
        "law": "conditional",
        "params": {"a1": -0.02, "a2": 0.004},
        "x_opt": 0.081,
        "intervals": {"a1": [-0.05, 0.01], "a2": [0.001, 0.007]},
        "choice": CHOICE,
    }
    line = story.story_lines(conditional, selected, winner, BUDGETS)[1]
    assert "a1 = -0.02 [95%: -0.05, 0.01] (includes 0: sign unresolved)" in line
    assert "a2 = 0.004 [95%: 0.001, 0.007] (excludes 0)" in line
    assert "x_opt = 0.081 (no interval)" in line
    unbanded = selected.drop(columns=["loss_pred_lo", "loss_pred_hi"])
    line = story.story_lines(chinchilla, unbanded, winner, BUDGETS)[1]
    assert "predicted at 3.8000 and" in line and "bands" not in line


def test_the_story_says_what_was_chosen_why_and_how_stably(selected, winner):
    line = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)[2]
    assert line.startswith("Selection: chose c2, c3 (k = 2), the lowest predicted losses among")
    assert "the 2 of 4 candidates within the budgets" in line
    assert "parameters N <= 400,000 excluded c4" in line
    assert "latency (s) <= 3 excluded c1" in line and "tokens D" not in line
    assert "resamples that choose each: c2 97%, c3 61%." in line
    assert "The budgets exclude c4, the lowest predicted loss of all (3.7): without" in line
    within = selected.assign(loss_pred=[3.90, 3.60, 3.85, 3.70])
    line = story.story_lines(INFERENCE_FIT, within, winner, BUDGETS)[2]
    assert "lowest predicted loss of all, c2's (3.6), is within the budgets" in line
    counted = story.story_lines(
        INFERENCE_FIT, selected, winner, BUDGETS, {"resamples": 198, "skipped": 2}
    )[2]
    assert "resamples (198 used, 2 skipped: a loss not finite and positive) that" in counted
    counted = story.story_lines(
        INFERENCE_FIT, selected, winner, BUDGETS, {"resamples": 200, "skipped": 0}
    )[2]
    assert "resamples (200 used) that choose each" in counted
    unmeasured = story.story_lines(
        INFERENCE_FIT, selected.drop(columns="chosen_frac"), winner, dict.fromkeys(BUDGETS)
    )[2]
    assert "(no budget was set)" in unmeasured and "was not measured" in unmeasured


def test_the_story_names_chosen_candidates_the_law_extrapolates(selected, winner):
    marked = selected.assign(outside_grid=[None, "R", "r", "R x"])
    line = story.story_lines(INFERENCE_FIT, marked, winner, BUDGETS)[2]
    # c3 lies beyond only in r, which the inference law does not read; c4 is not chosen
    assert "Beyond the grid's range, so extrapolated by the law: c2 (its R)." in line
    conditional = {**INFERENCE_FIT, "law": "conditional", "dropped": ["width"]}
    line = story.story_lines(conditional, marked, winner, BUDGETS)[2]
    assert "extrapolated by the law: c3 (its r)." in line
    line = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)[2]
    assert "Beyond the grid" not in line


def test_the_story_ends_with_the_winner_against_the_baseline(selected, winner):
    line = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)[3]
    # c2 and c3 tie (0.005 < 0.0141): the faster c3 wins; vs c1 +0.045 is beyond the band
    assert line.startswith("Winner: c3, average accuracy 0.295 (se 0.010) at 1.000 s, tied on")
    assert "(within z = 1 combined standard error) with c2, and the fastest of them." in line
    assert "Against the baseline c1: 3.50x its speed (3.500 s), accuracy +0.045" in line
    assert line.endswith(f"(band {0.01 * math.sqrt(2):.3f}): better.")
    untrained = choose_winner(pd.DataFrame(winner_rows()), selected, "c4")
    line = story.story_lines(INFERENCE_FIT, selected, untrained, BUDGETS)[3]
    assert "the most accurate, and no other is within z = 1" in line
    assert line.endswith("accuracy not compared (the baseline was not trained).")
    smooth = pd.DataFrame(winner_rows()).assign(
        average=[0.3, 0.295], nll_per_byte=[1.1, 1.3], nll_per_byte_stderr=0.01
    )
    line = story.story_lines(
        INFERENCE_FIT, selected, choose_winner(smooth, selected, "c4"), BUDGETS
    )
    assert "Winner: c2," in line[3] and "with c3, and the lowest nll_per_byte of them." in line[3]


def winner_rows() -> dict:
    return {"name": ["c2", "c3"], "average": [0.4, 0.3], "average_stderr": 0.01, "latency_s": 1}


def test_story_rst_escapes_inline_markup():
    table = tables.story_table(["a_ *b* `c` |d|", "plain"])
    text = story.story_rst(table)
    assert text == "**The story of this run**\n\n- a\\_ \\*b\\* \\`c\\` \\|d\\|\n- plain\n"


# Snakemake's report (9.x, snakemake/report/__init__.py) renders the front page so: a Jinja
# environment with these options, its link targets appended, then docutils' HTML writer, run
# in the workflow's directory. The links, reduced to what the front page uses.
RST_LINKS = """

{% for cat, catresults in categories|dictsort %}
.. _{{ cat.name }}: javascript:app.showCategory('{{ cat.name|urlencode }}')
{% endfor %}
{% for res in files %}
.. _{{ res.target }}: javascript:app.showResultInfo('{{ res.path|urlencode }}')
{% endfor %}
"""


Category = namedtuple("Category", "name")


def front_page(files: list, config: dict) -> str:
    from docutils.core import publish_parts
    from jinja2 import Environment

    source = (REPO / "workflow" / "report" / "workflow.rst").read_text() + RST_LINKS
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string(source)
    text = template.render(
        snakemake=SimpleNamespace(config=config),
        categories={Category(outputs.SELECTION): {}} if files else {},
        files=files,
    )
    return publish_parts(text, writer="html")["html_body"]


CONFIG = {"select": {"k": 2, "baseline": "c1"}}


def test_the_front_page_opens_with_the_story(selected, winner, tmp_path, monkeypatch):
    lines = story.story_lines(INFERENCE_FIT, selected, winner, BUDGETS)
    files = outputs.report_files("results/report")
    monkeypatch.chdir(tmp_path)
    Path(files["story_rst"]).parent.mkdir(parents=True)
    Path(files["story_rst"]).write_text(story.story_rst(tables.story_table(lines)))
    record = SimpleNamespace(target="story.html", path=files["story_html"])
    page = front_page([record], CONFIG)
    assert page.index("The story of this run") < page.index("reproduces and extends")
    assert "Winner: c3" in page and "problematic" not in page and "system-message" not in page
    assert "showResultInfo" in page and "showCategory" in page  # the links resolve


def test_the_front_page_renders_before_the_story_exists():
    page = front_page([], CONFIG)
    assert "once the report job has written it" in page and "system-message" not in page
    assert "top-2" in page and '<tt class="docutils literal">c1</tt>' in page
