"""The ``infscale`` command as DESIGN.md's contract states it: outputs, one-line errors, exit 2.

Most cases call ``main`` in-process (a traceback would fail the test just the same); a few run
the real process to check the exit status and that no traceback reaches stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PAPER, run

from infscale.cli import main
from infscale.fit.conditional import factor_variables
from infscale.fit.laws import law_loss
from infscale.shapes import ffn_hidden, param_count

TRUTH = {"A": 60.0, "B": 80.0, "E": 2.0, "alpha": 0.3, "beta": 0.3, "gamma": 0.3, "epsilon": 0.02}
SHAPES = {
    "xs": [(24, 8), (32, 4), (40, 2)],
    "s": [(32, 8), (40, 5), (48, 3)],
    "m": [(48, 6), (56, 4), (72, 2)],
}  # the default config's grid


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infscale.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def points_csv(tmp_path) -> Path:
    """The default config's grid at 4/8/16 x N, its loss drawn from the tied inference law."""
    rows = [
        {
            "run": f"{size}-v{i}",
            "size_group": size,
            "d_model": d,
            "n_layers": layers,
            "N": param_count(d, layers, 512, 16),
            "multiplier": mult,
        }
        for size, shapes in SHAPES.items()
        for i, (d, layers) in enumerate(shapes)
        for mult in (4, 8, 16)
    ]
    frame = pd.DataFrame(rows)
    frame["D"] = frame["multiplier"] * frame["N"]
    frame["loss"] = law_loss(
        "inference",
        TRUTH,
        frame["N"].to_numpy(float),
        frame["D"].to_numpy(float),
        (frame["d_model"] / frame["n_layers"]).to_numpy(),
    )
    frame["fit_base"] = (frame["multiplier"] == 4).astype(int)
    frame["fit_none"] = 0
    path = tmp_path / "points.csv"
    frame.to_csv(path, index=False)
    return path


# The follow-up's law on the same grid: x* = a2/a1 = 0.14 inside its widths (0.098 to 0.204);
# its MLP ratio varies only by the width rounding, so that factor is dropped (b1 = b2 = 0).
CONDITIONAL = {"A": 60.0, "B": 80.0, "E": 2.0, "alpha": 0.3, "beta": 0.3}
CONDITIONAL |= {"a1": 0.1, "a2": 0.014, "b1": 0.0, "b2": 0.0}


@pytest.fixture
def conditional_csv(tmp_path, points_csv) -> Path:
    frame = pd.read_csv(points_csv).assign(vocab_size=512)
    frame["ffn_hidden"] = [ffn_hidden(d, 16) for d in frame["d_model"]]
    frame["loss"] = law_loss(
        "conditional",
        CONDITIONAL,
        frame["N"].to_numpy(float),
        frame["D"].to_numpy(float),
        variables=factor_variables(frame),
    )
    path = tmp_path / "conditional.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def fit_json(tmp_path, points_csv) -> Path:
    out = tmp_path / "fit.json"
    assert main(["fit", "--data", str(points_csv), "--law", "inference", "--out", str(out)]) == 0
    return out


@pytest.fixture
def candidates_csv(tmp_path) -> Path:
    shapes = {"c1": (48, 10), "c2": (56, 8), "c3": (64, 6), "c4": (80, 3), "c5": (96, 2)}
    frame = pd.DataFrame(
        [
            {
                "name": name,
                "d_model": d,
                "n_layers": layers,
                "n_heads": 4,
                "N": param_count(d, layers, 512, 16),
                "D": 1_200_000,
                "latency_s": 0.1 * layers,
            }
            for name, (d, layers) in shapes.items()
        ]
    )
    path = tmp_path / "candidates.csv"
    frame.to_csv(path, index=False)
    return path


def test_params_gives_the_papers_check_value():
    proc = cli("params", "--d-model", "512", "--n-layers", "8", "--vocab-size", "50432")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "78914048\n", "")


