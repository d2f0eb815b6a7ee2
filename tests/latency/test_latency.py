from pathlib import Path

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.latency.measure import Item, _rounds, measure_interleaved, measure_latency, summarize
from infscale.latency.protocol import Protocol
from infscale.shapes import Shape

SHAPE = Shape(32, 2, 4, 300, 16)


def test_summary_statistics_of_known_times():
    times = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    stats = summarize(times)
    assert stats["median_s"] == 3.0
    assert stats["mean_s"] == 4.0
    assert stats["min_s"] == 1.0
    assert stats["iqr_s"] == 2.0  # 4 - 2
    assert stats["cv"] == pytest.approx(np.std(times, ddof=1) / 4.0)


@pytest.mark.parametrize("do_sample", [True, False])
def test_measures_the_protocol(do_sample):
    result = measure_latency(
        SHAPE, input_tokens=16, output_tokens=8, trials=3, warmup=1, do_sample=do_sample
    )
    assert len(result["trials_s"]) == 3
    assert len(result["ttft_trials_s"]) == 3
    assert min(result["trials_s"]) <= result["median_s"] <= max(result["trials_s"])
    assert result["per_token_ms"] == pytest.approx(1000 * result["median_s"] / 8)
    # the first token's time is its own trials' median (no timing relation: a loaded host can
    # delay any one trial, so one token may take longer than eight)
    assert result["ttft_s"] == float(np.median(result["ttft_trials_s"])) > 0
    assert result["N"] == SHAPE.n_params
    assert result["dtype"] == "float32"
    assert result["versions"]["torch"]
    assert result["cv_basis"] == "absolute" and result["reference"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": 0}, "input_tokens"),
        ({"trials": 0}, "trials"),
        ({"dtype": "int8"}, "dtype"),
        ({"warmup": -1}, "warmup"),
    ],
)
def test_bad_protocol_rejected(kwargs, message):
    with pytest.raises(InputError, match=message):
        measure_latency(SHAPE, **kwargs)


def test_interleaved_items_each_get_their_trials_and_batch():
    protocol = Protocol(input_tokens=8, output_tokens=4, trials=2, warmup=0, do_sample=False)
    other = Shape(32, 1, 4, 300, 16)
    items = [Item(SHAPE, 1), Item(other, 1), Item(SHAPE, 3, name="b3")]
    results = measure_interleaved(items, protocol)
    assert [r["shape"] for r in results] == [SHAPE.label, other.label, SHAPE.label]
    assert [r["batch_size"] for r in results] == [1, 1, 3]
    for r in results:
        assert len(r["trials_s"]) == 2 and r["ttft_s"] > 0
        assert r["tokens_per_s"] == pytest.approx(r["batch_size"] * 4 / r["median_s"])
        assert r["flagged"] is False and r["repeats"] == 0
        assert r["cv_basis"] == "relative" and r["relative_cv"] >= 0
        assert r["reference"] in {SHAPE.label, other.label, "b3"}
        assert r["architecture"] == "LlamaForCausalLM" and r["weights"] == "random"


def test_interleaving_order_is_round_robin(capsys):
    order = []

    def call(name):
        return lambda new_tokens, batch: order.append(name) or 1.0

    calls = [(call("A"), 1), (call("B"), 1), (call("C"), 1)]
    assert _rounds(calls, 4, 3).shape == (3, 3)
    assert "".join(order) == "ABCABCABC"
    lines = capsys.readouterr().err.splitlines()  # the log: one line per finished round
    assert [line.split("|")[2].split()[0] for line in lines] == ["1/3", "2/3", "3/3"], lines
    assert all(line.startswith("latency: 3 item(s), 4 new token(s):") for line in lines)
    order.clear()
    times = _rounds(calls, 4, 2, timed=[0, 2])
    assert "".join(order) == "ACAC"
    assert np.isnan(times[1]).all() and np.isfinite(times[[0, 2]]).all()


def test_noisy_measurement_is_repeated_then_flagged():
    result = measure_latency(
        SHAPE, input_tokens=8, output_tokens=4, trials=3, warmup=0, max_cv=1e-9, max_repeats=2
    )
    assert result["repeats"] == 2
    assert len(result["trials_s"]) == 9  # each repeat's 3 trials pooled with the first 3
    assert result["median_s"] == np.median(result["trials_s"])
    assert result["flagged"] is True
    assert result["max_cv"] == 1e-9
    assert result["cv_basis"] == "absolute"  # timed alone: no reference
    assert result["relative_cv"] is None and result["reference"] is None


def test_position_limit_and_backend_checked():
    with pytest.raises(InputError, match="position limit 64"):
        measure_latency(SHAPE, input_tokens=40, output_tokens=40, max_position=64)
    with pytest.raises(InputError, match="backend"):
        measure_latency(SHAPE, backend="onnx")


def test_vllm_backend_refuses_a_head_size_its_cpu_attention_lacks_on_one_line():
    with pytest.raises(InputError, match=r"head size 8"):
        measure_latency(SHAPE, input_tokens=8, output_tokens=4, backend="vllm", device="cpu")


def test_vllm_model_folder_is_removed_after_the_engine_load_and_after_a_failure(
    tmp_path, monkeypatch
):
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM

    from infscale.latency.measure import saved_model
    from infscale.train.model import build_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = build_model(SHAPE, max_position=32, seed=0, rope_theta=1e4, norm="layernorm")
    with saved_model(model) as folder:
        loaded = AutoModelForCausalLM.from_pretrained(folder)  # what the engine reads
        assert Path(folder).parent == tmp_path
    x = torch.randint(0, SHAPE.vocab_size, (1, 8))
    assert torch.equal(loaded(input_ids=x).logits, model(input_ids=x).logits)
    assert not any(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="engine failed"), saved_model(model):
        raise RuntimeError("engine failed")  # e.g. vLLM out of GPU memory
    assert not any(tmp_path.iterdir())


def test_protocol_from_config_takes_protocol_keys_only(default_config):
    protocol = Protocol.from_config(default_config["latency"], seed=3)
    assert protocol.input_tokens == 128 and protocol.output_tokens == 128
    assert protocol.seed == 3 and protocol.backend == "hf"
    assert protocol.max_cv == default_config["latency"]["max_cv"]
    assert protocol.max_repeats == default_config["latency"]["max_repeats"]


def test_protocol_from_config_fills_defaults_and_rejects_unknown_keys():
    protocol = Protocol.from_config({"trials": 3, "interleave": True})
    assert protocol == Protocol(trials=3)
    assert protocol.max_cv is None and protocol.max_repeats == 0
    with pytest.raises(InputError, match=r"unknown latency setting.*trails"):
        Protocol.from_config({"trails": 3})
    with pytest.raises(InputError, match="max_cv"):
        Protocol.from_config({"max_cv": 0})
