# Training: one job per grid run (paper protocol: one run per shape, points read at every
# multiplier boundary; independent: one run per multiplier), and one per selected candidate.
# A job with resources gpus=G > 1 runs G processes under torchrun (train.parallel: ddp or fsdp).
# Checkpoints live in results/runs/<run>/checkpoints/ (deliberately not an output, so a failed
# or preempted job keeps them); the script exits 75 after a SIGTERM/SIGUSR1 checkpoint and a
# rerun resumes.


rule train:
    input:
        tokenizer="results/data/tokenizer",
        train="results/data/train.bin",
        val="results/data/val.bin",
    output:
        model=directory(f"results/runs/{GRID_RUN}/model"),
        points=f"results/runs/{GRID_RUN}/points.csv",
        steps=f"results/runs/{GRID_RUN}/log.jsonl",
    log:
        f"results/logs/train/{GRID_RUN}.log",
    benchmark:
        f"results/benchmarks/train/{GRID_RUN}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        runtime=train_runtime,  # minutes on a cluster, from N·D (rules/common.smk)
    params:
        run=lambda wildcards: RUNS[grid_run_name(wildcards)].to_dict(),
        train=config["train"],
        seq_len=config["data"]["seq_len"],
        rope_theta=config["model"]["rope_theta"],
        norm=config["model"]["norm"],
        checkpoint_dir=lambda wildcards: f"results/runs/{grid_run_name(wildcards)}/checkpoints",
    script:
        "../workflow/scripts/train.py"


use rule train as train_candidate with:
    output:
        model=directory("results/runs/candidates/{name}/model"),
        points="results/runs/candidates/{name}/points.csv",
        steps="results/runs/candidates/{name}/log.jsonl",
    log:
        "results/logs/train/candidates/{name}.log",
    benchmark:
        "results/benchmarks/train/candidates/{name}.tsv"
    params:
        run=lambda wildcards: RUNS[f"candidates/{wildcards.name}"].to_dict(),
        train={**config["train"], **config["select"]["train_overrides"]},
        seq_len=config["data"]["seq_len"],
        rope_theta=config["model"]["rope_theta"],
        norm=config["model"]["norm"],
        checkpoint_dir="results/runs/candidates/{name}/checkpoints",
