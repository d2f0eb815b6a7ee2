"""Config validation: the JSON schema first, then the rules a schema cannot express.

Both run when the Snakefile is parsed (so also for ``snakemake -n``) and stop the run with one
line naming the key and the reason. Validation also fills every optional key from the schema's
``default``, so the schema is the one place a default lives and the code reads config values
without fallbacks (as ``snakemake.utils.validate(..., set_default=True)`` does).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infscale.data.shards import data_jobs
from infscale.data.vocab import local_vocab_size
from infscale.errors import InputError
from infscale.evaluate.tasks import check_tasks
from infscale.grid import boundary_steps, candidate_runs, grid_runs, latency_shapes, run_table
from infscale.latency.sweeps import (
    SWEEPS,
    latency_settings,
    sweep_items,
    sweep_lengths,
    throughput_shape,
)
from infscale.shapes import Shape


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


def validate_config(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Check ``config`` against the schema, filling in its defaults (in place), then its rules.

    Return the warnings: what is allowed but worth saying once (the Snakefile prints them).
    """
    validator = _validator(Path(schema_path).resolve())
    error = jsonschema.exceptions.best_match(list(validator.iter_errors(config)))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"config key {key}: {error.message}")
    _check_semantics(config)
    return _warmup_warnings(config)


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
    # Every shape the run builds, so that a bad one (Shape's checks) stops here, naming its key.
    latency_shapes(config)
    for sweep in SWEEPS:
        sweep_items(config, sweep)
        sweep_lengths(config, sweep)
    throughput_shape(config)
    _check_token_cap(config)
    data_jobs(config["data"])  # the source shards exist and group into jobs
    _check_tokenizer_size(config)
    try:
        check_tasks(config["eval"]["tasks"], config["eval"]["source"])
    except InputError as err:
        raise InputError(f"config key eval.tasks: {err}") from None
    if config["latency"]["interleave"] and config["latency"]["backend"] == "vllm":
        raise InputError(
            "config key latency.interleave: true times every shape in one process, and the vllm "
            "backend holds one engine per shape there (a share of GPU memory each): set it false"
        )
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
    if config["fit"]["method"] == "vp" and select["law"] == "conditional":
        raise InputError(
            "config key fit.method: vp solves only coefficients that enter linearly, and the "
            "conditional law's multiplicative factors do not: use lm or huber for "
            "select.law conditional (select.law auto leaves it out under vp)"
        )
    _check_budgets(config)
    _check_fit_sets(config)
    _check_cluster(config)


def _check_cluster(config: dict[str, Any]) -> None:
    """What the cluster section cannot give: a time limit that leaves no compute, more GPUs than
    a job may hold, a training run that fits no micro-batch, a latency job over a GPU's memory.
    Said here, before anything is submitted, rather than by sbatch or an OOM days later."""
    from infscale.train.sizing import size_training

    cluster = config["cluster"]
    if cluster["time_limit_hours"] * 60 <= cluster["overhead_minutes"]:
        raise InputError(
            f"config key cluster.time_limit_hours: {cluster['time_limit_hours']:g} h leaves no "
            f"time after cluster.overhead_minutes {cluster['overhead_minutes']:g}"
        )
    pinned, per_node, nodes = cluster["train_gpus"], cluster["gpus_per_node"], cluster["max_nodes"]
    if pinned and pinned > nodes * per_node:
        raise InputError(
            f"config key cluster.train_gpus: {pinned} GPUs per job exceed cluster.max_nodes × "
            f"cluster.gpus_per_node = {nodes} × {per_node}"
        )
    if pinned and pinned > per_node and pinned % per_node:
        raise InputError(
            f"config key cluster.train_gpus: {pinned} GPUs over several nodes must be whole nodes "
            f"of cluster.gpus_per_node {per_node}"
        )
    seq_len, train = config["data"]["seq_len"], config["train"]
    for run in run_table(config).values():
        cfg = (
            {**train, **config["select"]["train_overrides"]} if run.size == "candidates" else train
        )
        if pinned and cfg["batch_size"] % pinned:
            raise InputError(
                f"config key cluster.train_gpus: {pinned} does not divide run {run.name}'s "
                f"batch_size {cfg['batch_size']}"
            )
        plan = size_training(run.shape, run.total_tokens, cfg, seq_len, cluster)
        for limit in plan.limits:
            raise InputError(f"config key cluster: run {run.name}: {limit}")
    if cluster["device"] == "gpu":
        _check_latency_memory(config)


