"""Training in rounds: the proposals generated from the size groups, the config checks, and the
design_round checkpoint in a real Snakemake DAG (the runs it adds, and the same seed designing
the same round).

The DAG tests run no training: the seed runs' files are written by hand (their points from a
known inference law with noise), every other file upstream of round 1 exists with one mtime,
and Snakemake runs only the design_round job (``--rerun-triggers mtime``), which fits and
designs for real.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import MICRO, REPO, planned_jobs, snakemake

from infscale.checks import load_config, validate_config
from infscale.design.proposals import (
    gqa_twin,
    mlp_twin,
    proposal_runs,
    proposal_table,
    round_budget,
)
from infscale.errors import InputError
from infscale.fit.laws import predict_points
from infscale.grid import candidate_runs, grid_runs
from infscale.report.design import rounds_table

SCHEMA = REPO / "config" / "schema.yaml"
DESIGN = {
    "enabled": True,
    "rounds": 2,
    "budget_fraction": 0.3,
    "seed": 0,
    "seed_runs": ["a-v1", "a-v2", "b-v1", "b-v2", "c-v1"],  # 7 points, 6 free parameters
    "proposals": {"grid": True, "gqa_kv_heads": [1], "ffn_ratios": [1.5]},
}
# The world the seed runs' losses come from (inference law, tie all): c2 and c3 tie within
# 0.0005 in it, and at this noise the seed's fit leaves the choice between them open.
LAW = {"A": 60.0, "B": 60.0, "E": 1.5, "alpha": 0.3, "beta": 0.3, "gamma": 0.3, "epsilon": 0.002}
NOISE_SD = 0.08


def design_config(**design) -> dict:
    config = yaml.safe_load(MICRO.read_text())
    config["design"] = {**copy.deepcopy(DESIGN), **design}
    # huber, as the default config: lm would count failed every resample that draws fewer
    # points than the law's free parameters, as a seed of 7 points for 6 can
    config["fit"]["method"] = "huber"
    # One of c2 (48x2) and c3 (40x3), near-equal N: the shape term decides, and a seed of five
    # runs leaves it open (c1, the deep one, is too slow: candidates_table's latency is 0.01 a
    # layer).
    config["select"].update(k=1, max_latency_s=0.05)
    return config


def checked(config: dict) -> dict:
    validate_config(config, SCHEMA)
    return config


# ---------------------------------------------------------------- proposals


def test_proposals_are_the_grid_and_its_gqa_and_mlp_twins_with_fixed_names():
    config = checked(design_config())
    runs = {run.name: run for run in proposal_runs(config)}
    grid = ["a-v1", "a-v2", "b-v1", "b-v2", "c-v1", "c-v2"]
    assert list(runs)[:6] == grid
    base = runs["a-v1"].shape  # d 16, 2 heads of 8: the GQA twin has one KV head
    twin = runs["a-v1kv1"].shape
    assert (twin.n_kv_heads, twin.n_heads, twin.d_model) == (1, 2, 16)
    # the dropped K and V widths (2·16·8 a layer) go to the MLP, F rounded to multiple_of 16:
    # N within half a rounding step (3·d·8 a layer) of the MHA shape's
    assert twin.n_params != base.n_params
    assert abs(twin.n_params - base.n_params) <= 3 * 16 * 8 * base.n_layers
    mlp = runs[f"a-v1f{mlp_twin(base, 1.5).ffn_hidden}"].shape
    assert mlp.ffn_hidden == 32 and mlp.d_model == 16  # 1.5 x 16 = 24, to multiple_of 16
    assert runs["a-v1kv1"].multipliers == (1, 2)  # the size group's multipliers
    assert runs["b-v1kv1"].multipliers == (1,)
    assert len(runs) == 6 * 3


def test_gqa_twin_keeps_n_when_the_rounding_allows():
    from infscale.shapes import Shape

    mha = Shape(d_model=96, n_layers=2, n_heads=4, vocab_size=512, multiple_of=16)
    gqa = gqa_twin(mha, 1)  # drops 2·96·72 a layer = 3·96·48: F grows by exactly 48
    assert gqa.ffn_hidden == mha.ffn_hidden + 48
    assert gqa.n_params == mha.n_params


def test_design_off_proposes_nothing():
    assert proposal_runs(checked(yaml.safe_load(MICRO.read_text()))) == []


def test_proposal_table_is_what_infscale_design_reads():
    table = proposal_table(proposal_runs(checked(design_config())))
    row = table.set_index("name").loc["a-v1"]
    assert row["D"] == 2 * row["N"]  # observed at its last multiplier
    assert {"d_model", "n_layers", "n_heads", "n_kv_heads", "ffn_hidden"} <= set(table)


# ---------------------------------------------------------------- config checks


@pytest.mark.parametrize(
    ("design", "fit", "message"),
    [
        ({"seed_runs": []}, {}, "design.seed_runs: no runs for round 0"),
        ({"seed_runs": ["a-v9"]}, {}, "design.seed_runs: a-v9 not among the proposals"),
        (
            {
                "seed_runs": ["a-v1", "a-v2", "b-v1", "b-v2", "c-v1", "c-v2"],
                "proposals": {"grid": True},
            },
            {},
            "empty proposal set",
        ),
        ({"budget_flops": 1.0}, {}, "is below the cheapest proposal"),
        ({"rounds": 0}, {}, "design.rounds: 0 is less than the minimum of 1"),
        (
            {"seed_runs": ["a-v1", "b-v2"]},
            {},
            "design.seed_runs: 3 loss point(s) for the 6 free parameters of the inference law "
            "with tie alpha-beta",
        ),
        (  # the design's own tie counts, not the final fit's
            {"seed_runs": ["a-v1", "b-v2", "c-v1"], "tie": "none"},
            {"tie": "all"},
            "design.seed_runs: 4 loss point(s) for the 7 free parameters of the inference law "
            "with tie none",
        ),
        (  # as many points as parameters: the fit would interpolate them
            {"seed_runs": ["a-v1", "a-v2", "b-v2", "c-v1"]},
            {},
            "design.seed_runs: 6 loss point(s) for the 6 free parameters of the inference law "
            "with tie alpha-beta: a round's fit needs more points than parameters",
        ),
        ({"tie": "gamma"}, {}, "design.tie: 'gamma' is not one of ['all', 'alpha-beta', 'none']"),
        ({}, {"bootstrap": 0}, "fit.bootstrap: 0, but the design rounds need"),
        ({"reference": "/nonexistent/run"}, {}, "design.reference: no /nonexistent/run/results"),
    ],
)
def test_a_design_that_cannot_run_stops_the_parse(design, fit, message):
    config = design_config(**design)
    config["fit"].update(fit)
    with pytest.raises(InputError, match=re.escape(message)):
        validate_config(config, SCHEMA)


def test_bad_design_config_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(design_config(budget_flops=1.0)))
    proc = snakemake(tmp_path, "-n", configfile=path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(
        "infscale: invalid config: config key design.budget_flops: a round's budget of 1 FLOPs "
        "is below the cheapest proposal's "
    )


def test_adaptive_config_plans_round_0(tmp_path):
    config = load_config(REPO / "config" / "adaptive.yaml", SCHEMA)
    proc = snakemake(tmp_path, "-n", configfile=REPO / "config" / "adaptive.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert jobs["train"] == len(config["design"]["seed_runs"])  # round 0 alone, so far
    trained = set(re.findall(r"results/runs/([A-Za-z0-9-]+)/points\.csv", proc.stdout))
    assert trained == set(config["design"]["seed_runs"])


# ---------------------------------------------------------------- the checkpoint in a DAG


def seed_points(config: dict, name: str) -> pd.DataFrame:
    """A seed run's points.csv: one row per multiplier boundary, its loss from LAW + noise."""
    run = {run.name: run for run in proposal_runs(config)}[name]
    rows = pd.DataFrame(
        [
            {
                "run": name,
                "size_group": run.size,
                "variant": run.variant,
                **run.shape.dimensions,
                "R": run.shape.d_model / run.shape.n_layers,
                "N": run.shape.n_params,
                "multiplier": m,
                "D": tokens,
            }
            for m, tokens in zip(run.multipliers, run.tokens, strict=True)
        ]
    )
    rng = np.random.default_rng(sum(map(ord, name)))
    loss = predict_points({"law": "inference", "tie": "all", "params": LAW}, rows)
    return rows.assign(loss=loss + rng.normal(0, NOISE_SD, len(rows)))


