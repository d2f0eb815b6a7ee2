"""Hub assets staged once: the one place the workflow reaches the Hugging Face hub.

A config may need three things from the hub: the data files of a hub dataset
(``data.source: hf``, DCLM-Baseline's ``.jsonl.zst`` files named by ``data.hf.data_files``), a
pretrained tokenizer (``tokenizer.kind: pretrained``, GPT-NeoX-20B) and the datasets of the stock
lm-eval tasks (``eval.source: hub``). Rule ``stage_hub`` (rules/data.smk) runs :func:`stage` where
Snakemake runs, on the login node, which has the network; it writes them into a local mirror on
the shared file system, and every compute job then runs with ``HF_HUB_OFFLINE=1`` and
``HF_DATASETS_OFFLINE=1`` (:func:`infscale.script.start_script`) and reads the mirror only.

The mirror (``hub.mirror``; default ``<cache_dir>/hub``, shared by every run and config)::

    datasets/<repo id>/<file>       each data file at its path in the dataset repository
    models/<repo id>/tokenizer.json the tokenizer's files (tokenizer_config.json, ...)
    eval/<lm-eval task>/<split>/    each task's scored split, a datasets ``save_to_disk``
    eval/.cache/                    datasets' download cache while staging (deletable)

A file already in the mirror is never asked for again, so a second staging, or one over files the
user already has, makes no hub request. With ``hub.download: false`` nothing is downloaded at all:
staging only checks that every file is there and stops with one line naming the first missing
one. Downloads use huggingface_hub's and datasets' own APIs, which read ``HF_TOKEN`` (or the login
saved by ``hf auth login``) for a higher rate limit and gated repositories.
"""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infscale.data.shards import source_shards
from infscale.errors import InputError

DATASETS, MODELS = "datasets", "models"
MIRROR = "hub"  # the default mirror's directory under cache_dir
# The files a transformers tokenizer may consist of; tokenizer.json is the one that must exist.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
TOKENIZER_REQUIRED = "tokenizer.json"
WORKERS = 4  # parallel file downloads: few, against the hub's per-IP request limit
RETRIES = 6  # tries of a file answered 429 (rate limited), waiting as the hub says
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class Needs:
    """What a config reads from the hub; nothing when every source is local or packaged."""

    dataset: str | None = None  # a hub dataset repository
    data_files: list[str] = field(default_factory=list)  # its files; empty: the whole repository
    tokenizer: str | None = None  # a hub model repository holding the tokenizer
    tasks: list[str] = field(default_factory=list)  # paper eval tasks, stock lm-eval on the hub

    def __bool__(self) -> bool:
        return bool(self.dataset or self.tokenizer or self.tasks)

    def summary(self) -> dict[str, Any]:
        """The needs as the staging rule's params (a change reruns staging only)."""
        return {
            "dataset": self.dataset,
            "data_files": len(self.data_files),
            "tokenizer": self.tokenizer,
            "tasks": self.tasks,
        }


def is_hub_name(name: str) -> bool:
    """Whether ``name`` is a hub repository id rather than a local path: not a file, directory
    or glob here, and spelled ``name`` or ``owner/name``."""
    if name.startswith(("/", ".", "~")) or re.search(r"[*?\[]", name):
        return False
    return not Path(name).exists() and bool(_REPO_ID.match(name))


def mirror_dir(config: dict[str, Any]) -> Path:
    """The hub mirror: ``hub.mirror``, else ``<cache_dir>/hub``, made absolute (``~`` expanded,
    a relative path against the working directory, the workflow's)."""
    path = config.get("hub", {}).get("mirror") or Path(config["cache_dir"]).expanduser() / MIRROR
    return Path(path).expanduser().resolve()


def hub_needs(config: dict[str, Any]) -> Needs:
    """What ``config`` reads from the hub, known at parse time without network."""
    needs = Needs()
    data = config["data"]
    if data["source"] == "hf" and is_hub_name(data["hf"]["path"]):
        needs.dataset = data["hf"]["path"]
        needs.data_files = source_shards(data) if data["hf"]["data_files"] else []
    tok = config["tokenizer"]
    if tok["kind"] == "pretrained" and is_hub_name(tok.get("name", "")):
        needs.tokenizer = tok["name"]
    if config["eval"]["source"] == "hub":
        needs.tasks = list(config["eval"]["tasks"])
    return needs


def dataset_dir(mirror: str | Path, repo: str) -> Path:
    """Where a hub dataset's files are in the mirror, each at its path in the repository."""
    return Path(mirror) / DATASETS / repo


def tokenizer_dir(mirror: str | Path, name: str) -> Path:
    """Where a hub tokenizer's files are in the mirror (a directory AutoTokenizer loads)."""
    return Path(mirror) / MODELS / name


def local_paths(config: dict[str, Any]) -> dict[str, str | None]:
    """Where the compute jobs read the config's hub assets (None: not from the hub): ``data``,
    the hub dataset's directory in the mirror; ``tokenizer``, the tokenizer's; ``mirror``."""
    needs, mirror = hub_needs(config), mirror_dir(config)
    return {
        "mirror": str(mirror) if needs else None,
        "data": str(dataset_dir(mirror, needs.dataset)) if needs.dataset else None,
        "tokenizer": str(tokenizer_dir(mirror, needs.tokenizer)) if needs.tokenizer else None,
    }


