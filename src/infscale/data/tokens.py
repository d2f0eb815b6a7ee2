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

from infscale.data.manifest import SPLITS, manifest_files
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
    """Tokenize ``(split, text)`` pieces into each split's file: ``pack_streams`` of one stream."""
    return pack_streams(tokenizer, [pieces], paths, seq_len, max_windows)


def pack_streams(
    tokenizer: PreTrainedTokenizerFast,
    streams: Iterable[Iterable[tuple[str, str]]],
    paths: Mapping[str, str | Path],
    seq_len: int,
    max_windows: Mapping[str, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Tokenize each stream of ``(split, text)`` pieces into each split's file (see
    ``write_streams``); ``progress`` is told the tokens of every encoded piece.

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
    encoded = (_encoded(backend, pieces, progress) for pieces in streams)
    return write_streams(encoded, paths, seq_len, eot, len(tokenizer), max_windows)


def _encoded(
    backend: Tokenizer,
    pieces: Iterable[tuple[str, str]],
    progress: Callable[[int], None] | None,
) -> Iterator[tuple[str, list[int]]]:
    for batch in _batches(pieces, ENCODE_BATCH):
        texts = [text for _, text in batch]
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        for (split, _), encoding in zip(batch, encodings, strict=True):
            if progress:
                progress(len(encoding.ids))
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
    """``write_streams`` of one stream."""
    return write_streams([docs], paths, seq_len, eot_id, vocab_size, max_windows)


def write_streams(
    streams: Iterable[Iterable[tuple[str, Sequence[int]]]],
    paths: Mapping[str, str | Path],
    seq_len: int,
    eot_id: int,
    vocab_size: int,
    max_windows: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Route each ``(split, token ids)`` document to ``paths[split]``; return each file's meta.

    Each file gets its documents joined with ``eot_id`` and cut into whole windows as they fill,
    so memory holds one document and one partial window per split, whatever the corpus size.
    Each stream (a source shard) is packed on its own: its ragged tail is dropped and the next
    starts a fresh window, so a window never spans two streams and the windows of a stream do
    not depend on the streams before it. A split in ``max_windows`` stops at that many windows,
    and reading stops once every capped split is full: a capped run never tokenizes the rest of
    a 4T-token corpus. All files are renamed into place together, only if every split got at
    least one window.
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
            _fill(streams, packers, [packers[name] for name in caps])
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


def _fill(
    streams: Iterable[Iterable[tuple[str, Sequence[int]]]],
    packers: dict[str, _Packer],
    capped: list[_Packer],
) -> None:
    """Feed every stream's documents to their split's packer until the capped ones are full."""
    for docs in streams:
        for split, ids in docs:
            packers[split].add(ids)
            if capped and all(p.full for p in capped):
                return
        for packer in packers.values():
            packer.end_stream()


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
        self.fresh = True  # the next document starts a stream: no end-of-text before it

    @property
    def full(self) -> bool:
        return self.max_windows is not None and self.n_windows >= self.max_windows

    def add(self, ids: Sequence[int]) -> None:
        """Append one document (after an end-of-text id, unless it starts its stream)."""
        if self.full:
            return
        piece = np.asarray(ids if self.fresh else [self.eot_id, *ids], dtype=self.dtype)
        self.fresh = False
        self.n_documents += 1
        self.n_tokens += len(piece)
        pending = np.concatenate([self.pending, piece])
        whole = len(pending) // self.width
        if self.max_windows is not None:
            whole = min(whole, self.max_windows - self.n_windows)
        pending[: whole * self.width].tofile(self.out)
        self.n_windows += whole
        self.pending = pending[whole * self.width :]

    def end_stream(self) -> None:
        """Drop the ragged tail: the next document starts a fresh window."""
        self.pending = np.empty(0, self.dtype)
        self.fresh = True


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
        return torch.from_numpy(self.rows(np.fromiter(rows, dtype=np.int64)).astype(np.int64))

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Windows ``index`` as stored (uint16 or uint32)."""
        return self._data[index]


class WindowSet:
    """Several packed files (the tokenization jobs' files of one split) read as one: window ``i``
    of the set is window ``i - offsets[f]`` of file ``f``, the files in manifest order (or one
    file, as a path)."""

    def __init__(self, paths: str | Path | Sequence[str | Path]) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        if not paths:
            raise InputError("no token files to read")
        self.files = [TokenWindows(path) for path in paths]
        first = self.files[0]
        for other in self.files[1:]:
            got = (other.seq_len, other.vocab_size, other.eot_id)
            if got != (first.seq_len, first.vocab_size, first.eot_id):
                raise InputError(
                    f"{other.path}: seq_len, vocab_size, eot_id {got} differ from {first.path}'s"
                )
        self.seq_len, self.vocab_size, self.eot_id = first.seq_len, first.vocab_size, first.eot_id
        self.offsets = np.cumsum([0, *(len(f) for f in self.files)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, rows: Iterable[int]) -> torch.Tensor:
        """Windows ``rows`` (indices into the whole set) as a LongTensor, in the order asked."""
        index = np.fromiter(rows, dtype=np.int64)
        which = np.searchsorted(self.offsets, index, side="right") - 1
        out = np.empty((len(index), self.seq_len + 1), dtype=np.int64)
        for f in np.unique(which):
            here = which == f
            out[here] = self.files[f].rows(index[here] - self.offsets[f])
        return torch.from_numpy(out)


def manifest_windows(path: str | Path) -> dict[str, WindowSet]:
    """Each split's windows over all the jobs of a manifest (infscale.data.manifest)."""
    files = manifest_files(path)
    return {split: WindowSet(files[split]) for split in SPLITS}