def candidates_table(config: dict) -> pd.DataFrame:
    """candidates.csv: the candidates with a latency that grows with depth."""
    return pd.DataFrame(
        [
            {
                "name": run.variant,
                **run.shape.dimensions,
                "N": run.shape.n_params,
                "D": run.total_tokens,
                "R": run.shape.d_model / run.shape.n_layers,
                "latency_s": 0.01 * run.shape.n_layers,
            }
            for run in candidate_runs(config)
        ]
    )


def planned_outputs(stdout: str) -> list[str]:
    """Every output path of a dry run's jobs."""
    paths = []
    for line in stdout.splitlines():
        if line.strip().startswith("output:"):
            paths += [p.strip() for p in line.split(":", 1)[1].split(",")]
    return paths


def prepare(workdir: Path) -> dict:
    """A workdir where every file upstream of design round 1 exists (the seed runs' points and
    the candidates with real content, the rest empty), all with one mtime."""
    config = checked(design_config())
    raw = design_config()
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    proc = snakemake(
        workdir, "-n", "results/design/round_1.csv", configfile=workdir / "config.yaml"
    )
    assert proc.returncode == 0, proc.stderr
    for path in planned_outputs(proc.stdout):
        if path.startswith("results/design/"):
            continue
        target = workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(path).suffix:
            target.write_text("")
        else:
            target.mkdir(exist_ok=True)  # a directory() output: model/, tokenizer/
    for name in config["design"]["seed_runs"]:
        seed_points(config, name).to_csv(workdir / f"results/runs/{name}/points.csv", index=False)
    candidates_table(config).to_csv(workdir / "results/select/candidates.csv", index=False)
    stamp = 1_700_000_000
    for path in workdir.rglob("*"):
        if ".snakemake" not in path.parts:
            os.utime(path, (stamp, stamp))
    return config


