"""The evaluation stage's config check (gathered by infscale.checks): every task is one the
harness knows from the configured source."""

from __future__ import annotations

from typing import Any

from infscale.errors import InputError
from infscale.evaluate.tasks import check_tasks


def check_eval(config: dict[str, Any]) -> None:
    """Raise InputError naming eval.tasks for a task the harness cannot run."""
    try:
        check_tasks(config["eval"]["tasks"], config["eval"]["source"])
    except InputError as err:
        raise InputError(f"config key eval.tasks: {err}") from None
