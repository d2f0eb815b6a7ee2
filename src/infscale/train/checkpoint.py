"""Training checkpoints that survive a kill at any instant, and are never unpickled unsafely.

A checkpoint is a directory ``step-00000123/`` under the run's ``checkpoints/`` folder:

- ``model.safetensors``: the model's full state dict (gathered from every rank under FSDP);
- ``state.pt``: the full optimizer state (keyed by parameter name, so it loads under any
  process layout: parallel.py), RNG states and the per-step losses, loaded with
  ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only);
- ``state.json``: step, data position, the boundary points read so far, the learning-rate
  schedule's position (the schedule is a pure function of the step, so the step *is* its state);
- ``log.jsonl``: the run's step log up to this step (the resumed run starts its log from it);
- ``manifest.json``, written last: the SHA-256 and size of every other file.

The directory is written aside and renamed into place (:func:`infscale.io.atomic_write_dir`), so a
directory named ``step-*`` always holds a complete write; a checkpoint whose files do not match its
manifest (truncated, corrupted, or missing a file) is named on stderr and the previous one is used,
and when none is whole the run stops (:class:`DamagedCheckpoints`) instead of starting from step 0.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from infscale.io import atomic_write_dir

MANIFEST = "manifest.json"
KEEP = 2  # checkpoints kept on disk: the newest, and one to fall back on if it is damaged


class DamagedCheckpoints(RuntimeError):
    """Checkpoints are there but none is whole: resuming needs a person's decision."""


@dataclass
class Checkpoint:
    path: Path
    step: int
    model: dict[str, torch.Tensor]
    state: dict[str, Any]  # from state.pt
    meta: dict[str, Any]  # from state.json
    log_lines: list[str]


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:08d}"


def save(
    root: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    state: dict[str, Any],
    meta: dict[str, Any],
    log_lines: list[str],
    keep: int = KEEP,
) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the ``keep`` newest."""
    root = Path(root)
    for stale in root.glob(".step-*"):  # the temporary copies of a save that a kill cut short
        shutil.rmtree(stale, ignore_errors=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model_state.items()}

    def write(tmp: Path) -> None:
        save_file(tensors, tmp / "model.safetensors")
        torch.save(state, tmp / "state.pt")
        (tmp / "state.json").write_text(json.dumps({**meta, "step": step}, indent=1) + "\n")
        (tmp / "log.jsonl").write_text("".join(line + "\n" for line in log_lines))
        files = {p.name: _digest(p) for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=1) + "\n")

    final = atomic_write_dir(step_dir(root, step), write)
    for old in sorted(_step_dirs(root), reverse=True)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_latest(root: str | Path, device: str | torch.device = "cpu") -> Checkpoint | None:
    """The newest checkpoint under ``root`` whose files match its manifest; None if there is none.

    A damaged one is named on stderr with the step the run falls back to. When every one is
    damaged this raises :class:`DamagedCheckpoints` rather than start again from step 0: two
    fsynced, atomically written copies both damaged point at the storage or a person, and
    retraining (days, on a cluster) is not a decision to take behind a line in a log.
    """
    damaged: list[tuple[Path, str]] = []
    for path in sorted(_step_dirs(Path(root)), reverse=True):
        problem = verify(path)
        if problem:
            damaged.append((path, problem))
            continue
        meta = json.loads((path / "state.json").read_text())
        for bad, why in damaged:
            print(
                f"checkpoint {bad} is damaged ({why}); "
                f"falling back to {path.name}, step {meta['step']}",
                file=sys.stderr,
                flush=True,
            )
        return Checkpoint(
            path=path,
            step=meta["step"],
            model=load_file(path / "model.safetensors", device=str(device)),
            state=torch.load(path / "state.pt", map_location=device, weights_only=True),
            meta=meta,
            log_lines=(path / "log.jsonl").read_text().splitlines(),
        )
    if damaged:
        raise DamagedCheckpoints(
            f"every checkpoint in {root} is damaged "
            f"({'; '.join(f'{bad.name}: {why}' for bad, why in damaged)}); "
            f"remove {root} to train this run again from step 0"
        )
    return None


def verify(path: str | Path) -> str | None:
    """None if every file listed in the manifest exists with its size and SHA-256, else why not."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable manifest ({err})"
    for name in ("model.safetensors", "state.pt", "state.json", "log.jsonl"):
        if name not in files:
            return f"manifest lists no {name}"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["bytes"]:
            return f"{name} has {file.stat().st_size} bytes, the manifest says {expected['bytes']}"
        if _digest(file)["sha256"] != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def _step_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")]


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}
