"""The Snakemake DAG: planning the paper, and the whole workflow on a micro config."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import EMPTY_IN_MICRO, MICRO, REPO, planned_jobs, snakemake

from infscale.checks import load_config
from infscale.outputs import COMPUTED, FIGURES, TABLES, report_files
from infscale.provenance import config_hash
from infscale.select.winner import VERDICTS
from infscale.train.steplog import last_step, step_records


def test_paper_config_plans_31_training_jobs(tmp_path):
    proc = snakemake(tmp_path, "-n", configfile=REPO / "config" / "paper.yaml")
    assert proc.returncode == 0, proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert jobs["train"] == 31
    assert jobs["latency"] == 31 + 12
    assert jobs["evaluate"] == 31
    assert "remove_checkpoints" not in jobs  # paper.yaml keeps them: remove_checkpoints false


def test_interrupted_run_finishes_without_redoing_finished_runs(finished):
    workdir, stamps, proc = finished
    for run, stamp in stamps.items():
        assert (workdir / "results" / "runs" / run / "points.csv").stat().st_mtime_ns == stamp
        assert f"output: results/runs/{run}/model" not in proc.stdout + proc.stderr


def test_outputs_of_every_stage(finished):
    workdir, _, _ = finished
    results = workdir / "results"
    points = pd.read_csv(results / "fit" / "points.csv")
    assert len(points) == 8  # a: two shapes × two boundaries; b, c: two shapes × one
    assert set(points.columns) >= {"N", "D", "loss", "val_loss", "d_model", "n_layers", "fit_all"}
    assert (points["D"] >= points["multiplier"] * points["N"]).all()
    model = results / "runs" / "a-v1" / "model"
    assert (model / "model.safetensors").exists()
    last = last_step(results / "runs" / "a-v1" / "log.jsonl")
    assert last["tokens"] >= 2 * points.loc[points["run"] == "a-v1", "N"].iloc[0]
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
    predictions = pd.read_csv(results / "fit" / "predictions.csv")
    fits = {("chinchilla", "all"), ("inference", "all")}
    assert set(zip(predictions["law"], predictions["fit_set"], strict=True)) == fits
    assert len(predictions) == 2 * (8 + 3)  # every grid point and the three trained candidates'
    scores = pd.read_csv(results / "fit" / "fit_sets.csv")
    assert set(zip(scores["law"], scores["fit_set"], strict=True)) == fits
    assert (scores["n_test"] == 11).all() and (scores["n_fit"] == 8).all()
    for path in COMPUTED.values():  # what the stages computed for the report
        assert (workdir / path).is_file(), path
    spearman = pd.read_csv(results / "fit" / "spearman.csv")
    assert set(zip(spearman["law"], spearman["fit_set"], strict=True)) == fits
    compute = pd.read_csv(results / "fit" / "curves" / "points.csv")
    assert len(compute) == 8 + 3
    assert np.allclose(compute["C"], 6 * compute["N"] * compute["D"], rtol=1e-9, atol=0)
    summary = (results / "report" / "summary.md").read_text()
    assert all(name in summary for name in chosen)
    winner = json.loads((results / "select" / "winner.json").read_text())
    assert winner["winner"] in {*chosen, "c1"} and winner["baseline"] == "c1"
    assert winner["verdict"] in VERDICTS
    assert f"Winner: {winner['winner']}, average accuracy {winner['accuracy']:.3f}" in summary


def test_every_result_json_carries_the_config_hash_the_report_shows(finished):
    """Including the fits ``infscale fit`` makes for the rules (fit, choose_law) and tasks.json."""
    workdir, _, _ = finished
    results = workdir / "results"
    provenance = pd.read_csv(report_files(results / "report")["provenance_csv"])
    shown = provenance.set_index("item")["value"]["config_hash"]
    assert shown == config_hash(load_config(MICRO, REPO / "config" / "schema.yaml"))
    made = [
        results / "data" / "manifest.json",
        # the tokenization jobs' sidecars (each token file's *.meta.json is part of its format)
        *(p for p in (results / "data" / "shards").glob("*.json") if ".meta." not in p.name),
        results / "data" / "tasks" / "tasks.json",
        *(results / "fit").glob("*.json"),
        *(results / "latency").glob("*.json"),
        *(results / "eval").rglob("*.json"),
        *(results / "select").glob("*.json"),
    ]
    assert {"chosen.json", "tasks.json", "budgets.json", "manifest.json"} <= {p.name for p in made}
    for path in made:
        stamp = json.loads(path.read_text())["provenance"]
        assert (stamp["config_hash"], stamp["config_hash_of"]) == (shown, "workflow config"), path


def test_report_has_every_figure_and_table(finished):
    workdir, _, _ = finished
    report = workdir / "results" / "report"
    files = report_files(report)
    assert len(files) == 2 * len(FIGURES) + 2 * len(TABLES) + 2  # + summary.md, story.rst
    for name in FIGURES:
        assert files[f"{name}_png"].read_bytes().startswith(b"\x89PNG"), name
        assert "</svg>" in files[f"{name}_svg"].read_text(), name
    for name in TABLES:
        empty = name in EMPTY_IN_MICRO
        assert (len(pd.read_csv(files[f"{name}_csv"])) > 0) != empty, name
        assert files[f"{name}_html"].read_text().startswith("<!DOCTYPE html>"), name
    for name, says in EMPTY_IN_MICRO.items():
        assert says in files[f"{name}_html"].read_text(), name
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


def test_no_checkpoints_and_no_shared_eval_cache_are_left_after_the_run(finished):
    workdir, _, _ = finished
    results = workdir / "results"
    runs = sorted(model.parent for model in results.glob("runs/**/model"))
    assert len(runs) >= 6 + 2 and any(run.parent.name == "candidates" for run in runs)
    for run in runs:
        assert (run / "checkpoints.removed").is_file() and not (run / "checkpoints").exists()
    assert not list(results.glob("eval/**/.hf-cache"))  # each eval job had its own, removed


@pytest.mark.slow
def test_checkpoints_outlive_the_training_job_and_go_only_with_remove_checkpoints(
    finished, tmp_path
):
    """One run trained again (it checkpoints at its last step): the checkpoint is still there
    after Snakemake accepted the job, and goes when remove_checkpoints, downstream of it, runs."""
    workdir, _, _ = finished
    copy = tmp_path / "micro"
    shutil.copytree(workdir, copy, symlinks=True)
    run = "results/runs/a-v1"
    # the target first: --forcerun takes every rule name after it
    trained = snakemake(copy, f"{run}/model", "--cores", "2", "--forcerun", "train")
    assert trained.returncode == 0, trained.stderr[-3000:]
    jobs = trained.stdout + trained.stderr
    assert "rule train:" in jobs and "rule remove_checkpoints:" not in jobs
    assert [p.name for p in (copy / run / "checkpoints").glob("step-*")] == ["step-00000186"]
    removed = snakemake(copy, "--cores", "1", f"{run}/checkpoints.removed")
    assert removed.returncode == 0, removed.stderr[-3000:]
    jobs = removed.stdout + removed.stderr
    assert "rule train:" not in jobs and "rule remove_checkpoints:" in jobs
    assert not (copy / run / "checkpoints").exists()
    log = (copy / "results" / "logs" / "remove_checkpoints" / "a-v1.log").read_text()
    assert f"removed directory '{run}/checkpoints/step-00000186'" in log


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
    expected = {
        "fit",
        "choose_law",
        "predictions",
        "fit_curves",
        "select",
        "downstream",
        "latency_trained",
        "winner",
        "predicted_accuracy",
        "report",
        "all",
    }
    assert planned == expected


def test_training_runs_write_tensorboard_events_equal_to_their_log(finished):
    from tensorboard.backend.event_processing import event_accumulator

    workdir, _, _ = finished
    run = workdir / "results" / "runs" / "a-v1"
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    steps = step_records(run / "log.jsonl")
    losses = [(s["step"], float(np.float32(s["loss"]))) for s in steps]
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == losses
    val = [(s["step"], float(np.float32(s["val_loss"]))) for s in steps if "val_loss" in s]
    assert len(val) == 2  # the two multiplier boundaries of a-v1
    assert [(e.step, e.value) for e in acc.Scalars("val/loss")] == val
