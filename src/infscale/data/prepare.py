"""The data stage's steps, each in bounded memory: the tokenizer (once), then the tokenization
jobs (the scatter: rules/data.smk runs one per group of source shards, shards.py), whose files
the gather lists (manifest.py).

Nothing here holds the corpus: documents are read lazily (corpus.py, shards.py), assigned to
training or validation one chunk at a time, and packed into the token files as they pass
(tokens.py). The source is read at most twice: once for the first ``BPE_SAMPLE_CHARS`` of
training text when a BPE is trained (a pretrained tokenizer skips this), and once to pack, which
stops in each job as soon as its training file holds its share of ``data.max_tokens``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from infscale.data.corpus import split_pieces
from infscale.data.manifest import tokenizer_hash
from infscale.data.shards import job_cap, shard_streams, source_shards
from infscale.data.tokenizer import build_tokenizer
from infscale.data.tokens import pack_streams
from infscale.errors import InputError
from infscale.io import write_json
from infscale.progress import Progress


def prepare_data(
    data_cfg: dict[str, Any],
    tok_cfg: dict[str, Any],
    out: dict[str, str | Path],
    cache_dir: str | Path,
    seed: int,
    model_vocab: int,
) -> dict[str, Any]:
    """The whole data stage in one process, as one job over every source shard: the tokenizer
    to ``out["tokenizer"]``, the windows to ``out["train"]`` and ``out["val"]``, the sidecar to
    ``out["meta"]``, which it returns with ``seq_len`` and ``max_tokens`` (benchmarks and tests
    use this; the workflow runs the same steps as separate jobs).

    The summary counts, per split, the texts packed (training runs and validation chunks, see
    ``split_pieces``), the windows, and the tokens as the trainer counts them (``seq_len`` per
    window).
    """
    prepare_tokenizer(data_cfg, tok_cfg, out["tokenizer"], cache_dir, seed, model_vocab)
    files = {key: out[key] for key in ("train", "val", "meta")}
    shards = source_shards(data_cfg)
    cap = job_cap(data_cfg, 1)
    sidecar = tokenize_job(data_cfg, shards, out["tokenizer"], files, cache_dir, seed, cap)
    return {**sidecar, "seq_len": data_cfg["seq_len"], "max_tokens": data_cfg["max_tokens"]}


def prepare_tokenizer(
    data_cfg: dict[str, Any],
    tok_cfg: dict[str, Any],
    out_dir: str | Path,
    cache_dir: str | Path,
    seed: int,
    model_vocab: int,
    hub: dict[str, str | None] | None = None,
) -> PreTrainedTokenizerFast:
    """The tokenizer, once, before the scatter: a BPE learns from the training text of the
    source shards in source order (its first ``BPE_SAMPLE_CHARS``), a pretrained one reads none.

    ``model_vocab`` is ``model.vocab_size``, the embedding's rows: a tokenizer with more tokens
    stops here, before any packing (or training, where it would index past the embedding).
    ``hub``: where the hub assets are in the hub mirror (:func:`infscale.hub.local_paths`).
    """
    hub = hub or {}

    def training_text() -> Iterator[str]:
        shards = source_shards(data_cfg)
        for docs in shard_streams(data_cfg, shards, cache_dir, hub.get("data")):
            for split, text in split_pieces(docs, data_cfg["val_fraction"], seed):
                if split == "train":
                    yield text

    tokenizer = build_tokenizer(tok_cfg, training_text(), out_dir, cache_dir, hub.get("tokenizer"))
    if len(tokenizer) > model_vocab:
        raise InputError(
            f"config key model.vocab_size: {model_vocab:,} is fewer than the {len(tokenizer):,} "
            "tokens of the tokenizer (the embedding must hold every token id)"
        )
    return tokenizer


def tokenize_job(
    data_cfg: dict[str, Any],
    shards: list[str],
    tokenizer_dir: str | Path,
    out: dict[str, str | Path],
    cache_dir: str | Path,
    seed: int,
    max_windows: int | None,
    provenance: dict[str, Any] | None = None,
    local_dir: str | Path | None = None,
) -> dict[str, Any]:
    """One tokenization job: its source shards, each split and packed on its own, into
    ``out["train"]`` and ``out["val"]``, and the sidecar ``out["meta"]`` the gather reads
    (with ``provenance`` where given). ``local_dir``: a hub dataset's directory in the hub
    mirror, whose files are read instead of the hub's.

    Training packing stops at ``max_windows`` (the job's share of ``data.max_tokens``). Every
    output appears by rename when complete, and the job reads and writes the same bytes on
    every try, so a job killed mid-shard and rerun writes the file an uninterrupted one does.
    """
    for path in out.values():  # temporaries a killed try left behind
        for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
            stale.unlink()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    seq_len, source = data_cfg["seq_len"], hashlib.blake2b(digest_size=16)

    def hashed(docs: Iterator[str]) -> Iterator[str]:
        for text in docs:
            source.update(text.encode() + b"\0")
            yield text

    streams = (
        split_pieces(hashed(docs), data_cfg["val_fraction"], seed)
        for docs in shard_streams(data_cfg, shards, cache_dir, local_dir)
    )
    total = None if max_windows is None else max_windows * (seq_len + 1)
    progress = Progress(f"tokenize {Path(out['meta']).stem}", total)
    paths = {split: out[split] for split in ("train", "val")}
    cap = {} if max_windows is None else {"train": max_windows}
    metas = pack_streams(tokenizer, streams, paths, seq_len, cap, progress.update)
    progress.close()
    sidecar = {
        "shards": shards,
        "files": {split: Path(path).name for split, path in paths.items()},
        "source_hash": source.hexdigest(),
        "tokenizer_hash": tokenizer_hash(tokenizer_dir),
        "max_windows": max_windows,
        **_counts(metas, seq_len),
        "vocab_size": len(tokenizer),
    }
    if provenance is not None:
        sidecar["provenance"] = provenance
    write_json(out["meta"], sidecar)
    return sidecar


def _counts(metas: dict[str, dict[str, Any]], seq_len: int) -> dict[str, dict[str, int]]:
    """Per split: texts packed, windows, and tokens as the trainer counts them (seq_len each)."""
    return {
        "documents": {split: meta["n_documents"] for split, meta in metas.items()},
        "windows": {split: meta["n_windows"] for split, meta in metas.items()},
        "tokens": {split: meta["n_windows"] * seq_len for split, meta in metas.items()},
    }