@pytest.mark.parametrize("table", ["grid_experiments.csv", "candidates_1b.csv"])
def test_params_matches_every_N_the_paper_lists(capsys, table):
    rows = list(pd.read_csv(PAPER / table).itertuples())
    assert len(rows) == {"grid_experiments.csv": 31, "candidates_1b.csv": 12}[table]
    for row in rows:
        code, out, _ = run(
            capsys,
            "params",
            "--d-model",
            row.d_model,
            "--n-layers",
            row.n_layers,
            "--n-heads",
            row.n_heads,
            "--vocab-size",
            getattr(row, "vocab_size", 50432),
        )
        assert (code, int(out)) == (0, row.N), row


def test_fit_writes_fit_json_and_recovers_the_law(fit_json):
    fit = json.loads(fit_json.read_text())
    assert list(fit)[:6] == ["law", "method", "tie", "n_points", "params", "metrics"]
    assert (fit["law"], fit["method"], fit["tie"], fit["n_points"]) == (
        "inference",
        "lm",
        "all",
        27,
    )
    assert fit["params"] == pytest.approx(TRUTH, rel=1e-6)
    assert set(fit["metrics"]) == {"mse", "r2", "max_rel_err", "spearman"}
    assert fit["metrics"]["spearman"] == pytest.approx(1.0)
    assert set(fit["spearman_by_group"]) == set(SHAPES)
    assert fit["warnings"] == []
    assert fit["provenance"]["versions"]["scipy"]


def test_fit_set_fits_only_the_marked_rows(capsys, tmp_path, points_csv):
    out = tmp_path / "fit.json"
    code, _, _ = run(
        capsys,
        "fit",
        "--data",
        points_csv,
        "--law",
        "chinchilla",
        "--tie",
        "none",
        "--fit-set",
        "fit_base",
        "--out",
        out,
    )
    fit = json.loads(out.read_text())
    assert (code, fit["n_points"], fit["fit_set"]) == (0, 9, "fit_base")


def test_fit_warnings_go_to_stderr_and_the_json(capsys, tmp_path, points_csv):
    """One token multiplier (N and D collinear): LM from ones, the paper's procedure, finds a
    negative A (as the paper saw with 20N-only points), which is reported."""
    out = tmp_path / "fit.json"
    code, _, err = run(
        capsys,
        "fit",
        "--data",
        points_csv,
        "--law",
        "inference",
        "--fit-set",
        "fit_base",
        "--out",
        out,
    )
    warnings = json.loads(out.read_text())["warnings"]
    assert code == 0 and any(w.startswith("A = -") for w in warnings)
    assert err.splitlines() == [f"infscale: warning: {w}" for w in warnings]


def test_fit_bootstrap_adds_intervals(capsys, tmp_path, points_csv):
    out = tmp_path / "fit.json"
    code, _, _ = run(
        capsys,
        "fit",
        "--data",
        points_csv,
        "--law",
        "chinchilla",
        "--bootstrap",
        "5",
        "--seed",
        "1",
        "--out",
        out,
    )
    boot = json.loads(out.read_text())["bootstrap"]
    assert (code, boot["k"], boot["seed"]) == (0, 5, 1)
    assert set(boot["ci95"]) == {"A", "B", "E", "alpha", "beta"}


def test_conditional_fit_writes_params_intervals_and_the_dropped_factor(
    capsys, tmp_path, conditional_csv
):
    out, pred = tmp_path / "fit.json", tmp_path / "pred.csv"
    args = ["fit", "--data", conditional_csv, "--law", "conditional", "--method", "huber"]
    code, stdout, err = run(capsys, *args, "--bootstrap", "10", "--seed", "2", "--out", out)
    fit = json.loads(out.read_text())
    assert code == 0 and "conditional law (multiplicative, huber, tie all)" in stdout
    assert (fit["law"], fit["form"], fit["dropped"]) == (
        "conditional",
        "multiplicative",
        ["mlp_ratio"],
    )
    assert fit["params"] == pytest.approx(CONDITIONAL, rel=1e-5, abs=1e-12)
    assert fit["x_opt"] == pytest.approx(0.14, rel=1e-5) and "r_opt" not in fit
    assert set(fit["intervals"]) == set(CONDITIONAL)
    assert (fit["bootstrap"]["unit"], fit["bootstrap"]["n_units"]) == ("run", 9)
    assert "infscale: warning: the mlp_ratio factor is dropped" in err
    code, _, _ = run(capsys, "predict", "--fit", out, "--data", conditional_csv, "--out", pred)
    table = pd.read_csv(pred)
    assert code == 0 and list(table.columns[-3:]) == ["loss_pred", "loss_pred_lo", "loss_pred_hi"]
    np.testing.assert_allclose(table["loss_pred"], table["loss"], rtol=1e-6)


