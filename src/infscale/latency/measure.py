"""Generation latency as the paper measured it (docs/facts.md, "Latency protocol").

A randomly initialised model of the shape is enough: latency depends on the shape, not the
weights (``latency.trained`` checks that on the trained candidates). Batch of random prompts of
exactly ``input_tokens``; exactly ``output_tokens`` new tokens (min = max, EOS never ends a trial
early); one or more warm-up calls, then timed trials on a monotonic clock with device
synchronisation. The time to first token is the same call with one new token.

Several measurements (shapes, batch sizes of one shape, a checkpoint and its random twin) are
timed *interleaved*: trial 1 of A, B, C, then trial 2 of A, B, C, ..., so that a slow drift of
the machine (another process, thermal throttling, a VM's share of its host) hits every
measurement alike instead of biasing whichever ran last.

Noise is judged on what interleaving leaves. A drift that slows a whole round shows in every
measurement's own spread (on this project's VM the speed drifts ~25 % within minutes, so every
shape's CV across rounds exceeded 0.1), but it cancels in the ratio of two measurements of the
same round. So each measurement is compared with a *reference* timed in the same rounds, and
its noise is the CV across rounds of its time over the reference's (``relative_cv``,
``cv_basis: "relative"``). The reference is the measurement of median time, not the first: its
mix of fixed overhead and arithmetic is the most typical of the set, so a drift that slows the
two unequally (frequency scaling barely touches memory stalls) distorts the fewest ratios; the
reference itself is compared with the measurement its ratio with is steadiest, so that one noisy
neighbour does not flag it. A caller may pair
measurements instead (``references``: a checkpoint with its twin). A measurement timed alone has
no reference and falls back to the CV of its own times (``cv_basis: "absolute"``).

A measurement whose CV exceeds ``max_cv``, and (among three or more timed together) twice the
median CV of the job, is timed again for another ``trials`` rounds (at most ``max_repeats``
times), together with its reference and the other noisy ones, the new trials pooled with the
old; still above: ``flagged``. The second condition is what makes a flag mean something on a
VM whose noise is not a drift common to a round (this project's: relative CVs of 0.2-0.4 for
almost every shape in one run): there a fixed threshold flagged, and re-timed, every shape,
which cost a minute and singled out none. The absolute median stays the reported
latency (the paper's quantity); the relative CV only says whether to trust it.

Two backends: ``hf`` (transformers ``generate``, the paper's) and ``vllm`` (Appendix D): vLLM's
engine on the GPU, or its CPU build, in an environment of its own (``latency.engine``).

Besides the paper's batch-1 median, every result carries the per-token figures a serving lab
reports (TTFT, TPOT, end-to-end, percentiles; ``latency.serving``), under vLLM's field names. The
clock is an argument, so that those figures can be checked against times known in advance.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from infscale.errors import InputError
from infscale.latency import engine
from infscale.latency.protocol import TIMED_MODEL, Protocol
from infscale.latency.serving import per_token_fields
from infscale.progress import Progress
from infscale.provenance import device_name, versions
from infscale.shapes import Shape
from infscale.train.model import build_model, open_lm_init

WEIGHTS = ("random", "trained")
OUTLIER_FACTOR = 2.0  # a flag: a CV over max_cv and over twice the median of its job's CVs


@dataclass(frozen=True)
class Item:
    """One measurement: a model of ``shape`` timed at ``batch_size``.

    Without ``checkpoint``: the paper's random ``LlamaForCausalLM`` of the shape. With one (a
    ``save_pretrained`` directory): its architecture, with its own weights (``weights="trained"``)
    or fresh ones (``"random"``, the twin a checkpoint is compared with). ``name`` labels it
    (default: the shape's label).
    """

    shape: Shape
    batch_size: int
    checkpoint: str | None = None
    weights: str = "random"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise InputError(f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.weights == "trained" and self.checkpoint is None:
            raise InputError("trained weights need a checkpoint directory")

    @property
    def label(self) -> str:
        return self.name or self.shape.label


def cv(values: np.ndarray) -> float:
    """Sample coefficient of variation of the finite values (0 for fewer than two)."""
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1) / values.mean()) if len(values) > 1 else 0.0


def absolute_cv(times: np.ndarray) -> np.ndarray:
    """Per item (row of ``times``: items × rounds, NaN where not timed), the CV of its times."""
    return np.array([cv(row) for row in times])


def relative_times(times: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Each item's time over its reference's time in the same round, in which a factor common
    to the round (the machine's drift) cancels. ``times``: items × rounds, NaN where an item sat
    a round out; ``references[i]``: the row item i is divided by."""
    return times / times[np.asarray(references)]


def relative_cv(times: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per item, the CV across rounds of its relative time: the noise the drift does not explain."""
    return absolute_cv(relative_times(times, references))


def relative_median(times: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per item, the median across rounds of its relative time: how much slower than its
    reference it is, free of the drift (a ratio of the two medians may take them from rounds of
    different speed)."""
    return np.nanmedian(relative_times(times, references), axis=1)


def pick_references(times: np.ndarray) -> np.ndarray:
    """Each item's reference (``times``: items × rounds, at least two items): the item of median
    time (the lower one for an even count); for that item, the other item its ratio with is
    steadiest. A ratio carries the noise of both its items, so the median item, compared with
    one noisy neighbour, would look noisy itself; compared with its steadiest partner it is
    flagged only when it is noisy against every other item."""
    if len(times) < 2:
        raise ValueError("a reference needs at least two items")
    ref = int(np.argsort(np.nanmedian(times, axis=1), kind="stable")[(len(times) - 1) // 2])
    against = absolute_cv(times[ref] / times)
    against[ref] = np.inf
    references = np.full(len(times), ref)
    references[ref] = int(np.argmin(against))
    return references


def measure_latency(shape: Shape, *, seed: int = 0, **latency: Any) -> dict[str, Any]:
    """Time ``generate`` for one shape (and its time to first token) under the protocol of a
    config-style ``latency`` section (``infscale latency``: its flags are that section)."""
    return measure_shapes([shape], Protocol.from_config(latency, seed=seed))[0]


def measure_shapes(shapes: Sequence[Shape], protocol: Protocol) -> list[dict[str, Any]]:
    """Every shape at the protocol's batch size, interleaved, with its repeat rule: what a sweep
    job, the all-shapes job and a one-shape job time."""
    return measure_interleaved([Item(shape, protocol.batch_size) for shape in shapes], protocol)


def measure_interleaved(
    items: Sequence[Item],
    protocol: Protocol,
    *,
    ttft: bool = True,
    references: Sequence[int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, Any]]:
    """Time every item with trials interleaved across them; one result dict per item.

    One model per distinct (model, weights) is loaded up front. Every item gets ``warmup``
    untimed calls, then round r times trial r of every item in turn; the same for the time to
    first token. ``references[i]`` is the item that item i's relative CV divides by (default:
    ``pick_references`` on the first ``trials`` rounds); with one item, the CV is absolute.
    Noisy items are re-timed as the module says; ``repeats`` counts the extra blocks of rounds
    an item took part in (as noisy or as a noisy item's reference), so it has
    ``trials · (1 + repeats)`` trials. ``clock``: the seconds a call's start and end are read
    from. The vllm backend in a process without vLLM runs in the vLLM environment instead.
    """
    protocol.check()
    if not items:
        return []
    if references is not None and (
        len(references) != len(items) or any(r == i for i, r in enumerate(references))
    ):
        raise ValueError("references needs one other item per item")
    device = _resolve_device(protocol.device)
    torch_dtype = _resolve_dtype(protocol.dtype, device)
    dtype = str(torch_dtype).removeprefix("torch.")
    notes: list[str] = []
    if protocol.backend == "vllm" and device == "cpu":
        flags = engine.cpu_flags()
        engine.check_cpu_engine([item.shape for item in items], dtype, flags)
        notes = engine.cpu_engine_notes(dtype, flags)
    if protocol.backend == "vllm" and not engine.vllm_here():
        return engine.measure_in_env(
            protocol.python,
            list(items),
            protocol,
            ttft=ttft,
            references=None if references is None else list(references),
            threads=torch.get_num_threads(),
        )
    protocol = replace(protocol, device=device)
    make = _vllm_generator if protocol.backend == "vllm" else _hf_generator
    engines = {(item.shape, item.checkpoint, item.weights) for item in items}
    if protocol.backend == "vllm" and device.startswith("cuda") and len(engines) > 1:
        raise InputError(
            f"{len(engines)} shapes timed interleaved through vLLM on {device}: each engine "
            "takes most of the GPU's memory (INFSCALE_VLLM_GPU_FRACTION); time them one at a "
            "time (latency.interleave: false)"
        )
    generators: dict[tuple[Shape, str | None, str], tuple[Callable[[int, int], float], str]] = {}
    for item in items:
        key = (item.shape, item.checkpoint, item.weights)
        if key not in generators:
            model = load_model(item, protocol, torch_dtype)
            generators[key] = (make(model, item.shape, protocol, clock), type(model).__name__)
            del model
    made = [generators[(item.shape, item.checkpoint, item.weights)] for item in items]
    calls = [(call, item.batch_size) for (call, _), item in zip(made, items, strict=True)]

    torch.manual_seed(protocol.seed)
    with torch.inference_mode():
        for call, batch in calls:
            for _ in range(protocol.warmup):
                call(protocol.output_tokens, batch)
        times = _rounds(calls, protocol.output_tokens, protocol.trials)
        first = None
        if ttft:  # its own warm-up: without, two vLLM one-token calls averaged 109 ms, more
            # than the warmed 8-token call's 70 ms (a one-token call takes another path)
            for call, batch in calls:
                for _ in range(protocol.warmup):
                    call(1, batch)
            first = _rounds(calls, 1, protocol.trials)
        refs = None
        if len(items) > 1:
            refs = np.asarray(references) if references is not None else pick_references(times)
        repeats = np.zeros(len(items), dtype=int)
        noisy = np.flatnonzero(_outliers(_noise(times, refs), protocol.max_cv))
        for _ in range(protocol.max_repeats):
            if not noisy.size:
                break
            timed = noisy if refs is None else np.union1d(noisy, refs[noisy])
            again = _rounds(calls, protocol.output_tokens, protocol.trials, timed)
            times = np.hstack([times, again])
            repeats[timed] += 1
            noisy = noisy[_outliers(_noise(times, refs), protocol.max_cv)[noisy]]

    noise = _noise(times, refs)
    ratio = None if refs is None else relative_median(times, refs)
    flagged = _outliers(noise, protocol.max_cv)
    results = []
    for i, item in enumerate(items):
        shape, batch = item.shape, item.batch_size
        trials = times[i][np.isfinite(times[i])]
        median = float(np.median(trials))
        result = {
            **shape.dimensions,
            "head_dim": shape.head_dim,
            "N": shape.n_params,
            "R": shape.aspect_ratio,
            "weights": item.weights,
            "architecture": made[i][1],
            "input_tokens": protocol.input_tokens,
            "output_tokens": protocol.output_tokens,
            "batch_size": batch,
            "do_sample": protocol.do_sample,
            "temperature": protocol.temperature if protocol.do_sample else None,
            "top_p": protocol.top_p if protocol.do_sample else None,
            "warmup": protocol.warmup,
            "backend": protocol.backend,
            "dtype": dtype,
            "engine_notes": notes,
            **summarize(trials),
            "relative_cv": None if refs is None else float(noise[i]),
            "relative_median": None if refs is None else float(ratio[i]),
            "reference": None if refs is None else items[refs[i]].label,
            "cv_basis": "absolute" if refs is None else "relative",
            "trials_s": trials.tolist(),
            "per_token_ms": 1000 * median / protocol.output_tokens,
            "tokens_per_s": batch * protocol.output_tokens / median,
            "repeats": int(repeats[i]),
            "max_cv": protocol.max_cv,
            "flagged": bool(flagged[i]),
            "device": device_name() if device != "cpu" else f"cpu: {device_name()}",
            "threads": torch.get_num_threads(),
            "versions": versions(),
        }
        if first is not None:
            result |= {"ttft_s": float(np.median(first[i])), "ttft_trials_s": first[i].tolist()}
        ttft_trials = first[i] if first is not None else np.array([])
        result |= per_token_fields(trials, ttft_trials, protocol.output_tokens)
        results.append(result)
    return results


def summary_line(result: dict[str, Any]) -> str:
    """One line per measurement for the log: the median, its spread, and the flag."""
    if result["cv_basis"] == "relative":
        spread = (
            f"cv {result['relative_cv']:.3f} relative to {result['reference']}, "
            f"{result['cv']:.3f} absolute"
        )
    else:
        spread = f"cv {result['cv']:.3f} absolute"
    ttft = f", ttft {result['ttft_s']:.4g} s" if "ttft_s" in result else ""
    tpot = result["median_tpot_ms"]
    tpot = f", tpot {tpot:.4g} ms, p99 {result['p99_e2el_ms']:.4g} ms" if tpot is not None else ""
    notes = "".join(f"\n  {result['backend']}: {note}" for note in result["engine_notes"])
    return (
        f"{result['shape']}: median {result['median_s']:.4g} s "
        f"({result['per_token_ms']:.4g} ms/token, {spread}"
        f"{', flagged' if result['flagged'] else ''}){ttft}{tpot} on {result['device']}{notes}"
    )


def summarize(times: np.ndarray) -> dict[str, float]:
    """Median (the number used downstream) and the spread around it."""
    q1, q3 = np.percentile(times, [25, 75])
    return {
        "median_s": float(np.median(times)),
        "mean_s": float(times.mean()),
        "min_s": float(times.min()),
        "iqr_s": float(q3 - q1),
        "cv": cv(times),
    }


def _noise(times: np.ndarray, references: np.ndarray | None) -> np.ndarray:
    """The CV a flag is judged on: relative where there is a reference, else absolute."""
    return absolute_cv(times) if references is None else relative_cv(times, references)


def _outliers(noise: np.ndarray, max_cv: float | None) -> np.ndarray:
    """Which measurements to re-time, then flag: a CV over ``max_cv`` and, among three or more
    measurements timed together, over OUTLIER_FACTOR times their median CV. Where every shape
    is as noisy as the machine, that noise is the machine's, carried by every median alike (and
    into the winner's latency tie through each CV); a flag marks the shape that is noisier
    than its neighbours, the one whose number to distrust."""
    if max_cv is None:
        return np.zeros(len(noise), dtype=bool)
    over = noise > max_cv
    if len(noise) >= 3:
        over &= noise > OUTLIER_FACTOR * np.median(noise)
    return over


def _rounds(
    calls: Sequence[tuple[Callable[[int, int], float], int]],
    new_tokens: int,
    trials: int,
    timed: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """``trials`` rounds, each timing the calls of ``timed`` (default: all) once in order:
    A B C A B C ...; items × rounds, NaN where an item sat out."""
    timed = range(len(calls)) if timed is None else timed
    times = np.full((len(calls), trials), np.nan)
    label = f"latency: {len(timed)} item(s), {new_tokens} new token(s)"
    progress = Progress(label, trials, unit=" rounds", every_s=0.0, scale=False)  # a line each
    for r in range(trials):
        for i in timed:
            call, batch = calls[i]
            times[i, r] = call(new_tokens, batch)
        progress.update(1)
    progress.close()
    return times


def load_model(item: Item, protocol: Protocol, torch_dtype: torch.dtype) -> PreTrainedModel:
    """The model an item times, on the CPU in ``torch_dtype``, with room for the protocol's
    positions (a checkpoint trained on shorter windows has its limit raised; rotary positions
    need no weights). A checkpoint whose config is not the item's shape is an input error."""
    positions = protocol.input_tokens + protocol.output_tokens
    if item.checkpoint is None:
        model = build_model(item.shape, max_position=positions, seed=protocol.seed, **TIMED_MODEL)
        return model.to(torch_dtype).eval()
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        if item.weights == "trained":
            model = AutoModelForCausalLM.from_pretrained(
                item.checkpoint, dtype=torch_dtype, max_position_embeddings=positions
            )
        else:
            config = AutoConfig.from_pretrained(item.checkpoint, max_position_embeddings=positions)
            torch.manual_seed(protocol.seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            open_lm_init(model)
    except OSError as err:
        raise InputError(f"{item.checkpoint}: not a saved model ({err})") from None
    config, shape = model.config, item.shape
    found = (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.vocab_size,
        config.intermediate_size,
    )
    wanted = (
        shape.d_model,
        shape.n_layers,
        shape.n_heads,
        shape.n_kv_heads,
        shape.vocab_size,
        shape.ffn_hidden,
    )
    if found != wanted:
        raise InputError(
            f"{item.checkpoint}: (d_model, n_layers, n_heads, n_kv_heads, vocab, ffn) = {found}, "
            f"not the shape {shape.label}'s {wanted}"
        )
    return model.to(torch_dtype).eval()


def _hf_generator(
    model: PreTrainedModel, shape: Shape, protocol: Protocol, clock: Callable[[], float]
) -> Callable[[int, int], float]:
    """A timed ``generate`` call of ``model``: (new tokens, batch) -> seconds."""
    device = protocol.device
    model = model.to(device)
    prompts: dict[int, torch.Tensor] = {}
    sampling = (
        {"do_sample": True, "temperature": protocol.temperature, "top_p": protocol.top_p}
        if protocol.do_sample
        else {"do_sample": False}
    )

    def once(new_tokens: int, batch: int) -> float:
        if batch not in prompts:
            generator = torch.Generator().manual_seed(protocol.seed + batch)
            prompts[batch] = torch.randint(
                0, shape.vocab_size, (batch, protocol.input_tokens), generator=generator
            ).to(device)
        prompt = prompts[batch]
        _sync(device)
        start = clock()
        out = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            min_new_tokens=new_tokens,
            max_new_tokens=new_tokens,
            pad_token_id=0,
            eos_token_id=None,
            use_cache=True,
            **sampling,
        )
        _sync(device)
        elapsed = clock() - start
        if out.shape[1] != protocol.input_tokens + new_tokens:
            raise RuntimeError(
                f"generated {out.shape[1] - protocol.input_tokens} tokens, not {new_tokens}"
            )
        return elapsed

    return once


@contextmanager
def saved_model(model: PreTrainedModel) -> Iterator[str]:
    """``model`` saved in a temporary directory (what vLLM loads from), removed after the block,
    also when it fails: one per timed shape, each as large as the model."""
    with tempfile.TemporaryDirectory(prefix="infscale-vllm-") as folder:
        model.save_pretrained(folder)
        yield folder


def _vllm_generator(
    model: PreTrainedModel, shape: Shape, protocol: Protocol, clock: Callable[[], float]
) -> Callable[[int, int], float]:
    """The same protocol served by vLLM (Appendix D): the model saved, then loaded, on the GPU
    or by vLLM's CPU build (eager: it has no CUDA graphs).

    Prompts go in as token ids (no tokenizer), the same random ids as the HF backend's;
    ``ignore_eos`` and ``min_tokens = max_tokens`` make every call generate exactly the asked
    number of tokens; the same temperature and top-p. Prefix caching is off: every trial sends
    the same prompt, and HF computes its prefill each time, so must vLLM.
    """
    from vllm import LLM, SamplingParams  # the vLLM environment only (latency.engine)

    device = protocol.device
    on_gpu = device.startswith("cuda")
    for name, value in engine.engine_env(torch.get_num_threads()).items():
        os.environ.setdefault(name, value)  # read by the engine as it starts
    memory = (
        {"gpu_memory_utilization": float(os.environ.get("INFSCALE_VLLM_GPU_FRACTION", "0.9"))}
        if on_gpu
        else {"enforce_eager": True}
    )
    with saved_model(model) as folder:  # the engine has read it all once LLM() returns
        llm = LLM(
            model=folder,
            skip_tokenizer_init=True,
            dtype=str(model.dtype).removeprefix("torch."),
            seed=protocol.seed,
            max_model_len=protocol.input_tokens + protocol.output_tokens,
            enable_prefix_caching=False,
            **memory,
        )
    prompts: dict[int, list[dict[str, list[int]]]] = {}

    def once(new_tokens: int, batch: int) -> float:
        if batch not in prompts:
            generator = torch.Generator().manual_seed(protocol.seed + batch)
            ids = torch.randint(
                0, shape.vocab_size, (batch, protocol.input_tokens), generator=generator
            )
            prompts[batch] = [{"prompt_token_ids": row.tolist()} for row in ids]
        params = SamplingParams(
            n=1,
            temperature=protocol.temperature if protocol.do_sample else 0.0,
            top_p=protocol.top_p if protocol.do_sample else 1.0,
            min_tokens=new_tokens,
            max_tokens=new_tokens,
            ignore_eos=True,
            detokenize=False,
            seed=protocol.seed,
        )
        if not on_gpu:
            time.sleep(engine.CPU_SETTLE_S)  # the engine timed before stops spinning
        _sync(device)
        start = clock()
        outputs = llm.generate(prompts[batch], params, use_tqdm=False)
        _sync(device)
        elapsed = clock() - start
        made = {len(out.outputs[0].token_ids) for out in outputs}
        if made != {new_tokens}:
            raise RuntimeError(f"vLLM generated {sorted(made)} tokens, not {new_tokens}")
        return elapsed

    return once


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no GPU")
    return device


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto``: bf16 on the GPU as the paper did, fp32 on the CPU (names checked by Protocol)."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (a Snakemake job's ``threads``) before timing."""
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
