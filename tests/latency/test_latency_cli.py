"""``infscale latency``: bad input exits 2 with one line; the JSON carries the protocol."""

import json

import pytest

from infscale.cli import main

BASE = ["latency", "--d-model", "32", "--n-layers", "2", "--n-heads", "4", "--vocab-size", "300"]
FAST = ["--input-tokens", "8", "--output-tokens", "4", "--trials", "2", "--warmup", "0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--d-model", "0"], "--d-model"),
        (["--n-layers", "-3"], "--n-layers"),
        (["--n-heads", "5"], "not divisible by n_heads"),
        (["--output-tokens", "0"], "--output-tokens"),
        (["--input-tokens", "2000", "--output-tokens", "100"], "position limit 2048"),
        (["--max-position", "10"], "position limit 10"),
        (["--backend", "vllm", "--device", "cpu"], "refused: d32-l2-h4 (head size 8)"),
        (["--backend", "tensorrt"], "--backend"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "lat.json"
    assert main([*BASE, *FAST, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("infscale: error:")
    assert message in err
    assert not out.exists()


def test_lat_json_records_protocol_and_spread(tmp_path, capsys):
    out = tmp_path / "lat.json"
    args = ["--greedy", "--threads", "1", "--max-cv", "1e-9", "--max-repeats", "1"]
    assert main([*BASE, *FAST, *args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("median_s", "mean_s", "min_s", "iqr_s", "cv", "per_token_ms", "ttft_s"):
        assert result[key] >= 0
    assert len(result["trials_s"]) == 4  # 2 trials, then 2 more pooled by the one repeat
    assert result["threads"] == 1 and result["backend"] == "hf"
    assert result["do_sample"] is False and result["output_tokens"] == 4
    assert {"torch", "transformers"} <= set(result["versions"])
    assert result["device"].startswith("cpu")
    assert result["flagged"] is True and result["repeats"] == 1  # no run is that steady
    assert "flagged" in capsys.readouterr().out
