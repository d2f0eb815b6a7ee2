"""The data stage in one bounded-memory stream: source → split → tokenizer → packed windows.

Nothing here holds the corpus: documents are read lazily (corpus.py), assigned to training or
validation one chunk at a time, and packed into the token files as they pass (tokens.py). The
source is read at most twice: once for the first ``BPE_SAMPLE_CHARS`` of training text when a BPE
is trained (a pretrained tokenizer skips this), and once to pack, which stops as soon as the
training file holds ``data.max_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infscale.data.corpus import load_texts, split_pieces
from infscale.data.tokenizer import build_tokenizer
from infscale.data.tokens import pack


def prepare_data(
    data_cfg: dict[str, Any],
    tok_cfg: dict[str, Any],
    out: dict[str, str | Path],
    cache_dir: str | Path,
    seed: int,
) -> dict[str, Any]:
    """Write ``out["tokenizer"]`` (a directory), ``out["train"]`` and ``out["val"]``; summarise.

    The summary counts, per split, the texts packed (training runs and validation chunks, see
    ``split_pieces``), the windows, and the tokens as the trainer counts them (``seq_len`` per
    window).
    """
    seq_len = data_cfg["seq_len"]

    def pieces() -> Iterator[tuple[str, str]]:
        docs = load_texts(data_cfg, cache_dir)
        return split_pieces(docs, data_cfg["val_fraction"], seed)

    training_text = (text for split, text in pieces() if split == "train")
    tokenizer = build_tokenizer(tok_cfg, training_text, out["tokenizer"], cache_dir)
    paths = {split: out[split] for split in ("train", "val")}
    metas = pack(tokenizer, pieces(), paths, seq_len, train_cap(data_cfg))
    return {
        "documents": {split: meta["n_documents"] for split, meta in metas.items()},
        "windows": {split: meta["n_windows"] for split, meta in metas.items()},
        "tokens": {split: meta["n_windows"] * seq_len for split, meta in metas.items()},
        "seq_len": seq_len,
        "vocab_size": len(tokenizer),
        "max_tokens": data_cfg["max_tokens"],
    }


def train_cap(data_cfg: dict[str, Any]) -> dict[str, int]:
    """``{"train": windows}`` holding at least ``data.max_tokens`` tokens; ``{}`` when unset.

    Tokens count ``seq_len`` per window, as the trainer's token budgets do.
    """
    max_tokens = data_cfg["max_tokens"]
    if max_tokens is None:
        return {}
    return {"train": math.ceil(max_tokens / data_cfg["seq_len"])}
