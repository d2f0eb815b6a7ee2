"""The fit stage's config checks (gathered by infscale.checks): the fit sets name known size
groups, and a random draw of shapes has as many shapes to draw from as it asks for. A shape is
its label (every dimension), as the fit sets count it (infscale.fit.fitsets)."""

from __future__ import annotations

from typing import Any

from infscale.errors import InputError
from infscale.grid import grid_runs


def check_fit(config: dict[str, Any]) -> None:
    """Known size groups, and no more shapes per group than a rule's group has: the random draw
    would otherwise silently take them all."""
    shapes: dict[str, dict[str, set[int]]] = {}  # group -> shape label -> multipliers
    for run in grid_runs(config):
        shapes.setdefault(run.size, {}).setdefault(run.shape.label, set()).update(run.multipliers)
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
