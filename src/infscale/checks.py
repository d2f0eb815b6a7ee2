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
from infscale.errors import InputError
from infscale.evaluate.checks import check_eval
from infscale.grid import grid_runs, latency_shapes
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
    # The fit sets' check: here until fit/ has a checks module of its own (fit/ is being
    # restructured around one Law abstraction).
    _check_fit_sets(config)
    check_select(config)
    return warmup_warnings(config)


def _check_fit_sets(config: dict[str, Any]) -> None:
    """Known size groups, and no more shapes per group than a rule's group has: the random draw
    would otherwise silently take them all."""
    shapes: dict[str, dict[tuple[int, int], set[int]]] = {}  # group -> shape -> multipliers
    for run in grid_runs(config):
        key = (run.shape.d_model, run.shape.n_layers)
        shapes.setdefault(run.size, {}).setdefault(key, set()).update(run.multipliers)
    for name, rules in config["fit"]["sets"].items():
        for rule in rules:
            unknown = set(rule.get("sizes", [])) - set(shapes)
            if unknown:
                raise InputError(
                    f"config key fit.sets.{name}: unknown size group(s) {sorted(unknown)}"
                )
            if "shapes_per_size" not in rule:
                continue
            wanted, mults = rule["shapes_per_size"], set(rule.get("multipliers", []))
            for group in rule.get("sizes", sorted(shapes)):
                have = [s for s, m in shapes[group].items() if not mults or m & mults]
                if 0 < len(have) < wanted:  # a group the rule's multipliers miss adds nothing
                    raise InputError(
                        f"config key fit.sets.{name}: shapes_per_size {wanted} exceeds the "
                        f"{len(have)} shape(s) of size group {group}"
                        + (f" with multipliers {sorted(mults)}" if mults else "")
                    )


def load_config(path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """A config file, validated and with its defaults filled (as the Snakefile sees it)."""
    config = yaml.safe_load(Path(path).read_text())
    validate_config(config, schema_path)
    return config
