"""The config's schema: validation against config/schema.yaml, which also fills every
optional key from the schema's ``default``, so that the schema is the one place a default
lives and the code reads config values without fallbacks (as ``snakemake.utils.validate(...,
set_default=True)`` does).

The rules a schema cannot express belong to the stages whose config they check (each stage's
``checks`` module), gathered with this one by infscale.checks.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infscale.errors import InputError


def _fill_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator:
    """The ``properties`` keyword, which first sets each absent property that has a default."""
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema
    )


FillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _fill_defaults}
)


@functools.cache
def _validator(path: Path) -> Any:
    """The schema's validator, made once per process (parsing the YAML takes longer than a
    validation)."""
    return FillingValidator(yaml.safe_load(path.read_text()))


def fill_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the schema and fill in its defaults (in place); InputError
    naming the first key at fault."""
    validator = _validator(Path(schema_path).resolve())
    error = jsonschema.exceptions.best_match(list(validator.iter_errors(config)))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"config key {key}: {error.message}")
