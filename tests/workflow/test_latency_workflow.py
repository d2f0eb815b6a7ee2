"""Workflow wiring of the latency lab: sweeps, throughput, model, and the latency source switch."""

from __future__ import annotations

import yaml
from conftest import planned_jobs, snakemake

from infscale.grid import latency_shapes


def dry_run(tmp_path, config: dict, *targets: str) -> dict[str, int]:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", *targets, configfile=configfile)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return planned_jobs(proc.stdout)


def test_latency_targets_are_planned(tmp_path, config):
    jobs = dry_run(tmp_path, config, "latency_all")
    assert jobs["latency_sweep"] == 4  # Fig. 3's three, and gqa
    assert jobs["gqa_speedups"] == 1
    assert jobs["latency_sweeps"] == jobs["latency_throughput"] == jobs["latency_model"] == 1
    assert jobs["latency"] == 1  # the default interleaves every shape in one job
    config["latency"]["interleave"] = False
    shapes = latency_shapes(config)  # every grid shape and every candidate, once
    assert dry_run(tmp_path, config, "latency_all")["latency"] == len(shapes)


def test_interleaved_job_writes_every_shape(tmp_path, config):
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "latency_all", configfile=configfile)
    block = proc.stdout.split("rule latency:\n", 1)[1].split("\n\n", 1)[0]
    outputs = block.split("output: ", 1)[1].split("\n", 1)[0].split(", ")
    expected = [f"results/latency/{label}.json" for label in latency_shapes(config)]
    assert sorted(outputs) == sorted(expected)


def test_predict_source_times_no_candidate(tmp_path, config):
    config["latency"]["interleave"] = False
    config["select"]["latency_source"] = "predict"
    jobs = dry_run(tmp_path, config, "results/select/candidates.csv")
    assert jobs["latency"] == 12  # the grid's shapes only: the model predicts the candidates
    assert jobs["latency_model"] == 1
    assert jobs["latency_sweep"] == 3


def test_measure_top_waits_for_the_shortlist(tmp_path, config):
    config["latency"]["interleave"] = False
    config["select"]["latency_source"] = "measure_top"
    config["select"]["measure_top"] = 3
    jobs = dry_run(tmp_path, config, "results/select/candidates.csv")
    assert jobs["latency_shortlist"] == 1
    assert jobs["latency"] == 12  # the shortlist's measurements are planned once it exists
