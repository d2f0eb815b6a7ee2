"""Per-token latency (TTFT, TPOT, end-to-end, percentiles) from times known in advance: the
measurement reads a scripted clock, so every figure in the JSON is computed here by hand."""

import numpy as np
import pytest

from infscale.latency.measure import Item, measure_interleaved
from infscale.latency.protocol import Protocol
from infscale.latency.serving import bench_latency_fields, serve_fields, tpot
from infscale.shapes import Shape

SHAPE = Shape(32, 2, 4, 300, 16)


def scripted_clock(readings):
    """A clock that returns the given readings, one per call, and fails past their end."""
    values = iter(readings)
    return lambda: next(values)


def test_latency_json_from_a_scripted_clock():
    # reads: one warm-up call (start, end), 3 full calls, a one-token warm-up, 3 one-token calls
    readings = [100.0, 199.0]  # warm-up: 99 s, not a trial
    readings += [0.0, 1.0, 10.0, 12.0, 20.0, 24.0]  # end-to-end 1, 2, 4 s
    readings += [25.0, 28.0]  # the one-token call's warm-up: 3 s, not a trial
    readings += [30.0, 30.2, 40.0, 40.4, 50.0, 50.6]  # first token 0.2, 0.4, 0.6 s
    protocol = Protocol(input_tokens=8, output_tokens=5, trials=3, warmup=1, do_sample=False)
    [result] = measure_interleaved([Item(SHAPE, 1)], protocol, clock=scripted_clock(readings))
    assert result["trials_s"] == pytest.approx([1, 2, 4])
    assert result["median_s"] == pytest.approx(2.0)  # the paper's batch-1 median
    assert result["per_token_ms"] == pytest.approx(400.0)  # 2 s / 5 tokens
    # vllm bench latency: mean, the trials, percentiles by linear interpolation
    assert result["avg_latency"] == pytest.approx(7 / 3)
    assert result["latencies"] == pytest.approx([1, 2, 4])
    assert result["percentiles"] == pytest.approx(
        {"10": 1.2, "25": 1.5, "50": 2.0, "75": 3.0, "90": 3.6, "99": 3.96}
    )
    # TTFT 200, 400, 600 ms; TPOT (e2e - ttft) / 4 tokens after the first: 200, 400, 850 ms
    assert result["ttft_s"] == pytest.approx(0.4)
    assert result["mean_ttft_ms"] == pytest.approx(400.0)
    assert result["p90_ttft_ms"] == pytest.approx(560.0)
    assert result["mean_tpot_ms"] == pytest.approx(1450 / 3)
    assert result["median_tpot_ms"] == pytest.approx(400.0)
    assert result["p99_tpot_ms"] == pytest.approx(400 + 0.98 * 450)
    assert result["std_tpot_ms"] == pytest.approx(np.std([200, 400, 850]))
    assert result["median_e2el_ms"] == pytest.approx(2000.0)
    assert result["p50_e2el_ms"] == pytest.approx(2000.0)
    assert result["p99_e2el_ms"] == pytest.approx(3960.0)
    assert result["engine_notes"] == []  # the HF backend, nothing the engine cannot do


def test_tpot_excludes_the_first_token():
    assert tpot(np.array([1.0]), np.array([0.1]), 10) == pytest.approx([0.1])
    assert np.isnan(tpot(np.array([1.0]), np.array([1.0]), 1)).all()


def test_a_metric_without_values_is_none_not_zero():
    fields = serve_fields("tpot", np.array([np.nan]))
    assert fields["mean_tpot_ms"] is None and fields["p99_tpot_ms"] is None
    assert set(bench_latency_fields(np.array([1.0, 3.0]))) == {
        "avg_latency",
        "latencies",
        "percentiles",
    }


def test_throughput_jobs_without_ttft_say_so():
    readings = [0.0, 1.0, 2.0, 5.0]  # two full calls: 1 s and 3 s; no one-token calls
    protocol = Protocol(input_tokens=8, output_tokens=4, trials=2, warmup=0, do_sample=False)
    [result] = measure_interleaved(
        [Item(SHAPE, 2)], protocol, ttft=False, clock=scripted_clock(readings)
    )
    assert result["avg_latency"] == pytest.approx(2.0)
    assert result["mean_ttft_ms"] is None and result["mean_tpot_ms"] is None
    assert result["tokens_per_s"] == pytest.approx(2 * 4 / 2.0)
