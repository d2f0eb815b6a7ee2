"""Packed token windows: the training and validation data as a flat memmap of token ids.

As in nanoGPT and open_lm, documents are tokenized, joined with the end-of-text token between
them, and cut into windows of ``seq_len + 1`` tokens: ``seq_len`` inputs plus the next-token
target of the last one. Windows do not overlap and the ragged tail is dropped, so every window is
full and no token is seen twice in one pass. ``X.bin`` holds the ids; ``X.meta.json`` beside it
says how to read them. The files are written as the documents stream past, in bounded memory,
and appear (by rename) only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from infscale.errors import InputError
from infscale.io import atomic_write, read_json, write_json

ENCODE_BATCH = 256  # documents per encode_batch call: parallel in Rust, bounded memory
T = TypeVar("T")


def meta_path(path: str | Path) -> Path:
    """``train.bin`` → ``train.meta.json`` (one per file: train and val share a directory)."""
    return Path(path).with_suffix(".meta.json")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (the paper's NeoX vocabulary does), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def pack(
    tokenizer: PreTrainedTokenizerFast,
    pieces: Iterable[tuple[str, str]],
    paths: Mapping[str, str | Path],
    seq_len: int,
    max_windows: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Tokenize ``(split, text)`` pieces into each split's file (see ``write_splits``).

    Only the separator is an end-of-text id: like nanoGPT's ``encode_ordinary``, special-token
    strings inside a document (web text has them) are encoded as ordinary text. Texts are encoded
    ``ENCODE_BATCH`` at a time as the stream passes, so at most one batch is read ahead of what
    the files keep.
    """
    eot = tokenizer.eos_token_id
    if eot is None:
        raise InputError("the tokenizer has no end-of-text (eos) token to separate documents")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.encode_special_tokens = True  # a literal "<|endoftext|>" in the text is just text
    return write_splits(_encoded(backend, pieces), paths, seq_len, eot, len(tokenizer), max_windows)


def _encoded(
    backend: Tokenizer, pieces: Iterable[tuple[str, str]]
) -> Iterator[tuple[str, list[int]]]:
    for batch in _batches(pieces, ENCODE_BATCH):
        texts = [text for _, text in batch]
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        for (split, _), encoding in zip(batch, encodings, strict=True):
            yield split, encoding.ids


def write_windows(
    docs: Iterable[Sequence[int]], out_path: str | Path, seq_len: int, eot_id: int, vocab_size: int
) -> int:
    """Join token lists with ``eot_id`` between them and write whole windows to one file."""
    key = str(out_path)
    metas = write_splits(((key, ids) for ids in docs), {key: out_path}, seq_len, eot_id, vocab_size)
    return metas[key]["n_windows"]


def write_splits(
    docs: Iterable[tuple[str, Sequence[int]]],
    paths: Mapping[str, str | Path],
    seq_len: int,
    eot_id: int,
    vocab_size: int,
    max_windows: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Route each ``(split, token ids)`` document to ``paths[split]``; return each file's meta.

    Each file gets its documents joined with ``eot_id`` and cut into whole windows as they fill,
    so memory holds one document and one partial window per split, whatever the corpus size. A
    split in ``max_windows`` stops at that many windows, and reading stops once every capped
    split is full: a capped run never tokenizes the rest of a 4T-token corpus. All files are
    renamed into place together, only if every split got at least one window.
    """
    if seq_len < 1:
        raise InputError(f"seq_len must be a positive integer, got {seq_len}")
    caps = dict(max_windows or {})
    dtype, width = token_dtype(vocab_size), seq_len + 1
    names = list(paths)
    packers: dict[str, _Packer] = {}

    def write(tmps: list[Path]) -> None:
        with ExitStack() as files:
            for name, tmp in zip(names, tmps, strict=True):
                out = files.enter_context(open(tmp, "wb"))
                packers[name] = _Packer(out, width, dtype, eot_id, caps.get(name))
            capped = [packers[name] for name in caps]
            for split, ids in docs:
                packers[split].add(ids)
                if capped and all(p.full for p in capped):
                    break
        for name, packer in packers.items():
            if packer.n_windows == 0:
                raise InputError(
                    f"{paths[name]}: {packer.n_tokens} tokens are fewer than one window of {width}"
                )

    _atomic_write_all([Path(paths[name]) for name in names], write)
    metas = {
        name: {
            "dtype": dtype.name,
            "seq_len": seq_len,
            "n_windows": packer.n_windows,
            "n_tokens": packer.n_windows * width,
            "n_tokens_dropped": packer.n_tokens - packer.n_windows * width,
            "n_documents": packer.n_documents,
            "vocab_size": vocab_size,
            "eot_id": eot_id,
        }
        for name, packer in packers.items()
    }
    for name, meta in metas.items():
        write_json(meta_path(paths[name]), meta)
    return metas


def _atomic_write_all(paths: list[Path], write: Callable[[list[Path]], None]) -> None:
    """``atomic_write`` for several files: ``write`` fills their temporaries, then all are
    renamed into place; if it raises, none is."""
    if not paths:
        write([])
        return
    first, rest = paths[0], paths[1:]
    atomic_write(first, lambda tmp: _atomic_write_all(rest, lambda tmps: write([tmp, *tmps])))


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Packer:
    """One split's windows, appended to an open file as its token stream fills them."""

    def __init__(
        self, out: BinaryIO, width: int, dtype: np.dtype, eot_id: int, max_windows: int | None
    ) -> None:
        self.out, self.width, self.dtype, self.eot_id = out, width, dtype, eot_id
        self.max_windows = max_windows
        self.pending = np.empty(0, dtype)  # the tail shorter than a window: never written
        self.n_windows = self.n_tokens = self.n_documents = 0

    @property
    def full(self) -> bool:
        return self.max_windows is not None and self.n_windows >= self.max_windows

    def add(self, ids: Sequence[int]) -> None:
        """Append one document (after an end-of-text id, unless it is the first)."""
        if self.full:
            return
        piece = np.asarray([self.eot_id, *ids] if self.n_documents else ids, dtype=self.dtype)
        self.n_documents += 1
        self.n_tokens += len(piece)
        pending = np.concatenate([self.pending, piece])
        whole = len(pending) // self.width
        if self.max_windows is not None:
            whole = min(whole, self.max_windows - self.n_windows)
        pending[: whole * self.width].tofile(self.out)
        self.n_windows += whole
        self.pending = pending[whole * self.width :]


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