def test_conditional_lm_additive_fit(capsys, tmp_path, conditional_csv):
    out = tmp_path / "fit.json"
    args = ["fit", "--data", conditional_csv, "--law", "conditional", "--form", "additive"]
    code, _, _ = run(capsys, *args, "--tie", "none", "--out", out)
    fit = json.loads(out.read_text())
    assert (code, fit["form"], fit["method"], fit["tie"]) == (0, "additive", "lm", "none")
    assert fit["metrics"]["r2"] > 0.99


def test_select_with_a_conditional_fit_names_the_candidate_columns_it_needs(
    capsys, tmp_path, conditional_csv, candidates_csv
):
    out = tmp_path / "fit.json"
    run(capsys, "fit", "--data", conditional_csv, "--law", "conditional", "--out", out)
    args = ["select", "--fit", out, "--k", "2", "--out", tmp_path / "s.csv", "--candidates"]
    code, _, err = run(capsys, *args, candidates_csv)
    assert (code, len(err.splitlines())) == (2, 1)
    assert "missing column(s) vocab_size (the conditional law's width factor" in err
    # The MLP-ratio factor was dropped: vocab_size is all a candidate table needs besides.
    with_vocab = edited(candidates_csv, tmp_path, lambda f: f.assign(vocab_size=512))
    code, _, _ = run(capsys, *args, with_vocab)
    assert code == 0 and pd.read_csv(tmp_path / "s.csv")["selected"].sum() == 2


def test_predict_writes_the_rows_plus_loss_pred(capsys, tmp_path, points_csv, fit_json):
    out = tmp_path / "pred.csv"
    code, _, _ = run(capsys, "predict", "--fit", fit_json, "--data", points_csv, "--out", out)
    pred, points = pd.read_csv(out), pd.read_csv(points_csv)
    assert code == 0
    assert list(pred.columns) == [*points.columns, "loss_pred"]
    np.testing.assert_allclose(pred["loss_pred"], points["loss"], rtol=1e-8)


def test_select_writes_the_table(capsys, tmp_path, fit_json, candidates_csv):
    out = tmp_path / "selected.csv"
    code, stdout, _ = run(
        capsys,
        "select",
        "--fit",
        fit_json,
        "--candidates",
        candidates_csv,
        "--k",
        "2",
        "--max-params",
        "400000",
        "--max-latency",
        "0.9",
        "--out",
        out,
    )
    table = pd.read_csv(out)
    assert code == 0
    assert {"loss_pred", "feasible", "selected", "rank"} <= set(table.columns)
    assert table["selected"].sum() == 2
    picked = table[table["selected"] == 1]
    assert (picked["N"] <= 400000).all() and (picked["latency_s"] <= 0.9).all()
    assert sorted(picked["rank"]) == [1, 2]
    assert all(name in stdout for name in picked["name"])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edited(points_csv: Path, tmp_path: Path, edit) -> Path:
    frame = edit(pd.read_csv(points_csv))
    path = tmp_path / "edited.csv"
    frame.to_csv(path, index=False)
    return path


