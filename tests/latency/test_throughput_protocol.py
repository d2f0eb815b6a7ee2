"""The follow-up's throughput protocol: the mean of the runs, the best batch size, saturation."""

import pytest

from infscale.latency.throughput import at_saturation, by_batch, throughput_settings


def result(shape, batch, mean_s):
    return {
        "shape": shape,
        "batch_size": batch,
        "output_tokens": 10,
        "mean_s": mean_s,
        "median_s": 99.0,  # not what throughput reads
        "trials_s": [mean_s] * 5,
    }


def test_throughput_is_batch_times_tokens_over_the_mean_run():
    table = by_batch([result("a", 4, 2.0), result("a", 16, 4.0)])
    assert table["tokens_per_s"].tolist() == [20.0, 40.0]
    assert table["trials"].tolist() == [5, 5]


def test_best_batch_size_and_saturation():
    table = by_batch(
        [
            result("rising", 4, 2.0),  # 20 tok/s
            result("rising", 16, 4.0),  # 40: still doubling at the largest batch
            result("flat", 4, 2.0),  # 20
            result("flat", 16, 7.8),  # 20.5: +2.6 %, saturated
            result("falls", 4, 1.0),  # 40
            result("falls", 16, 8.0),  # 20: the best is the smaller batch
        ]
    )
    best = at_saturation(table).set_index("shape")
    assert best.loc["rising", "batch_size"] == 16 and not best.loc["rising", "saturated"]
    assert best.loc["flat", "tokens_per_s"] == pytest.approx(1600 / 78)
    assert best.loc["flat", "saturated"]
    assert best.loc["falls", "batch_size"] == 4 and best.loc["falls", "saturated"]
    assert best.loc["falls", "batch_sizes"] == "4 16"


def test_settings_take_runs_as_trials_and_the_backend_where_named(default_config):
    latency = default_config["latency"]
    settings = throughput_settings(latency)
    assert settings == {"input_tokens": 128, "output_tokens": 32, "trials": 5}
    named = {
        **latency,
        "throughput_protocol": {**latency["throughput_protocol"], "backend": "vllm"},
    }
    assert throughput_settings(named)["backend"] == "vllm"
