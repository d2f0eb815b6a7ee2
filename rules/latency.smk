# Generation latency of every grid and candidate shape, on a randomly initialised model.
# A latency job takes every core the run was given, so no other job runs beside it.


rule latency:
    output:
        "results/latency/{shape}.json",
    log:
        "results/logs/latency/{shape}.log",
    benchmark:
        "results/benchmarks/latency/{shape}.tsv"
    conda:
        "../envs/latency.yaml"
    threads: workflow.cores
    params:
        shape=lambda wildcards: SHAPES[wildcards.shape],
        protocol=config["latency"],
        sampling=sampling_args(config["latency"]),
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
        " {params.sampling} --out {output} > {log} 2>&1"
