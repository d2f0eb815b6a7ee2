"""Config validation: the JSON schema first, then the rules a schema cannot express.

Both run when the Snakefile is parsed (so also for ``snakemake -n``) and stop the run with one
line naming the key and the reason. Validation also fills every optional key from the schema's
``default``, so the schema is the one place a default lives and the code reads config values
without fallbacks (as ``snakemake.utils.validate(..., set_default=True)`` does).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infscale.errors import InputError
from infscale.grid import latency_shapes, run_table


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


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the schema, filling in its defaults (in place), then its rules."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(list(FillingValidator(schema).iter_errors(config)))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"config key {key}: {error.message}")
    _check_semantics(config)


def _check_semantics(config: dict[str, Any]) -> None:
    tok, model, train = config["tokenizer"], config["model"], config["train"]
    if tok["kind"] == "bpe" and tok.get("vocab_size") != model["vocab_size"]:
        raise InputError(
            f"config key tokenizer.vocab_size: {tok.get('vocab_size')} differs from "
            f"model.vocab_size {model['vocab_size']} (the embedding must fit the tokenizer)"
        )
    if tok["kind"] == "pretrained" and "name" not in tok:
        raise InputError("config key tokenizer.name: required when tokenizer.kind is pretrained")
    if config["data"]["source"] == "hf" and "hf" not in config["data"]:
        raise InputError("config key data.hf: required when data.source is hf")
    if train["batch_size"] % train["micro_batch_size"]:
        raise InputError(
            f"config key train.micro_batch_size: {train['micro_batch_size']} does not divide "
            f"train.batch_size {train['batch_size']}"
        )
    for label, shape in latency_shapes(config).items():
        if shape.head_dim % 2:
            raise InputError(f"shape {label}: head_dim {shape.head_dim} is odd (rotary needs even)")
    _check_token_cap(config)
    if config["latency"]["interleave"] and config["select"]["latency_source"] == "measure_top":
        raise InputError(
            "config key latency.interleave: true times every shape in one job, but "
            "select.latency_source measure_top picks its shapes only after the fits"
        )
    select, sets = config["select"], config["fit"]["sets"]
    if select["fit_set"] not in sets:
        raise InputError(
            f"config key select.fit_set: {select['fit_set']!r} is not one of fit.sets "
            f"({', '.join(sets)})"
        )
    if select["baseline"] not in select["candidates"]:
        raise InputError(f"config key select.baseline: {select['baseline']!r} is not a candidate")
    if select["k"] > len(select["candidates"]):
        raise InputError(
            f"config key select.k: {select['k']} exceeds the {len(select['candidates'])} candidates"
        )
    sizes = set(config["grid"]["sizes"])
    for name, rules in sets.items():
        for rule in rules:
            unknown = set(rule.get("sizes", [])) - sizes
            if unknown:
                raise InputError(
                    f"config key fit.sets.{name}: unknown size group(s) {sorted(unknown)}"
                )


def _check_token_cap(config: dict[str, Any]) -> None:
    """A ``data.max_tokens`` below the largest run's need would only fail at that run's start,
    after the data stage has tokenized for hours; say so at parse time instead."""
    cap = config["data"]["max_tokens"]
    runs = run_table(config).values()
    if cap is None or not runs:
        return
    largest = max(runs, key=lambda run: run.total_tokens)
    if cap < largest.total_tokens:
        raise InputError(
            f"config key data.max_tokens: {cap:,} is fewer than the {largest.total_tokens:,} "
            f"tokens run {largest.name} trains on"
        )


def load_config(path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """A config file, validated and with its defaults filled (as the Snakefile sees it)."""
    config = yaml.safe_load(Path(path).read_text())
    validate_config(config, schema_path)
    return config
