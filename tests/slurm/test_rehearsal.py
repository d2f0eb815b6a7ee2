"""The cluster rehearsal: config/paper.yaml's path, at micro scale, end to end through sbatch on
the local two-node test cluster (tests/slurm/start.sh), with the hub switched off.

tests/configs/rehearsal.yaml takes the switches paper.yaml takes: DCLM's ``.jsonl.zst`` files
under paper.yaml's brace ranges, a pretrained tokenizer and the paper's ten eval tasks, all from
a hub mirror (tests/hub_mirror.py writes it; staging only verifies it, ``hub.download: false``);
training jobs sized by the cluster section into SLURM tasks; the candidates in bf16 autocast,
compiled and under FSDP. Every compute job runs with the hub off and every internet connection
refused and recorded (conftest.offline_env, passed on by sbatch).

The workflow runs twice, as a user would after a job hit its time limit:
1. training on one process a job; the time-limit signal (as ``--signal=USR1@300`` sends it)
   reaches grid run b-v1 mid-run, its job exits 75 with a checkpoint and, without retries,
   fails; ``--keep-going`` runs everything that does not need it;
2. training on two processes a job (one per node, torchrun's c10d rendezvous on the first host):
   b-v1 resumes at exactly the saved step on a different process count, and the rest of the DAG
   follows, the selection, the candidates and the report; the first candidate to train past a
   known step is signalled too, and Snakemake's retry resumes it there, under FSDP on two nodes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import hub_mirror
import pytest
import yaml
from conftest import offline_env
from slurm_jobs import (
    REPO,
    SBATCH_RULES,
    TEST_PROFILE,
    finished_states,
    records,
    running_job,
    signal_at_step,
    snakemake_command,
    submitted,
)

from infscale.data.shards import source_shards
from infscale.evaluate.tasks import PREFIX, TASKS

pytestmark = pytest.mark.slow

REHEARSAL = REPO / "tests" / "configs" / "rehearsal.yaml"
SIGNALLED = "b-v1"  # a grid run of 169 steps
# Its steps before the signal (none saved before: checkpoint_every 0), well before its end: at
# step 150 a run on a quiet moment of the host trained its last 19 steps before the signal came
SIGNAL_AFTER = 40
CANDIDATE_SIGNAL_AFTER = 20  # a candidate's steps before its signal (about 80 in all)
RUN_TIMEOUT = 1500  # s: a hang guard for each workflow run


@dataclass(frozen=True)
class Rehearsal:
    work: Path
    first: str  # what the first workflow run printed
    second: str
    second_rc: int
    grid_job: str  # the signalled jobs' SLURM ids
    candidate_job: str
    candidate: str  # the signalled candidate's run name
    network_log: Path
    env: dict[str, str]


def _mirror(root: Path, config: dict) -> Path:
    mirror, cache = root / "hub", Path(config["cache_dir"]).expanduser()
    documents = hub_mirror.paragraphs(cache, list(range(10)))
    hub_mirror.write_dclm(mirror, source_shards(config["data"]), documents)
    hub_mirror.write_tokenizer(mirror, config["tokenizer"]["name"], documents, vocab_size=300)
    hub_mirror.write_eval_splits(mirror, config["eval"]["tasks"], cache, rows=2)
    return mirror


def _first_candidate_past(env: dict, work: Path, step: int, proc) -> tuple[str, Path]:
    """The candidate whose training first passes ``step`` (which ones train, select decides)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(
                f"the workflow ended before a candidate trained:\n{output[-6000:]}"
            )
        for log in sorted((work / "results/runs/candidates").glob("*/log.jsonl")):
            if any(r.get("step", 0) >= step and "loss" in r for r in records(log)):
                return log.parent.name, log
        time.sleep(0.5)
    raise AssertionError(f"no candidate reached step {step}")


