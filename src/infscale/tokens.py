"""Packed token windows: the training and validation data as a flat memmap of token ids.

As in nanoGPT and open_lm, documents are tokenized, joined with the end-of-text token between
them, and cut into windows of ``seq_len + 1`` tokens: ``seq_len`` inputs plus the next-token
target of the last one. Windows do not overlap and the ragged tail is dropped, so every window is
full and no token is seen twice in one pass. ``X.bin`` holds the ids; ``X.meta.json`` beside it
says how to read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from infscale.errors import InputError
from infscale.io import atomic_write, read_json, write_json

ENCODE_BATCH = 256  # documents per encode_batch call: parallel in Rust, bounded memory


def meta_path(path: str | Path) -> Path:
    """``train.bin`` → ``train.meta.json`` (one per file: train and val share a directory)."""
    return Path(path).with_suffix(".meta.json")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (the paper's NeoX vocabulary does), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def pack(
    tokenizer: PreTrainedTokenizerFast, docs: Iterable[str], out_path: str | Path, seq_len: int
) -> int:
    """Tokenize ``docs``, write whole ``seq_len + 1`` windows to ``out_path``; return their count.

    Only the separator is an end-of-text id: like nanoGPT's ``encode_ordinary``, special-token
    strings inside a document (web text has them) are encoded as ordinary text.
    """
    eot = tokenizer.eos_token_id
    if eot is None:
        raise InputError("the tokenizer has no end-of-text (eos) token to separate documents")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.encode_special_tokens = True  # a literal "<|endoftext|>" in the text is just text
    encoded = (
        e.ids
        for batch in _batches(docs, ENCODE_BATCH)
        for e in backend.encode_batch(batch, add_special_tokens=False)
    )
    return write_windows(encoded, out_path, seq_len, eot, len(tokenizer))


def write_windows(
    docs: Iterable[Sequence[int]], out_path: str | Path, seq_len: int, eot_id: int, vocab_size: int
) -> int:
    """Join token lists with ``eot_id`` between them and write whole windows atomically."""
    if seq_len < 1:
        raise InputError(f"seq_len must be a positive integer, got {seq_len}")
    dtype, width = token_dtype(vocab_size), seq_len + 1
    stats: dict[str, int] = {}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            stats.update(_write_stream(docs, eot_id, out, width, dtype))
        if stats["n_windows"] == 0:
            raise InputError(
                f"{out_path}: {stats['n_tokens_total']} tokens are fewer than one window of {width}"
            )

    atomic_write(out_path, write)
    n_windows = stats["n_windows"]
    write_json(
        meta_path(out_path),
        {
            "dtype": dtype.name,
            "seq_len": seq_len,
            "n_windows": n_windows,
            "n_tokens": n_windows * width,
            "n_tokens_dropped": stats["n_tokens_total"] - n_windows * width,
            "n_documents": stats["n_documents"],
            "vocab_size": vocab_size,
            "eot_id": eot_id,
        },
    )
    return n_windows


def _batches(docs: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_stream(
    docs: Iterable[Sequence[int]], eot_id: int, out: BinaryIO, width: int, dtype: np.dtype
) -> dict[str, int]:
    """Write whole windows as they fill; the tail shorter than a window is never written."""
    pending = np.empty(0, dtype)
    total = windows = n_docs = 0
    for ids in docs:
        piece = np.asarray([eot_id, *ids] if n_docs else ids, dtype=dtype)
        n_docs += 1
        total += len(piece)
        pending = np.concatenate([pending, piece])
        whole = len(pending) // width * width
        pending[:whole].tofile(out)
        windows += whole // width
        pending = pending[whole:]
    return {"n_windows": windows, "n_tokens_total": total, "n_documents": n_docs}


class TokenWindows:
    """Read-only access to a packed file: ``len()`` windows, ``batch(rows)`` as int64 tensors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta: dict[str, Any] = read_json(meta_path(self.path))
        self.seq_len: int = meta["seq_len"]
        self.vocab_size: int = meta["vocab_size"]
        self.eot_id: int = meta["eot_id"]
        shape = (meta["n_windows"], self.seq_len + 1)
        dtype = np.dtype(meta["dtype"])
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        size = self.path.stat().st_size
        if size != shape[0] * shape[1] * dtype.itemsize:
            raise InputError(f"{self.path}: {size} bytes do not match {meta_path(self.path)}")
        self._data = np.memmap(self.path, dtype=dtype, mode="r", shape=shape)

    def __len__(self) -> int:
        return self._data.shape[0]

    def batch(self, rows: Iterable[int]) -> torch.Tensor:
        """Windows ``rows`` as a LongTensor ``[len(rows), seq_len + 1]``."""
        index = np.fromiter(rows, dtype=np.int64)
        return torch.from_numpy(self._data[index].astype(np.int64))
