"""Atomic writes: fsynced before and after the rename, and an old directory never lost.

A power loss cannot be staged in a test, so the fsyncs are checked by the order of the system
calls; a crash is staged for real, by a child process that dies at a chosen call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infscale import io

PARTS = 3


def _trace(monkeypatch) -> list[tuple[str, str]]:
    """Record each fsync (by the path its descriptor was opened on) and each rename."""
    events: list[tuple[str, str]] = []
    opened: dict[int, str] = {}
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def traced_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        opened[fd] = str(path)
        return fd

    def traced_fsync(fd):
        events.append(("fsync", opened.get(fd, "?")))
        real_fsync(fd)

    def traced_replace(src, dst):
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "open", traced_open)
    monkeypatch.setattr(os, "fsync", traced_fsync)
    monkeypatch.setattr(os, "replace", traced_replace)
    return events


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_directory_after(
    tmp_path, monkeypatch
):
    events = _trace(monkeypatch)
    target = tmp_path / "result.json"
    io.write_json(target, {"a": 1})
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    (_, file), (_, rename), (_, directory) = events
    assert rename == f"{file} -> {target}" and Path(file).parent == tmp_path
    assert directory == str(tmp_path)
    assert io.read_json(target) == {"a": 1}


def test_atomic_write_dir_fsyncs_every_file_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "model"
    io.atomic_write_dir(target, _write("old"))
    events = _trace(monkeypatch)
    io.atomic_write_dir(target, _write("new"))
    synced = [path for kind, path in events[: _first_replace(events)] if kind == "fsync"]
    names = {Path(path).name for path in synced}
    assert {f"part{i}" for i in range(PARTS)} | {"sub"} <= names
    assert len(synced) == PARTS + 2  # the files, the subdirectory, the directory itself
    assert events[-1] == ("fsync", str(tmp_path))  # the parent, after the new name is in
    assert _contents(target) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporaries left


def test_a_failed_rename_leaves_the_old_directory_in_place(tmp_path, monkeypatch):
    target = tmp_path / "model"
    io.atomic_write_dir(target, _write("old"))
    real = os.replace

    def refuse_the_new_one(src, dst):
        if Path(src).name.endswith(".tmp"):
            raise OSError("no space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_new_one)
    with pytest.raises(OSError, match="no space"):
        io.atomic_write_dir(target, _write("new"))
    assert _contents(target) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


CHILD = textwrap.dedent(
    """
    import os, shutil, sys
    from pathlib import Path
    from infscale import io

    target, when, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = {"replace": 0, "rmtree": 0}

    def dying(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            if calls[name] == nth:
                os._exit(9)  # a kill: no finally block, no cleanup
            return real(*args, **kwargs)
        return call

    module = {"replace": os, "rmtree": shutil}.get(when)
    if module:
        setattr(module, when, dying(when, getattr(module, when)))

    def write(tmp):
        for i in range(PARTS):
            (tmp / f"part{i}").write_text("new" * 1000)
            if when == "write" and i == nth:
                os._exit(9)
        (tmp / "sub").mkdir()

    io.atomic_write_dir(target, write)
    """
).replace("PARTS", str(PARTS))


@pytest.mark.parametrize(
    ("when", "nth"),
    [("write", 1), ("replace", 1), ("replace", 2), ("rmtree", 1)],
)
def test_a_kill_at_any_point_leaves_the_old_or_the_new_directory_whole(tmp_path, when, nth):
    target = tmp_path / "model"
    io.atomic_write_dir(target, _write("old"))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(target), when, str(nth)], capture_output=True, text=True
    )
    assert child.returncode == 9, child.stderr
    if target.exists():
        assert _contents(target) in {"old", "new"}
    else:  # killed between the two renames: the old copy is whole, beside it
        (aside,) = tmp_path.glob(".model.*.old")
        assert _contents(aside) == "old"


def _write(version: str):
    def write(tmp: Path) -> None:
        for i in range(PARTS):
            (tmp / f"part{i}").write_text(version * 1000)
        (tmp / "sub").mkdir()

    return write


def _contents(directory: Path) -> str:
    """The one version every part of ``directory`` holds; fails on a mixed or partial copy."""
    files = sorted(p.name for p in directory.iterdir())
    assert files == [f"part{i}" for i in range(PARTS)] + ["sub"], files
    (version,) = {(directory / f"part{i}").read_text()[:3] for i in range(PARTS)}
    assert all(len((directory / f"part{i}").read_text()) == 3000 for i in range(PARTS))
    return version


def _first_replace(events: list[tuple[str, str]]) -> int:
    return next(i for i, (kind, _) in enumerate(events) if kind == "replace")
