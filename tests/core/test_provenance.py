"""Every result JSON carries a config hash (issue 16): the workflow's, or for an ``infscale``
command run by hand, a hash of the command's own settings, and the provenance says which."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import run

from infscale.provenance import CONFIG_HASH_ENV


@pytest.fixture
def points(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {"N": [1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6], "D": [2e6, 4e6, 8e6, 1.6e7, 3.2e7, 6.4e7]}
    )
    frame["loss"] = 1.7 + 400 / frame["N"] ** 0.34 + 410 / frame["D"] ** 0.28
    path = tmp_path / "points.csv"
    frame.to_csv(path, index=False)
    return path


def _fit(capsys, points: Path, out: Path, *extra: str) -> dict:
    args = ["fit", "--data", points, "--law", "chinchilla", "--out", out, *extra]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    return json.loads(out.read_text())["provenance"]


def test_a_fit_by_hand_records_the_hash_of_its_settings(capsys, points, tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_HASH_ENV, raising=False)
    first = _fit(capsys, points, tmp_path / "a.json")
    assert first["config_hash_of"] == "command settings"
    assert len(first["config_hash"]) == 12
    assert _fit(capsys, points, tmp_path / "a.json") == first  # the same settings, the same hash
    other = _fit(capsys, points, tmp_path / "a.json", "--tie", "none")
    assert other["config_hash"] != first["config_hash"]


def test_a_fit_the_workflow_runs_records_the_workflows_hash(capsys, points, tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_HASH_ENV, "0123456789ab")
    made = _fit(capsys, points, tmp_path / "a.json")
    assert made["config_hash"] == "0123456789ab"
    assert made["config_hash_of"] == "workflow config"


def test_a_latency_by_hand_records_the_hash_of_its_settings(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_HASH_ENV, raising=False)
    out = tmp_path / "lat.json"
    shape = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--vocab-size", "300"]
    timing = ["--input-tokens", "4", "--output-tokens", "4", "--trials", "2", "--device", "cpu"]
    code, _, err = run(capsys, "latency", *shape, *timing, "--out", out)
    assert code == 0, err
    made = json.loads(out.read_text())["provenance"]
    assert made["config_hash_of"] == "command settings"
    assert len(made["config_hash"]) == 12