FIT = ("fit", "--law", "inference", "--out", "OUT")
BAD_FIT_DATA = {
    "missing file": (lambda p, t: t / "nope.csv", "no such file"),
    "no loss column": (
        lambda p, t: edited(p, t, lambda f: f.drop(columns="loss")),
        "missing column(s) loss",
    ),
    "no d_model": (lambda p, t: edited(p, t, lambda f: f.drop(columns="d_model")), "d_model"),
    "zero N": (lambda p, t: edited(p, t, lambda f: f.assign(N=f["N"] * 0)), "column N"),
    "nan loss": (lambda p, t: edited(p, t, lambda f: f.assign(loss=np.nan)), "column loss"),
    "inf D": (lambda p, t: edited(p, t, lambda f: f.assign(D=np.inf)), "column D"),
    "text D": (lambda p, t: edited(p, t, lambda f: f.assign(D="many")), "column D"),
    "negative layers": (lambda p, t: edited(p, t, lambda f: f.assign(n_layers=-2)), "n_layers"),
    "too few points": (lambda p, t: edited(p, t, lambda f: f.head(4)), "need at least 5"),
    "empty file": (lambda p, t: write(t, "empty.csv", ""), "not a readable CSV"),
}


@pytest.mark.parametrize("case", BAD_FIT_DATA)
def test_bad_fit_data_exits_2_with_one_line(capsys, tmp_path, points_csv, case):
    make, message = BAD_FIT_DATA[case]
    args = [*FIT[:-1], tmp_path / "fit.json", "--data", make(points_csv, tmp_path)]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("infscale: error: ")
    assert message in err
    assert not (tmp_path / "fit.json").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fit-set", "fit_missing"], "no column fit_missing"),
        (["--fit-set", "fit_none"], "no row has fit_none = 1"),
        (["--bootstrap", "-3"], "argument --bootstrap"),
        (["--tie", "half"], "argument --tie"),
        (["--method", "adam"], "argument --method"),
        (["--bootstrap", "3", "--seed", "-1"], "argument --seed"),
        (["--form", "additive"], "--form applies only to --law conditional"),
        (["--law", "conditional", "--form", "cubic"], "argument --form"),
        (["--law", "conditional"], "missing column(s) vocab_size"),
    ],
)
def test_bad_fit_arguments_exit_2(capsys, tmp_path, points_csv, extra, message):
    code, _, err = run(
        capsys,
        "fit",
        "--data",
        points_csv,
        "--law",
        "inference",
        "--out",
        tmp_path / "fit.json",
        *extra,
    )
    assert (code, len(err.splitlines())) == (2, 1)
    assert message in err


def test_a_fit_that_does_not_converge_exits_2(capsys, tmp_path):
    """At the paper's scale, with the loss of all-ones parameters, LM from ones never leaves
    its start, nor does the nested fit from the tied one (tie none: both fail)."""
    N = np.repeat(np.geomspace(8e7, 3.4e8, 6), 3)
    D = N * np.tile([20, 40, 160], 6)
    loss = law_loss("chinchilla", dict.fromkeys(("A", "B", "E", "alpha", "beta"), 1.0), N, D)
    data = tmp_path / "paper.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(data, index=False)
    code, _, err = run(
        capsys,
        "fit",
        "--data",
        data,
        "--law",
        "chinchilla",
        "--tie",
        "none",
        "--out",
        tmp_path / "fit.json",
    )
    assert (code, len(err.splitlines())) == (2, 1)
    assert "never left its start" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t, f, p, c: ["predict", "--fit", t / "no.json", "--data", p], "no such file"),
        (
            lambda t, f, p, c: ["predict", "--fit", write(t, "bad.json", "{"), "--data", p],
            "not valid JSON",
        ),
        (
            lambda t, f, p, c: ["predict", "--fit", write(t, "x.json", '{"a": 1}'), "--data", p],
            "not a fit result",
        ),
        (
            lambda t, f, p, c: [
                "predict",
                "--fit",
                f,
                "--data",
                edited(p, t, lambda x: x.drop(columns="N")),
            ],
            "missing column(s) N",
        ),
        (
            lambda t, f, p, c: [
                "predict",
                "--fit",
                f,
                "--data",
                edited(p, t, lambda x: x.assign(d_model=0)),
            ],
            "d_model",
        ),
        (lambda t, f, p, c: ["select", "--fit", f, "--candidates", c, "--k", "0"], "argument --k"),
        (
            lambda t, f, p, c: [
                "select",
                "--fit",
                f,
                "--candidates",
                c,
                "--k",
                "3",
                "--max-latency",
                "0.35",
            ],
            "only 2 of 5 candidates are feasible",
        ),
        (
            lambda t, f, p, c: [
                "select",
                "--fit",
                f,
                "--candidates",
                c,
                "--k",
                "1",
                "--max-params",
                "-5",
            ],
            "argument --max-params",
        ),
        (
            lambda t, f, p, c: [
                "select",
                "--fit",
                f,
                "--candidates",
                edited(c, t, lambda x: x.drop(columns="latency_s")),
                "--k",
                "1",
            ],
            "missing column(s) latency_s",
        ),
    ],
)
def test_bad_predict_and_select_input_exits_2(
    capsys, tmp_path, fit_json, points_csv, candidates_csv, make, message
):
    args = [*make(tmp_path, fit_json, points_csv, candidates_csv), "--out", tmp_path / "o.csv"]
    code, _, err = run(capsys, *args)
    assert (code, len(err.splitlines())) == (2, 1)
    assert err.startswith("infscale: error: ") and message in err


