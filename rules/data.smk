# Training text → tokenizer (once) → tokenization jobs (the scatter: at most data.jobs, each its
# own token files) → results/data/manifest.json (the gather, all training reads); the eval tasks'
# local data.
from infscale.data.shards import data_jobs, job_cap, job_name
from infscale.hub import hub_needs, local_paths

DATA_JOBS = data_jobs(config["data"])  # source shards per job (infscale.data.shards)
# What the config reads from the Hugging Face hub (infscale.hub): staged once, by stage_hub,
# into the hub mirror; the jobs below read the mirror (their scripts find it in the config:
# moving it reruns nothing) with the hub switched off. An ancient input: restaging (a new eval
# task, say) does not rerun the data stage.
HUB_NEEDS = hub_needs(config)
HUB_LOCAL = local_paths(config)
HUB_STAGED = [ancient("results/hub/staged.json")] if HUB_NEEDS else []


# Where Snakemake runs (the login node, which has the network), or as one job on a partition
# with network (see README, "On a SLURM cluster"): the only rule that reaches the hub.
rule stage_hub:
    output:
        "results/hub/staged.json",
    log:
        "results/logs/stage_hub.log",
    benchmark:
        "results/benchmarks/stage_hub.tsv"
    priority: 20
    conda:
        "../envs/eval.yaml"
    params:
        needs=HUB_NEEDS.summary(),
        hub=HUB_LOCAL,
        download=config["hub"]["download"],
    script:
        "../workflow/scripts/stage_hub.py"


rule tokenizer:
    input:
        hub=HUB_STAGED,
    output:
        directory("results/data/tokenizer"),
    log:
        "results/logs/data/tokenizer.log",
    benchmark:
        "results/benchmarks/data/tokenizer.tsv"
    priority: 10  # the data stage first: every training job waits on it
    conda:
        "../envs/data.yaml"
    params:
        data=config["data"],
        tokenizer=config["tokenizer"],
        cache=CACHE,
        seed=config["seed"],
    script:
        "../workflow/scripts/tokenizer.py"


rule tokenize:
    input:
        tokenizer="results/data/tokenizer",
        hub=HUB_STAGED,
    output:
        train="results/data/shards/{job}.train.bin",
        val="results/data/shards/{job}.val.bin",
        meta="results/data/shards/{job}.json",
    log:
        "results/logs/data/tokenize/{job}.log",
    benchmark:
        "results/benchmarks/data/tokenize/{job}.tsv"
    wildcard_constraints:
        job="[0-9]{4}",
    priority: 10
    conda:
        "../envs/data.yaml"
    threads: 1
    params:
        data=config["data"],
        shards=lambda wildcards: DATA_JOBS[int(wildcards.job)],
        max_windows=job_cap(config["data"], len(DATA_JOBS)),
        cache=CACHE,
        seed=config["seed"],
    script:
        "../workflow/scripts/tokenize.py"


rule data_manifest:
    input:
        tokenizer="results/data/tokenizer",
        jobs=[f"results/data/shards/{job_name(i)}.json" for i in range(len(DATA_JOBS))],
    output:
        "results/data/manifest.json",
    log:
        "results/logs/data/manifest.log",
    priority: 10
    conda:
        "../envs/data.yaml"
    params:
        data=config["data"],
    script:
        "../workflow/scripts/data_manifest.py"


# The gather only sums a few JSON files, staging needs the network, and the eval tasks are
# written from what staging fetched (seconds, no model): they run where Snakemake runs.
localrules:
    data_manifest,
    stage_hub,
    prepare_tasks,


rule prepare_tasks:
    input:
        hub=HUB_STAGED if config["eval"]["source"] == "hub" else [],
    output:
        directory("results/data/tasks"),
    log:
        "results/logs/prepare_tasks.log",
    benchmark:
        "results/benchmarks/prepare_tasks.tsv"
    priority: 10  # with the data stage: every evaluation waits on it
    conda:
        "../envs/eval.yaml"
    params:
        tasks=config["eval"]["tasks"],
        source=config["eval"]["source"],
        cache=CACHE,
    script:
        "../workflow/scripts/prepare_tasks.py"
