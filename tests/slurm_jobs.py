"""What the SLURM tests share: the local test cluster (tests/slurm/start.sh), started once for
the session's SLURM tests and stopped at its end (a pytest plugin: tests/conftest.py loads it);
the workflow run through a profile; and what the cluster says of the jobs it ran. Without root or
apt-get, where SLURM is not installed already, the tests that need the cluster skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "tests" / "slurm"
TEST_PROFILE = SLURM_DIR / "profile"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# The rules whose jobs load a model (a GPU on the cluster), and with the data stage's CPU jobs
# the only rules that go through sbatch: every other rule is a local rule (the login node).
MODEL_RULES = frozenset(
    {
        "train",
        "train_candidate",
        "latency",
        "latency_sweep",
        "latency_throughput",
        "latency_candidate_throughput",
        "latency_trained",
        "evaluate",
    }
)
SBATCH_RULES = MODEL_RULES | {"tokenizer", "tokenize"}


def snakemake_command(workdir: Path, *args: str, timeout: int) -> list[str]:
    """The workflow in ``workdir``, ended by SIGINT after ``timeout`` s (SIGTERM would hang)."""
    command = ["timeout", "-s", "INT", str(timeout), SNAKEMAKE, "-s", str(REPO / "Snakefile")]
    return [*command, "-d", str(workdir), *args]


def snakemake(workdir: Path, *args: str, timeout: int, env=None):
    return subprocess.run(
        snakemake_command(workdir, *args, timeout=timeout),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _cannot_start_slurm() -> str | None:
    have = all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged"))
    if have and os.geteuid() == 0:
        return None
    if os.geteuid() != 0:
        return "the SLURM test cluster needs root (to start munged and slurmd)"
    if not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="session")
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
        yield dict(os.environ, SLURM_CONF=str(state / "slurm.conf"))
    finally:
        subprocess.run([str(SLURM_DIR / "stop.sh"), str(state)], check=False)


def submitted(output: str) -> list[str]:
    """The SLURM job ids a Snakemake run submitted, in order."""
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


def records(log: Path) -> list[dict]:
    """A run's log.jsonl (step records and events), [] before it exists."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def running_job(env, comment: str) -> str | None:
    """The id of the running job whose comment (the plugin's rule_<rule>_wildcards_<...>) is
    ``comment``, or None."""
    queue = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = [line.split()[0] for line in queue.splitlines() if line.split()[1:] == [comment]]
    return found[0] if found else None


def signal_at_step(proc, env, log: Path, comment: str, step: int, within: float) -> str:
    """Once the run logging to ``log`` has trained past ``step``, send its job's steps SIGUSR1 as
    the time limit's `--signal=USR1@300` does (to the job steps: not --batch, not --full).
    Return the job id."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the workflow ended before the signal step:\n{output[-6000:]}")
        assert time.monotonic() < deadline, f"{log} never reached step {step}"
        if any(r.get("step", 0) >= step and "loss" in r for r in records(log)):
            jobid = running_job(env, comment)
            if jobid:
                subprocess.run(["scancel", "--signal=USR1", jobid], env=env, check=True)
                return jobid
        time.sleep(0.2)
