# Training: one job per grid run (paper protocol: one run per shape, points read at every
# multiplier boundary; independent: one run per multiplier), and one per selected candidate.
# A job with resources gpus=G > 1 runs G processes under torchrun (train.parallel: ddp or fsdp).
# Checkpoints live in results/runs/<run>/checkpoints/ (deliberately not an output, so a failed
# or preempted job keeps them); the script exits 75 after a SIGTERM/SIGUSR1 checkpoint and a
# rerun resumes. The job never deletes them: remove_checkpoints does, once Snakemake has
# accepted the job's outputs, where `remove_checkpoints` is true (paper.yaml keeps them).


rule train:
    input:
        manifest="results/data/manifest.json",  # the gather: tokenizer and every job's files
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


# After Snakemake accepted a run's outputs (a job downstream of train starts only then), its
# checkpoints go; the marker says so, and reruns this job whenever the run is trained again.
rule remove_checkpoints:
    input:
        model="results/runs/{run}/model",
        points="results/runs/{run}/points.csv",
        steps="results/runs/{run}/log.jsonl",
    output:
        touch("results/runs/{run}/checkpoints.removed"),
    log:
        "results/logs/remove_checkpoints/{run}.log",
    conda:
        "../envs/train.yaml"  # the training job's: rm needs nothing more
    params:
        checkpoints="results/runs/{run}/checkpoints",
    shell:
        "rm -rfv {params.checkpoints} > {log} 2>&1"
