# Training: one job per grid run (paper protocol: one run per shape, points read at every
# multiplier boundary; independent: one run per multiplier), and one per selected candidate.
# A job with resources gpus=G > 1 runs G processes under torchrun (train.parallel: ddp or fsdp).
# Checkpoints live in results/runs/<run>/checkpoints/ (deliberately not an output, so a failed
# or preempted job keeps them); the script exits 75 after a SIGTERM/SIGUSR1 checkpoint and a
# rerun resumes. The job never deletes them: remove_checkpoints does, once Snakemake has
# accepted the job's outputs, where `remove_checkpoints` is true (paper.yaml keeps them).
#
# Resources (rules/common.smk, from infscale.train.sizing at parse time; the launcher reads them):
#   nodes          nodes of the job (sbatch --nodes)
#   gpus           processes per node: torchrun's --nproc-per-node
#   gpu            GPUs in all, with the profile's gpu_model (sbatch --gpus=a100:K); absent
#                  where cluster.device is cpu (a rehearsal: processes on CPUs, no GPU request)
#   tasks          one launcher task per node (sbatch --ntasks); 2 on a one-node job, since the
#                  plugin refuses mpi with one task (the launcher starts one; the CPUs are split)
#   mpi            "srun" on every training job: the plugin then runs the script in the batch
#                  shell without its `srun -n1` wrapper, and the script starts one torchrun per
#                  node as a job step (srun --ntasks=nodes --ntasks-per-node=1) with the c10d
#                  rendezvous on the allocation's first host
#   tasks_per_gpu  0 on GPUs: else the plugin turns tasks into --ntasks-per-gpu
#   runtime, cpus_per_task (the node's CPUs over its tasks), mem_mb (per node)
# Signal (launcher, train/launch.py): --signal=USR1@300 reaches the processes of the job steps,
# so the ranks (which save at the end of the step and exit 75), and not the inner Snakemake in
# the batch shell; without mpi it would run inside the plugin's `srun -n1` step, and SIGUSR1
# would end it (Snakemake installs no SIGUSR1 handler) before the ranks save.
# A run longer than cluster.time_limit_hours takes several jobs: each ends at the time-limit
# signal with a checkpoint and exit 75, and `retries` (the longest run's jobs - 1, plus 2 for
# failures) resubmits it until it is done. params.train carries the planned micro-batch,
# activation checkpointing and parallel layout, so the job trains as it was sized.


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
    priority: 5  # after the data stage, before the latency jobs: the grid is the longest path
    retries: TRAIN_RETRIES
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        runtime=lambda wildcards: train_plan(wildcards).runtime_minutes,
        nodes=lambda wildcards: train_plan(wildcards).nodes,
        gpus=lambda wildcards: train_plan(wildcards).per_node,
        gpu=train_gpu_request,
        tasks=train_tasks,
        mpi=train_mpi,
        tasks_per_gpu=train_tasks_per_gpu,
        cpus_per_task=train_cpus_per_task,
        mem_mb=lambda wildcards: train_plan(wildcards).mem_mb,
    params:
        run=lambda wildcards: RUNS[grid_run_name(wildcards)].to_dict(),
        train=train_params,
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
        train=train_params,
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
