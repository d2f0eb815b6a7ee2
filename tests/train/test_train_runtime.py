"""The trainer under stress: killed and resumed, signalled, multi-process (DDP and FSDP), and
non-finite loss.

Tiny models on a random corpus; the multi-process and kill tests start Python subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import infscale.train.loop as train_mod
from infscale.data.tokens import TokenWindows, write_windows
from infscale.grid import Run
from infscale.shapes import Shape
from infscale.train import checkpoint as ckpt
from infscale.train.exits import REQUEUE_EXIT
from infscale.train.launch import launch
from infscale.train.loop import NonFiniteLoss, shard_rows, train_run
from infscale.train.model import build_model, count_parameters
from infscale.train.steplog import events, last_step, read_log, step_records

SEQ, VOCAB, BATCH = 16, 128, 8
SHAPE = Shape(d_model=16, n_layers=2, n_heads=2, vocab_size=VOCAB, multiple_of=16)
CFG = TINY_TRAIN | {"batch_size": BATCH}


def _run(steps: int = 12) -> Run:
    per_step = BATCH * SEQ
    return Run("xs-v1", "xs", "v1", SHAPE, (1, 2), (per_step * steps // 2, per_step * steps))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, VOCAB, rng.integers(3, 40)).tolist() for _ in range(4000)]
    write_windows(docs, root / "train.bin", SEQ, 0, VOCAB)
    write_windows(docs[:40], root / "val.bin", SEQ, 0, VOCAB)
    return {"train": str(root / "train.bin"), "val": str(root / "val.bin")}


def _spec(data, out: Path, **cfg) -> dict:
    return {
        "run": _run(cfg.pop("steps", 12)).to_dict(),
        "train": data["train"],
        "val": data["val"],
        "tokenizer": None,
        "cfg": {**CFG, **cfg},
        "max_position": SEQ,
        "rope_theta": 10000.0,
        "norm": "layernorm",
        "log_path": str(out / "log.jsonl"),
        "checkpoint_dir": str(out / "checkpoints"),
        "model_out": str(out / "model"),
        "points_out": str(out / "points.csv"),
        "threads": 1,
        "progress": False,
    }


def _start(spec: dict, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "infscale.train.launch", str(out / "spec.json")],
        stdout=open(out / "stdout.txt", "a"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def _steps(log: Path) -> list[dict]:
    return step_records(log)


def _wait_for_step(proc: subprocess.Popen, log: Path, step: int, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before step {step}")
        done = _steps(log)
        if done and done[-1]["step"] >= step:
            return
        time.sleep(0.02)
    raise AssertionError(f"step {step} not reached in {timeout} s")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    proc = _start(_spec(data, out), out)
    assert proc.wait(timeout=300) == 0, (out / "stdout.txt").read_text()
    return out


def _assert_same_result(a: Path, b: Path) -> None:
    wa = load_file(a / "model" / "model.safetensors")
    wb = load_file(b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    la, lb = _steps(a / "log.jsonl"), _steps(b / "log.jsonl")
    assert [r["step"] for r in lb] == list(range(1, len(la) + 1))
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]  # bitwise: exact float equality
    pa, pb = pd.read_csv(a / "points.csv"), pd.read_csv(b / "points.csv")
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)


def test_sigkill_at_random_step_then_resume_is_bitwise_identical(data, reference, tmp_path):
    kill_after = random.Random().randint(3, 11)
    proc = _start(_spec(data, tmp_path), tmp_path)
    _wait_for_step(proc, tmp_path / "log.jsonl", kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.load_latest(tmp_path / "checkpoints") is not None
    resumed = _start(_spec(data, tmp_path), tmp_path)
    assert resumed.wait(timeout=300) == 0, (tmp_path / "stdout.txt").read_text()
    assert "resumed from step" in (tmp_path / "stdout.txt").read_text()
    _assert_same_result(reference, tmp_path)
    # the job leaves its checkpoints: only rules/train.smk's remove_checkpoints, run after
    # Snakemake accepted the outputs, removes them
    assert ckpt.load_latest(tmp_path / "checkpoints").step == 12


def test_a_run_stopped_after_its_final_step_resumes_there_to_the_same_outputs(
    data, reference, tmp_path
):
    """The interrupt at the last step, made on purpose: the final checkpoint is on disk but the
    job was stopped before Snakemake accepted its outputs (none is left). The rerun resumes at
    the final step, trains nothing, and writes the uninterrupted run's model, points and step
    records; its log differs only by the "resumed" event, its last line."""
    shutil.copytree(reference / "checkpoints", tmp_path / "checkpoints")
    assert ckpt.load_latest(tmp_path / "checkpoints").step == 12
    resumed = _start(_spec(data, tmp_path), tmp_path)
    assert resumed.wait(timeout=300) == 0, (tmp_path / "stdout.txt").read_text()
    assert "resumed from step 12" in (tmp_path / "stdout.txt").read_text()
    _assert_same_result(reference, tmp_path)
    log = tmp_path / "log.jsonl"
    assert [(r["event"], r["step"]) for r in events(log)] == [("start", 0), ("resumed", 12)]
    assert read_log(log)[-1]["event"] == "resumed"
    assert last_step(log)["step"] == 12
    # the step records, throughput apart (a measured time), equal the uninterrupted run's
    same = [r for r in read_log(reference / "log.jsonl") if "event" not in r]
    assert [{**r, "tokens_per_s": 0} for r in step_records(log)] == [
        {**r, "tokens_per_s": 0} for r in same
    ]


@pytest.mark.parametrize("signame", ["SIGUSR1", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_signal_checkpoints_exits_75_and_rerun_continues(data, tmp_path, signame):
    spec = _spec(data, tmp_path, checkpoint_every=0, steps=300)  # long enough to interrupt
    proc = _start(spec, tmp_path)
    _wait_for_step(proc, tmp_path / "log.jsonl", 4)
    proc.send_signal(getattr(signal, signame))
    assert proc.wait(timeout=120) == REQUEUE_EXIT
    stopped = ckpt.load_latest(tmp_path / "checkpoints")
    assert stopped is not None and 4 <= stopped.step < 300
    resumed = _start(spec, tmp_path)
    assert resumed.wait(timeout=300) == 0
    assert f"resumed from step {stopped.step}" in (tmp_path / "stdout.txt").read_text()
    log = tmp_path / "log.jsonl"
    assert [(r["event"], r["step"]) for r in events(log)] == [
        ("start", 0),
        ("resumed", stopped.step),
    ]
    assert [r["step"] for r in step_records(log)] == list(range(1, 301))


def test_corrupt_latest_checkpoint_resumes_from_previous(data, reference, tmp_path):
    """The newest checkpoint truncated: the resume names it and the step it falls back to, and
    ends bitwise where an uninterrupted run does."""
    proc = _start(_spec(data, tmp_path, checkpoint_every=2), tmp_path)
    _wait_for_step(proc, tmp_path / "log.jsonl", 7)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    newest = sorted((tmp_path / "checkpoints").glob("step-*"))[-1]
    weights = newest / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    resumed = _start(_spec(data, tmp_path, checkpoint_every=2), tmp_path)
    assert resumed.wait(timeout=300) == 0
    text = (tmp_path / "stdout.txt").read_text()
    previous = int(newest.name.split("-")[1]) - 2
    assert previous >= 4  # killed at step 7 or later: two checkpoints were on disk
    assert (
        f"checkpoint {newest} is damaged (model.safetensors has {size // 2} bytes, the manifest "
        f"says {size}); falling back to step-{previous:08d}, step {previous}\n"
    ) in text
    assert f"resumed from step {previous}" in text
    assert [(r["event"], r["step"]) for r in events(tmp_path / "log.jsonl")] == [
        ("start", 0),
        ("resumed", previous),
    ]
    _assert_same_result(reference, tmp_path)


def test_no_whole_checkpoint_left_stops_the_job_instead_of_starting_over(data, tmp_path, capsys):
    spec = _spec(data, tmp_path, steps=6, checkpoint_every=2)
    handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)]
    assert launch(spec, 1, tmp_path / "spec.json") == 0
    # a job run in this process leaves the signal handlers as it found them
    assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)] == handlers
    log = (tmp_path / "log.jsonl").read_text()
    for path in sorted((tmp_path / "checkpoints").glob("step-*")):  # steps 4 and 6
        state = path / "state.pt"
        state.write_bytes(state.read_bytes()[:-8])
    capsys.readouterr()
    assert launch(spec, 1, tmp_path / "spec.json") == 1
    err = capsys.readouterr().err
    root = tmp_path / "checkpoints"
    assert err.startswith(f"error: every checkpoint in {root} is damaged (step-00000006: state.pt")
    assert "; step-00000004: state.pt has" in err
    assert err.endswith(f"remove {root} to train this run again from step 0\n")
    assert "Traceback" not in err
    assert (tmp_path / "log.jsonl").read_text() == log  # nothing began again from step 0
    assert len(list(root.glob("step-*"))) == 2  # the damaged files are left to inspect


def test_non_finite_loss_names_step_and_keeps_last_checkpoint(data, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train_mod.lm_loss

    def poisoned(logits, targets, z_loss):
        calls["n"] += 1
        total, ce = real(logits, targets, z_loss)
        if calls["n"] > 4 * 4:  # 4 micro-batches per step: step 5 goes NaN
            return total * float("nan"), ce
        return total, ce

    monkeypatch.setattr(train_mod, "lm_loss", poisoned)
    spec = _spec(data, tmp_path, checkpoint_every=2)
    with pytest.raises(NonFiniteLoss, match="at step 5"):
        train_run(
            Run.from_dict(spec["run"]),
            TokenWindows(data["train"]),
            TokenWindows(data["val"]),
            spec["cfg"],
            max_position=SEQ,
            rope_theta=1e4,
            log_path=tmp_path / "log.jsonl",
            norm="layernorm",
            checkpoint_dir=tmp_path / "checkpoints",
            progress=False,
        )
    assert ckpt.load_latest(tmp_path / "checkpoints").step == 4


PARALLEL_STEPS = 6


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    """The reference for the multi-process runs: one process, the same global batch."""
    out = tmp_path_factory.mktemp("one")
    spec = _spec(data, out, steps=PARALLEL_STEPS, checkpoint_every=0)
    assert launch(spec, 1, out / "spec.json") == 0
    return out


@pytest.fixture(scope="module")
def fsdp_run(data, tmp_path_factory) -> Path:
    """2 gloo processes under FSDP, 2 micro-batches per rank, checkpoints left at steps 4 and 6."""
    out = tmp_path_factory.mktemp("fsdp")
    spec = _spec(data, out, steps=PARALLEL_STEPS, checkpoint_every=2, parallel="fsdp")
    spec.update(threads=2)
    assert launch(spec, 2, out / "spec.json") == 0
    return out


def _assert_close_runs(a: Path, b: Path, tol: float = 1e-4) -> None:
    la, lb = _steps(a / "log.jsonl"), _steps(b / "log.jsonl")
    assert len(la) == len(lb) == PARALLEL_STEPS
    for x, y in zip(la, lb, strict=True):
        assert abs(x["loss"] - y["loss"]) < tol, (x, y)
    wa = load_file(a / "model" / "model.safetensors")
    wb = load_file(b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < tol
    pa, pb = pd.read_csv(a / "points.csv"), pd.read_csv(b / "points.csv")
    assert (pa["N_module"] == pb["N_module"]).all()
    np.testing.assert_allclose(pa["val_loss"], pb["val_loss"], atol=tol)


def test_two_gloo_processes_match_one_process(data, one_process, tmp_path):
    spec = _spec(data, tmp_path, steps=PARALLEL_STEPS, checkpoint_every=0, micro_batch_size=4)
    spec["threads"] = 2
    assert launch(spec, 2, tmp_path / "spec.json") == 0
    _assert_close_runs(one_process, tmp_path)
    start = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    whole = count_parameters(
        build_model(SHAPE, max_position=SEQ, seed=0, rope_theta=1e4, norm="layernorm")
    )
    assert (start["parallel"], start["params_per_rank"]) == ("ddp", whole)  # a whole copy each


def test_fsdp_two_gloo_processes_match_one_process(one_process, fsdp_run):
    _assert_close_runs(one_process, fsdp_run)
    start = json.loads((fsdp_run / "log.jsonl").read_text().splitlines()[0])
    whole = count_parameters(
        build_model(SHAPE, max_position=SEQ, seed=0, rope_theta=1e4, norm="layernorm")
    )
    assert start["parallel"] == "fsdp" and start["processes"] == 2
    assert start["params_per_rank"] < 0.6 * whole  # each rank holds about half
    # the weights are sharded while training and whole in the saved model and checkpoints
    single = build_model(
        SHAPE, max_position=SEQ, seed=0, rope_theta=1e4, norm="layernorm"
    ).state_dict()
    latest = ckpt.load_latest(fsdp_run / "checkpoints")
    assert latest.step == PARALLEL_STEPS
    assert {k: v.shape for k, v in latest.model.items()} == {k: v.shape for k, v in single.items()}
    moments = latest.state["optimizer"]["state"]
    assert {k: v["exp_avg"].shape for k, v in moments.items()} == {
        k: v.shape for k, v in single.items()
    }


def test_fsdp_checkpoint_resumes_under_fsdp(data, fsdp_run, tmp_path):
    shutil.copytree(fsdp_run / "checkpoints", tmp_path / "checkpoints")
    shutil.rmtree(ckpt.step_dir(tmp_path / "checkpoints", PARALLEL_STEPS))  # newest gone
    spec = _spec(data, tmp_path, steps=PARALLEL_STEPS, checkpoint_every=2, parallel="fsdp")
    spec["threads"] = 2
    assert launch(spec, 2, tmp_path / "spec.json") == 0
    assert [(r["event"], r["step"], r["parallel"]) for r in events(tmp_path / "log.jsonl")] == [
        ("start", 0, "fsdp"),
        ("resumed", PARALLEL_STEPS - 2, "fsdp"),
    ]
    _assert_same_result(fsdp_run, tmp_path)


def test_fsdp_checkpoint_resumes_in_one_process(data, fsdp_run, tmp_path):
    shutil.copytree(fsdp_run / "checkpoints", tmp_path / "checkpoints")
    shutil.rmtree(ckpt.step_dir(tmp_path / "checkpoints", PARALLEL_STEPS))
    spec = _spec(data, tmp_path, steps=PARALLEL_STEPS, checkpoint_every=2)
    assert launch(spec, 1, tmp_path / "spec.json") == 0
    assert [(r["event"], r["processes"]) for r in events(tmp_path / "log.jsonl")] == [
        ("start", 2),
        ("resumed", 1),
    ]
    _assert_close_runs(fsdp_run, tmp_path)


def test_shards_are_disjoint_and_cover_each_step():
    seen = []
    for step in range(3):
        for rank in range(4):
            seen += list(shard_rows(step, 8, rank, 4))
    assert seen == list(range(24))


def test_more_tokens_than_one_pass_is_an_error_unless_epochs_allow(data, tmp_path):
    windows = len(TokenWindows(data["train"]))
    steps = windows // BATCH + 2
    spec = _spec(data, tmp_path, steps=steps, checkpoint_every=0)
    args = (Run.from_dict(spec["run"]), TokenWindows(data["train"]), TokenWindows(data["val"]))
    kwargs = {"max_position": SEQ, "rope_theta": 1e4, "log_path": tmp_path / "l", "progress": False}
    kwargs["norm"] = "layernorm"
    with pytest.raises(ValueError, match="one pass without repeats"):
        train_run(*args, spec["cfg"], **kwargs)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_norm_switch_reloads_and_counts(tmp_path, norm):
    model = build_model(SHAPE, max_position=SEQ, seed=0, rope_theta=1e4, norm=norm)
    extra = (2 * SHAPE.n_layers + 1) * SHAPE.d_model if norm == "layernorm" else 0
    assert count_parameters(model) == SHAPE.n_params + extra
    if norm == "layernorm":
        assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    x = torch.randint(0, VOCAB, (2, SEQ))
    assert torch.equal(model(input_ids=x).logits, again(input_ids=x).logits)


def test_open_lm_init_scales_output_projections():
    big = Shape(d_model=256, n_layers=4, n_heads=4, vocab_size=VOCAB, multiple_of=16)
    model = build_model(big, max_position=SEQ, seed=0, rope_theta=1e4, norm="layernorm")
    for index, layer in enumerate(model.model.layers):
        q = layer.self_attn.q_proj.weight
        o = layer.self_attn.o_proj.weight
        assert q.std().item() == pytest.approx(0.0625 * 0.986, rel=0.05)  # truncated at 3σ
        ratio = o.std().item() / q.std().item()
        assert ratio == pytest.approx((2 * (index + 1)) ** -0.5, rel=0.05)
        assert q.abs().max().item() <= 3 * 0.0625 + 1e-6
