# Generation latency of every grid and candidate shape, on a randomly initialised model.
# A latency job takes every core the run was given, so no other job runs beside it (threads is
# a function: a command that runs no job, such as `snakemake --report`, then needs no --cores).
# latency.interleave: one job times every shape, trials interleaved, so that a machine whose
# speed drifts between minutes slows all shapes alike; otherwise one job per shape (a cluster's
# dedicated GPU, where a shape added later is timed alone). Both run the same script: the
# config's latency section becomes the protocol in one place (infscale.latency.protocol).
from dataclasses import asdict

if LATENCY["interleave"]:

    rule latency:
        output:
            latency_files(),
        log:
            "results/logs/latency/shapes.log",
        benchmark:
            "results/benchmarks/latency/shapes.tsv"
        conda:
            "../envs/latency.yaml"
        threads: lambda wildcards: workflow.cores
        params:
            shapes=[asdict(SHAPES[label]) for label in latency_labels()],
            protocol=LATENCY,
            seed=config["seed"],
        script:
            "../workflow/scripts/latency_shapes.py"

else:

    rule latency:
        output:
            "results/latency/{shape}.json",
        log:
            "results/logs/latency/{shape}.log",
        benchmark:
            "results/benchmarks/latency/{shape}.tsv"
        conda:
            "../envs/latency.yaml"
        threads: lambda wildcards: workflow.cores
        params:
            shapes=lambda wildcards: [asdict(SHAPES[wildcards.shape])],
            protocol=LATENCY,
            seed=config["seed"],
        script:
            "../workflow/scripts/latency_shapes.py"


# Paper Fig. 3: latency vs n_layers, vs d_model, and vs R at about fixed N; and gqa: an MHA
# shape and its equal-N grouped-query twins at several batch sizes (infscale.latency.sweeps).
# Each sweep's items are timed interleaved in one job that holds every core.
rule latency_sweep:
    output:
        "results/latency/sweeps/{sweep}.csv",
    log:
        "results/logs/latency/sweep-{sweep}.log",
    benchmark:
        "results/benchmarks/latency_sweep/{sweep}.tsv"
    wildcard_constraints:
        sweep="|".join(SWEEPS),
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        timed=lambda wildcards: sweep_items(config, wildcards.sweep),
        protocol=lambda wildcards: {**LATENCY, **sweep_lengths(config, wildcards.sweep)},
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_sweep.py"


# The gqa sweep's gain: each twin's tokens/s over the MHA shape's at the same batch size.
rule gqa_speedups:
    input:
        "results/latency/sweeps/gqa.csv",
    output:
        "results/latency/gqa_speedups.csv",
    log:
        "results/logs/latency/gqa_speedups.log",
    benchmark:
        "results/benchmarks/latency_gqa_speedups.tsv"
    conda:
        "../envs/latency.yaml"
    script:
        "../workflow/scripts/gqa_speedups.py"


rule latency_sweeps:
    input:
        expand("results/latency/sweeps/{sweep}.csv", sweep=FIG3_SWEEPS),
    output:
        table="results/latency/sweeps.csv",
        fits="results/latency/sweep_fits.json",
    log:
        "results/logs/latency/sweeps.log",
    benchmark:
        "results/benchmarks/latency_sweeps.tsv"
    conda:
        "../envs/latency.yaml"
    script:
        "../workflow/scripts/latency_sweeps.py"


# Paper Fig. 4: tokens per second vs batch size for one shape, batch sizes interleaved.
rule latency_throughput:
    output:
        "results/latency/throughput.csv",
    log:
        "results/logs/latency/throughput.log",
    benchmark:
        "results/benchmarks/latency_throughput.tsv"
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        shape=asdict(throughput_shape(config)),
        batch_sizes=latency_settings(config)["throughput"]["batch_sizes"],
        protocol=LATENCY,
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_throughput.py"


# Every candidate's tokens per second under the follow-up's throughput protocol (the throughput
# objective's measure): batch sizes towards saturation, each the mean of its runs, the
# candidates interleaved in one job (infscale.latency.throughput).
rule latency_candidate_throughput:
    output:
        table="results/latency/candidate_throughput.csv",
        batches="results/latency/candidate_throughput_batches.csv",
    log:
        "results/logs/latency/candidate_throughput.log",
    benchmark:
        "results/benchmarks/latency_candidate_throughput.tsv"
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        shapes=[
            asdict(SHAPES[label])
            for label in sorted({run.shape.label for run in candidate_runs(config)})
        ],
        protocol={**LATENCY, **throughput_settings(latency_settings(config))},
        batch_sizes=latency_settings(config)["throughput_protocol"]["batch_sizes"],
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_candidate_throughput.py"


# HF generate and vLLM (in the vLLM environment, latency.python) on the same equal-N sweep
# across R at one head size (latency.engines; infscale.latency.engines). Not part of `all`: it
# needs `make vllm-env`; ask for results/latency/engines.csv.
rule latency_engines:
    output:
        table="results/latency/engines.csv",
        summary="results/latency/engines.json",
    log:
        "results/logs/latency/engines.log",
    benchmark:
        "results/benchmarks/latency_engines.tsv"
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        shapes=[asdict(shape) for shape in engine_shapes(config)],
        protocol=LATENCY,
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_engines.py"


# The candidates' measured throughput against the analytic models (infscale.latency.analytic):
# what a CPU-only user can trust; a shape measured out of the memory model's order is flagged.
rule latency_crosscheck:
    input:
        "results/latency/candidate_throughput.csv",
    output:
        table="results/latency/crosscheck.csv",
        summary="results/latency/crosscheck.json",
    log:
        "results/logs/latency/crosscheck.log",
    benchmark:
        "results/benchmarks/latency_crosscheck.tsv"
    conda:
        "../envs/latency.yaml"
    params:
        z=config["select"]["timing_z"],
    script:
        "../workflow/scripts/latency_crosscheck.py"


# T(shape) fitted on every measured shape, with its leave-one-out error; in predict mode the
# selection reads the candidates' latency from it.
rule latency_model:
    input:
        measured=model_latency_files(),
        sweeps="results/latency/sweeps.csv",
    output:
        "results/latency/model.json",
    log:
        "results/logs/latency/model.log",
    benchmark:
        "results/benchmarks/latency_model.tsv"
    conda:
        "../envs/latency.yaml"
    script:
        "../workflow/scripts/latency_model.py"


# The trained candidates timed from their checkpoints, each interleaved with a random-init twin of
# its architecture in one job; trained.csv says whether the weights changed the time beyond the
# noise (infscale.latency.trained).
rule latency_trained:
    input:
        lambda wc: candidate_files("results/runs/candidates/{name}/model", wc),
    output:
        "results/latency/trained.csv",
    log:
        "results/logs/latency/trained.log",
    benchmark:
        "results/benchmarks/latency_trained.tsv"
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        shapes={run.variant: asdict(run.shape) for run in candidate_runs(config)},
        protocol=LATENCY,
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_trained.py"


rule latency_all:
    input:
        "results/latency/sweeps.csv",
        "results/latency/gqa_speedups.csv",
        "results/latency/throughput.csv",
        "results/latency/crosscheck.csv",
        "results/latency/model.json",
