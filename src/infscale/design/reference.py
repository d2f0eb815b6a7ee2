"""The finished full-grid run an adaptive run is reported beside (config ``design.reference``):
the files of it the report reads, by what they hold."""

from __future__ import annotations

from pathlib import Path

REFERENCE_FILES = {
    "points": "results/fit/points.csv",
    "fit": "results/fit/chosen.json",
    "selected": "results/select/selected.csv",
    "winner": "results/select/winner.json",
    "flops": "results/select/training_flops.json",
}


def reference_files(directory: str | None) -> dict[str, str]:
    """Those files under ``directory`` (a finished run's working directory; ``~`` expanded), or
    none where it is null."""
    if directory is None:
        return {}
    root = Path(directory).expanduser()
    return {key: str(root / path) for key, path in REFERENCE_FILES.items()}
