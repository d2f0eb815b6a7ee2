"""The config's whole validation: the schema with its defaults (infscale.config), then each
stage's checks (its ``checks`` module) in the order the data flows. This module sits above the
stages, so that config.py, on the ground floor, imports none of them.

Run when the Snakefile is parsed (so also for ``snakemake -n``), by the CLI and by the tests; a
failed check stops the run with one line naming the key and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infscale.config import fill_config
from infscale.data.checks import check_data
from infscale.design.checks import check_design
from infscale.evaluate.checks import check_eval
from infscale.fit.checks import check_fit
from infscale.grid import latency_shapes
from infscale.latency.checks import check_latency
from infscale.select.checks import check_select
from infscale.train.checks import check_train, warmup_warnings


def validate_config(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Check ``config`` against the schema, filling in its defaults (in place), then every
    stage's rules. Return the warnings: what is allowed but worth saying once (the Snakefile
    prints them)."""
    fill_config(config, schema_path)
    # Every shape the run builds, so that a bad one (Shape's checks) stops here, naming its key.
    latency_shapes(config)
    check_data(config)
    check_train(config)
    check_latency(config)
    check_eval(config)
    check_fit(config)
    check_select(config)
    check_design(config)
    return warmup_warnings(config)


def load_config(path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """A config file, validated and with its defaults filled (as the Snakefile sees it)."""
    config = yaml.safe_load(Path(path).read_text())
    validate_config(config, schema_path)
    return config