@pytest.fixture(scope="module")
def rehearsal(cluster, tmp_path_factory) -> Rehearsal:
    root = tmp_path_factory.mktemp("rehearsal")
    config = yaml.safe_load(REHEARSAL.read_text())
    config["hub"]["mirror"] = str(_mirror(root, config))
    configfile = root / "rehearsal.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    two_processes = root / "two-processes.yaml"
    two_processes.write_text(yaml.safe_dump({"cluster": {"train_gpus": 2}}))
    env = {**offline_env(root), "SLURM_CONF": cluster["SLURM_CONF"]}
    work = root / "work"
    work.mkdir()
    profile = ["--profile", str(TEST_PROFILE), "--configfile", str(configfile)]

    def start(*args: str) -> subprocess.Popen:
        command = snakemake_command(work, *profile, *args, timeout=RUN_TIMEOUT)
        return subprocess.Popen(
            command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    first = start("--keep-going", "--retries", "0")
    try:
        steps = work / "results" / "runs" / SIGNALLED / "log.jsonl"
        comment = "rule_train_wildcards_" + SIGNALLED.replace("-", "_")
        grid_job = signal_at_step(first, env, steps, comment, SIGNAL_AFTER, within=RUN_TIMEOUT)
        first_output = first.communicate(timeout=RUN_TIMEOUT)[0]
    finally:
        if first.poll() is None:
            first.kill()
    second = start(str(two_processes), "--retries", "1")
    try:
        candidate, log = _first_candidate_past(env, work, CANDIDATE_SIGNAL_AFTER, second)
        comment = f"rule_train_candidate_wildcards_{candidate}"
        candidate_job = signal_at_step(second, env, log, comment, 0, within=60)
        second_output = second.communicate(timeout=RUN_TIMEOUT)[0]
    finally:
        if second.poll() is None:
            second.kill()
    return Rehearsal(
        work,
        first_output,
        second_output,
        second.returncode,
        grid_job,
        candidate_job,
        candidate,
        root / "network.log",
        env,
    )


def test_the_rehearsal_runs_end_to_end_through_sbatch_with_the_hub_off(rehearsal):
    work = rehearsal.work
    assert rehearsal.second_rc == 0, rehearsal.second[-6000:]
    assert "Error in rule train:" in rehearsal.first  # the signalled job, as a user sees it
    # every compute job went through sbatch, none of them tried the network
    assert not rehearsal.network_log.exists(), rehearsal.network_log.read_text()
    jobids = submitted(rehearsal.first) + submitted(rehearsal.second)
    states = finished_states(rehearsal.env, jobids)
    failed = {rehearsal.grid_job, rehearsal.candidate_job}
    assert {j for j, state in states.items() if state != "COMPLETED"} == failed, states
    for rule in (
        "tokenize",
        "train",
        "train_candidate",
        "evaluate",
        "latency_candidate_throughput",
    ):
        assert re.search(rf"^rule {rule}:", rehearsal.first + rehearsal.second, re.M), rule
    # only the jobs that load a model, and the data stage's CPU jobs, went through sbatch: the
    # fits, the selection, the eval tasks' files and the other gathers ran where Snakemake runs
    sbatched = {path.name for path in (work / ".snakemake/slurm_logs").iterdir()}
    assert sbatched == {f"rule_{name}" for name in SBATCH_RULES}, sbatched
    # staging verified the mirror and downloaded nothing; the data came from paper.yaml's names
    staged = json.loads((work / "results/hub/staged.json").read_text())
    assert staged["data"]["files"] == 640 and staged["data"]["downloaded"] == 0
    assert staged["eval"]["downloaded"] == 0 and staged["tokenizer"]["downloaded"] is False
    assert (work / "results/report/summary.md").stat().st_size > 0
    selected = (work / "results/select/selected.csv").read_text().splitlines()
    assert len(selected) > 1, selected


def test_the_grid_run_signalled_on_one_process_resumes_there_on_two(rehearsal):
    """The signalled job's log names the step it saved; the next run resumes at exactly that step
    on two processes (one per node), and no step is trained twice or skipped."""
    work = rehearsal.work
    logs = list((work / ".snakemake/slurm_logs").rglob(f"{rehearsal.grid_job}.log"))
    text = "".join(path.read_text() for path in logs)
    saved = re.findall(
        rf"{SIGNALLED}: SIGUSR1 received, checkpoint written at step (\d+); exiting 75", text
    )
    assert len(saved) == 1, text[-4000:]
    step = int(saved[0])
    assert step > SIGNAL_AFTER
    log = records(work / "results/runs" / SIGNALLED / "log.jsonl")
    events = [(e["event"], e["step"], e["processes"], e["parallel"]) for e in log if "event" in e]
    assert events == [("start", 0, 1, None), ("resumed", step, 2, "ddp")], events
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)), steps[:5]
    rule_log = (work / "results/logs/train" / f"{SIGNALLED}.log").read_text()
    assert "--rdzv-backend=c10d" in rule_log and "--nnodes=2" in rule_log, rule_log[-3000:]


def test_a_candidate_signalled_under_fsdp_in_bf16_compiled_resumes_on_retry(rehearsal):
    work, name = rehearsal.work, rehearsal.candidate
    log = records(work / "results/runs/candidates" / name / "log.jsonl")
    events = [e for e in log if "event" in e]
    layout = {(e["processes"], e["parallel"], e["dtype"], e["compiled"]) for e in events}
    assert layout == {(2, "fsdp", "bfloat16", True)}, events
    logs = list((work / ".snakemake/slurm_logs").rglob(f"{rehearsal.candidate_job}.log"))
    text = "".join(path.read_text() for path in logs)
    (saved,) = re.findall(rf"{name}: SIGUSR1 received, checkpoint written at step (\d+)", text)
    assert [(e["event"], e["step"]) for e in events] == [("start", 0), ("resumed", int(saved))]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)), steps[:5]
    assert running_job(rehearsal.env, f"rule_train_candidate_wildcards_{name}") is None


def test_every_trained_model_is_scored_on_the_papers_ten_tasks_from_the_mirror(rehearsal):
    config = yaml.safe_load(REHEARSAL.read_text())
    evals = sorted((rehearsal.work / "results/eval").rglob("*.json"))
    assert len(evals) >= 8  # six grid runs and the candidates
    for path in evals:
        scores = json.loads(path.read_text())
        tasks = scores["tasks"]
        assert set(tasks) == set(config["eval"]["tasks"]), path
        for name, row in tasks.items():
            assert row["metric"] == TASKS[name].metric and 0 <= row["value"] <= 1, (path, row)
            assert row["n"] > 0 and row["task"] == f"{PREFIX}{name}", (path, row)
