"""The Snakemake DAG: planning the paper, and the whole workflow on a micro config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

from infscale.report import FIGURES, TABLES, report_files

MICRO = REPO / "tests" / "configs" / "micro.yaml"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake_cmd(workdir: Path, *args: str, configfile: Path = MICRO) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]


def snakemake(workdir: Path, *args: str, configfile: Path = MICRO, **kwargs):
    cmd = snakemake_cmd(workdir, *args, configfile=configfile)
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, **kwargs)


def planned_jobs(output: str) -> dict[str, int]:
    """The job-count table of a dry run, as {rule: count}."""
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_paper_config_plans_31_training_jobs(tmp_path):
    proc = snakemake(tmp_path, "-n", configfile=REPO / "config" / "paper.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert jobs["train"] == 31
    assert jobs["latency"] == 31 + 12
    assert jobs["evaluate"] == 31


def finished_runs(workdir: Path) -> list[str]:
    """Grid runs whose training job Snakemake's log records as finished.

    An output file on disk is not enough: Snakemake marks the job complete a moment later, and
    an interrupt in between rightly makes it rerun the job.
    """
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return []
    text = logs[-1].read_text()
    jobs = re.findall(r"output: results/runs/([A-Za-z0-9-]+)/model.*?\n\s+jobid: (\d+)", text, re.S)
    return [run for run, job in jobs if f"Finished jobid: {job} " in text]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The micro workflow run once to the end, interrupted once mid-training on the way (as
    soon as a training run has finished, whichever the scheduler ran first). The middle item:
    the points.csv modification times of the runs finished before the interrupt."""
    workdir = tmp_path_factory.mktemp("micro")
    cmd = snakemake_cmd(workdir, "--cores", "2")
    first = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 240
    try:
        while not finished_runs(workdir) and time.monotonic() < deadline:
            assert first.poll() is None, "the first workflow run stopped early"
            time.sleep(0.5)
        runs = finished_runs(workdir)
        assert runs, "no training run finished"
        stamps = {
            run: (workdir / "results" / "runs" / run / "points.csv").stat().st_mtime_ns
            for run in runs
        }
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C does
            first.wait(timeout=60)
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, stamps, proc


def test_interrupted_run_finishes_without_redoing_finished_runs(finished):
    workdir, stamps, proc = finished
    for run, stamp in stamps.items():
        assert (workdir / "results" / "runs" / run / "points.csv").stat().st_mtime_ns == stamp
        assert f"output: results/runs/{run}/" not in proc.stdout + proc.stderr


def test_outputs_of_every_stage(finished):
    workdir, _, _ = finished
    results = workdir / "results"
    points = pd.read_csv(results / "fit" / "points.csv")
    assert len(points) == 8  # a: two shapes × two boundaries; b, c: two shapes × one
    assert set(points.columns) >= {"N", "D", "loss", "val_loss", "d_model", "n_layers", "fit_all"}
    assert (points["D"] >= points["multiplier"] * points["N"]).all()
    model = results / "runs" / "a-v1" / "model"
    assert (model / "model.safetensors").exists()
    steps = [json.loads(line) for line in (results / "runs" / "a-v1" / "log.jsonl").open()]
    assert steps[-1]["tokens"] >= 2 * points.loc[points["run"] == "a-v1", "N"].iloc[0]
    for law in ("chinchilla", "inference"):
        fit = json.loads((results / "fit" / f"{law}-all.json").read_text())
        assert fit["n_points"] == 8
        assert set(fit["metrics"]) >= {"mse", "r2", "max_rel_err", "spearman"}
    latency = json.loads((results / "latency" / "d16-l4-h2.json").read_text())
    assert len(latency["trials_s"]) == 2
    selected = pd.read_csv(results / "select" / "selected.csv")
    chosen = list(selected.loc[selected["selected"] == 1, "name"])
    assert len(chosen) == 2
    best = selected.loc[selected["feasible"] == 1].nsmallest(2, "loss_pred")["name"]
    assert set(chosen) == set(best)
    for name in chosen:
        result = json.loads((results / "eval" / "candidates" / f"{name}.json").read_text())
        assert set(result["tasks"]) == {"arc_easy", "piqa"}
    summary = (results / "report" / "summary.md").read_text()
    assert all(name in summary for name in chosen)
    assert "winner" in summary.lower()


def test_report_has_every_figure_and_table(finished):
    workdir, _, _ = finished
    report = workdir / "results" / "report"
    files = report_files(report)
    assert len(files) == 2 * len(FIGURES) + 2 * len(TABLES) + 1
    for name in FIGURES:
        assert files[f"{name}_png"].read_bytes().startswith(b"\x89PNG"), name
        assert "</svg>" in files[f"{name}_svg"].read_text(), name
    for name in TABLES:
        assert len(pd.read_csv(files[f"{name}_csv"])) > 0, name
        assert files[f"{name}_html"].read_text().startswith("<!DOCTYPE html>"), name
    summary = files["summary"].read_text()
    assert all(f"(figures/{name}.png)" in summary for name in FIGURES)
    runs = pd.read_csv(files["runs_csv"])
    assert len(runs) == 8 + 3  # every grid point and the three trained candidates
    sweeps = pd.read_csv(files["latency_sweeps_csv"])
    assert set(sweeps["sweep"]) == {"layers", "width", "ratio"}


def test_snakemake_html_report_holds_every_figure(finished, tmp_path):
    workdir, _, _ = finished
    html = tmp_path / "report.html"
    proc = snakemake(workdir, "--report", str(html))
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = html.read_text()
    for name in FIGURES:
        assert f"{name}.png" in page, name
    for name in TABLES:
        assert f"{name}.html" in page, name


def test_complete_run_has_nothing_left_to_do(finished):
    workdir, _, _ = finished
    proc = snakemake(workdir, "-n")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_a_fit_option_reruns_only_fit_and_what_follows(finished, tmp_path):
    workdir, _, _ = finished
    config = yaml.safe_load(MICRO.read_text())
    config["fit"]["tie"] = "alpha-beta"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", configfile=changed)
    assert proc.returncode == 0, proc.stderr
    # downstream follows select: its inputs are the candidates the select checkpoint picks
    planned = set(planned_jobs(proc.stdout))
    assert planned == {"fit", "select", "downstream", "report", "all"}
