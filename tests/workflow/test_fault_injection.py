"""A lost node, three times: the micro workflow is killed with SIGKILL (Snakemake and every job
process at once) while preparing the data, while training (after a checkpoint) and while
fitting. Each time the user unlocks the directory and reruns with ``--rerun-incomplete``, as
Snakemake tells them to, up to the fit stage's outputs (``targets``: the last kill is in a fit;
what follows runs as in any uninterrupted run). Every file the runs made must equal the micro
run's (conftest.finished), file by file (tests/results_diff.py: timings and provenance apart;
the micro config lets no choice rest on a measured time)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import ENV, MICRO, snakemake, snakemake_cmd
from results_diff import compare_trees

CHECKPOINT_EVERY = 20  # steps; a grid run of the micro config has 110 to 230
WAIT_S = 1800  # to reach a kill point or the end, on a busy 2-core machine
POLL_S = 0.1
LAWS = ("chinchilla", "inference")


def _in_data(workdir: Path) -> str | None:
    """A tokenization job's script has started and the gather has not run (the manifest is the
    data stage's last output)."""
    results = workdir / "results"
    started = any((results / "logs" / "data" / "tokenize").glob("*.log"))
    if started and not (results / "data" / "manifest.json").exists():
        return "results/data/manifest.json"
    return None


def _in_training(workdir: Path) -> str | None:
    """A grid run has written a checkpoint and not yet its points."""
    for step in sorted((workdir / "results" / "runs").glob("*/checkpoints/step-*")):
        run = step.parents[1]
        if not (run / "points.csv").exists():
            return f"results/runs/{run.name}/points.csv"
    return None


def _in_fit(workdir: Path) -> str | None:
    """A ``fit`` job has started (its shell made its log) and not written its fit."""
    results = workdir / "results"
    for law in LAWS:
        log, fit = results / "logs" / "fit" / f"{law}-all.log", results / "fit" / f"{law}-all.json"
        if log.exists() and not fit.exists():
            return f"results/fit/{fit.name}"
    return None


def _processes() -> dict[int, tuple[str, int, int]]:
    """Every process: pid -> (state, parent pid, process group), from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        table[int(stat.parent.name)] = (state, int(ppid), int(pgrp))
    return table


def _descendants(pid: int, table: dict[int, tuple[str, int, int]]) -> set[int]:
    children = {p for p, (_, ppid, _) in table.items() if ppid == pid}
    return children.union(*(_descendants(c, table) for c in children))


def _kill_group(proc: subprocess.Popen, deadline: float) -> None:
    """SIGKILL ``proc``'s process group and wait until none of it lives (zombies are dead)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    while any(
        pgrp == proc.pid and state != "Z" for state, _, pgrp in _processes().values()
    ):  # orphaned job processes take a moment to die
        assert time.monotonic() < deadline, "the killed process group did not go away"
        time.sleep(POLL_S)


def _kill_at(
    workdir: Path,
    config: Path,
    targets: list[str],
    log: Path,
    point: Callable[[Path], str | None],
) -> tuple[str, int]:
    """Run the workflow until ``point`` names an output being made, then kill the whole process
    group: frozen first (SIGSTOP), so that the point is checked again on a still tree and the
    kill lands on it. Returns the output and the number of processes killed."""
    deadline = time.monotonic() + WAIT_S
    command = snakemake_cmd(
        workdir, "--cores", "2", "--rerun-incomplete", *targets, configfile=config
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Snakemake and its jobs
        )
    try:
        while True:
            assert proc.poll() is None, f"the workflow ended before {point.__name__}: {log}"
            assert time.monotonic() < deadline, f"no {point.__name__} in {WAIT_S} s"
            if point(workdir):
                os.killpg(proc.pid, signal.SIGSTOP)
                frozen = point(workdir)
                if frozen:
                    table = _processes()
                    tree = _descendants(proc.pid, table)
                    assert all(table[p][2] == proc.pid for p in tree), "a job left the group"
                    _kill_group(proc, deadline)
                    return frozen, len(tree) + 1
                os.killpg(proc.pid, signal.SIGCONT)  # it finished just before the freeze
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            _kill_group(proc, time.monotonic() + 60)


