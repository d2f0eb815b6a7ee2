# Training text → tokenizer → packed token windows; the eval tasks' local data.


rule prepare_data:
    output:
        tokenizer=directory("results/data/tokenizer"),
        train="results/data/train.bin",
        val="results/data/val.bin",
        meta="results/data/meta.json",
    log:
        "results/logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    conda:
        "../envs/data.yaml"
    params:
        data=config["data"],
        tokenizer=config["tokenizer"],
        cache=CACHE,
        seed=config["seed"],
    script:
        "../workflow/scripts/prepare_data.py"


rule prepare_tasks:
    output:
        directory("results/data/tasks"),
    log:
        "results/logs/prepare_tasks.log",
    benchmark:
        "results/benchmarks/prepare_tasks.tsv"
    conda:
        "../envs/eval.yaml"
    params:
        tasks=config["eval"]["tasks"],
        source=config["eval"]["source"],
        cache=CACHE,
    script:
        "../workflow/scripts/prepare_tasks.py"
