"""tests/results_diff.py on small made-up results trees: a real difference is reported, one in
timings or provenance is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from results_diff import RTOL, compare_trees

TOOL = Path(__file__).resolve().parents[1] / "results_diff.py"


def _tree(root: Path, *, loss: float = 4.25, median_s: float = 0.5, commit: str = "abc") -> Path:
    """A results/ tree with one file of each kind the workflow writes."""
    results = root / "results"
    (results / "runs" / "a-v1" / "model").mkdir(parents=True)
    (results / "latency").mkdir()
    (results / "logs").mkdir()
    (results / "benchmarks").mkdir()
    pd.DataFrame({"run": ["a-v1", "a-v1"], "N": [100, 100], "loss": [loss, 4.0]}).to_csv(
        results / "runs" / "a-v1" / "points.csv", index=False
    )
    steps = [
        {"event": "start", "step": 0},
        {"step": 1, "loss": 6.5, "tokens_per_s": 1000.0 * median_s},
        {"step": 2, "loss": loss, "tokens_per_s": 900.0 * median_s},
    ]
    (results / "runs" / "a-v1" / "log.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in steps)
    )
    (results / "runs" / "a-v1" / "model" / "model.safetensors").write_bytes(b"\x00weights")
    shape = {
        "shape": "d16-l4-h2",
        "N": 13616,
        "median_s": median_s,
        "trials_s": [median_s, 2 * median_s],
        "flagged": median_s > 1,
        "provenance": {"git_commit": commit, "host": "vm"},
    }
    (results / "latency" / "d16-l4-h2.json").write_text(json.dumps(shape))
    fit = {"law": "inference", "params": {"A": 1.5, "alpha": 0.3}, "n_points": 8}
    (results / "fit.json").write_text(json.dumps({**fit, "provenance": {"git_commit": commit}}))
    (results / "logs" / "train.log").write_text(f"took {median_s} s\n")
    (results / "benchmarks" / "train.tsv").write_text(f"s\n{median_s}\n")
    return root


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_identical_trees_have_no_difference(tmp_path):
    result = compare_trees(_tree(tmp_path / "a"), _tree(tmp_path / "b"))
    assert result.differences == []
    assert set(result.compared) == {
        "runs/a-v1/points.csv",
        "runs/a-v1/log.jsonl",
        "runs/a-v1/model/model.safetensors",
        "latency/d16-l4-h2.json",
        "fit.json",
    }
    assert set(result.ignored) == {"logs/train.log", "benchmarks/train.tsv"}


def test_timings_and_provenance_are_left_out(tmp_path):
    a = _tree(tmp_path / "a", median_s=0.5, commit="abc")
    b = _tree(tmp_path / "b", median_s=3.0, commit="def")  # flagged too: derived from the cv
    resumed = b / "results" / "runs" / "a-v1" / "log.jsonl"
    lines = resumed.read_text().splitlines()
    resumed.write_text("\n".join([*lines[:2], '{"event": "resumed", "step": 1}', lines[2]]) + "\n")
    assert compare_trees(a, b).differences == []


def test_a_changed_loss_is_reported_in_every_file_that_holds_it(tmp_path):
    a = _tree(tmp_path / "a", loss=4.25)
    b = _tree(tmp_path / "b", loss=4.25 * (1 + 1e-6))
    assert compare_trees(a, b).differences == [
        f"runs/a-v1/log.jsonl: step records[1].loss: 4.25 != {4.25 * (1 + 1e-6)!r}",
        f"runs/a-v1/points.csv: row 0 (run=a-v1) column loss: 4.25 != {4.25 * (1 + 1e-6)!r}",
    ]


def test_floats_equal_within_rtol_only(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    fit = b / "results" / "fit.json"
    _edit_json(fit, lambda d: d["params"].update(A=1.5 * (1 + RTOL / 2)))
    result = compare_trees(a, b)
    assert result.differences == []
    assert result.inexact == 1
    _edit_json(fit, lambda d: d["params"].update(A=1.5 * (1 + 10 * RTOL)))
    assert compare_trees(a, b).differences == [
        f"fit.json.params.A: 1.5 != {1.5 * (1 + 10 * RTOL)!r}"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.update(n_points=9), ["fit.json.n_points: 8 != 9"]),
        (lambda d: d.update(n_points=8.0), []),  # an integer and a float compare as numbers
        (lambda d: d["params"].pop("alpha"), ["fit.json.params.alpha: only in A"]),
        (lambda d: d.update(law="chinchilla"), ["fit.json.law: 'inference' != 'chinchilla'"]),
        (lambda d: d.update(warnings=[]), ["fit.json.warnings: only in B"]),
        (lambda d: d.update(n_points=True), ["fit.json.n_points: 8 != True"]),
    ],
)
def test_json_differences(tmp_path, edit, expected):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    _edit_json(b / "results" / "fit.json", edit)
    assert compare_trees(a, b).differences == expected


def test_a_measured_field_is_left_out_but_the_rest_of_the_file_is_compared(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    _edit_json(b / "results" / "latency" / "d16-l4-h2.json", lambda d: d.update(N=13617))
    assert compare_trees(a, b).differences == ["latency/d16-l4-h2.json.N: 13616 != 13617"]


def test_missing_files_weights_rows_and_columns(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (b / "results" / "runs" / "a-v1" / "model" / "model.safetensors").write_bytes(b"\x01weights")
    (b / "results" / "fit.json").unlink()
    (b / "results" / "logs" / "train.log").unlink()  # a log missing is no difference
    points = b / "results" / "runs" / "a-v1" / "points.csv"
    pd.read_csv(points).iloc[:1].to_csv(points, index=False)
    assert compare_trees(a, b).differences == [
        f"fit.json: only in {a / 'results'}",
        "runs/a-v1/model/model.safetensors: contents differ",
        "runs/a-v1/points.csv: 2 rows != 1",
    ]
    pd.read_csv(points).rename(columns={"loss": "val_loss"}).to_csv(points, index=False)
    assert "runs/a-v1/points.csv: columns ['run', 'N', 'loss'] != ['run', 'N', 'val_loss']" in (
        compare_trees(a, b).differences
    )


def test_a_partial_tree_is_compared_on_the_files_it_has(tmp_path):
    """A run to some targets (part=True) leaves out the reference's other files, yet every file
    it made must match one of the reference's."""
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (b / "results" / "fit.json").unlink()
    assert compare_trees(a, b, part=True).differences == []
    assert compare_trees(a, b).differences == [f"fit.json: only in {a / 'results'}"]
    (b / "results" / "runs" / "a-v1" / "checkpoint.safetensors").write_bytes(b"\x00")
    assert compare_trees(a, b, part=True).differences == [
        f"runs/a-v1/checkpoint.safetensors: only in {b / 'results'}"
    ]


def test_script_prints_one_line_per_difference_and_exits_nonzero(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", loss=5.0)
    same = subprocess.run([sys.executable, TOOL, a, a], capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""
    assert "5 files compared, 2 left out" in same.stderr
    differ = subprocess.run(
        [sys.executable, TOOL, a / "results", b], capture_output=True, text=True
    )
    assert differ.returncode == 1
    assert differ.stdout.splitlines() == [
        "runs/a-v1/log.jsonl: step records[1].loss: 4.25 != 5.0",
        "runs/a-v1/points.csv: row 0 (run=a-v1) column loss: 4.25 != 5.0",
    ]
    missing = subprocess.run(
        [sys.executable, TOOL, a, tmp_path / "none"], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert "none: no such directory" in missing.stderr
