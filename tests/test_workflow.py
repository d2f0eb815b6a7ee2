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


def finished_job(workdir: Path, output_prefix: str) -> bool:
    """Whether Snakemake's log records the job writing ``output_prefix*`` as finished.

    An output file on disk is not enough: Snakemake marks the job complete a moment later, and
    an interrupt in between rightly makes it rerun the job.
    """
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return False
    text = logs[-1].read_text()
    job = re.search(rf"output: {re.escape(output_prefix)}.*?\n\s+jobid: (\d+)", text, re.S)
    return bool(job) and f"Finished jobid: {job.group(1)} " in text


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The micro workflow run once to the end, interrupted once mid-training on the way."""
    workdir = tmp_path_factory.mktemp("micro")
    cmd = snakemake_cmd(workdir, "--cores", "2")
    first = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    done = workdir / "results" / "runs" / "a-v1" / "points.csv"
    deadline = time.monotonic() + 240
    while not finished_job(workdir, "results/runs/a-v1/") and time.monotonic() < deadline:
        assert first.poll() is None, "the first workflow run stopped early"
        time.sleep(0.5)
    assert done.exists(), "the first training run never finished"
    os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C does
    first.wait(timeout=60)
    stamp = done.stat().st_mtime_ns
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, stamp, proc


def test_interrupted_run_finishes_without_redoing_finished_runs(finished):
    workdir, stamp, proc = finished
    assert (workdir / "results" / "runs" / "a-v1" / "points.csv").stat().st_mtime_ns == stamp
    assert "output: results/runs/a-v1/" not in proc.stdout + proc.stderr


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
    assert set(planned_jobs(proc.stdout)) == {"fit", "select", "report", "all"}
