"""The package cache: exact names, verified files, one download at a time.

Real pip downloads from a local find-links folder of wheels and sdists made here (no network).
"""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from infscale import registry
from infscale.registry import cached, pip_download

PROJECT = "infscale-probe"  # a name no index has


def _wheel(folder: Path, version: str) -> Path:
    """A minimal valid pure-Python wheel, as pip reads one."""
    dist = f"infscale_probe-{version}.dist-info"
    path = folder / f"infscale_probe-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("infscale_probe/__init__.py", "x = 1\n" * 2000)
        wheel.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{dist}/RECORD", "")
    return path


BACKEND = """
import os

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name = "infscale_probe-VERSION.dist-info"
    os.makedirs(os.path.join(metadata_directory, name))
    with open(os.path.join(metadata_directory, name, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: infscale-probe\\nVersion: VERSION\\n")
    return name
"""
PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def _sdist(folder: Path, version: str) -> Path:
    """A minimal sdist whose metadata pip can prepare offline (an in-tree build backend)."""
    path = folder / f"infscale_probe-{version}.tar.gz"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n",
        "pyproject.toml": PYPROJECT,
        "backend.py": BACKEND.replace("VERSION", version),
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"infscale_probe-{version}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    """A local index of versions 1.0 and 1.0.1; pip asked nothing else."""
    links = tmp_path / "links"
    links.mkdir()
    for version in ("1.0", "1.0.1"):
        _wheel(links, version)
        _sdist(links, version)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def test_a_version_prefix_is_not_the_version(index, tmp_path):
    cache = tmp_path / "cache"
    newer = pip_download(f"{PROJECT}==1.0.1", cache)
    assert newer.name == "infscale_probe-1.0.1-py3-none-any.whl"
    assert cached(f"{PROJECT}==1.0", cache) is None  # the old prefix test took 1.0.1 for 1.0
    exact = pip_download(f"{PROJECT}==1.0", cache)
    assert exact.name == "infscale_probe-1.0-py3-none-any.whl"
    assert exact.read_bytes() == (index / exact.name).read_bytes()
    # the name as PEP 503 normalises it, the version as PEP 440 compares it
    assert cached("Infscale_Probe==1.0.0", cache) == exact
    assert cached(f"{PROJECT}==1.0", cache, sdist=True) is None  # a wheel is not an sdist
    sdist = pip_download(f"{PROJECT}==1.0", cache, sdist=True)
    assert sdist.name == "infscale_probe-1.0.tar.gz"
    assert cached(f"{PROJECT}==1.0", cache) == exact


def test_a_truncated_file_is_detected_and_downloaded_again(index, tmp_path, capsys):
    cache = tmp_path / "cache"
    path = pip_download(f"{PROJECT}==1.0", cache)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert cached(f"{PROJECT}==1.0", cache) is None
    again = pip_download(f"{PROJECT}==1.0", cache)
    assert again == path and again.read_bytes() == whole
    assert f"{path} has {len(whole) // 2} bytes, its download had {len(whole)}" in (
        capsys.readouterr().err
    )
    flipped = bytearray(whole)
    flipped[100] ^= 0xFF
    path.write_bytes(bytes(flipped))  # same size, other bytes
    assert cached(f"{PROJECT}==1.0", cache) is None


def test_a_file_without_its_download_record_is_not_trusted(index, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    stray = cache / "infscale_probe-1.0-py3-none-any.whl"
    stray.write_bytes(b"not a wheel")  # e.g. copied in by hand, or an interrupted copy
    assert cached(f"{PROJECT}==1.0", cache) is None
    assert zipfile.is_zipfile(pip_download(f"{PROJECT}==1.0", cache))


def test_two_jobs_at_once_download_once(index, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    runs = []
    real = registry.subprocess.run

    def counted(cmd, **kwargs):
        runs.append(cmd)
        return real(cmd, **kwargs)

    monkeypatch.setattr(registry.subprocess, "run", counted)
    start = threading.Barrier(2)
    results: list[Path] = []

    def job() -> None:
        start.wait()
        results.append(pip_download(f"{PROJECT}==1.0", cache))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(runs) == 1
    assert results == [cache / "infscale_probe-1.0-py3-none-any.whl"] * 2
    visible = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    assert visible == [
        "infscale_probe-1.0-py3-none-any.whl",
        "infscale_probe-1.0-py3-none-any.whl.json",
    ]
    assert not list(cache.glob(".download-*"))


def test_a_failed_download_leaves_nothing_behind(index, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=f"pip download {PROJECT}==2.0 failed"):
        pip_download(f"{PROJECT}==2.0", cache)
    assert [p.name for p in cache.iterdir()] == [f".{PROJECT}-2.0.lock"]
