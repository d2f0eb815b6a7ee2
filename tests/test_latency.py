import numpy as np
import pytest

from infscale.errors import InputError
from infscale.latency import measure_latency, summarize
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
    assert result["ttft_s"] < result["median_s"]  # one new token costs less than eight
    assert result["N"] == SHAPE.n_params
    assert result["dtype"] == "float32"
    assert result["versions"]["torch"]


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