LATENCY = ("latency", "--d-model", "64", "--n-layers", "2", "--n-heads", "4", "--vocab-size", "128")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["params", "--d-model", "512", "--n-layers", "0", "--vocab-size", "50432"],
            "--n-layers: must be a positive integer",
        ),
        (["params", "--d-model", "wide", "--n-layers", "8", "--vocab-size", "50432"], "--d-model"),
        (
            [
                "latency",
                "--d-model",
                "64",
                "--n-layers",
                "2",
                "--n-heads",
                "3",
                "--vocab-size",
                "128",
            ],
            "not divisible by n_heads 3",
        ),
        (
            [
                "latency",
                "--d-model",
                "36",
                "--n-layers",
                "2",
                "--n-heads",
                "4",
                "--vocab-size",
                "128",
            ],
            "head_dim",
        ),
        ([*LATENCY, "--input-tokens", "0"], "--input-tokens"),
        ([*LATENCY, "--output-tokens", "-1"], "--output-tokens"),
        ([*LATENCY, "--top-p", "1.5"], "--top-p"),
        ([*LATENCY, "--dtype", "int8"], "--dtype"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2(capsys, tmp_path, args, message):
    out = ["--out", str(tmp_path / "lat.json")] if args[:1] == ["latency"] else []
    code, stdout, err = run(capsys, *args, *out)
    assert (code, stdout, len(err.splitlines())) == (2, "", 1)
    assert message in err
    assert not (tmp_path / "lat.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["params", "--d-model", "512", "--n-layers", "8", "--vocab-size", "-1"],
        ["fit", "--data", "/nonexistent/points.csv", "--law", "chinchilla", "--out", "x.json"],
        [
            "select",
            "--fit",
            "/nonexistent.json",
            "--candidates",
            "c.csv",
            "--k",
            "1",
            "--out",
            "s.csv",
        ],
        [*LATENCY, "--n-heads", "5", "--out", "lat.json"],
    ],
)
def test_the_process_exits_2_without_a_traceback(tmp_path, args):
    proc = subprocess.run(
        [sys.executable, "-m", "infscale.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("infscale: error: ") and len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_help_lists_every_command():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("params", "fit", "compare", "predict", "select", "latency"):
        assert command in proc.stdout


@pytest.mark.slow
def test_latency_writes_lat_json(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "lat.json"
    proc = cli(
        *LATENCY,
        "--input-tokens",
        "8",
        "--output-tokens",
        "4",
        "--trials",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    lat = json.loads(out.read_text())
    assert {"median_s", "trials_s", "cv", "per_token_ms", "device", "versions"} <= set(lat)
    assert len(lat["trials_s"]) == 2
    assert lat["provenance"]["git_commit"]
