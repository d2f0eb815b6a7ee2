# Zero-shot downstream accuracy of every trained model with lm-evaluation-harness.


rule evaluate:
    input:
        model="results/runs/{run}/model",
        tasks="results/data/tasks",
    output:
        "results/eval/{run}.json",
    log:
        "results/logs/eval/{run}.log",
    benchmark:
        "results/benchmarks/eval/{run}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    params:
        eval=config["eval"],
        seed=config["seed"],
    script:
        "../workflow/scripts/evaluate.py"
