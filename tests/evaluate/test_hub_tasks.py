"""eval.source hub: the stock tasks' splits staged into the hub mirror, and evaluated from there
with the hub switched off.

No hub is reachable here, so the test writes the mirror as staging does (each task's scored split
a ``datasets`` ``save_to_disk`` directory under ``eval/<task>/<split>``), with a few rows in the
hub datasets' own schemas, then runs lm-eval on it offline with every internet socket refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hub_mirror
import pytest
import yaml
from conftest import offline_env

from infscale.errors import InputError
from infscale.evaluate.tasks import PREFIX, hub_splits, prepare_tasks, stage_hub_tasks
from infscale.provenance import provenance

TASKS = ["arc_easy", "wsc273"]
STAMP = provenance({"eval": {"tasks": TASKS}})
ARC = [
    {
        "id": f"q{i}",
        "question": f"Which one is number {i}?",
        "choices": {"text": [f"{i}", f"{i + 1}", f"{i + 2}"], "label": ["A", "B", "C"]},
        "answerKey": "A",
    }
    for i in range(6)
]
WSC = hub_mirror.WSC * 2  # the hub dataset's schema, as tests/hub_mirror.py writes it


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets import Dataset

    root = tmp_path_factory.mktemp("hub")
    for name, rows in (("arc_easy", ARC), ("wsc273", WSC)):
        (split,) = hub_splits([name])[name]
        Dataset.from_list(rows).save_to_disk(str(split.directory(root / "eval")))
    return root


def test_hub_splits_are_the_stock_tasks_scored_splits() -> None:
    splits = hub_splits(["arc_easy", "mmlu", "wsc273", "hellaswag"])
    assert [(s.path, s.name, s.split) for s in splits["arc_easy"]] == [
        ("allenai/ai2_arc", "ARC-Easy", "test")
    ]
    assert len(splits["mmlu"]) == 57 and {s.path for s in splits["mmlu"]} == {"cais/mmlu"}
    assert splits["wsc273"][0].path == "lighteval/winograd_wsc"
    assert splits["hellaswag"][0].split == "validation"  # it has no test split


def test_staged_splits_are_not_downloaded_again_and_a_missing_one_is_named(
    mirror: Path, tmp_path: Path
) -> None:
    records = stage_hub_tasks(TASKS, mirror, download=False)
    assert [r["downloaded"] for r in records] == [False, False]
    with pytest.raises(InputError, match=r"eval/copa/validation: eval data of lm-eval task copa"):
        stage_hub_tasks(["copa"], mirror, download=False)
    with pytest.raises(InputError, match="copa not staged in the hub mirror"):
        prepare_tasks(["copa"], tmp_path / "tasks", tmp_path, "hub", STAMP, mirror)


def test_hub_tasks_are_evaluated_from_the_mirror_offline(mirror: Path, tmp_path: Path) -> None:
    tasks = prepare_tasks(TASKS, tmp_path / "tasks", tmp_path / "cache", "hub", STAMP, mirror)
    mapping = json.loads((tasks / "tasks.json").read_text())
    assert mapping["eval_source"] == "hub"
    assert {n: t["n_docs"] for n, t in mapping["tasks"].items()} == {"arc_easy": 6, "wsc273": 4}
    arc = yaml.safe_load((tasks / f"{PREFIX}arc_easy.yaml").read_text())
    assert arc["include"].endswith("lm_eval/tasks/arc/arc_easy.yaml")  # the stock prompts
    assert arc["test_split"] == "test" and arc["training_split"] is None
    assert all(f.startswith(str(mirror)) for f in arc["dataset_kwargs"]["data_files"]["test"])

    model = _tiny_model(tmp_path / "model")
    script = (
        "import json, sys\n"
        "from infscale.evaluate.harness import evaluate_model\n"
        f"r = evaluate_model({str(model)!r}, {TASKS!r}, {str(tasks)!r}, limit=3, batch_size=4)\n"
        "print(json.dumps({k: r['tasks'][k]['n'] for k in r['tasks']} | "
        "{'source': r['source']}))\n"
    )
    env = offline_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "network.log").exists(), (tmp_path / "network.log").read_text()
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"arc_easy": 3, "wsc273": 3, "source": "hub"}


def _tiny_model(out: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    text = [row["question"] for row in ARC] + [WSC[0]["text"]]
    bpe.train_from_iterator(
        text,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<eos>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>", unk_token="<eos>"
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=None,
        )
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
