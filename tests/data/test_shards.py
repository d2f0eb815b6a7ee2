"""The sharded data stage: source shards grouped into tokenization jobs, the gather's manifest,
and training's one set of windows over every job's file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import MICRO

from infscale.data.corpus import shakespeare_texts
from infscale.data.manifest import manifest_files, write_manifest
from infscale.data.prepare import prepare_tokenizer, tokenize_job
from infscale.data.shards import data_jobs, expand_ranges, job_cap, job_name, source_shards
from infscale.data.tokens import TokenWindows, WindowSet, manifest_windows, write_windows
from infscale.errors import InputError


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ.get("INFSCALE_CACHE", "~/.cache/infscale")).expanduser()


def _micro_data(**extra) -> dict:
    """The micro config's data section with the schema's defaults."""
    data = yaml.safe_load(MICRO.read_text())["data"]
    return {"max_tokens": None, "jobs": 1, **data, **extra}


def test_ranges_expand_with_the_first_bound_s_width():
    assert expand_ranges("g{1..2}/s_{008..010}.zst") == [
        "g1/s_008.zst",
        "g1/s_009.zst",
        "g1/s_010.zst",
        "g2/s_008.zst",
        "g2/s_009.zst",
        "g2/s_010.zst",
    ]
    assert expand_ranges("plain.jsonl") == ["plain.jsonl"]
    with pytest.raises(InputError, match=r"data\.hf\.data_files: empty range"):
        expand_ranges("s_{3..1}")


def test_shards_are_grouped_into_at_most_data_jobs_contiguous_jobs():
    data = _micro_data(jobs=6)  # 20 works
    jobs = data_jobs(data)
    assert [len(j) for j in jobs] == [4, 4, 3, 3, 3, 3]
    assert [s for job in jobs for s in job] == [f"packages/{i}" for i in range(20)]
    assert len(data_jobs(_micro_data(jobs=64))) == 20  # never more jobs than shards
    assert job_cap(_micro_data(max_tokens=1000, seq_len=32), 4) == 8  # ceil(ceil(1000/32) / 4)


def test_local_glob_and_hub_files_name_the_shards(tmp_path):
    for name in ("b.jsonl.zst", "a.jsonl", "c.parquet"):
        (tmp_path / name).touch()
    hf = {"path": str(tmp_path / "*"), "name": None, "split": "train", "text_field": "text"}
    hf["data_files"] = None
    data = {"source": "hf", "hf": hf, "max_documents": None}
    assert source_shards(data) == [
        str(tmp_path / n) for n in ("a.jsonl", "b.jsonl.zst", "c.parquet")
    ]
    hub = {**hf, "path": "org/corpus", "data_files": ["x_{0..2}.jsonl.zst", "y.jsonl.zst"]}
    assert source_shards({**data, "hf": hub}) == [f"x_{i}.jsonl.zst" for i in range(3)] + [
        "y.jsonl.zst"
    ]
    with pytest.raises(InputError, match=r"data\.hf\.path: .* matches no file"):
        source_shards({**data, "hf": {**hf, "path": str(tmp_path / "none*")}})
    (tmp_path / "d.txt").touch()
    with pytest.raises(InputError, match=r"d\.txt: not a json, jsonl or parquet file"):
        source_shards(data)
    with pytest.raises(InputError, match=r"data\.max_documents"):
        data_jobs({**data, "hf": hub, "max_documents": 5, "jobs": 2})


def _scatter(data: dict, tokenizer: Path, root: Path, cache_dir: Path) -> dict:
    """Every job of ``data`` (as the workflow runs them) and the gather; the manifest."""
    jobs = data_jobs(data)
    sidecars = []
    for i, shards in enumerate(jobs):
        stem = root / "shards" / job_name(i)
        out = {
            "train": f"{stem}.train.bin",
            "val": f"{stem}.val.bin",
            "meta": f"{stem}.json",
        }
        tokenize_job(data, shards, tokenizer, out, cache_dir, 0, job_cap(data, len(jobs)))
        sidecars.append(out["meta"])
    return write_manifest(sidecars, tokenizer, root / "manifest.json", data)


def _rows(windows: WindowSet) -> np.ndarray:
    """All windows, sorted: the set, whatever file and order holds them."""
    rows = windows.batch(range(len(windows))).numpy()
    return rows[np.lexsort(rows.T[::-1])]


@pytest.fixture(scope="module")
def micro_tokenizer(cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    tok = yaml.safe_load(MICRO.read_text())["tokenizer"]
    prepare_tokenizer(_micro_data(), tok, out, cache_dir, 0, tok["vocab_size"])
    return out


def test_four_jobs_hold_the_single_job_s_windows_split_and_counts(
    micro_tokenizer, cache_dir, tmp_path
):
    one = _scatter(_micro_data(jobs=1), micro_tokenizer, tmp_path / "one", cache_dir)
    four = _scatter(_micro_data(jobs=4), micro_tokenizer, tmp_path / "four", cache_dir)
    assert len(one["jobs"]) == 1 and len(four["jobs"]) == 4
    for key in ("documents", "windows", "tokens"):
        assert four[key] == one[key], key
    assert one["windows"]["train"] > 10_000 and one["windows"]["val"] > 100
    a, b = (
        manifest_windows(tmp_path / "one" / "manifest.json"),
        manifest_windows(tmp_path / "four" / "manifest.json"),
    )
    for split in ("train", "val"):
        np.testing.assert_array_equal(_rows(a[split]), _rows(b[split]))
    # the same windows, in other files: the single job's file is the four files end to end
    single = Path(manifest_files(tmp_path / "one" / "manifest.json")["train"][0]).read_bytes()
    parts = manifest_files(tmp_path / "four" / "manifest.json")["train"]
    assert b"".join(Path(p).read_bytes() for p in parts) == single
    assert four["tokenizer_hash"] == one["tokenizer_hash"]
    assert len({job["source_hash"] for job in four["jobs"]}) == 4


def test_the_cap_is_shared_by_the_jobs_and_checked_at_the_gather(
    micro_tokenizer, cache_dir, tmp_path
):
    data = _micro_data(jobs=4, max_tokens=600_000)  # each job reads about 3 of its 5 works
    capped = _scatter(data, micro_tokenizer, tmp_path, cache_dir)
    assert [job["windows"]["train"] for job in capped["jobs"]] == [4688] * 4  # ⌈18,750 / 4⌉
    assert capped["tokens"]["train"] == 4 * 4688 * 32
    with pytest.raises(InputError, match=r"data\.max_tokens: .* fewer than 10,000,000 .* 0000"):
        _scatter(_micro_data(jobs=2, max_tokens=10_000_000), micro_tokenizer, tmp_path, cache_dir)


def test_window_set_reads_several_files_as_one(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 50, rng.integers(3, 30)).tolist() for _ in range(300)]
    write_windows(docs, tmp_path / "all.bin", 8, 0, 50)
    for i, part in enumerate((docs[:100], docs[100:120], docs[120:])):
        write_windows(part, tmp_path / f"{i}.bin", 8, 0, 50)
    parts = WindowSet([tmp_path / f"{i}.bin" for i in range(3)])
    assert len(parts) == sum(len(TokenWindows(tmp_path / f"{i}.bin")) for i in range(3))
    stacked = np.concatenate([TokenWindows(tmp_path / f"{i}.bin").rows(...) for i in range(3)])
    rows = rng.permutation(len(parts))[:50]
    np.testing.assert_array_equal(parts.batch(rows).numpy(), stacked[rows])


def _job_command(data: dict, shards: list[str], tokenizer: Path, out: dict) -> list[str]:
    code = (
        "import json, sys; from infscale.data.prepare import tokenize_job;"
        "a = json.loads(sys.argv[1]); tokenize_job(a['data'], a['shards'], a['tok'], a['out'],"
        " a['cache'], 0, None)"
    )
    args = {"data": data, "shards": shards, "tok": str(tokenizer), "out": out, "cache": "."}
    return [sys.executable, "-c", code, json.dumps(args)]


@pytest.mark.slow
def test_a_job_killed_mid_shard_and_rerun_writes_the_same_file(
    cache_dir, micro_tokenizer, tmp_path
):
    """One shard of 12 works (2.1 MB of text), killed once its training file has begun."""
    corpus = tmp_path / "corpus.jsonl"
    works = list(shakespeare_texts(cache_dir, list(range(12))))
    pd.DataFrame({"text": works}).to_json(corpus, orient="records", lines=True)
    hf = {"path": str(corpus), "name": None, "split": "train", "text_field": "text"}
    data = _micro_data(source="hf", hf={**hf, "data_files": None}, max_documents=None)
    shards = source_shards(data)

    def outputs(root: Path) -> dict:
        return {
            "train": f"{root}/0000.train.bin",
            "val": f"{root}/0000.val.bin",
            "meta": f"{root}/0000.json",
        }

    env = {**os.environ, "RAYON_NUM_THREADS": "1"}
    reference = outputs(tmp_path / "reference")
    subprocess.run(_job_command(data, shards, micro_tokenizer, reference), env=env, check=True)
    out = outputs(tmp_path / "killed")
    job = subprocess.Popen(_job_command(data, shards, micro_tokenizer, out), env=env)
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    while not any(p.stat().st_size > 10_000 for p in partial):
        assert job.poll() is None, "the job ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
        partial = list((tmp_path / "killed").glob(".0000.train.bin.*.tmp"))
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not Path(out["train"]).exists() and not Path(out["meta"]).exists()
    subprocess.run(_job_command(data, shards, micro_tokenizer, out), env=env, check=True)
    for key in ("train", "val"):
        assert Path(out[key]).read_bytes() == Path(reference[key]).read_bytes(), key
    assert json.loads(Path(out["meta"]).read_text()) == json.loads(
        Path(reference["meta"]).read_text()
    )
    assert not list((tmp_path / "killed").glob(".*.tmp"))  # the killed try's temporaries