def stage(config: dict[str, Any], log: Any = sys.stdout) -> dict[str, Any]:
    """Everything ``config`` needs from the hub, in the mirror: what is there is checked, what is
    missing downloaded (or, with ``hub.download: false``, named in an InputError). Return the
    record rule ``stage_hub`` writes: per asset, its files and how many were downloaded now."""
    from infscale.evaluate.tasks import stage_hub_tasks

    needs, mirror = hub_needs(config), mirror_dir(config)
    download = config.get("hub", {}).get("download", True)
    record: dict[str, Any] = {"mirror": str(mirror), "download": download}
    if needs.dataset:
        record["data"] = _stage_dataset(needs, mirror, download, log)
    if needs.tokenizer:
        record["tokenizer"] = _stage_tokenizer(needs.tokenizer, mirror, download, log)
    if needs.tasks:
        splits = stage_hub_tasks(needs.tasks, mirror, download)
        record["eval"] = {
            "splits": len(splits),
            "downloaded": sum(s["downloaded"] for s in splits),
            "tasks": splits,
        }
        print(f"eval: {len(splits)} splits, {record['eval']['downloaded']} downloaded", file=log)
    return record


def _stage_dataset(needs: Needs, mirror: Path, download: bool, log: Any) -> dict[str, Any]:
    repo, local = needs.dataset, dataset_dir(mirror, needs.dataset)
    if not needs.data_files:  # the whole repository, one shard
        present = local.is_dir() and any(p.is_file() for p in local.rglob("*"))
        _missing_stops(present, local, f"hub dataset {repo}", download)
        revision = None if present else _snapshot(repo, "dataset", local, None)
        print(f"data: {repo} {'present' if present else 'downloaded'} in {local}", file=log)
        return {"repo": repo, "dir": str(local), "revision": revision, "downloaded": not present}
    missing = [f for f in needs.data_files if not (local / f).is_file()]
    if missing:
        _missing_stops(
            False,
            local / missing[0],
            f"data file of {repo} ({len(missing)} of {len(needs.data_files)} missing)",
            download,
        )
    revision = _download_files(repo, "dataset", local, missing, log) if missing else None
    print(f"data: {len(needs.data_files)} files of {repo}, {len(missing)} downloaded", file=log)
    return {
        "repo": repo,
        "dir": str(local),
        "files": len(needs.data_files),
        "downloaded": len(missing),
        "revision": revision,
    }


def _stage_tokenizer(name: str, mirror: Path, download: bool, log: Any) -> dict[str, Any]:
    local = tokenizer_dir(mirror, name)
    present = (local / TOKENIZER_REQUIRED).is_file()
    _missing_stops(present, local / TOKENIZER_REQUIRED, f"tokenizer {name}", download)
    revision = None if present else _snapshot(name, "model", local, list(TOKENIZER_FILES))
    if not (local / TOKENIZER_REQUIRED).is_file():
        raise InputError(f"tokenizer.name: hub repository {name} has no {TOKENIZER_REQUIRED}")
    print(f"tokenizer: {name} {'present' if present else 'downloaded'} in {local}", file=log)
    return {"name": name, "dir": str(local), "revision": revision, "downloaded": not present}


def _missing_stops(present: bool, path: Path, what: str, download: bool) -> None:
    if not present and not download:
        raise InputError(f"{path}: {what} missing from the hub mirror (hub.download is false)")


def _snapshot(repo: str, repo_type: str, local: Path, patterns: list[str] | None) -> str:
    """A repository (the files matching ``patterns``) into ``local``; return its commit."""
    from huggingface_hub import HfApi, snapshot_download

    revision = HfApi().repo_info(repo, repo_type=repo_type).sha
    snapshot_download(
        repo,
        repo_type=repo_type,
        revision=revision,
        local_dir=local,
        allow_patterns=patterns,
        max_workers=WORKERS,
    )
    return revision


def _download_files(repo: str, repo_type: str, local: Path, files: list[str], log: Any) -> str:
    """``files`` of a repository into ``local`` at their repository paths, all from one commit
    (resolved first), a few at a time; a rate-limited file waits as the hub says and is tried
    again. huggingface_hub writes each file aside and renames it when complete, so a file at
    its path in the mirror is whole. Return the commit."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    revision = HfApi().repo_info(repo, repo_type=repo_type).sha

    def fetch(file: str) -> None:
        for attempt in range(RETRIES):
            try:
                hf_hub_download(repo, file, repo_type=repo_type, revision=revision, local_dir=local)
                return
            except EntryNotFoundError:
                raise InputError(
                    f"data.hf.data_files: {file} is not in {repo} at {revision}"
                ) from None
            except HfHubHTTPError as err:
                status = getattr(err.response, "status_code", None)
                if status != 429 or attempt == RETRIES - 1:
                    raise
                time.sleep(_retry_after(err, attempt))

    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        for done, _ in enumerate(pool.map(fetch, files), 1):
            if done % 10 == 0 or done == len(files):
                elapsed = time.monotonic() - start
                print(f"data: {done}/{len(files)} files of {repo} ({elapsed:.0f} s)", file=log)
    return revision


def _retry_after(err: Any, attempt: int) -> float:
    """Seconds to wait after a 429: the hub's Retry-After, else 30 s doubling."""
    value = err.response.headers.get("Retry-After", "") if err.response is not None else ""
    return float(value) if value.isdigit() else 30.0 * 2**attempt
