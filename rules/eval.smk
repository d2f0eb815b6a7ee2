# Zero-shot downstream accuracy of every trained model with lm-evaluation-harness.


rule evaluate:
    input:
        model="results/runs/{run}/model",
        tasks="results/data/tasks",
    output:
        "results/eval/{run}.json",
    params:
        eval=config["eval"],
        seed=config["seed"],
    conda:
        "../envs/eval.yaml"
    log:
        "results/logs/eval/{run}.log",
    threads: 1
    script:
        "../workflow/scripts/evaluate.py"
