"""The SLURM path: the A100 profile's plan, and real sbatch runs on a local test cluster.

The cluster (tests/slurm/start.sh: Debian's slurmctld, slurmd and munge, one loopback-only node,
no slurmdbd) is started once for this module and stopped at its end. Without root or apt-get,
where SLURM is not installed already, the cluster tests skip and say why.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infscale.grid import run_table

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = REPO / "tests" / "slurm"
TEST_PROFILE = SLURM_DIR / "profile"
SLURM_CONFIG = REPO / "tests" / "configs" / "slurm.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, *args: str, timeout: int, env=None):
    """The workflow in ``workdir``, ended by SIGINT after ``timeout`` s (SIGTERM would hang)."""
    command = ["timeout", "-s", "INT", str(timeout), SNAKEMAKE]
    command += ["-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, check=False
    )


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
    # Aggregation runs on the login node; latency and evaluation go out in groups.
    assert "Group job latency" in plan and "Group job evaluate" in plan
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


def _cannot_start_slurm() -> str | None:
    have = all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged"))
    if have and os.geteuid() == 0:
        return None
    if os.geteuid() != 0:
        return "the SLURM test cluster needs root (to start munged and slurmd)"
    if not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The environment of a running test cluster (SLURM_CONF set); stopped afterwards."""
    reason = _cannot_start_slurm()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(
        [str(SLURM_DIR / "start.sh"), str(state)], capture_output=True, text=True, check=False
    )
    if started.returncode == 3:  # could not install: not this machine kind
        pytest.skip(started.stderr.strip())
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        env = dict(os.environ, SLURM_CONF=str(state / "slurm.conf"))
        yield env
    finally:
        subprocess.run([str(SLURM_DIR / "stop.sh"), str(state)], check=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One work directory for the training tests, so the data are prepared once."""
    return tmp_path_factory.mktemp("slurm-run")


FAILING = 'rule fail:\n    output: "never"\n    shell: "echo going down; exit 3"\n'


@pytest.fixture(scope="module")
def failing_run(cluster, tmp_path_factory):
    """A workflow whose one job fails, started at once so that it runs beside the training."""
    where = tmp_path_factory.mktemp("slurm-fail")
    (where / "Snakefile").write_text(FAILING)
    command = ["timeout", "-s", "INT", "120", SNAKEMAKE, "-s", str(where / "Snakefile")]
    command += ["-d", str(where), "--profile", str(TEST_PROFILE)]
    proc = subprocess.Popen(
        command, cwd=where, env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def submitted(output: str) -> list[str]:
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def finished_states(env, jobids) -> dict[str, str]:
    """Final states from the job completion log (`sacct -c`: there is no slurmdbd)."""
    done = subprocess.run(
        ["sacct", "-c", "-n", "-P", "-o", "JobID,State", "-j", ",".join(jobids)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("|")[:2] for line in done.stdout.splitlines() if "|" in line)


def test_training_runs_through_sbatch(cluster, workdir, failing_run):
    targets = [f"results/runs/a-{v}/points.csv" for v in ("v1", "v2")]
    done = snakemake(
        workdir,
        *targets,
        "--profile",
        str(TEST_PROFILE),
        "--configfile",
        str(SLURM_CONFIG),
        timeout=600,  # a hang guard: three job levels before training (tokenizer, tokenize, gather)
        env=cluster,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for target in targets:
        assert (workdir / target).stat().st_size > 0
        # two processes (gloo, DDP) over two SLURM tasks on the two nodes, through srun
        start = _records((workdir / target).with_name("log.jsonl"))[0]
        assert (start["event"], start["processes"], start["parallel"]) == ("start", 2, "ddp")
    jobids = submitted(output)
    # the tokenizer, two tokenization jobs side by side, then two training runs (the gather
    # runs where Snakemake does)
    assert len(jobids) == 5, output
    assert output.count("rule tokenize:") == 2, output
    assert set(finished_states(cluster, jobids).values()) == {"COMPLETED"}
    # squeue still lists them (MinJobAge), none pending or running
    queue = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %T", "-j", ",".join(jobids)],
        env=cluster,
        capture_output=True,
        text=True,
        check=False,
    )
    assert queue.returncode == 0
    assert all(line.endswith("COMPLETED") for line in queue.stdout.splitlines()), queue.stdout


def test_failed_job_is_reported_and_exit_is_nonzero(cluster, failing_run):
    output = failing_run.communicate(timeout=130)[0].decode()
    assert failing_run.returncode not in (0, 124), output
    assert "Error in rule fail" in output
    jobids = submitted(output)
    assert len(jobids) == 1, output
    assert finished_states(cluster, jobids)[jobids[0]] == "FAILED"


SIGNAL_AFTER = 150  # steps: the signal comes mid-run (a-r trains about 1,250), none saved before


def _records(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_time_limit_signal_saves_the_current_step_and_the_retry_resumes_there(cluster, workdir):
    """SLURM's time-limit warning, as `--signal=USR1@300` sends it (to every process of the job's
    steps, not the batch shell), reaches the ranks of a two-node FSDP run (one srun task per
    node, torchrun's c10d rendezvous on the first host): they write one checkpoint at the end of
    the current step, the job exits 75, and Snakemake's retry resumes at exactly that step.
    Periodic checkpoints are off (checkpoint_every 0), so only the signal can have saved."""
    target = "results/runs/a-r/points.csv"
    command = ["timeout", "-s", "INT", "400", SNAKEMAKE, "-s", str(REPO / "Snakefile")]
    command += ["-d", str(workdir), target, "--retries", "1", "--profile", str(TEST_PROFILE)]
    command += ["--configfile", str(SLURM_CONFIG), str(SLURM_CONFIG.with_name("slurm-fsdp.yaml"))]
    proc = subprocess.Popen(
        command, cwd=workdir, env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    steps_log = workdir / "results" / "runs" / "a-r" / "log.jsonl"
    checkpoints = steps_log.with_name("checkpoints")
    try:
        deadline = time.monotonic() + 300
        while not any(
            r.get("step", 0) >= SIGNAL_AFTER and "loss" in r for r in _records(steps_log)
        ):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "training never reached the signal step"
            time.sleep(0.2)
        assert not (checkpoints.is_dir() and any(checkpoints.iterdir())), "saved before the signal"
        jobs = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i"],
            env=cluster,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(jobs) == 1, jobs
        jobid = jobs[0]
        # the job's steps, as the time limit signals them: not --batch, not --full
        subprocess.run(["scancel", "--signal=USR1", jobid], env=cluster, check=True)
        output = proc.communicate(timeout=380)[0].decode()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    assert proc.returncode == 0, output
    jobids = submitted(output)[-2:]  # (run alone, the data stage's jobs come first)
    assert len(jobids) == 2 and jobids[0] == jobid, output  # the signalled try and the retry
    # the signalled job's log names the step it saved
    # (the SLURM job log: the retry starts the rule log afresh)
    slurm_logs = list((workdir / ".snakemake" / "slurm_logs").rglob(f"{jobid}.log"))
    assert slurm_logs, output
    texts = "".join(path.read_text() for path in slurm_logs)
    rule_log = (workdir / "results" / "logs" / "train" / "a-r.log").read_text()
    saved = re.findall(
        r"a-r: SIGUSR1 received, checkpoint written at step (\d+); exiting 75", texts
    )
    assert len(saved) == 1, texts[-4000:]
    step = int(saved[0])
    assert step > SIGNAL_AFTER
    records = _records(steps_log)
    events = [r for r in records if "event" in r]
    # two nodes, one rank each, under FSDP; the retry resumes at exactly the saved step
    assert [(e["event"], e["step"], e["processes"], e["parallel"]) for e in events] == [
        ("start", 0, 2, "fsdp"),
        ("resumed", step, 2, "fsdp"),
    ], events
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)), steps[:5]  # never back to 1, no gap
    assert f"resumed from step {step}" in rule_log
    assert "--rdzv-backend=c10d" in rule_log and "--nnodes=2" in rule_log, rule_log[-3000:]
    assert finished_states(cluster, jobids) == {jobids[0]: "FAILED", jobids[1]: "COMPLETED"}


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


MODEL_RULES = {
    "train",
    "latency",
    "latency_sweep",
    "latency_throughput",
    "latency_candidate_throughput",
    "latency_trained",
    "evaluate",
}
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
    "data_manifest",
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