def run_round_1(workdir: Path):
    return snakemake(
        workdir,
        "--cores",
        "1",
        "--rerun-triggers=mtime",  # one word: the option takes every word after it
        "results/design/round_1.csv",
        configfile=workdir / "config.yaml",
    )


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    """Two workdirs prepared alike, round 1 designed in each by the checkpoint job."""
    first = tmp_path_factory.mktemp("round_a")
    config = prepare(first)
    second = tmp_path_factory.mktemp("round_b")
    shutil.copytree(first, second, dirs_exist_ok=True)
    for workdir in (first, second):
        proc = run_round_1(workdir)
        assert proc.returncode == 0, proc.stderr
        assert planned_jobs(proc.stderr + proc.stdout) == {"design_round": 1}
    return config, first, second


def test_the_checkpoint_designs_a_round_from_the_seed_runs(rounds):
    config, workdir, _ = rounds
    table = pd.read_csv(workdir / "results/design/round_1.csv")
    assert len(table) >= 1
    assert not set(table["name"]) & set(config["design"]["seed_runs"])  # never retrained
    assert set(table["name"]) <= {run.name for run in proposal_runs(config)}
    fit = yaml.safe_load((workdir / "results/design/round_1_fit.json").read_text())
    assert fit["law"] == "inference" and fit["n_points"] == 7  # a's runs have two boundaries
    assert fit["tie"] == "alpha-beta" != config["fit"]["tie"]  # design.tie, not fit.tie
    grid_flops = proposal_table(grid_runs(config)).eval("6 * N * D").sum()
    assert round_budget(config) == pytest.approx(0.3 * grid_flops)
    assert table["cum_flops"].iloc[-1] <= round_budget(config)
    assert np.allclose(table["flops"], 6.0 * table["N"] * table["D"])


def test_the_checkpoint_adds_exactly_the_designed_runs(rounds):
    _, workdir, _ = rounds
    designed = set(pd.read_csv(workdir / "results/design/round_1.csv")["name"])
    proc = snakemake(workdir, "-n", "--rerun-triggers=mtime", configfile=workdir / "config.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    trained = set(re.findall(r"results/runs/([A-Za-z0-9-]+)/points\.csv", proc.stdout))
    # the outputs the train jobs plan: round 1's runs; the seed runs are done
    planned = {
        p.split("/")[2]
        for p in planned_outputs(proc.stdout)
        if re.fullmatch(r"results/runs/[A-Za-z0-9-]+/points\.csv", p)
    }
    assert planned == designed
    assert jobs["train"] == len(designed)
    assert jobs["design_round"] == 1  # round 2, on every run of rounds 0 and 1
    assert trained >= designed


def test_the_same_seed_designs_the_same_round(rounds):
    _, first, second = rounds
    a = pd.read_csv(first / "results/design/round_1.csv")
    b = pd.read_csv(second / "results/design/round_1.csv")
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- the report's table


def test_rounds_table_counts_the_flops_and_says_each_runs_gain():
    flops = {"a": 1.0, "b": 3.0, "c": 2.0}
    round_1 = pd.DataFrame(
        {"name": ["c"], "flops": [2.0], "gain": [0.25], "uncertainty_after": [0.5]}
    )
    summary = {
        "round": 1,
        "uncertainty_before": 0.75,
        "modal_set": ["c1", "c2"],
        "modal_share": 0.8,
        "note": "",
    }
    selected = pd.DataFrame(
        {"name": ["c1", "c2", "c3"], "selected": [1, 1, 0], "rank": [2, 1, None]}
    ).assign(chosen_frac=[0.9, 1.0, 0.1])
    table = rounds_table(["a", "b"], [(round_1, summary)], flops, 8.0, selected)
    frame = table.frame
    assert list(frame["cum_flops"]) == [4.0, 6.0]
    assert list(frame["cum_flops_vs_grid"]) == [0.5, 0.75]
    assert frame["runs_added"].iloc[1] == "c (+0.250 bits)"
    assert frame["modal_set"].iloc[1] == "c1 + c2"
    assert "c2 in 100%, c1 in 90%" in table.note
