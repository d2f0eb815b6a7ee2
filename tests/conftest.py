"""Shared fixtures: repository paths, the embedded default config, and the micro workflow run
(once per session: the workflow tests and the HTML report test both read it)."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from infscale.checks import load_config

# The SLURM test cluster's session fixture (`cluster`) and helpers.
pytest_plugins = ["slurm_jobs"]

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "tests" / "paper"  # the paper's grid and candidate tables (SOURCE.md there)

# A shell that starts the suite in the background (`make test &`, nohup) ignores SIGINT, and
# every child inherits that: the tests' Ctrl-C of a workflow would then be lost. Children of a
# process with Python's handler start with the default action instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# `make test` runs the suite on three pytest-xdist workers (--dist loadgroup). Each worker builds
# its own session and module fixtures, so the tests that share an expensive one go to one worker:
# the SLURM test cluster (one per machine), the micro workflow run, and each file's module
# fixtures. The two long groups go first, one to each worker; the rest fill in beside them.
SHARED_FIXTURE_GROUPS = {"cluster": "slurm", "finished": "micro"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups = list(SHARED_FIXTURE_GROUPS.values())
    group = {}
    for item in items:
        shared = [g for f, g in SHARED_FIXTURE_GROUPS.items() if f in item.fixturenames]
        group[item] = shared[0] if shared else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group[item]))
    items.sort(key=lambda i: groups.index(group[i]) if group[i] in groups else len(groups))


@pytest.fixture(scope="session")
def default_config() -> dict:
    return load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")


@pytest.fixture
def config(default_config) -> dict:
    """A private copy of the default config that a test may change."""
    return copy.deepcopy(default_config)


MICRO = REPO / "tests" / "configs" / "micro.yaml"
# A training section for tiny in-process runs (tests/train): two micro-batches a step, a
# checkpoint every second step.
TINY_TRAIN = {
    "batch_size": 8,
    "micro_batch_size": 2,
    "lr": 3e-3,
    "min_lr": 3e-5,
    "warmup_steps": 2,
    "weight_decay": 0.033,
    "betas": [0.9, 0.95],
    "eps": 1e-8,
    "z_loss": 1e-4,
    "grad_clip": 1.0,
    "dtype": "float32",
    "val_windows": 4,
    "seed": 0,
    "checkpoint_every": 2,
    "compile": False,
    "activation_checkpointing": False,
    "parallel": "ddp",
    "epochs": 1,
}
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake_cmd(workdir: Path, *args: str, configfile: Path = MICRO) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        # one word: --configfile takes every word after it, targets included
        f"--configfile={configfile}",
        *args,
    ]


def snakemake(workdir: Path, *args: str, configfile: Path = MICRO, **kwargs):
    cmd = snakemake_cmd(workdir, *args, configfile=configfile)
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, **kwargs)


def planned_jobs(output: str) -> dict[str, int]:
    """The job-count table of a dry run, as {rule: count}."""
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


# The report tables the micro config leaves empty, and what each says instead: it does not time
# HF against vLLM (no latency.engines.report) and trains the whole grid (design.enabled false).
EMPTY_IN_MICRO = {"engines": "make vllm-env", "design_rounds": "design.enabled: false"}


def finished_runs(workdir: Path) -> list[str]:
    """Grid runs whose training job Snakemake's log records as finished.

    An output file on disk is not enough: Snakemake marks the job complete a moment later, and
    an interrupt in between rightly makes it rerun the job.
    """
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return []
    text = logs[-1].read_text()
    jobs = re.findall(r"output: results/runs/([A-Za-z0-9-]+)/model.*?\n\s+jobid: (\d+)", text, re.S)
    return [run for run, job in jobs if f"Finished jobid: {job} " in text]


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """The micro workflow run once to the end, interrupted once mid-training on the way (as
    soon as a training run has finished, whichever the scheduler ran first). The middle item:
    the points.csv modification times of the runs finished before the interrupt."""
    workdir = tmp_path_factory.mktemp("micro")
    cmd = snakemake_cmd(workdir, "--cores", "2")
    first = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 240
    try:
        while not finished_runs(workdir) and time.monotonic() < deadline:
            assert first.poll() is None, "the first workflow run stopped early"
            time.sleep(0.5)
        runs = finished_runs(workdir)
        assert runs, "no training run finished"
        stamps = {
            run: (workdir / "results" / "runs" / run / "points.csv").stat().st_mtime_ns
            for run in runs
        }
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C does
            first.wait(timeout=60)
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, stamps, proc


@pytest.fixture(scope="session")
def micro_report_html(finished, tmp_path_factory) -> Path:
    """``snakemake --report`` of the finished micro run."""
    workdir, _, _ = finished
    html = tmp_path_factory.mktemp("report") / "report.html"
    done = snakemake(workdir, "--report", str(html))
    assert done.returncode == 0, done.stderr[-3000:]
    return html


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``infscale ARGS`` in this process: exit code, stdout, stderr."""
    from infscale.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _process_threads():
    """What a command run in this process sets for the whole process (`infscale latency
    --threads`: OMP_NUM_THREADS, which `nproc` and every child process read, and torch's
    threads) is put back after each test, so that no later test inherits it."""
    omp = os.environ.get("OMP_NUM_THREADS")
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    yield
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp
    if torch and threads:
        torch.set_num_threads(threads)


@pytest.fixture
def candidates_1b() -> pd.DataFrame:
    """Six 1B-scale candidates (the paper's kind of shapes) for the selection tests."""
    return pd.DataFrame(
        {
            "name": ["a", "b", "c", "d", "e", "f"],
            "d_model": [2048, 2304, 2560, 2816, 3072, 1792],
            "n_layers": [24, 20, 16, 12, 12, 32],
            "N": [1.44e9, 1.51e9, 1.53e9, 1.44e9, 1.60e9, 1.30e9],
            "D": [2.9e10] * 5 + [3.5e10],
            "latency_s": [3.6, 3.1, 2.6, 2.0, 1.96, 4.8],
        }
    )


# Every internet connection refused, and recorded: the compute jobs must not try one.
NO_NETWORK = """
import os, socket
_connect = socket.socket.connect
def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        with open(os.environ["INFSCALE_NETWORK_LOG"], "a") as log:
            log.write(f"{os.getpid()} {address}\\n")
        raise OSError("network disabled by the test")
    return _connect(self, address)
socket.socket.connect = _refuse
"""


def offline_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a process that must not reach the network: the hub switched off and
    pointed at a dead port, and every internet connection refused and recorded in
    tmp_path/network.log (a ``sitecustomize`` on its PYTHONPATH)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    return {
        **ENV,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: a hub request could only fail
        "HF_HOME": str(tmp_path / "hf-home"),
        "PYTHONPATH": os.pathsep.join([str(site), ENV.get("PYTHONPATH", "")]),
        "INFSCALE_NETWORK_LOG": str(tmp_path / "network.log"),
    }
