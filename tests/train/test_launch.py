"""The training launcher's choices that need no cluster: which path a job takes, bad input in
one line, and the signal handling the SLURM path rests on (tests/slurm runs it for real)."""

import ast
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO

from infscale.errors import InputError
from infscale.train import launch as launcher
from infscale.train.exits import REQUEUE_EXIT


def test_several_nodes_need_slurm_and_the_mpi_resource(monkeypatch, tmp_path):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(InputError, match="outside a SLURM job"):
        launcher.launch({}, 1, tmp_path / "s.json", nodes=2, mpi="srun")
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    with pytest.raises(InputError, match="without the plugin's mpi resource"):
        launcher.launch({}, 1, tmp_path / "s.json", nodes=2)
    with pytest.raises(InputError, match="must start with srun"):
        launcher.launch({}, 1, tmp_path / "s.json", nodes=2, mpi="mpirun -np 2")
    with pytest.raises(InputError, match="nodes >= 1"):
        launcher.launch({}, 1, tmp_path / "s.json", nodes=0, mpi="srun")


def test_node_launcher_usage_is_one_message_and_exit_2(capsys):
    assert launcher.main(["--node", "--nnodes=2", "spec.json"]) == 2
    assert launcher.main(["a.json", "b.json"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_the_processes_that_only_launch_and_wait_import_no_torch():
    """A multi-process job's script, its per-node launchers and torchrun's parent only wait on
    the ranks: torch and transformers would cost each about 5 CPU-s to import."""
    script = ast.parse((REPO / "workflow" / "scripts" / "train.py").read_text())
    modules = {n.module for n in ast.walk(script) if isinstance(n, ast.ImportFrom)}
    assert "infscale.train.launch" in modules
    probe = f"import sys, {', '.join(sorted(modules))}; print(sorted(set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(done.stdout))
    assert "infscale.train.exits" in loaded and not {"torch", "transformers"} & loaded


CHILD = """
import signal, sys, time
ignored = signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
print("usr1-ignored" if ignored else "usr1-default", flush=True)
def stop(signum, frame):
    sys.exit(75)
signal.signal(signal.SIGUSR1, stop)  # as a rank does
signal.signal(signal.SIGTERM, stop)
time.sleep(30)
sys.exit(0)
"""


def _signal_soon(signum: int, delay: float = 1.5) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), os.kill(os.getpid(), signum)))
    thread.start()
    return thread


def test_torchrun_is_started_with_sigusr1_ignored_and_a_signal_means_requeue(capfd):
    """torchrun has no SIGUSR1 handler and would die of SLURM's warning: the launcher starts it
    with SIGUSR1 ignored (kept through exec); a rank installs its own handler. A signal to the
    launcher is passed on as the path says, and the job's exit says requeue."""
    before = signal.getsignal(signal.SIGUSR1)
    thread = _signal_soon(signal.SIGUSR1)
    code = launcher._supervise([sys.executable, "-c", CHILD], {signal.SIGUSR1: signal.SIGTERM})
    thread.join()
    out = capfd.readouterr().out
    assert "usr1-ignored" in out and "launcher: SIGUSR1 received" in out
    assert code == REQUEUE_EXIT
    # the launcher's own handlers are restored afterwards
    assert signal.getsignal(signal.SIGUSR1) is before


def test_srun_path_keeps_sigusr1_for_srun_and_forwards_it(capfd):
    thread = _signal_soon(signal.SIGUSR1)
    same = {signal.SIGUSR1: signal.SIGUSR1}
    code = launcher._supervise([sys.executable, "-c", CHILD], same, ignore_usr1=False)
    thread.join()
    assert "usr1-default" in capfd.readouterr().out
    assert code == REQUEUE_EXIT


def test_a_failure_without_a_signal_is_a_failure():
    assert launcher._supervise([sys.executable, "-c", "raise SystemExit(3)"], {}) == 1
    assert launcher._supervise([sys.executable, "-c", "pass"], {}) == 0


def test_free_port_is_bindable():
    import socket

    port = launcher.free_port()
    with socket.socket() as sock:
        sock.bind(("", port))


def test_node_launcher_builds_the_c10d_rendezvous(monkeypatch):
    seen = []
    monkeypatch.setattr(launcher, "_supervise", lambda command, forward: seen.append(command) or 0)
    monkeypatch.setenv("SLURM_PROCID", "1")
    args = ["--nnodes=2", "--nproc-per-node=4", "--rdzv-endpoint=n1:29400", "--rdzv-id=77", "s"]
    assert launcher.main(["--node", *args]) == 0
    command = " ".join(seen[0])
    assert "--nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d" in command
    assert "--rdzv-endpoint=n1:29400 --rdzv-id=77 --rdzv-conf=is_host=false" in command
    assert "--standalone" not in command
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert launcher.main(["--node", *args]) == 0
    assert "is_host=true" in " ".join(seen[1])


def test_outside_slurm_one_node_keeps_standalone(monkeypatch, tmp_path):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    seen = []
    monkeypatch.setattr(launcher, "_supervise", lambda command, forward: seen.append(command) or 0)
    assert launcher.launch({"x": 1}, 2, tmp_path / "s.json", mpi="srun") == 0
    assert "--standalone" in seen[0] and "--nproc-per-node=2" in seen[0]


def test_scontrol_failure_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InputError, match="scontrol show job"):
        launcher.slurm_allocation("1")
