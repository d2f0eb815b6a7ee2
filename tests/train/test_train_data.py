"""Data for the trainer: a local jsonl/parquet file through ``datasets``, packed with EOT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infscale.data.corpus import hf_texts
from infscale.data.tokenizer import train_bpe
from infscale.data.tokens import TokenWindows, pack
from infscale.train.loop import shard_rows
from infscale.train.order import WindowOrder

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "box",
    "and",
    "hum",
]


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_local_file_is_packed_into_windows_with_eot_and_no_repeats(tmp_path, kind):
    rng = np.random.default_rng(0)
    docs = [f"doc{i} " + " ".join(rng.choice(WORDS, rng.integers(5, 30))) for i in range(200)]
    rows = pd.DataFrame({"text": docs})
    path = tmp_path / f"rows.{kind}"
    if kind == "jsonl":
        rows.to_json(path, orient="records", lines=True)
    else:
        rows.to_parquet(path)
    texts = list(hf_texts(str(path), None, "train", "text"))
    assert texts == docs
    tokenizer = train_bpe(texts, 300, tmp_path / "tok")
    seq_len = 32
    pieces = (("train", text) for text in texts)
    n = pack(tokenizer, pieces, {"train": tmp_path / "train.bin"}, seq_len)["train"]["n_windows"]
    windows = TokenWindows(tmp_path / "train.bin")
    assert len(windows) == n and windows.seq_len == seq_len
    flat = windows.batch(range(n)).reshape(-1).tolist()
    assert all(len(row) == seq_len + 1 for row in windows.batch(range(n)).tolist())
    eot = tokenizer.eos_token_id
    pieces, current = [], []
    for token in flat:
        if token == eot:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    decoded = [tokenizer.decode(p) for p in pieces]
    assert decoded == docs[: len(decoded)]  # in order, each document once, EOT between them
    assert len(decoded) > 150
    # two ranks over all steps read every window exactly once
    steps = range(n // 8)
    positions = [i for step in steps for rank in (0, 1) for i in shard_rows(step, 8, rank, 2)]
    assert positions == list(range(n // 8 * 8))
    windows = WindowOrder(n, seed=0).windows(positions)
    assert len(set(windows.tolist())) == len(windows)  # no window twice in the epoch
