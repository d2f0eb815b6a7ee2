"""What every Snakemake script (workflow/scripts/) starts with: its output sent to the rule's
log, and bad input reported there as the ``infscale`` command reports it, on one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from infscale.errors import InputError, one_line

# Set for every compute job: the hub is reached only by the staging step (infscale.hub).
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def start_script(log: str | Path, offline: bool = True) -> None:
    """Send this process's output to ``log`` and make an InputError end it with one line,
    ``infscale: error: ...``, and exit 2: bad input is the user's to fix, and a traceback would
    read as a bug. Any other exception keeps its traceback.

    ``offline`` (every script but the staging step's): no Hugging Face hub access from this
    process or its children (:func:`hub_offline`); the job reads the hub mirror the staging step
    wrote, and a file missing there fails at once instead of reaching the hub.
    """
    log_output_to(log)
    sys.excepthook = _report
    if offline:
        hub_offline()


def hub_offline() -> None:
    """``HF_HUB_OFFLINE=1`` and ``HF_DATASETS_OFFLINE=1`` for this process and its children
    (torchrun's workers). huggingface_hub and datasets read them when imported, and a script
    imports them before it starts: their copies are set too (transformers asks huggingface_hub
    at each call)."""
    os.environ.update(OFFLINE)
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True


def log_output_to(path: str | Path) -> None:
    """Send this process's stdout and stderr (Python's and C libraries') to a rule's log file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log


def _report(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, InputError):
        print(f"infscale: error: {one_line(error)}", file=sys.stderr, flush=True)
        raise SystemExit(2)  # CPython exits with the status a hook's SystemExit carries
    sys.__excepthook__(kind, error, trace)
