"""Sizing of training jobs (infscale.train.sizing, memory) on hand-computed cases, the
parse-time refusals of bad cluster settings, and `infscale plan` on config/paper.yaml."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infscale.checks import load_config, validate_config
from infscale.errors import InputError
from infscale.shapes import Shape
from infscale.train.memory import GB, train_memory
from infscale.train.sizing import gpu_counts, size_training

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
PAPER = REPO / "config" / "paper.yaml"
A100 = {
    "device": "gpu",
    "time_limit_hours": 48,
    "gpus_per_node": 8,
    "gpu_memory_gb": 80,
    "max_nodes": 4,
    "train_gpus": None,
    "mfu": 0.4,
    "peak_tflops": 312,
    "cpus_per_node": 64,
    "host_memory_gb": 500,
    "overhead_minutes": 30,
    "memory_headroom": 0.1,
}
CFG = {
    "batch_size": 256,
    "micro_batch_size": 16,
    "parallel": "ddp",
    "activation_checkpointing": False,
}


def test_gpu_counts_are_powers_of_two_then_whole_nodes():
    assert gpu_counts(A100) == [1, 2, 4, 8, 16, 24, 32]


def test_1b_v1_by_hand_needs_two_nodes():
    """6·N·D = 6 · 1,439,795,200 · 28,991,029,248 = 2.5045e20 FLOPs. One A100 at 40 % of
    312 TFLOP/s does 4.493e17 per hour: 8 GPUs take 69.7 h (> 48 h - 0.5 h), 16 take 34.84 h,
    plus 0.5 h overhead: 35.34 h, 565 GPU-hours."""
    shape = Shape(2048, 24, 16, 50432)
    assert shape.n_params == 1_439_795_200
    plan = size_training(shape, 28_991_029_248, CFG, 2048, A100)
    assert plan.flops == pytest.approx(2.50447e20, rel=1e-4)
    assert (plan.gpus, plan.nodes, plan.per_node, plan.slices) == (16, 2, 8, 1)
    assert plan.hours == pytest.approx(2.50447e20 / (16 * 312e12 * 0.4 * 3600) + 0.5, rel=1e-4)
    assert plan.hours == pytest.approx(35.34, abs=0.01)
    assert plan.runtime_minutes == 2121 <= 48 * 60
    # 16 rows per rank: micro-batch 16 needs ~130 GB (the 90-115 GB and more), 8 fits
    assert plan.micro_batch == 4 and not plan.activation_checkpointing
    assert plan.mem_gb <= 80 * 0.9 - 2


def test_memory_model_by_hand():
    """1B_v1 (d 2048, 24 layers, f 5632), one rank, micro-batch 1, seq 2048, DDP:
    states 16 B · N; autocast copy 2 B · N; activations 24 · 2048 · (26·2048 + 6·2048 + 8·5632)
    B; logits 12 B · 50432 · 2048."""
    shape = Shape(2048, 24, 16, 50432)
    assert shape.ffn_hidden == 5632
    n = 1_439_795_200
    memory = train_memory(shape, 2048, 1, 1, sharded=False, checkpointing=False)
    assert memory.states * GB == pytest.approx(16 * n)
    assert memory.transient * GB == pytest.approx(2 * n)
    assert memory.activations * GB == pytest.approx(24 * 2048 * (26 * 2048 + 6 * 2048 + 8 * 5632))
    assert memory.logits * GB == pytest.approx(12 * 50432 * 2048)
    # with checkpointing: each layer keeps its fp32 input, one layer recomputed in full
    ckpt = train_memory(shape, 2048, 1, 1, sharded=False, checkpointing=True)
    per_layer = 2048 * (26 * 2048 + 6 * 2048 + 8 * 5632)
    assert ckpt.activations * GB == pytest.approx(24 * 4 * 2048 * 2048 + per_layer)
    # FSDP on 16 ranks: states sharded, three blocks and the root gathered in fp32 (+ grads)
    fsdp = train_memory(shape, 2048, 1, 16, sharded=True, checkpointing=False)
    block = (n - 2 * 50432 * 2048) / 24
    root = n - 24 * block
    assert fsdp.states * GB == pytest.approx(16 * n / 16)
    assert fsdp.transient * GB == pytest.approx(8 * (3 * block + root) + 2 * n)


def test_a_run_longer_than_every_node_continues_across_jobs():
    small = {**A100, "max_nodes": 1, "time_limit_hours": 10}
    plan = size_training(Shape(2048, 24, 16, 50432), 28_991_029_248, CFG, 2048, small)
    # 8 GPUs: 69.7 h of compute in jobs of 10 h less 0.5 h overhead: 8 jobs of the full limit
    assert (plan.gpus, plan.slices, plan.runtime_minutes) == (8, 8, 600)


def _paper() -> dict:
    return yaml.safe_load(PAPER.read_text())


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"time_limit_hours": 0}, "config key cluster.time_limit_hours: 0 is less than or equal"),
        ({"train_gpus": 64}, "config key cluster.train_gpus: 64 GPUs per job exceed"),
        ({"gpu_memory_gb": 8}, "config key cluster: run candidates/1B_v1: memory: no micro-batch"),
    ],
)
def test_bad_cluster_settings_are_refused_in_one_line(cluster, message):
    config = _paper()
    config["cluster"] = cluster
    with pytest.raises(InputError) as err:
        validate_config(config, SCHEMA)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_candidate_override_that_fits_no_micro_batch_is_refused():
    """A train_overrides micro-batch is only an upper bound, but the candidates' model on a
    small GPU is still refused, naming the candidate."""
    config = _paper()
    config["cluster"] = {"gpu_memory_gb": 8, "max_nodes": 1}
    config["select"]["candidates"] = {"1B_v1": config["select"]["candidates"]["1B_v1"]}
    config["select"]["k"] = 1
    with pytest.raises(InputError, match="run candidates/1B_v1: memory"):
        validate_config(config, SCHEMA)


def test_snakemake_dry_run_refuses_a_zero_time_limit(tmp_path):
    config = _paper()
    config["cluster"] = {"time_limit_hours": 0}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    done = subprocess.run(
        [
            snakemake,
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            f"--configfile={path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("infscale:")]
    assert lines == [
        "infscale: invalid config: config key cluster.time_limit_hours: 0 is less than or "
        "equal to the minimum of 0"
    ]


def test_plan_of_the_paper(tmp_path):
    """Totals as the README quotes them; no job over a limit; every 1B candidate on at least 8
    GPUs in under 48 h at 40 % MFU."""
    out = tmp_path / "plan.csv"
    infscale = str(Path(sys.executable).with_name("infscale"))
    done = subprocess.run(
        [infscale, "plan", "--configfile", str(PAPER), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "total GPU-hours 3,550" in done.stdout
    train = next(line for line in done.stdout.splitlines() if line.startswith("train "))
    assert train.split()[:2] == ["train", "31"] and "1,469" in train
    import pandas as pd

    table = pd.read_csv(out, keep_default_na=False)
    assert (table["limit"] == "").all()
    candidates = table[table["rule"] == "train_candidate"]
    assert len(candidates) == 12
    assert (candidates["gpus"] >= 8).all() and (candidates["hours"] < 48).all()
    assert (table["hours"] <= 48).all()
    assert load_config(PAPER, SCHEMA)["cluster"]["mfu"] == 0.4
    # every latency job is in the plan, each with the memory of what it holds at once
    latency = table[table["rule"].str.startswith("latency")].set_index(["rule", "job"])
    assert len(latency) == 50
    sweeps = latency.loc["latency_sweep", "mem_gb_per_gpu"]
    assert list(sweeps.index) == ["layers", "width", "ratio", "gqa"]
    # the GQA sweep's MHA shape at batch 128: bf16 K and V of 24 layers x 2,048 wide over
    # 1,024 + 1,024 tokens, 51.5 GB, plus its own and three twins' weights; under 72 GB usable
    kv_gb = 2 * 24 * 128 * 2048 * 2048 * 2 / 1e9
    assert kv_gb + 4 * 2 * 1.2e9 / 1e9 < sweeps["gqa"] < 72
    assert latency.loc[("latency_candidate_throughput", "candidates"), "gpus"] == 1


def test_plan_exits_2_with_one_line_per_job_over_a_limit(tmp_path):
    config = _paper()
    config["cluster"] = {"time_limit_hours": 0.4, "overhead_minutes": 0}
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(config)))
    infscale = str(Path(sys.executable).with_name("infscale"))
    done = subprocess.run(
        [infscale, "plan", "--configfile", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("infscale: limit: ") for line in lines)
    assert all("over 0.4 h" in line for line in lines)
