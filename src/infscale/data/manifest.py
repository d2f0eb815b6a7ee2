"""The gather: every tokenization job's files listed in results/data/manifest.json; its reading.

Training reads the manifest only: the tokenizer directory, and per split the jobs' token files in
job order, read as one set of windows (tokens.WindowSet) over which the trainer's seeded
permutation runs (train/order.py). Paths in the manifest are relative to its directory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.io import read_json, write_json

SPLITS = ("train", "val")


def write_manifest(
    sidecars: Sequence[str | Path],
    tokenizer_dir: str | Path,
    out: str | Path,
    data_cfg: dict[str, Any],
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the jobs' sidecars against each other and the tokenizer, sum them, write ``out``
    (with ``provenance`` where given).

    A job tokenized with another tokenizer (a stale file), or shards holding fewer training
    tokens than ``data.max_tokens``, stop here with the job named, before any training starts.
    """
    out = Path(out)
    expected = tokenizer_hash(tokenizer_dir)
    jobs = []
    for path in map(Path, sidecars):
        job = read_json(path)
        if job["tokenizer_hash"] != expected:
            raise InputError(f"{path}: tokenized with another tokenizer than {tokenizer_dir}")
        files = {split: _relative(path.parent / job["files"][split], out) for split in SPLITS}
        job.pop("provenance", None)  # the manifest's own says where it was made
        jobs.append({"name": path.stem, **job, "files": files})
    seq_len = data_cfg["seq_len"]
    totals = {
        key: {split: sum(job[key][split] for job in jobs) for split in SPLITS}
        for key in ("documents", "windows", "tokens")
    }
    cap = data_cfg["max_tokens"]
    if cap is not None and totals["tokens"]["train"] < cap:
        short = [job["name"] for job in jobs if job["windows"]["train"] < job["max_windows"]]
        raise InputError(
            f"config key data.max_tokens: the source shards hold {totals['tokens']['train']:,} "
            f"training tokens, fewer than {cap:,} (job(s) {', '.join(short)} ran out of text: "
            "name more shards)"
        )
    manifest = {
        "tokenizer": _relative(Path(tokenizer_dir), out),
        "tokenizer_hash": expected,
        "seq_len": seq_len,
        "vocab_size": jobs[0]["vocab_size"],
        "max_tokens": cap,
        **totals,
        "files": {split: [job["files"][split] for job in jobs] for split in SPLITS},
        "jobs": jobs,
    }
    if provenance is not None:
        manifest["provenance"] = provenance
    write_json(out, manifest)
    return manifest


def manifest_files(path: str | Path) -> dict[str, Any]:
    """``{"tokenizer": dir, "train": [files], "val": [files]}``, as paths from here."""
    path = Path(path)
    manifest = read_json(path)
    files = {split: [str(path.parent / f) for f in manifest["files"][split]] for split in SPLITS}
    return {"tokenizer": str(path.parent / manifest["tokenizer"]), **files}


def tokenizer_hash(tokenizer_dir: str | Path) -> str:
    """blake2b of the saved ``tokenizer.json``: the vocabulary and merges the ids come from."""
    data = (Path(tokenizer_dir) / "tokenizer.json").read_bytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _relative(target: Path, manifest: Path) -> str:
    return os.path.relpath(target, manifest.parent)
