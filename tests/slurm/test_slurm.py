"""The SLURM path: the A100 profile's plans of config/paper.yaml and config/architecture.yaml
(no SLURM needed), and a failing job on the local test cluster (tests/slurm_jobs.py). The whole
workflow through sbatch is tests/slurm/test_rehearsal.py.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_jobs import (
    MODEL_RULES,
    REPO,
    SNAKEMAKE,
    TEST_PROFILE,
    finished_states,
    snakemake,
    submitted,
)

from infscale.grid import run_table


def planned_training(workdir: Path, configfile: Path) -> tuple[str, list[str]]:
    """`snakemake -n` through profiles/slurm (needs no SLURM): the plan, and each training
    job's block of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    profile = str(REPO / "profiles" / "slurm")
    done = snakemake(
        workdir, "-n", "--profile", profile, f"--configfile={configfile}", timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    blocks = re.findall(r"^rule train:\n(.*?)(?=^\S|\n\n)", done.stdout, re.M | re.S)
    return done.stdout, blocks


def test_paper_plan_requests_gpus_and_runtimes_growing_with_compute(tmp_path):
    """`snakemake -n --profile profiles/slurm` needs no SLURM and shows each job's request."""
    paper = REPO / "config" / "paper.yaml"
    plan, blocks = planned_training(tmp_path, paper)
    assert len(blocks) == 31
    runs = run_table(yaml.safe_load(paper.read_text()))
    by_compute = []
    for block in blocks:
        name = re.search(r"results/runs/(\S+)/points\.csv", block).group(1)
        resources = re.search(r"resources: (.*)", block).group(1)
        assert "gpu_model=a100" in resources, resources
        runtime = int(re.search(r"\bruntime=(\d+)", resources).group(1))
        gpus = int(re.search(r"\bgpu=(\d+)", resources).group(1))
        run = runs[name]
        by_compute.append((run.shape.n_params * run.total_tokens, gpus * runtime))
    # sized from the cluster section: within 48 h, GPU-minutes growing with compute
    by_compute.sort()
    gpu_minutes = [minutes for _, minutes in by_compute]
    assert max(m for _, m in by_compute) > 10 * gpu_minutes[0], by_compute
    assert gpu_minutes[-1] == max(gpu_minutes), by_compute
    # no job groups (profiles/slurm/config.yaml: they crashed Snakemake in the rehearsal)
    assert "Group job" not in plan
    # The data stage's scatter: data.jobs CPU jobs, and training waits on their gather only.
    config = yaml.safe_load(paper.read_text())
    tokenize = re.findall(r"^rule tokenize:\n(.*?)(?=^\S|\n\n)", plan, re.M | re.S)
    assert len(tokenize) == config["data"]["jobs"] >= 64
    for block in tokenize:
        resources = re.search(r"resources: (.*)", block).group(1)
        assert "slurm_partition=cpu" in resources and "cpus_per_task=8" in resources, resources
        assert "gpu" not in resources, resources
    for block in blocks:
        assert re.search(r"input: (.*)", block).group(1) == "results/data/manifest.json", block


def _fresh_clone(where: Path) -> Path:
    """The files a clone of this tree gets (tracked and untracked-but-not-ignored; links kept)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source, target = REPO / name, where / name
        if not source.is_symlink() and not source.exists():  # deleted, not yet committed
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return where


def test_profile_slurm_as_the_user_types_it_in_a_fresh_clone(tmp_path):
    """`snakemake --profile slurm ...` in the clone's root: Snakemake finds ./slurm, a link to
    profiles/slurm (no copy to keep in step), without ~/.config/snakemake."""
    clone = _fresh_clone(tmp_path / "clone")
    assert (clone / "slurm").is_symlink()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = "snakemake --profile slurm --configfile config/paper.yaml -n"
    done = subprocess.run(
        ["timeout", "-s", "INT", "120", *command.split()],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(re.findall(r"^rule train:", done.stdout, re.M)) == 31
    # the profile's settings applied: SLURM resources on every training job
    assert "gpu_model=a100" in done.stdout and "slurm_partition=cpu" in done.stdout


FAILING = 'rule fail:\n    output: "never"\n    shell: "echo going down; exit 3"\n'


def test_failed_job_is_reported_and_exit_is_nonzero(cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING)
    command = ["timeout", "-s", "INT", "120", SNAKEMAKE, "-s", str(tmp_path / "Snakefile")]
    command += ["-d", str(tmp_path), "--profile", str(TEST_PROFILE)]
    done = subprocess.run(command, cwd=tmp_path, env=cluster, capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode not in (0, 124), output
    assert "Error in rule fail" in output
    jobids = submitted(output)
    assert len(jobids) == 1, output
    assert finished_states(cluster, jobids)[jobids[0]] == "FAILED"


def test_architecture_study_plans_its_gqa_and_mlp_variants_on_gpus(tmp_path):
    """config/architecture.yaml (the follow-up's kind of study) is planned, not run, here: each
    size level's GQA and MLP-ratio variants are training jobs on a GPU, and the throughput
    objective's measurement is in the plan."""
    study = REPO / "config" / "architecture.yaml"
    plan, blocks = planned_training(tmp_path, study)
    assert len(blocks) == 24
    config = yaml.safe_load(study.read_text())
    runs = run_table(config)
    labels = set()
    for block in blocks:
        name = re.search(r"results/runs/(\S+)/points\.csv", block).group(1)
        assert re.search(r"\bgpu=\d+", re.search(r"resources: (.*)", block).group(1))
        labels.add(runs[name].shape.label)
    assert sum("-kv" in label for label in labels) == 9  # GQA 2, 4, 8 at each of 3 levels
    assert sum("-kv" not in label and "-f" in label for label in labels) == 12  # widths, r
    assert "rule latency_candidate_throughput:" in plan


# The rules that run on the login node (localrules; the rehearsal checks that they never go
# through sbatch): the plan, a dry run, shows them as any other.
LOCAL_RULES = {
    "all",
    "remove_checkpoints",
    "collect_points",
    "fit",
    "predictions",
    "compare_laws",
    "downstream",
    "latency_model",
    "latency_sweeps",
    "latency_all",
    "candidates",
    "latency_shortlist",
    "select",
    "winner",
    "report",
    "choose_law",
    "fit_curves",
    "gqa_speedups",
    "predicted_accuracy",
    "data_manifest",
    "prepare_tasks",
}


@pytest.mark.parametrize("name", ["paper.yaml", "architecture.yaml"])
def test_every_planned_job_is_sized_within_the_cluster(tmp_path, name):
    """Walk the SLURM dry-run plan: no job that loads a model left at the default request (no
    GPU), no job whose threads exceed its CPUs or whose wall time exceeds the limit, and every
    training job asks for what its memory model and sizing say."""
    from infscale.checks import load_config
    from infscale.train.memory import usable_gb
    from infscale.train.sizing import size_training

    path = REPO / "config" / name
    plan, _ = planned_training(tmp_path, path)
    config = load_config(path, REPO / "config" / "schema.yaml")
    cluster, runs = config["cluster"], run_table(config)
    limit_minutes = cluster["time_limit_hours"] * 60
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\n\n)", plan, re.M | re.S)
    assert blocks
    for rule, block in blocks:
        if rule in LOCAL_RULES:
            continue
        resources = dict(
            item.split("=", 1) for item in re.search(r"resources: (.*)", block).group(1).split(", ")
        )
        threads = int(re.search(r"threads: (\d+)", block).group(1)) if "threads:" in block else 1
        assert threads <= int(resources["cpus_per_task"]), (rule, block)
        assert int(resources["runtime"]) <= limit_minutes, (rule, block)
        if rule in MODEL_RULES:
            assert "gpu" in resources and "gpu_model" in resources, (rule, block)
        if rule == "train":
            run = runs[re.search(r"results/runs/(\S+)/points\.csv", block).group(1)]
            sized = size_training(
                run.shape, run.total_tokens, config["train"], config["data"]["seq_len"], cluster
            )
            assert sized.mem_gb <= usable_gb(cluster["gpu_memory_gb"], cluster["memory_headroom"])
            assert int(resources["mem_mb"]) == sized.mem_mb
            assert int(resources["gpu"]) == sized.gpus and int(resources["nodes"]) == sized.nodes
            # training is its own job step (the time-limit signal reaches the ranks only): the
            # plugin's mpi path, which needs 2 tasks or more, and no --ntasks-per-gpu
            assert resources["mpi"] == "srun", block
            assert int(resources["tasks"]) == max(2, sized.nodes), block
            assert resources["tasks_per_gpu"] == "0", block
    assert "rule latency_candidate_throughput:" in plan