def _check_latency_memory(config: dict[str, Any]) -> None:
    """A sweep keeps every item's weights loaded (its items are timed interleaved) and times one
    at a time; throughput times one shape at each batch size: the weights and the largest KV
    cache must fit one GPU."""
    from infscale.train.memory import inference_memory_gb, usable_gb

    cluster, latency = config["cluster"], config["latency"]
    limit = usable_gb(cluster["gpu_memory_gb"], cluster["memory_headroom"])
    jobs = {}
    for sweep in SWEEPS:
        items = [(Shape(**i["shape"]), i["batch_size"]) for i in sweep_items(config, sweep)]
        lengths = sweep_lengths(config, sweep)
        prompt = lengths.get("input_tokens", latency["input_tokens"])
        tokens = prompt + lengths.get("output_tokens", latency["output_tokens"])
        jobs[f"latency.sweeps.{sweep}"] = ({s for s, _ in items}, items, prompt, tokens)
    shape = throughput_shape(config)
    sizes = latency_settings(config)["throughput"]["batch_sizes"]
    tokens = latency["input_tokens"] + latency["output_tokens"]
    jobs["latency.throughput"] = (
        {shape},
        [(shape, b) for b in sizes],
        latency["input_tokens"],
        tokens,
    )
    for key, (resident, timed, prompt, tokens) in jobs.items():
        need = inference_memory_gb(resident, timed, prompt, tokens)
        if need > limit:
            raise InputError(
                f"config key {key}: weights and KV cache need {need:.0f} GB at the largest batch, "
                f"over the {limit:.0f} GB usable of cluster.gpu_memory_gb "
                f"{cluster['gpu_memory_gb']:g} (fewer or smaller batch_sizes, or a larger GPU)"
            )


def _check_budgets(config: dict[str, Any]) -> None:
    """The budgets on N and D, known before anything trains (a candidate's N; D = select.tokens
    for every candidate), and ``select.k`` against the candidates within them: else the
    selection would fail after the whole grid has trained. The latency budgets are known only
    once the candidates are timed (or their latency predicted), so the selection checks those."""
    select = config["select"]
    tokens, max_tokens, max_params = select["tokens"], select["max_tokens"], select["max_params"]
    if max_tokens is not None and tokens > max_tokens:
        raise InputError(
            f"config key select.max_tokens: {max_tokens:,} is below select.tokens {tokens:,}, "
            "the D of every candidate"
        )
    sizes = [run.shape.n_params for run in candidate_runs(config)]
    if max_params is not None and min(sizes) > max_params:
        raise InputError(
            f"config key select.max_params: {max_params:,} is below every candidate's N "
            f"(the smallest: {min(sizes):,})"
        )
    within = sum(max_params is None or n <= max_params for n in sizes)
    if select["k"] > within:
        budget = " within select.max_params" if max_params is not None else ""
        raise InputError(
            f"config key select.k: {select['k']} exceeds the {within} candidate(s){budget}"
        )


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


def _warmup_warnings(config: dict[str, Any]) -> list[str]:
    """Loss points read while the learning rate still warms up. Allowed, because the paper's
    are (paper.yaml: the 80M and 86M groups at 20N), but such a point measures the schedule
    as much as the shape, so say so."""
    train, overrides = config["train"], config["select"]["train_overrides"]
    inside = []
    for run in run_table(config).values():
        cfg = {**train, **overrides} if run.size == "candidates" else train
        steps = boundary_steps(run, cfg["batch_size"] * config["data"]["seq_len"])
        for i, step in enumerate(steps):
            if step <= cfg["warmup_steps"]:
                at = f"{run.multipliers[i]}N" if run.multipliers else "its end"
                warmup = cfg["warmup_steps"]
                inside.append(f"{run.name} at {at} (step {step:,} of {warmup:,} warmup steps)")
    if not inside:
        return []
    return [f"loss points inside the learning-rate warmup (as in the paper): {', '.join(inside)}"]


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
