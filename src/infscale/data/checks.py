"""The data stage's config checks (gathered by infscale.checks): the tokenizer fits the
embedding, the source is named, its shards exist, and it holds the tokens the runs need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infscale.data.shards import data_jobs
from infscale.data.vocab import local_vocab_size
from infscale.errors import InputError
from infscale.grid import run_table


def check_data(config: dict[str, Any]) -> None:
    """Raise InputError, naming the key, for a data or tokenizer section the stage cannot run."""
    tok, model = config["tokenizer"], config["model"]
    if tok["kind"] == "bpe" and tok.get("vocab_size") != model["vocab_size"]:
        raise InputError(
            f"config key tokenizer.vocab_size: {tok.get('vocab_size')} differs from "
            f"model.vocab_size {model['vocab_size']} (the embedding must fit the tokenizer)"
        )
    if tok["kind"] == "pretrained" and "name" not in tok:
        raise InputError("config key tokenizer.name: required when tokenizer.kind is pretrained")
    if config["data"]["source"] == "hf" and "hf" not in config["data"]:
        raise InputError("config key data.hf: required when data.source is hf")
    _check_token_cap(config)
    data_jobs(config["data"])  # the source shards exist and group into jobs
    _check_tokenizer_size(config)


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


def _check_tokenizer_size(config: dict[str, Any]) -> None:
    """A pretrained tokenizer with more tokens than the embedding has rows fails at step 0 (an
    IndexError, or a CUDA device-side assert). Checked here when a copy of it is on this
    machine; the data stage checks the tokenizer it builds in any case, before packing."""
    tok, vocab = config["tokenizer"], config["model"]["vocab_size"]
    if tok["kind"] != "pretrained":
        return
    size = local_vocab_size(tok["name"], Path(config["cache_dir"]).expanduser())
    if size is not None and size > vocab:
        raise InputError(
            f"config key model.vocab_size: {vocab:,} is fewer than the {size:,} tokens of "
            f"tokenizer {tok['name']} (the embedding must hold every token id)"
        )
