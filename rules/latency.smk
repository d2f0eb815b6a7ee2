# Generation latency of every grid and candidate shape, on a randomly initialised model.
# A latency job takes every core the run was given, so no other job runs beside it (threads is
# a function: a command that runs no job, such as `snakemake --report`, then needs no --cores).
# latency.interleave: one job times every shape, trials interleaved, so that a machine whose
# speed drifts between minutes slows all shapes alike; otherwise one job per shape (a cluster's
# dedicated GPU, where a shape added later is timed alone).
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
            shape=lambda wildcards: SHAPES[wildcards.shape],
            protocol=LATENCY,
            sampling=sampling_args(LATENCY),
            max_cv=f"--max-cv {LATENCY['max_cv']}" if LATENCY["max_cv"] else "",
            seed=config["seed"],
        shell:
            "infscale latency --d-model {params.shape.d_model} --n-layers {params.shape.n_layers}"
            " --n-heads {params.shape.n_heads} --vocab-size {params.shape.vocab_size}"
            " --multiple-of {params.shape.multiple_of}"
            " --input-tokens {params.protocol[input_tokens]}"
            " --output-tokens {params.protocol[output_tokens]}"
            " --batch-size {params.protocol[batch_size]} --trials {params.protocol[trials]}"
            " --warmup {params.protocol[warmup]} --dtype {params.protocol[dtype]}"
            " --device {params.protocol[device]} --threads {threads} --seed {params.seed}"
            " --backend {params.protocol[backend]}"
            " --max-position {params.protocol[max_position]}"
            " --max-repeats {params.protocol[max_repeats]} {params.max_cv}"
            " {params.sampling} --out {output} > {log} 2>&1"


# Paper Fig. 3: latency vs n_layers, vs d_model, and vs R at about fixed N. Each sweep's shapes
# are timed interleaved in one job that holds every core.
rule latency_sweep:
    output:
        "results/latency/sweeps/{sweep}.csv",
    log:
        "results/logs/latency/sweep-{sweep}.log",
    benchmark:
        "results/benchmarks/latency_sweep/{sweep}.tsv"
    wildcard_constraints:
        sweep="layers|width|ratio",
    conda:
        "../envs/latency.yaml"
    threads: lambda wildcards: workflow.cores
    params:
        shapes=lambda wildcards: [
            asdict(shape) for shape in sweep_shapes(config, wildcards.sweep)
        ],
        protocol=LATENCY,
        seed=config["seed"],
    script:
        "../workflow/scripts/latency_sweep.py"


rule latency_sweeps:
    input:
        expand("results/latency/sweeps/{sweep}.csv", sweep=SWEEPS),
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


rule latency_all:
    input:
        "results/latency/sweeps.csv",
        "results/latency/throughput.csv",
        "results/latency/model.json",