def _rerun_made(log: Path, output: str) -> bool:
    """Whether the run logged to ``log`` started the job that makes ``output``."""
    return re.search(rf"\n\s+output: [^\n]*{re.escape(output)}", log.read_text()) is not None


def _killed_three_times(
    workdir: Path, configfile: Path, targets: list[str], logs: Path
) -> list[str]:
    """Run the workflow in ``workdir`` to ``targets``, killed in data, in training and in a fit,
    unlocked and rerun each time, to the end. Returns the output each kill interrupted; ``logs``
    gets each attempt's Snakemake output (attempt-0.log to attempt-3.log)."""
    attempts = [logs / f"attempt-{i}.log" for i in range(4)]
    made = []
    for log, point in zip(attempts[:3], (_in_data, _in_training, _in_fit), strict=True):
        output, processes = _kill_at(workdir, configfile, targets, log, point)
        assert processes >= 2, f"{point.__name__}: only Snakemake was killed, no job"
        made.append(output)
        # a killed Snakemake leaves its lock; its message tells the user to unlock
        unlock = snakemake(workdir, "--unlock", configfile=configfile)
        assert unlock.returncode == 0, unlock.stderr[-3000:]
    with attempts[3].open("w") as out:
        last = subprocess.run(
            snakemake_cmd(
                workdir, "--cores", "2", "--rerun-incomplete", *targets, configfile=configfile
            ),
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=WAIT_S,
        )
    assert last.returncode == 0, attempts[3].read_text()[-3000:]
    # each kill interrupted the job it meant to: the next attempt made that output again, and
    # the killed training run resumed from its checkpoint rather than from step 0
    for log, output in zip(attempts[1:], made, strict=True):
        assert _rerun_made(log, output), f"{log.name} did not redo {output}"
    run_log = workdir / Path(made[1]).with_name("log.jsonl")
    events = [e for e in map(json.loads, run_log.read_text().splitlines()) if "event" in e]
    resumed = [e["step"] for e in events if e["event"] == "resumed"]
    assert resumed and resumed[0] >= CHECKPOINT_EVERY, events
    return made


def checkpointing_micro(path: Path) -> Path:
    """The micro config with a checkpoint every CHECKPOINT_EVERY steps, written to ``path``."""
    config = yaml.safe_load(MICRO.read_text())
    config["train"]["checkpoint_every"] = CHECKPOINT_EVERY
    path.write_text(yaml.safe_dump(config))
    return path


def fit_stage(reference: Path) -> list[str]:
    """The fit stage's outputs (each law's fit, the comparison and the law chosen from it) and
    the removal of the grid runs' checkpoints (which the reference made): where the runs go."""
    grid = sorted(p.parent.name for p in (reference / "results" / "runs").glob("*/points.csv"))
    assert grid, reference
    fits = [f"results/fit/{law}-all.json" for law in LAWS]
    removed = [f"results/runs/{run}/checkpoints.removed" for run in grid]
    return [*fits, "results/fit/chosen.json", *removed]


@pytest.mark.slow
def test_runs_killed_in_data_training_and_fit_resume_to_the_uninterrupted_results(
    finished, tmp_path
):
    """The reference is the session's micro run (conftest.finished: the same config but for
    checkpoint_every, which changes no result; interrupted once by Ctrl-C, at another point),
    so the suite trains the micro grid twice, not three times."""
    configfile = checkpointing_micro(tmp_path / "micro.yaml")
    reference, _, _ = finished
    _killed_three_times(tmp_path / "killed", configfile, fit_stage(reference), tmp_path)
    result = compare_trees(reference, tmp_path / "killed", part=True)
    assert result.differences == [], "\n".join(result.differences)
    compared = {Path(rel).parts[0] for rel in result.compared}
    assert {"data", "runs", "fit"} <= compared, sorted(result.compared)
    assert len(result.compared) > 30
