# Training text → tokenizer → packed token windows; the eval tasks' local data.


rule prepare_data:
    output:
        tokenizer=directory("results/data/tokenizer"),
        train="results/data/train.bin",
        val="results/data/val.bin",
        meta="results/data/meta.json",
    params:
        data=config["data"],
        tokenizer=config["tokenizer"],
        cache=CACHE,
        seed=config["seed"],
    conda:
        "../envs/data.yaml"
    log:
        "results/logs/prepare_data.log",
    script:
        "../workflow/scripts/prepare_data.py"


rule prepare_tasks:
    output:
        directory("results/data/tasks"),
    params:
        tasks=config["eval"]["tasks"],
        source=config["eval"]["source"],
        cache=CACHE,
    conda:
        "../envs/eval.yaml"
    log:
        "results/logs/prepare_tasks.log",
    script:
        "../workflow/scripts/prepare_tasks.py"
