"""log.jsonl, a training run's log: one JSON object a line, of two kinds, told apart by a key.

- A **step record**, one per optimisation step, in step order: ``step`` (steps done, from 1),
  ``tokens`` (tokens trained on so far), ``loss`` (with z-loss), ``ce`` (cross-entropy), ``lr``,
  ``grad_norm``, ``tokens_per_s``; and ``val_loss`` at a multiplier boundary.
- An **event**, which has the key ``event``: ``start`` or ``resumed`` at the start of each try,
  with ``step`` (the steps done when it began: 0, or the checkpoint's step), ``processes``,
  ``parallel`` and ``params_per_rank``. A resumed try rewrites the log from its checkpoint's
  copy and appends its event, so a run resumed after its last step ends in an event line.

Readers take the step records through :func:`step_records` (the last one through
:func:`last_step`), never the last line. No torch import: reports and tests read logs too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENT = "event"  # the key that marks an event line


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every record of ``path``, events included, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def step_records(path: str | Path) -> list[dict[str, Any]]:
    """The step records of ``path``, in order; an absent log has none."""
    if not Path(path).exists():
        return []
    return [record for record in read_log(path) if EVENT not in record]


def events(path: str | Path) -> list[dict[str, Any]]:
    """The event lines of ``path`` (start, resumed), in order."""
    return [record for record in read_log(path) if EVENT in record]


def last_step(path: str | Path) -> dict[str, Any]:
    """The newest step record of ``path``; a log without one is an error of the run."""
    records = step_records(path)
    if not records:
        raise ValueError(f"{path}: no step record")
    return records[-1]
