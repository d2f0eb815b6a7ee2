"""benchmarks/gpu_check.py: its quick mode end to end on the CPU, and its bf16 detector.

The GPU figures need a GPU (issue 15); this keeps the script itself from rotting. Every section of
the quick run is the library's real code on scaled-down paper shapes, and the values asserted
are ones a wrong FSDP layout, resume, FLOP count, latency pairing or dtype would change. The
quick run takes about 75 s of CPU (one run, shared by the tests marked slow); the detector's
tests are fast.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import PAPER, REPO

from infscale.checks import load_config
from infscale.train.flops import flops_per_token
from infscale.train.memory import train_memory
from infscale.train.sizing import size_training

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SECTIONS = ["dtype", "ratio", "train", "recipe", "fsdp", "resume", "latency", "throughput"]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(out.read_text()), out


@pytest.mark.slow
def test_every_section_ran_and_passed_with_the_environment_recorded(quick):
    report, _ = quick
    assert report["mode"] == "quick" and report["passed"] is True
    assert list(report["sections"]) == SECTIONS
    for name, section in report["sections"].items():
        assert section["status"] == "ok", name
        assert 0 < section["elapsed_s"] <= section["cap_s"]
    env = report["environment"]
    assert env["device_type"] == "cpu"
    assert env["torch"] == torch.__version__
    assert env["transformers"] and env["python"]
    assert report["acceptance"] is None  # GPU targets: not judged in quick mode


@pytest.mark.slow
def test_training_rows_use_the_library_flop_count_and_give_an_mfu_in_0_1(quick):
    train = quick[0]["sections"]["train"]
    assert [r["run"] for r in train["rows"]] == ["candidates/1B_v8", "80M-v1"]
    for row in train["rows"]:
        assert row["dtype"] == "float32" and row["compile"] is False and row["seq_len"] == 64
        assert row["tokens_per_s"] > 0
        assert 0 < row["mfu"] <= 1 and row["mfu_causal"] < row["mfu"]
        peak = train["peak_tflops"][f"{row['threads']}-float32"] * 1e12
        assert row["mfu"] == pytest.approx(
            row["tokens_per_s"] * row["flops_per_token"] / peak, rel=1e-3
        )
    wide, deep = train["rows"]
    assert (wide["shape"], deep["shape"]) == ("d192-l12-h2", "d32-l8-h2")  # 3072x12, 512x8 / 16
    wide_shape = _module().scaled(_paper_shape(3072, 12, 16))
    assert wide["flops_per_token"] == flops_per_token(wide_shape, 64)


@pytest.mark.slow
def test_recipe_times_1b_v1_with_accumulation_against_the_memory_model_and_both_peaks(quick):
    sections = quick[0]["sections"]
    recipe = sections["recipe"]
    config = load_config(REPO / "config" / "paper.yaml", REPO / "config" / "schema.yaml")
    # what ran: 1B_v1 (2048x24) scaled, the quick micro-batch, checkpointing as micro-batch 16
    # needs it on an 80 GB GPU (123.6 GiB without), two of the 64 micro-batches of batch 256
    shape = _module().scaled(_paper_shape(2048, 24, 16))
    assert recipe["shape"] == shape.label == "d128-l24-h2" and recipe["seq_len"] == 64
    assert (recipe["micro_batch"], recipe["activation_checkpointing"]) == (4, True)
    assert recipe["dtype"] == "float32" and recipe["compile"] is False
    acc = recipe["accumulation"]
    assert (acc["micro_batches_per_step"], acc["configured"]) == (2, 256 // 4)
    assert acc["scaled_down"] is True and "quick mode" in acc["why"]
    # the memory model's prediction is train_memory's total for that shape and micro-batch
    memory = recipe["memory"]
    predicted = train_memory(shape, 64, 4, 1, False, True)
    assert memory["predicted_gib"] == pytest.approx(predicted.total, rel=1e-12)
    assert sum(memory["predicted_parts_gib"].values()) == pytest.approx(predicted.total)
    # a CPU keeps no allocator peak: said, not left blank
    assert memory["measured"] is False and memory["ratio_allocated"] is None
    assert "not measurable on a CPU" in memory["reason"]
    # MFU against the datasheet (cluster.peak_tflops) and the measured peak, from one count
    speed = recipe["speed"]
    assert speed["flops_per_token"] == flops_per_token(shape, 64)
    assert speed["tokens"] == 2 * 2 * 4 * 64 == len(speed["steps_s"]) * 2 * 4 * 64
    assert speed["tokens_per_s"] == pytest.approx(speed["tokens"] / sum(speed["steps_s"]))
    assert speed["datasheet_peak_tflops"] == config["cluster"]["peak_tflops"] == 312
    model_flops = speed["tokens_per_s"] * speed["flops_per_token"]
    assert speed["mfu_datasheet"] == pytest.approx(model_flops / 312e12, rel=1e-9)
    assert speed["mfu_measured"] == pytest.approx(
        model_flops / (speed["measured_peak_tflops"] * 1e12), rel=1e-9
    )
    for key in ("tokens_per_s", "mfu_datasheet", "mfu_measured", "warmup_s"):
        assert math.isfinite(speed[key]) and speed[key] > 0, key
    assert 0 < speed["mfu_measured"] <= 1
    assert all(math.isfinite(x) for x in speed["losses"])
    # the measured peak reuses the train section's windows: never below its best
    assert speed["measured_peak_tflops"] >= sections["train"]["peak_tflops"]["1-float32"]
    # the plan for the full shape, one GPU and the cluster, as sizing gives it
    settings = recipe["settings"]
    cfg = {**config["train"], **config["select"]["train_overrides"]}
    run_tokens = 28991029248  # select.tokens
    one = {**config["cluster"], "gpus_per_node": 1, "max_nodes": 1, "train_gpus": 1}
    full = _paper_shape(2048, 24, 16)
    for name, cluster in (("one_gpu", one), ("cluster", config["cluster"])):
        plan = size_training(full, run_tokens, cfg, 2048, cluster)
        got = settings["plan"][name]
        assert (got["gpus"], got["micro_batch"]) == (plan.gpus, plan.micro_batch), name
        assert got["activation_checkpointing"] == plan.activation_checkpointing
        assert got["predicted_gib"] == pytest.approx(plan.mem_gb, abs=1e-3)
    assert settings["micro_batch"] == 16 and settings["batch_size"] == 256
    without = train_memory(full, 2048, 16, 1, False, False).total
    assert settings["full_predicted_gib"]["without_checkpointing"] == pytest.approx(without)
    assert without > settings["usable_gib"] == pytest.approx(80 * 0.9 - 2)  # hence checkpointing
    assert settings["plan"]["one_gpu"]["micro_batch"] < 16
    assert f"{without:.1f} GiB without checkpointing" in settings["why_not_the_one_gpu_plan"]


@pytest.mark.slow
def test_fsdp_step_matches_the_plain_step(quick):
    fsdp = quick[0]["sections"]["fsdp"]
    assert fsdp["backend"] == "gloo" and fsdp["world_size"] == 1
    plain, sharded = fsdp["losses_plain"], fsdp["losses_fsdp"]
    assert len(plain) == len(sharded) == fsdp["steps"] == 4
    assert all(a > b for a, b in itertools.pairwise(plain))  # it fits the batch
    for a, b in zip(plain, sharded, strict=True):
        assert b == pytest.approx(a, rel=fsdp["rtol"])
    assert fsdp["max_rel_weight_diff"] <= fsdp["rtol"]
    assert fsdp["optimizer_state_params"] > 0


@pytest.mark.slow
def test_resumed_curve_is_bitwise_the_uninterrupted_one_on_cpu(quick):
    resume = quick[0]["sections"]["resume"]
    whole, resumed = resume["losses_uninterrupted"], resume["losses_resumed"]
    assert resume["resumed_from_step"] == 4 and resume["steps"] == 8
    assert len(whole) == 4 and whole == resumed
    assert resume["exact"] is True and resume["max_rel_diff"] == 0.0
    assert len(set(whole)) == len(whole)  # the steps saw different batches


@pytest.mark.slow
def test_latency_covers_the_candidates_and_the_deep_shape_is_slower(quick):
    latency = quick[0]["sections"]["latency"]
    names = [r["name"] for r in latency["rows"]]
    expected = ["1B_v1", "1B_v2", "1B_v3", "1B_v6", "1B_v8", "1B_v9", "1B_v10", "1B_v11"]
    assert names == [*expected, "1B_v12", "1B_v13", "1B_v14", "1B_v15"]
    # config/paper.yaml's candidates are the paper's list, scaled by 16
    paper = pd.read_csv(PAPER / "candidates_1b.csv")
    assert names == list(paper["name"])
    rows = {r["name"]: r for r in latency["rows"]}
    for cand in paper.itertuples():
        assert rows[cand.name]["n_layers"] == cand.n_layers
        assert rows[cand.name]["d_model"] == cand.d_model // 16
    assert latency["protocol"]["input_tokens"] == latency["protocol"]["output_tokens"] == 8
    for row in latency["rows"]:
        assert row["ttft_s"] > 0  # no timing relation: on a loaded host one new token's call
        # may take longer than another's eight
        assert len(row["trials_s"]) == 2
        # the median and per-token time summarise the row's own trials (no relation between
        # two measured times: a loaded host can reorder any two shapes)
        assert row["median_s"] == pytest.approx(statistics.median(row["trials_s"]))
        assert row["per_token_ms"] == pytest.approx(1000 * row["median_s"] / 8)  # 8 tokens


@pytest.mark.slow
def test_ratio_pairs_2048x24_with_3072x12(quick):
    sections = quick[0]["sections"]
    ratio_rows = sections["ratio"]["rows"]
    assert [(r["name"], r["d_model"], r["n_layers"]) for r in ratio_rows] == [
        ("1B_v1", 128, 24),
        ("1B_v8", 192, 12),
    ]
    for name in ("ratio", "latency"):
        ratio, rows = sections[name]["ratio"], {r["name"]: r for r in sections[name]["rows"]}
        assert ratio["ratio_of_medians"] == pytest.approx(
            rows["1B_v1"]["median_s"] / rows["1B_v8"]["median_s"]
        )
        assert math.isfinite(ratio["ratio_of_medians"]) and ratio["ratio_of_medians"] > 0
        assert ratio["paper_a100"] == pytest.approx(1.842, abs=1e-3)


@pytest.mark.slow
def test_throughput_is_timed_at_every_batch_to_64(quick):
    throughput = quick[0]["sections"]["throughput"]
    assert throughput["shape"] == "d128-l24-h2"  # latency.throughput 2048x24, scaled
    batches = [r["batch_size"] for r in throughput["rows"]]
    assert batches == [1, 2, 4, 8, 16, 32, 64]
    tokens = throughput["protocol"]["output_tokens"]
    for row in throughput["rows"]:  # the batch's tokens over its median time, as the rule reports
        assert row["tokens_per_s"] == pytest.approx(row["batch_size"] * tokens / row["median_s"])
        assert row["per_token_ms"] == pytest.approx(1000 * row["median_s"] / tokens)


@pytest.mark.slow
def test_bf16_kept_in_training_and_generation(quick):
    dtype = quick[0]["sections"]["dtype"]
    assert dtype["training"]["autocast"] == ["bfloat16"]
    assert dtype["training"]["lm_head_output"] == ["bfloat16"]
    assert dtype["training"]["master_parameters"] == ["float32"]
    for key in ("parameters", "lm_head_output", "kv_cache"):
        assert dtype["generation"][key] == ["bfloat16"], key
    assert dtype["problems"] == []


@pytest.mark.slow
def test_table_is_written_beside_the_json(quick):
    report, out = quick
    text = out.with_suffix(".txt").read_text()
    assert text.rstrip().endswith("PASSED")
    ratio = report["sections"]["latency"]["ratio"]["ratio_of_medians"]
    assert f"ratio 1B_v1/1B_v8 = {ratio:.3f}" in text
    assert "candidates/1B_v8" in text and "batch  64" in text
    speed = report["sections"]["recipe"]["speed"]
    assert f"{speed['tokens_per_s']:,.0f} tokens/s; MFU" in text
    assert "peak memory: not measurable on a CPU" in text


def test_the_detector_names_every_float32_place():
    gpu_check = _module()
    from infscale.shapes import Shape
    from infscale.train.model import build_model

    model = build_model(
        Shape(16, 2, 2, 64, 16), max_position=32, seed=0, rope_theta=1e4, norm="rmsnorm"
    ).eval()  # float32
    found = gpu_check.generation_dtypes(model, torch.device("cpu"))
    assert found["kv_cache"] == ["float32"]
    problems = gpu_check.dtype_problems(found, "bfloat16", gpu_check.GENERATION_CHECKED)
    assert [p.split(" ")[0] for p in problems] == ["parameters", "lm_head_output", "kv_cache"]
    mixed = {**found, "parameters": ["bfloat16", "float32"], "lm_head_output": ["bfloat16"]}
    problems = gpu_check.dtype_problems(mixed, "bfloat16", ("parameters", "lm_head_output"))
    assert problems == ["parameters in bfloat16, float32, not bfloat16 alone"]


def test_full_mode_without_a_gpu_and_unknown_sections_exit_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    gpu_check = _module()
    assert gpu_check.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert gpu_check.main(["--quick", "--sections", "dtype,speed"]) == 2
    assert "--sections: ['speed']" in capsys.readouterr().err


def _paper_shape(d_model: int, n_layers: int, n_heads: int):
    from infscale.shapes import Shape

    return Shape(d_model, n_layers, n_heads, 50432, 256)


def test_a_section_past_the_run_budget_is_cut_and_the_budget_fits_the_shell_limit():
    gpu_check = _module()
    full = gpu_check.FULL
    assert full.caps["recipe"] > 0 and list(full.caps)[3] == "recipe"
    # the caps may add up to more than the run's budget; the budget plus start-up fits the
    # 8 minutes gpu_check.sh allows
    assert "timeout --signal=INT 480 " in (REPO / "benchmarks" / "gpu_check.sh").read_text()
    assert full.total_s + 20 <= 480 < sum(full.caps.values()) + 20
    ctx = gpu_check.Context(full, {}, torch.device("cpu"), {})
    ctx.run_deadline = gpu_check.time.perf_counter() - 1
    out = gpu_check.run_section("recipe", ctx)
    assert out["status"] == "timed out: not run: the run's 450 s budget is spent"
    assert out["cap_s"] < 0
