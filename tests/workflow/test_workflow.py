"""The Snakemake DAG: planning the paper, and the whole workflow on a micro config."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from conftest import MICRO, REPO, planned_jobs, snakemake

from infscale.report.story import FIGURES, TABLES, report_files


def test_paper_config_plans_31_training_jobs(tmp_path):
    proc = snakemake(tmp_path, "-n", configfile=REPO / "config" / "paper.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert jobs["train"] == 31
    assert jobs["latency"] == 31 + 12
    assert jobs["evaluate"] == 31


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
    assert len(files) == 2 * len(FIGURES) + 2 * len(TABLES) + 2  # + summary.md, story.rst
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


def test_snakemake_html_report_holds_every_figure(micro_report_html):
    page = micro_report_html.read_text()
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
    # downstream and latency_trained follow select: their inputs are the candidates the select
    # checkpoint picks
    planned = set(planned_jobs(proc.stdout))
    expected = {"fit", "choose_law", "select", "downstream", "latency_trained", "report", "all"}
    assert planned == expected
